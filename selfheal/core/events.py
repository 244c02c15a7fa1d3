"""Journal events in words: what ``history`` lists and syslog sends.

A journal line can parse and still carry odd values (another tool, an
editor): each figure is shown only when it is a number.
"""

from __future__ import annotations


def number(event: dict[str, object], key: str) -> int | float | None:
    """The event's figure ``key``, or None when it is missing or not a number.

    A line can parse and still carry a string where a figure belongs (an
    editor, another tool); history shows no figure rather than ``xs``.
    """
    value = event.get(key)
    if type(value) is int or type(value) is float:  # the usual case, decided at once
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


#: The kinds whose details say how a heal ended, and those that say how long recovery took.
_ENDS = frozenset(["action_end", "action_lost"])
_RECOVERIES = frozenset(["recovered", "verified"])


def describe(event: dict[str, object]) -> str:
    """The event's details in a few words, for the text listing.

    ``history`` describes each of a fleet's million events: each kind asks
    only for the fields it shows, and a figure that is an ``int`` or a
    ``float`` (as every line ``journal_line`` let through holds) is taken
    without a further call.
    """
    kind = event["event"]
    get = event.get
    attempt = get("attempt")
    parts = [f"attempt {attempt}"] if _shown(attempt) else []
    if kind == "attempt":
        argv = get("argv")
        if type(argv) is list and argv:
            try:
                parts.append(" ".join(argv))
            except TypeError:  # a word that is not text
                parts.append(" ".join(map(str, argv)))
        unit = get("unit")
        if unit:
            parts.append(f"unit {unit}")
        else:
            fallback = get("fallback_reason")
            if fallback:
                parts.append(f"new session: {fallback}")
    elif kind in _ENDS:
        if get("timed_out"):
            parts.append("timed out")
        else:
            code = get("exit_code")
            if _shown(code):
                parts.append(f"exited {code}")
        duration = get("duration")
        if _shown(duration):
            parts.append(f"after {duration}s")
        reset = get("reset_failed")
        if isinstance(reset, dict) and reset.get("unit"):
            done = "" if reset.get("exit_code") == 0 else f" (exited {reset.get('exit_code')})"
            parts.append(f"reset-failed {reset['unit']} first{done}")
    elif kind in _RECOVERIES:
        took = get("time_to_recover")
        if _shown(took):
            parts.append(f"{took}s after the first heal")
    elif kind == "reported":
        if get("to"):
            code = number(event, "state")
            state = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[int(code)] if code in (0, 1, 2, 3) else "?"
            parts.append(f"{state} to {event['to']}" + ("" if get("reason") else ", accepted"))
    elif kind == "paused":
        if get("until"):
            parts.append(f"until {event['until']}")
    elif str(kind).startswith("fleet_") and get("group"):
        slot = f" slot {event['slot']}" if number(event, "slot") is not None else ""
        parts.append(f"group {event['group']}{slot}")
        if number(event, "in_use") is not None and number(event, "max_concurrent") is not None:
            parts.append(f"{event['in_use']}/{event['max_concurrent']} in use")
        if get("holder"):
            parts.append(f"held by {event['holder']}")
    by = get("by")
    if by:
        parts.append(f"by {by}")
    reason = get("reason")
    if not parts:
        return f"({reason})" if reason else ""
    text = parts[0] if len(parts) == 1 else ", ".join(parts)
    return f"{text} ({reason})" if reason else text


def _shown(value: object) -> bool:
    """Whether a figure is a number to show (not None, not text, not a boolean)."""
    kind = type(value)
    return kind is int or kind is float or (isinstance(value, (int, float)) and kind is not bool)

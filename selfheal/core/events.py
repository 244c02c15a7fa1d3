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
    only for the fields it shows.
    """
    kind = event["event"]
    get = event.get
    parts = []
    if number(event, "attempt") is not None:
        parts.append(f"attempt {event['attempt']}")
    if kind == "attempt":
        argv = get("argv")
        if isinstance(argv, list) and argv:
            parts.append(" ".join(map(str, argv)))
        if get("unit"):
            parts.append(f"unit {event['unit']}")
        elif get("fallback_reason"):
            parts.append(f"new session: {event['fallback_reason']}")
    elif kind in _ENDS:
        if get("timed_out"):
            parts.append("timed out")
        elif number(event, "exit_code") is not None:
            parts.append(f"exited {event['exit_code']}")
        if number(event, "duration") is not None:
            parts.append(f"after {event['duration']}s")
        reset = get("reset_failed")
        if isinstance(reset, dict) and reset.get("unit"):
            done = "" if reset.get("exit_code") == 0 else f" (exited {reset.get('exit_code')})"
            parts.append(f"reset-failed {reset['unit']} first{done}")
    elif kind in _RECOVERIES:
        if number(event, "time_to_recover") is not None:
            parts.append(f"{event['time_to_recover']}s after the first heal")
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
    if get("by"):
        parts.append(f"by {event['by']}")
    text = ", ".join(parts)
    reason = get("reason")
    if reason:
        text += f" ({reason})" if text else f"({reason})"
    return text

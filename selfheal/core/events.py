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
    return _figure(event.get(key))


def _figure(value: object) -> int | float | None:
    """``value`` when it is a number to show (not None, not text, not a boolean); else None."""
    if type(value) is int or type(value) is float:  # the usual case, decided at once
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


#: What each kind's details say besides the attempt, who and why (``describe``); a kind not
#: here says only those, unless it is a fleet's (``fleet_...``).
_HEAL, _END, _RECOVERY, _REPORTED, _PAUSED, _FLEET = range(1, 7)
_KINDS = {
    "attempt": _HEAL,
    "action_end": _END,
    "action_lost": _END,
    "recovered": _RECOVERY,
    "verified": _RECOVERY,
    "reported": _REPORTED,
    "paused": _PAUSED,
    "skipped_cooldown": 0,
    "gave_up": 0,
}
#: Small figures as text, made once: formatting an int costs more than the rest of a row's cell.
_ATTEMPTS = [f"attempt {n}" for n in range(100)]
_EXITED = [f"exited {n}" for n in range(-255, 256)]


def describe(event: dict[str, object]) -> str:
    """The event's details in a few words, for the text listing.

    ``history`` describes each of a fleet's million events: each kind asks
    only for the fields it shows, and a figure that is an ``int`` or a
    ``float`` (as every line ``journal_line`` let through holds) is taken
    without a further call.
    """
    get = event.get
    attempt = get("attempt")
    if type(attempt) is int and 0 <= attempt < 100:
        parts = [_ATTEMPTS[attempt]]
    else:
        parts = [f"attempt {attempt}"] if _figure(attempt) is not None else []
    kind = event["event"]
    which = _KINDS.get(kind) if type(kind) is str else None
    if which is None and str(kind).startswith("fleet_"):
        which = _FLEET
    if not which:
        pass
    elif which == _HEAL:
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
    elif which == _END:
        if get("timed_out"):
            parts.append("timed out")
        else:
            code = get("exit_code")
            if type(code) is int and -255 <= code <= 255:
                parts.append(_EXITED[code + 255])
            elif _figure(code) is not None:
                parts.append(f"exited {code}")
        duration = get("duration")
        if _figure(duration) is not None:
            parts.append(f"after {duration!s}s")  # str(): format() of a float is slower, and the same
        reset = get("reset_failed")
        if isinstance(reset, dict) and reset.get("unit"):
            done = "" if reset.get("exit_code") == 0 else f" (exited {reset.get('exit_code')})"
            parts.append(f"reset-failed {reset['unit']} first{done}")
    elif which == _RECOVERY:
        took = get("time_to_recover")
        if _figure(took) is not None:
            parts.append(f"{took!s}s after the first heal")
    elif which == _REPORTED:
        if get("to"):
            code = number(event, "state")
            state = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[int(code)] if code in (0, 1, 2, 3) else "?"
            parts.append(f"{state} to {event['to']}" + ("" if get("reason") else ", accepted"))
    elif which == _PAUSED:
        if get("until"):
            parts.append(f"until {event['until']}")
    elif get("group"):  # a fleet's event
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
    text = ", ".join(parts) if len(parts) != 1 else parts[0]  # a part may be empty (an argv of [""])
    if not reason:
        return text
    return f"{text} ({reason})" if text else f"({reason})"

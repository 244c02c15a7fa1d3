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
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def describe(event: dict[str, object]) -> str:
    """The event's details in a few words, for the text listing."""
    kind = event["event"]
    parts = []
    if number(event, "attempt") is not None:
        parts.append(f"attempt {event['attempt']}")
    argv = event.get("argv")
    if kind == "attempt" and isinstance(argv, list) and argv:
        parts.append(" ".join(str(word) for word in argv))
    if kind in ("action_end", "action_lost"):
        if event.get("timed_out"):
            parts.append("timed out")
        elif number(event, "exit_code") is not None:
            parts.append(f"exited {event['exit_code']}")
        if number(event, "duration") is not None:
            parts.append(f"after {event['duration']}s")
        reset = event.get("reset_failed")
        if isinstance(reset, dict) and reset.get("unit"):
            done = "" if reset.get("exit_code") == 0 else f" (exited {reset.get('exit_code')})"
            parts.append(f"reset-failed {reset['unit']} first{done}")
    if kind == "attempt" and event.get("unit"):
        parts.append(f"unit {event['unit']}")
    elif kind == "attempt" and event.get("fallback_reason"):
        parts.append(f"new session: {event['fallback_reason']}")
    if kind in ("recovered", "verified") and number(event, "time_to_recover") is not None:
        parts.append(f"{event['time_to_recover']}s after the first heal")
    if kind == "reported" and event.get("to"):
        code = number(event, "state")
        state = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[int(code)] if code in (0, 1, 2, 3) else "?"
        parts.append(f"{state} to {event['to']}" + ("" if event.get("reason") else ", accepted"))
    if str(kind).startswith("fleet_") and event.get("group"):
        slot = f" slot {event['slot']}" if number(event, "slot") is not None else ""
        parts.append(f"group {event['group']}{slot}")
        if number(event, "in_use") is not None and number(event, "max_concurrent") is not None:
            parts.append(f"{event['in_use']}/{event['max_concurrent']} in use")
        if event.get("holder"):
            parts.append(f"held by {event['holder']}")
    if kind == "paused" and event.get("until"):
        parts.append(f"until {event['until']}")
    if event.get("by"):
        parts.append(f"by {event['by']}")
    text = ", ".join(parts)
    if event.get("reason"):
        text += f" ({event['reason']})" if text else f"({event['reason']})"
    return text

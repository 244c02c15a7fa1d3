"""Durations as operators write them: ``90``, ``90s``, ``15m``, ``6h``, ``7d``."""

from __future__ import annotations

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest duration anything takes: ten years. Longer ones are typos,
#: and they overflow later (a pause end past the year 9999, a socket
#: timeout past what C can hold), far from the option that caused them.
MAX_DURATION = 3650 * 86400.0
_DIGITS = frozenset("0123456789.eE+-")


def parse_duration(value: object) -> float:
    """Seconds from an int/float or a string with an optional unit suffix.

    Raises ValueError with a message fit for the operator.
    """
    shown = _shown(value)
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {shown}")
    if isinstance(value, int):
        # float() of a huge int raises OverflowError: compare it as an int.
        seconds = float(value) if abs(value) <= MAX_DURATION else float(value > 0 or -1) * MAX_DURATION * 2
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        factor = _UNITS.get(text[-1:])
        number = text[:-1] if factor else text
        try:
            # float() also takes "1_0", "inf" and other scripts' digits: not what an operator means.
            if not number or not set(number) <= _DIGITS:
                raise ValueError
            seconds = float(number) * (factor or 1)
        except ValueError:
            raise ValueError(f"not a duration: {shown} (use e.g. 90, 90s, 15m, 6h or 7d)") from None
    else:
        raise ValueError(f"not a duration: {shown}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        raise ValueError(f"not a duration: {shown} (must be a finite, non-negative time)")
    if seconds > MAX_DURATION:
        raise ValueError(f"too long: {shown} (at most 3650d)")
    return seconds


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``45s``, ``15m``, ``1h30m``, ``2d``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return "".join(parts)

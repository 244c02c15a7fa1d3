"""Durations as operators write them: ``90``, ``90s``, ``15m``, ``6h``, ``7d``."""

from __future__ import annotations

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Seconds from an int/float or a string with an optional unit suffix.

    Raises ValueError with a message fit for the operator.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        factor = _UNITS.get(text[-1:])
        number = text[:-1] if factor else text
        try:
            seconds = float(number) * (factor or 1)
        except ValueError:
            raise ValueError(f"not a duration: {value!r} (use e.g. 90, 90s, 15m, 6h or 7d)") from None
    else:
        raise ValueError(f"not a duration: {value!r}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        raise ValueError(f"not a duration: {value!r} (must be a finite, non-negative time)")
    return seconds


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

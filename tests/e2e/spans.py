"""Heals' own start and end times, as the fleet tests read them."""

from __future__ import annotations


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant (an end at t comes before a start at t)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak

"""The four Nagios service states, as plain exit codes.

Plain ints, not an Enum: ``enum`` costs milliseconds of import on every
plugin run, and the exit code is what Nagios reads anyway.
"""

from __future__ import annotations

OK = 0
WARNING = 1
CRITICAL = 2
UNKNOWN = 3

NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


def name(state: int) -> str:
    return NAMES[state]


def parse(text: str) -> int:
    """``critical`` or ``CRITICAL`` to 2; raises ValueError for anything else."""
    try:
        return NAMES.index(text.strip().upper())
    except ValueError:
        raise ValueError(f"unknown state {text!r} (expected ok, warning, critical or unknown)") from None

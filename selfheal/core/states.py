"""How a run ends: the four Nagios service states, and the errors that end it UNKNOWN.

The states are plain ints, not an Enum: ``enum`` costs milliseconds of
import on every plugin run, and the exit code is what Nagios reads anyway.

Anything the operator can fix (bad config, bad argument, missing plugin,
unsafe state dir) is raised as ``SelfhealError`` with a message that names
the problem; the command line prints it as one line and exits 3 (UNKNOWN),
never with a traceback. Its subclasses live where they arise: the config's
``ConfigError`` in ``selfheal.config``, a person's ``Refused`` (exit 1) in
the commands for people. One module for both: every plugin run loads it, and
each module costs a healthy run its import (docs/performance.md).
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


class SelfhealError(Exception):
    """A problem the operator can fix, reported as one line."""

    #: The run's exit code: UNKNOWN, unless a command for people says otherwise.
    exit_code = UNKNOWN


class StateError(SelfhealError):
    """The state dir or a state record cannot be used safely (table row 4)."""


class Usage(SelfhealError):
    """A bad command line."""

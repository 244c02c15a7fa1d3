"""How a run ends: the four Nagios service states, and the errors that end it UNKNOWN.

The states are plain ints, not an Enum: ``enum`` costs milliseconds of
import on every plugin run, and the exit code is what Nagios reads anyway.

Anything the operator can fix (bad config, bad argument, missing plugin,
unsafe state dir) is raised as ``SelfhealError`` with a message that names
the problem; the command line prints it as one line and exits 3 (UNKNOWN),
never with a traceback. One module for both: every plugin run loads it, and
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


class ConfigError(SelfhealError):
    """A problem in the configuration, located as ``FILE:LINE``."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        # One line, always: it is printed as a Nagios status line or as one
        # FILE:LINE: entry of ``selfheal validate``, and some YAML errors
        # span several lines.
        message = " ".join(message.split())
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class StateError(SelfhealError):
    """The state dir or a state record cannot be used safely (table row 4)."""


class Usage(SelfhealError):
    """A bad command line."""


class Refused(SelfhealError):
    """A command for people that will not do what was asked (exit 1), e.g. a likely typo."""

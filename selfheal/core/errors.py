"""The one exception type that becomes a one-line UNKNOWN.

Anything the operator can fix (bad config, bad argument, missing plugin,
unsafe state dir) is raised as ``SelfhealError`` with a message that names
the problem. The command line prints it as ``selfheal UNKNOWN - <message>``
and exits 3, never with a traceback.
"""

from __future__ import annotations


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

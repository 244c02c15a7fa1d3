"""The config file: where it is and reading its bytes; loading with FILE:LINE errors, trust, the cache.

Only where the file is and how its bytes are read live here: ``selfheal
run`` on a healthy check reads the file to compare it with the compiled
cache (``selfheal.config.cache``), a CRITICAL ``selfheal wrap`` checks
whether a config exists for its outputs, and neither may pay for the YAML
loader (``selfheal.config.loader``) until a config is really parsed.
"""

from __future__ import annotations

import os

from selfheal.core.states import SelfhealError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


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


DEFAULT_CONFIG = "/etc/selfheal/selfheal.yaml"


def config_path(option: str | None, env: Mapping[str, str]) -> str:
    """``-c`` beats ``SELFHEAL_CONFIG`` beats ``/etc/selfheal/selfheal.yaml``."""
    return option or env.get("SELFHEAL_CONFIG") or DEFAULT_CONFIG


#: The largest config read: thousands of checks fit; a device or a runaway
#: generator does not get to fill the memory of every check run.
MAX_SIZE = 4 * 1024 * 1024


def read(path: str) -> tuple[bytes, os.stat_result]:
    """The config file's bytes and its stat, read from one open file.

    A config that another user could change is refused here, so that
    every way of loading it (``load``, the compiled cache) refuses it.
    """
    from selfheal.core.states import StateError
    from selfheal.edges.files import read_regular

    try:
        text, st = read_regular(path, MAX_SIZE)
    except FileNotFoundError:
        raise ConfigError("config file not found", path) from None
    except StateError as exc:
        # The ConfigError names the path first: the message need not again.
        why = str(exc).replace(f"cannot read {path}: ", "", 1).replace(path, "it", 1)
        raise ConfigError(f"cannot read config: {why}", path) from None
    from selfheal.config.trust import config_writers

    refusals, _ = config_writers(path, st)
    if refusals:
        raise ConfigError(f"refusing a config that others can change: {refusals[0]}", path)
    return text, st

"""What a loaded config is: its checks, settings and the keys it may hold.

The loader (``selfheal.config.loader``) builds these from the YAML; the
cache (``selfheal.config.cache``) stores and restores them.
"""

from __future__ import annotations

import os

from selfheal.core import states
from selfheal.core.actions import Action
from selfheal.core.errors import ConfigError
from selfheal.core.policy import DEFAULTS, Policy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


#: Where distributions install Nagios plugins, searched after PATH so a
#: config can say ``check_http`` as a Nagios command definition would.
PLUGIN_DIRS = ("/usr/lib/nagios/plugins", "/usr/lib64/nagios/plugins", "/usr/local/nagios/libexec")


#: Plugin timeout when none is configured: above the monitoring-plugins'
#: own 10s default, below Nagios's 60s service_check_timeout.
DEFAULT_TIMEOUT = 30.0


#: Every built-in check (``selfheal.checks``), by the name ``check:`` uses.
BUILTIN_CHECKS = ("process", "tcp", "http", "disk", "memory", "load", "file_age", "systemd")


TOP_KEYS = ("state_dir", "journal", "defaults", "checks", "syslog", "metrics", "on_event")


CHECK_SETTINGS = ("sudo", "timeout", "timeout_state")


CHECK_KEYS = ("plugin", "check", "args", "heal", "description", *CHECK_SETTINGS, *DEFAULTS)


HEAL_KEYS = ("systemd", "init", "command", "verb", "shell")


class CheckConfig:
    """One configured check, validated."""

    def __init__(
        self,
        name: str,
        heal: Action,
        policy: Policy,
        *,
        plugin: list[str] | None = None,
        builtin: str | None = None,
        args: dict[str, object] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        timeout_state: int = states.UNKNOWN,
        path: str = "",
        line: int = 0,
        plugin_line: int = 0,
        arg_lines: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.heal = heal
        self.policy = policy
        self.plugin = plugin
        self.builtin = builtin
        self.args = args or {}
        self.timeout = timeout
        self.timeout_state = timeout_state
        self.path = path
        self.line = line
        self.plugin_line = plugin_line
        self.arg_lines = arg_lines or {}

    def resolved_plugin(self, env: Mapping[str, str]) -> list[str]:
        """The plugin argv with its executable found; ConfigError if missing."""
        assert self.plugin is not None
        found = find_plugin(self.plugin[0], env)
        if found is None:
            raise ConfigError(
                f"check {self.name!r}: plugin not found or not executable: {self.plugin[0]}",
                self.path,
                self.plugin_line,
            )
        return [found, *self.plugin[1:]]


class Config:
    #: A config cached by an older selfheal (config_cache) has no outputs.
    outputs: dict[str, object] = {}

    def __init__(
        self,
        path: str,
        checks: dict[str, CheckConfig],
        state_dir: str | None,
        journal: str | None,
        outputs: dict[str, object] | None = None,
    ) -> None:
        self.path = path
        self.checks = checks
        self.state_dir = state_dir
        self.journal = journal
        # syslog:, metrics:, on_event: (selfheal.hooks), as plain JSON.
        self.outputs = outputs or {}

    def check(self, name: str) -> CheckConfig:
        try:
            return self.checks[name]
        except KeyError:
            known = ", ".join(sorted(self.checks)) or "none"
            raise ConfigError(f"no check named {name!r} (configured: {known})", self.path) from None


def find_plugin(command: str, env: Mapping[str, str]) -> str | None:
    from selfheal.edges.proc import find_executable

    found = find_executable(command, [*(env.get("PATH") or os.defpath).split(os.pathsep), *PLUGIN_DIRS])
    return os.path.abspath(found) if found is not None and "/" in command else found

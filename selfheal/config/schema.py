"""What a loaded config is: its checks, settings and the keys it may hold.

The loader (``selfheal.config.loader``) builds these from the YAML; the
cache (``selfheal.config.cache``) stores them in their plain form
(``to_json``: dicts, lists, strings, numbers) and restores them through
their constructors (``from_json``), which validate again.
"""

from __future__ import annotations

import os

from selfheal.config import ConfigError
from selfheal.core import states
from selfheal.core.durations import parse_duration
from selfheal.core.policy import DEFAULTS, Policy
from selfheal.edges.store import check_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from selfheal.core.actions import Action


#: Where distributions install Nagios plugins, searched after PATH so a
#: config can say ``check_http`` as a Nagios command definition would.
PLUGIN_DIRS = ("/usr/lib/nagios/plugins", "/usr/lib64/nagios/plugins", "/usr/local/nagios/libexec")


#: Plugin timeout when none is configured: above the monitoring-plugins'
#: own 10s default, below Nagios's 60s service_check_timeout.
DEFAULT_TIMEOUT = 30.0


#: Every built-in check (``selfheal.checks``), by the name ``check:`` uses.
BUILTIN_CHECKS = ("process", "tcp", "http", "disk", "memory", "load", "file_age", "systemd")


TOP_KEYS = ("state_dir", "journal", "defaults", "checks", "syslog", "metrics", "on_event", "fleet")


CHECK_SETTINGS = ("sudo", "timeout", "timeout_state")


CHECK_KEYS = (
    "plugin", "check", "args", "heal", "description", "budget", "verify", "report_to", *CHECK_SETTINGS, *DEFAULTS
)  # fmt: skip


HEAL_KEYS = ("systemd", "init", "command", "verb", "shell")


#: The fleet budget (docs/fleet.md): ``fleet:`` at the top, ``budget:`` in a check.
FLEET_KEYS = ("etcd", "host", "on_unreachable")
ETCD_KEYS = ("endpoints", "timeout", "ca", "cert", "key", "user", "password_file")
BUDGET_KEYS = ("group", "max_concurrent", "max_per_window", "window")


#: A built-in check's ``args:`` hold at most this many values, counting
#: every use of a YAML alias as the copy it becomes: real args are a few
#: scalars, while nine levels of nested aliases expand to hundreds of
#: millions (issue 11, defect 6).
MAX_ARG_VALUES = 10_000
#: And at most this deep; far below Python's recursion limit.
MAX_ARG_DEPTH = 32

_SCALARS = (str, int, float, bool, type(None))
_CHECK_FIELDS = frozenset(
    ("name", "heal", "policy", "plugin", "builtin", "args", "timeout", "timeout_state", "path", "line")
).union(("plugin_line", "arg_lines", "budget", "verify", "report_to"))


class CheckConfig:
    """One configured check, validated."""

    def __init__(
        self,
        name: str,
        heal: Action | Callable[[], Action],
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
        budget: dict[str, object] | None = None,
        verify: bool = False,
        report_to: dict[str, object] | None = None,
    ) -> None:
        self.name = name
        self._heal = heal  # or what builds it: a cached check's healthy run never needs its heal
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
        # The fleet budget, plain: group, max_concurrent, max_per_window, window (seconds).
        self.budget = budget
        # Re-check after the heal (selfheal.verify), and where to report it at once (edges.targets).
        self.verify = verify
        self.report_to = report_to or {}

    @property
    def heal(self) -> Action:
        """The heal action, built on first use when the check came from the cache."""
        if callable(self._heal):
            self._heal = self._heal()
        return self._heal

    def to_json(self) -> dict[str, object]:
        """The check as plain data; ValueError if its args are not plain (or too big)."""
        return {
            "name": self.name,
            "heal": self.heal.to_json(),
            "policy": self.policy.to_json(),
            "plugin": None if self.plugin is None else list(self.plugin),
            "builtin": self.builtin,
            "args": plain_copy(self.args),
            "timeout": float(self.timeout),
            "timeout_state": self.timeout_state,
            "path": self.path,
            "line": self.line,
            "plugin_line": self.plugin_line,
            "arg_lines": dict(self.arg_lines),
            "budget": None if self.budget is None else dict(self.budget),
            "verify": self.verify,
            "report_to": plain_copy(self.report_to),
        }

    @classmethod
    def from_json(cls, data: object, bad_heal: Callable[[ValueError], Action] | None = None) -> CheckConfig:
        """The check ``to_json`` gave, validated as the reader would; else ValueError.

        The heal is validated and built when it is first used: a healthy run
        never imports the actions. ``bad_heal`` answers a heal whose form
        does not fit then (the cache moves itself aside and reads the YAML);
        without it, that ValueError is raised.
        """
        if type(data) is not dict or set(data) != _CHECK_FIELDS:
            raise ValueError("not the plain form of a check")
        name = check_name(_typed(data, "name", str))
        plugin, builtin = data["plugin"], data["builtin"]
        if (plugin is None) == (builtin is None):
            raise ValueError("a check needs exactly one of plugin and builtin")
        if plugin is not None:
            if type(plugin) is not list or not plugin or not all(type(w) is str for w in plugin):
                raise ValueError("a plugin must be a list of strings")
            if not plugin[0] or any("\0" in word for word in plugin):
                raise ValueError("a plugin must name a program, without NUL bytes")
        elif builtin not in BUILTIN_CHECKS:
            raise ValueError(f"not a built-in check: {builtin!r:.40}")
        args = plain_copy(data["args"])
        if type(args) is not dict or (plugin is not None and args):
            raise ValueError("args must be a mapping, and only for a built-in check")
        timeout = data["timeout"]
        if type(timeout) is not float or not parse_duration(timeout) > 0:
            raise ValueError("timeout must be a positive number of seconds")
        timeout_state = data["timeout_state"]
        if type(timeout_state) is not int or timeout_state not in (states.CRITICAL, states.UNKNOWN):
            raise ValueError("timeout_state must be critical or unknown")
        arg_lines = data["arg_lines"]
        if type(arg_lines) is not dict or not all(
            type(k) is str and type(v) is int and v >= 0 for k, v in arg_lines.items()
        ):
            raise ValueError("arg_lines must map names to line numbers")
        heal_form = data["heal"]

        def heal() -> Action:
            from selfheal.core.actions import action_from_json

            try:
                return action_from_json(heal_form)
            except ValueError as exc:
                if bad_heal is None:
                    raise
                return bad_heal(exc)

        return cls(
            name,
            heal,
            Policy.from_json(data["policy"]),
            plugin=plugin,
            builtin=builtin,
            args=args,
            timeout=timeout,
            timeout_state=timeout_state,
            path=_typed(data, "path", str),
            line=_line(data, "line"),
            plugin_line=_line(data, "plugin_line"),
            arg_lines=arg_lines,
            budget=plain_budget(data["budget"]),
            verify=_typed(data, "verify", bool),
            report_to=plain_report_to(data["report_to"], data["verify"]),
        )

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
        fleet: dict[str, object] | None = None,
    ) -> None:
        self.path = path
        self.checks = checks
        self.state_dir = state_dir
        self.journal = journal
        # syslog:, metrics:, on_event: (selfheal.hooks), as plain JSON.
        self.outputs = outputs or {}
        # fleet: (selfheal.budget_gate), plain: the etcd settings, host, on_unreachable.
        self.fleet = fleet

    def check(self, name: str) -> CheckConfig:
        try:
            return self.checks[name]
        except KeyError:
            known = ", ".join(sorted(self.checks)) or "none"
            raise ConfigError(f"no check named {name!r} (configured: {known})", self.path) from None


def plain_copy(value: object, limit: int = MAX_ARG_VALUES) -> Any:
    """A copy of ``value`` made only of dicts, lists, strings, numbers, booleans and None.

    ValueError for anything else (a YAML timestamp, set or binary), and
    beyond ``limit`` values or ``MAX_ARG_DEPTH`` levels: a shared value
    counts once per use, since every reader of the copy pays for it so,
    and the count stops the copy long before memory does.
    """
    count = 0

    def copy(item: object, depth: int) -> object:
        nonlocal count
        count += 1
        if count > limit:
            raise ValueError(f"more than {limit} values")
        kind = type(item)
        if kind in _SCALARS:
            return item
        if depth >= MAX_ARG_DEPTH:
            raise ValueError(f"nested more than {MAX_ARG_DEPTH} deep")
        if kind is list and isinstance(item, list):
            return [copy(element, depth + 1) for element in item]
        if kind is dict and isinstance(item, dict):
            result = {}
            for key, element in item.items():
                if type(key) not in _SCALARS:
                    raise ValueError(f"a {type(key).__name__} key is not plain data")
                result[key] = copy(element, depth + 1)
            return result
        raise ValueError(f"a {kind.__name__} is not plain data")

    return copy(value, 0)


def plain_budget(data: object) -> dict[str, object] | None:
    """A check's budget in its plain form, its shape checked; else ValueError.

    The values themselves are checked again by ``selfheal.fleet``'s Budget
    when a heal asks the fleet: this runs on every check's healthy path,
    which must not import the fleet package.
    """
    if data is None:
        return None
    if type(data) is not dict or set(data) != set(BUDGET_KEYS):
        raise ValueError("not the plain form of a budget")
    group, most, per_window, window = (data[key] for key in BUDGET_KEYS)
    if type(group) is not str or not group or "/" in group:
        raise ValueError("a budget's group must be a name without '/'")
    if type(most) is not int or most < 1:
        raise ValueError("a budget's max_concurrent must be a whole number of at least 1")
    if (per_window is None) != (window is None):
        raise ValueError("a budget's max_per_window and window go together")
    if per_window is not None and (type(per_window) is not int or per_window < 1):
        raise ValueError("a budget's max_per_window must be a whole number of at least 1")
    if window is not None and (type(window) is not float or not window >= 1):
        raise ValueError("a budget's window must be a number of seconds, at least 1")
    return dict(data)


def plain_report_to(data: object, verify: object) -> dict[str, object]:
    """A check's ``report_to`` in its plain form, its shape checked; else ValueError.

    Each target's own keys are checked by its class (``selfheal.edges.targets``)
    when the config is read and again when the runner reports: this runs on
    every check's healthy path, which must not import them.
    """
    copied = plain_copy(data)
    if type(copied) is not dict or not all(type(k) is str and type(v) is dict for k, v in copied.items()):
        raise ValueError("report_to must map each target's kind to its settings")
    if copied and verify is not True:
        raise ValueError("report_to needs verify")
    return copied


def plain_fleet(data: object) -> dict[str, object] | None:
    """The config's ``fleet:`` in its plain form, its shape checked; else ValueError."""
    if data is None:
        return None
    if type(data) is not dict or set(data) != {*ETCD_KEYS, "host", "on_unreachable"}:
        raise ValueError("not the plain form of fleet:")
    endpoints = data["endpoints"]
    if type(endpoints) is not list or not endpoints or not all(type(e) is str and e for e in endpoints):
        raise ValueError("fleet endpoints must be a list of strings")
    if type(data["timeout"]) is not float or not data["timeout"] > 0:
        raise ValueError("fleet timeout must be a positive number of seconds")
    if data["on_unreachable"] not in ("heal", "hold"):
        raise ValueError("fleet on_unreachable must be heal or hold")
    for key in ("ca", "cert", "key", "user", "password_file", "host"):
        if data[key] is not None and (type(data[key]) is not str or not data[key]):
            raise ValueError(f"fleet {key} must be a non-empty string")
    return {**data, "endpoints": list(endpoints)}


def _typed(data: dict[str, object], key: str, kind: type) -> Any:
    value = data[key]
    if type(value) is not kind:
        raise ValueError(f"{key} must be a {kind.__name__}")
    return value


def _line(data: dict[str, object], key: str) -> int:
    line: int = _typed(data, key, int)
    if line < 0:
        raise ValueError(f"{key} must not be negative")
    return line


def find_plugin(command: str, env: Mapping[str, str]) -> str | None:
    from selfheal.edges.files import find_executable

    found = find_executable(command, [*(env.get("PATH") or os.defpath).split(os.pathsep), *PLUGIN_DIRS])
    return os.path.abspath(found) if found is not None and "/" in command else found

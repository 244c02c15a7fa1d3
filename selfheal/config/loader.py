"""``selfheal.yaml``: loading, validating, and locating every error.

The file looks like this::

    state_dir: /var/lib/selfheal        # optional
    journal: /var/log/selfheal.jsonl    # optional
    defaults:                           # optional, any policy key
      cooldown: 15m
    checks:
      nginx:
        plugin: /usr/lib/nagios/plugins/check_http -H localhost
        heal: {systemd: nginx}
        sudo: true

Every error names ``FILE:LINE``. YAML is composed into nodes (not loaded
straight to Python objects) so that each value keeps its line number.
"""

from __future__ import annotations

import os

from selfheal.config.reader import Reader
from selfheal.config.schema import CHECK_SETTINGS, TOP_KEYS, Config
from selfheal.core.errors import ConfigError
from selfheal.core.policy import DEFAULTS

TYPE_CHECKING = False
if TYPE_CHECKING:
    pass


def load(path: str, problems: list[ConfigError] | None = None) -> Config:
    """Read and validate a config file; every error is a ConfigError."""
    return parse(read(path)[0], path, problems)


def read(path: str) -> tuple[bytes, os.stat_result]:
    """The config file's bytes and its stat, read from one open file.

    A config that another user could change is refused here, so that
    every way of loading it (``load``, the compiled cache) refuses it.
    """
    try:
        with open(path, "rb") as stream:
            text = stream.read()
            st = os.fstat(stream.fileno())
    except FileNotFoundError:
        raise ConfigError("config file not found", path) from None
    except IsADirectoryError:
        raise ConfigError("config path is a directory, not a file", path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path) from None
    from selfheal.config.trust import config_writers

    refusals, _ = config_writers(path, st)
    if refusals:
        raise ConfigError(f"refusing a config that others can change: {refusals[0]}", path)
    return text, st


def parse(text: bytes | str, path: str = "<config>", problems: list[ConfigError] | None = None) -> Config:
    """The config; with ``problems``, collect every problem and go on.

    ``selfheal validate`` passes ``problems`` so that one run lists every
    problem, not only the first; a check with a problem is left out of the
    result. A problem that leaves nothing to read (bad YAML, no
    ``checks:``) is still raised. Without ``problems`` (``selfheal run``)
    the first problem is raised.
    """
    root = _compose(text, path)
    if root is None:
        raise ConfigError("config is empty; it needs a 'checks:' section", path, 1)
    reader = Reader(path, problems)
    attempt = reader.attempt
    top = reader.mapping(root, "the config")
    attempt(reader.known_keys, top, TOP_KEYS, "top level")
    state_dir = attempt(reader.optional_str, top, "state_dir")
    journal = attempt(reader.optional_str, top, "journal")
    defaults: dict[str, tuple[object, object]] = {}
    if "defaults" in top:
        _, node = top["defaults"]
        defaults = reader.mapping(node, "defaults")
        attempt(reader.known_keys, defaults, (*CHECK_SETTINGS, *DEFAULTS), "defaults")
    fleet = None
    if "fleet" in top:
        from selfheal.config.budget import read_fleet

        fleet = attempt(read_fleet, reader, top)
        reader.fleet = True  # a bad fleet: is one problem, not one more per budget:
    if "checks" not in top:
        raise ConfigError("missing 'checks:' section", path, root.start_mark.line + 1)
    _, checks_node = top["checks"]
    checks_map = reader.mapping(checks_node, "checks")
    checks = {}
    for name, (key_node, node) in checks_map.items():
        check = attempt(reader.check, name, key_node, node, defaults)
        if check is not None:
            checks[name] = check
    outputs = {}
    if any(key in top for key in ("syslog", "metrics", "on_event")):
        from selfheal.config.outputs import read_outputs

        outputs = attempt(read_outputs, reader, top) or {}
    return Config(path, checks, state_dir, journal, outputs, fleet)


def _compose(text: bytes | str, path: str) -> object:
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader_class)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", path, line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path) from None

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

from selfheal.config import ConfigError, read
from selfheal.config.schema import CHECK_SETTINGS, TOP_KEYS, Config
from selfheal.core.policy import DEFAULTS

#: The deepest nesting of mappings and lists a config may have. A real one
#: is six deep (checks, a check, args, a list); the YAML reader recurses
#: once per level, and about 250 exhaust Python's stack.
MAX_DEPTH = 32

TYPE_CHECKING = False
if TYPE_CHECKING:
    from yaml import Node


def load(path: str, problems: list[ConfigError] | None = None) -> Config:
    """Read and validate a config file; every error is a ConfigError."""
    return parse(read(path)[0], path, problems)


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
    too_deep(root, path)
    from selfheal.config.reader import Reader  # only when YAML is parsed: a cached run never is

    reader = Reader(path, problems)
    attempt = reader.attempt
    top = reader.mapping(root, "the config")
    attempt(reader.known_keys, top, TOP_KEYS, "top level")
    state_dir = attempt(reader.optional_str, top, "state_dir")
    journal = attempt(reader.optional_str, top, "journal")
    defaults: dict[str, tuple[Node, Node]] = {}
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


def _compose(text: bytes | str, path: str) -> Node | None:
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
    except RecursionError:
        # The pure-Python composer (no libyaml) recurses once per level.
        raise ConfigError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", path) from None


def too_deep(root: Node, path: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, and an alias inside its own anchor.

    Walked without recursion, each node once however many aliases point
    at it (an alias bomb is many paths through few nodes), so this is
    bounded by the file's size. The height of each node is kept, so a
    deep structure reached through an alias is measured with its depth.
    """
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            on_path.discard(key)
            height[key] = 1 + max((height[id(child)] for child in children), default=0)
            if height[key] > MAX_DEPTH:
                line = node.start_mark.line + 1
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", path, line)
            continue
        if key in height:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise ConfigError("an alias inside its own anchor (a structure that contains itself)", path, line)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in height)


def _children(node: Node) -> list[Node]:
    value = node.value
    if not isinstance(value, list):
        return []  # a scalar
    if value and isinstance(value[0], tuple):
        return [part for pair in value for part in pair]  # a mapping's (key, value) pairs
    return list(value)

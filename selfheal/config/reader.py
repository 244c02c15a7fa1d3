"""The config's reader: YAML nodes to checks, every problem at FILE:LINE.

YAML is composed into nodes (not loaded straight to Python objects) so
that each value keeps its line number. ``selfheal run`` stops at the
first problem; ``selfheal validate`` collects them all.
"""

from __future__ import annotations

from selfheal.config import ConfigError
from selfheal.config.schema import (
    BUILTIN_CHECKS,
    CHECK_KEYS,
    DEFAULT_TIMEOUT,
    HEAL_KEYS,
    MAX_ARG_VALUES,
    CheckConfig,
)
from selfheal.core import shellwords, states
from selfheal.core.actions import Action, Command, InitScript, Systemd
from selfheal.core.argv import parse_timeout_state
from selfheal.core.durations import parse_duration
from selfheal.core.policy import DEFAULTS, Policy
from selfheal.edges.store import check_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from yaml import Node

    _T = TypeVar("_T")


class Reader:
    """Turns YAML nodes into checked values, keeping their line numbers.

    Each problem found goes through ``report``: without a ``problems`` list
    it is raised, so ``run`` stops at the first; with one it is collected
    and the reading goes on with the next independent field, so
    ``validate`` lists them all.
    """

    def __init__(self, path: str, problems: list[ConfigError] | None = None) -> None:
        import yaml

        self.yaml = yaml
        self.path = path
        self.problems = problems
        self.constructor = yaml.SafeLoader("")
        #: Whether the config has a top-level ``fleet:``, which a check's ``budget:`` needs.
        self.fleet = False

    def report(self, problem: ConfigError) -> None:
        if self.problems is None:
            raise problem
        self.problems.append(problem)

    def attempt(self, step: Callable[..., _T], *args: object) -> _T | None:
        """``step(*args)``, or None once its problem is reported."""
        try:
            return step(*args)
        except ConfigError as exc:
            self.report(exc)
            return None

    def error(self, message: str, node: Node) -> ConfigError:
        return ConfigError(message, self.path, node.start_mark.line + 1)

    def mapping(self, node: Node, what: str) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, self.yaml.MappingNode):
            raise self.error(f"{what} must be a mapping of keys to values", node)
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                raise self.error(f"keys in {what} must be strings, not {key!r}", key_node)
            if key in result:
                raise self.error(f"duplicate key {key!r} in {what}", key_node)
            result[key] = (key_node, value_node)
        return result

    def value(self, node: Node) -> object:
        try:
            return self.constructor.construct_object(node, deep=True)
        except self.yaml.YAMLError as exc:
            raise self.error(f"invalid value: {exc}", node) from None

    def known_keys(self, mapping: dict[str, tuple[Node, Node]], allowed: tuple[str, ...], what: str) -> None:
        for key, (key_node, _) in mapping.items():
            if key not in allowed:
                self.report(
                    self.error(
                        f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})", key_node
                    )
                )

    def optional_str(self, mapping: dict[str, tuple[Node, Node]], key: str) -> str | None:
        if key not in mapping:
            return None
        _, node = mapping[key]
        value = self.value(node)
        if not isinstance(value, str) or not value:
            raise self.error(f"{key} must be a non-empty string", node)
        return value

    def check(
        self, name: str, key_node: Node, node: Node, defaults: dict[str, tuple[Node, Node]]
    ) -> CheckConfig | None:
        """One check, or None when its problems were collected (validate)."""
        where = f"check {name!r}"
        found = len(self.problems or ())
        try:
            check_name(name)
        except ValueError as exc:
            self.report(self.error(str(exc), key_node))
        fields = self.mapping(node, where)
        self.known_keys(fields, CHECK_KEYS, where)
        merged = {**defaults, **fields}

        has_plugin, has_builtin = "plugin" in fields, "check" in fields
        if has_plugin == has_builtin:
            self.report(
                self.error(
                    f"{where} needs exactly one of 'plugin:' (a Nagios plugin) or 'check:' (a built-in)",
                    key_node,
                )
            )
        plugin = builtin = None
        plugin_line = 0
        args: dict[str, object] = {}
        arg_lines: dict[str, int] = {}
        if has_plugin:
            plugin = self.attempt(self.argv, fields["plugin"][1], f"{where}: plugin")
            plugin_line = fields["plugin"][1].start_mark.line + 1
        elif has_builtin:
            builtin, args, arg_lines = self.attempt(self.builtin, fields, where) or (None, {}, {})
        if "args" in fields and not has_builtin:
            self.report(
                self.error(
                    f"{where}: 'args:' is for built-in checks ('check:'); put plugin arguments in 'plugin:'",
                    fields["args"][0],
                )
            )

        sudo = "sudo" in merged and self.attempt(self.flag, merged["sudo"][1], f"{where}: sudo")
        heal = None
        if "heal" not in fields:
            self.report(self.error(f"{where} needs a 'heal:' action", key_node))
        else:
            heal = self.attempt(self.heal, fields["heal"][1], where, bool(sudo))
        policy = self.policy(merged, key_node, where)
        timeout: float | None = DEFAULT_TIMEOUT
        if "timeout" in merged:
            timeout = self.attempt(self.timeout, merged["timeout"][1], where)
        timeout_state: int | None = states.UNKNOWN
        if "timeout_state" in merged:
            timeout_state = self.attempt(self.timeout_state, merged["timeout_state"][1], where)
        if "description" in fields:
            self.attempt(self.description, fields["description"][1], where)
        budget = None
        if "budget" in fields:
            from selfheal.config.budget import read_budget

            budget = self.attempt(read_budget, self, *fields["budget"], where, self.fleet)
        verify = "verify" in fields and bool(self.attempt(self.flag, fields["verify"][1], f"{where}: verify"))
        report_to: dict[str, object] | None = None
        if "report_to" in fields:
            from selfheal.config.report_to import read_report_to

            report_to = self.attempt(read_report_to, self, *fields["report_to"], where, verify)

        if len(self.problems or ()) > found:
            return None
        # Without a problems list every problem above was raised.
        assert heal is not None and policy is not None
        assert timeout is not None and timeout_state is not None
        return CheckConfig(
            name,
            heal,
            policy,
            plugin=plugin,
            builtin=builtin,
            args=args,
            timeout=timeout,
            timeout_state=timeout_state,
            path=self.path,
            line=key_node.start_mark.line + 1,
            plugin_line=plugin_line,
            arg_lines=arg_lines,
            budget=budget,
            verify=verify,
            report_to=report_to,
        )

    def flag(self, node: Node, what: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.error(f"{what} must be true or false", node)
        return value

    def policy(self, merged: dict[str, tuple[Node, Node]], key_node: Node, where: str) -> Policy | None:
        """The check's Policy; each bad setting reported at its own line.

        ``Policy`` names the first bad setting it meets; leaving that one
        out and trying again finds the next. A problem that only the
        default left in its place causes (a ``max_cooldown`` shorter than
        the default cooldown) is not reported as a second one.
        """
        settings = {key: self.value(merged[key][1]) for key in DEFAULTS if key in merged}
        left_out = False
        while True:
            try:
                return Policy(**settings)
            except ValueError as exc:
                setting = str(exc).split(":", 1)[0]
                if setting not in settings:
                    if not left_out:
                        self.report(self.error(f"{where}: {exc}", key_node))
                    return None
                self.report(self.error(f"{where}: {exc}", merged[setting][1]))
                del settings[setting]
                left_out = True

    def timeout(self, node: Node, where: str) -> float:
        try:
            timeout = parse_duration(self.value(node))
        except ValueError as exc:
            raise self.error(f"{where}: timeout: {exc}", node) from None
        if timeout <= 0:
            raise self.error(f"{where}: timeout must be longer than 0s", node)
        return timeout

    def description(self, node: Node, where: str) -> None:
        if not isinstance(self.value(node), str):
            raise self.error(f"{where}: description must be a string", node)

    def timeout_state(self, node: Node, where: str) -> int:
        try:
            return parse_timeout_state(self.value(node))
        except ValueError as exc:
            raise self.error(f"{where}: timeout_state {exc}", node) from None

    def builtin(
        self, fields: dict[str, tuple[Node, Node]], where: str
    ) -> tuple[str, dict[str, object], dict[str, int]]:
        """``check: NAME`` and its ``args:``, with the line of each arg.

        The args are checked against the check's options when it runs
        (``selfheal.checks.plugin``): that needs the check's module, which
        a config holding plain plugins should not pay for.
        """
        _, node = fields["check"]
        name = self.value(node)
        if name not in BUILTIN_CHECKS:
            raise self.error(
                f"{where}: unknown built-in check {name!r} (built-in: {', '.join(BUILTIN_CHECKS)})", node
            )
        args: dict[str, object] = {}
        lines: dict[str, int] = {}
        if "args" in fields:
            if expanded_size(fields["args"][1], MAX_ARG_VALUES) > MAX_ARG_VALUES:
                raise self.error(
                    f"{where}: args: more than {MAX_ARG_VALUES} values once its aliases are expanded",
                    fields["args"][0],
                )
            for key, (key_node, value_node) in self.mapping(fields["args"][1], f"{where}: args").items():
                args[key] = self.value(value_node)
                lines[key] = key_node.start_mark.line + 1
        return str(name), args, lines

    def argv(self, node: Node, what: str) -> list[str]:
        value = self.value(node)
        if isinstance(value, str):
            try:
                words = shellwords.split(value)
            except ValueError as exc:
                raise self.error(f"{what}: cannot split {value!r}: {exc}", node) from None
        elif isinstance(value, list) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
        ):
            words = [str(v) for v in value]
        else:
            raise self.error(f"{what} must be a command string or a list of arguments", node)
        if not words or not words[0]:
            raise self.error(f"{what} must not be empty", node)
        return words

    def heal(self, node: Node, where: str, sudo: bool) -> Action:
        what = f"{where}: heal"
        if not isinstance(node, self.yaml.MappingNode):
            return self._action(lambda: Command(self.argv(node, what), sudo=sudo), node, what)
        fields = self.mapping(node, what)
        self.known_keys(fields, HEAL_KEYS, what)
        kinds = [k for k in ("systemd", "init", "command") if k in fields]
        if len(kinds) != 1:
            raise self.error(f"{what} needs exactly one of systemd:, init: or command:", node)
        kind = kinds[0]
        _, value_node = fields[kind]
        verb = "restart"
        if "verb" in fields:
            if kind == "command":
                raise self.error(f"{what}: verb: is for systemd: and init: actions", fields["verb"][0])
            word = self.value(fields["verb"][1])
            if not isinstance(word, str) or not word or word.startswith("-"):
                raise self.error(f"{what}: verb must be a word such as restart", fields["verb"][1])
            verb = word
        if "shell" in fields and kind != "command":
            raise self.error(f"{what}: shell: is for command: actions", fields["shell"][0])
        if kind == "command":
            shell = "shell" in fields and self.flag(fields["shell"][1], f"{what}: shell")
            value = self.value(value_node)
            if shell:
                if not isinstance(value, str):
                    raise self.error(f"{what}: with shell: true, command must be one string", value_node)
                return self._action(lambda: Command(value, sudo=sudo, shell=True), value_node, what)
            return self._action(lambda: Command(self.argv(value_node, what), sudo=sudo), value_node, what)
        target = self.value(value_node)
        if not isinstance(target, str):
            raise self.error(
                f"{what}: {kind} must name a {'unit' if kind == 'systemd' else 'script'}", value_node
            )
        if kind == "systemd":
            return self._action(lambda: Systemd(target, verb, sudo=sudo), value_node, what)
        return self._action(lambda: InitScript(target, verb, sudo=sudo), value_node, what)

    def _action(self, build: Callable[[], Action], node: Node, what: str) -> Action:
        try:
            return build()
        except ValueError as exc:
            raise self.error(f"{what}: {exc}", node) from None


def expanded_size(root: object, limit: int) -> int:
    """How many values the YAML node ``root`` makes once every alias is expanded.

    A YAML alias shares its anchor's node, so a few lines can describe a
    value of billions of copies (an alias bomb): the composed nodes stay
    small, but everything that walks the value as a tree pays for each
    copy. Counted over the shared nodes, each once, without recursion;
    the count stops at ``limit + 1``, and a node that contains itself
    counts as that.
    """
    over = limit + 1
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = _children(node)
        if finished:
            sizes[id(node)] = min(over, 1 + sum(sizes[id(child)] for child in children))
            open_nodes.discard(id(node))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return over  # it contains itself: endless once expanded
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: object) -> list[object]:
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return []  # a scalar
    if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
        return [part for pair in value for part in pair]
    return value

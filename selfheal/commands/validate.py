"""``selfheal validate [-c CONFIG]``: is the config right, before 3 a.m.?

Valid: exit 0 and one summary line. Otherwise every problem found, one a
line as ``FILE:LINE: message``, and exit 1. Each field of each check is
read on its own, so one problem does not hide the next; only a problem
that leaves nothing to read (bad YAML, no ``checks:``) stops the reading.

It also warns, as ``FILE: warning: ...``, when the config could be changed
by anyone but its owner: the config decides which commands run, possibly
as root through sudo.
"""

from __future__ import annotations

from selfheal.commands import common as ops
from selfheal.config import ConfigError, config_path
from selfheal.core.argv import HELP_OPTIONS, text
from selfheal.core.states import SelfhealError

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from selfheal.config.schema import CheckConfig

OPTIONS = [ops.CONFIG_OPTION, ops.JSON_OPTION, *HELP_OPTIONS]


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, _ = ops.parse(command, args, OPTIONS, out, no_name="give the file with -c CONFIG")
    from selfheal.config import loader as configuration

    path = config_path(text(values, "config"), env)
    problems: list[ConfigError] = []
    names: list[str] = []
    state_dir = None
    try:
        cfg = configuration.load(path, problems)
    except ConfigError as exc:
        problems.append(exc)
    else:
        from selfheal.edges.store import resolve_state_dir

        state_dir = resolve_state_dir(None, env, cfg.state_dir)
        names = sorted(cfg.checks)
        for name in names:
            try:
                runnable(cfg.checks[name], env)
            except ConfigError as exc:
                problems.append(exc)
    problems.sort(key=lambda p: p.line or 0)
    warnings = permission_warnings(path)
    if state_dir is not None:
        from selfheal.config.trust import state_dir_writers

        warnings += state_dir_writers(state_dir)
    if values["json"]:
        ops.dump_json(
            {
                "config": path,
                "valid": not problems,
                "checks": names,
                "problems": [{"file": p.path, "line": p.line, "message": p.reason} for p in problems],
                "warnings": warnings,
            },
            out,
        )
        return 1 if problems else 0
    for problem in problems:
        out.write(f"{problem}\n")
    for warning in warnings:
        out.write(f"{path}: warning: {warning}\n")
    if problems:
        return 1
    listed = ", ".join(names)
    out.write(
        f"{path}: OK, {len(names)} check{'s' if len(names) != 1 else ''}"
        + (f" ({listed})" if listed else "")
        + "\n"
    )
    return 0


def runnable(check: CheckConfig, env: Mapping[str, str]) -> None:
    """What ``selfheal run`` would refuse: a missing plugin, bad built-in args."""
    if check.plugin is not None:
        check.resolved_plugin(env)
        return
    # A built-in check's args are read by the check itself when it runs
    # (selfheal.checks.plugin.run_configured); build it the same way, without
    # probing anything, so a bad arg is reported here with its line.
    from selfheal.checks.options import Values
    from selfheal.checks.plugin import config_argv, find_spec
    from selfheal.core.argv import parse_options

    spec = find_spec(str(check.builtin))
    try:
        raw, _ = parse_options(config_argv(spec, check), spec.options)
        values = Values(raw, spec.options, config=check)
        values.timeout = check.timeout
        spec.build(values)
    except ConfigError:
        raise
    except SelfhealError as exc:
        raise ConfigError(f"check {check.name!r}: {exc}", check.path, check.line) from None


def permission_warnings(path: str) -> list[str]:
    """Who besides root and this user could change what this config runs.

    What ``selfheal run`` refuses outright comes back from loading the
    config as a problem; these are the milder findings it lets pass.
    """
    from selfheal.config.trust import config_writers

    return config_writers(path)[1]

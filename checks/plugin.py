"""A built-in check as a Nagios plugin: options, thresholds, heal flags, output.

Each check module declares a :class:`Spec` (its name, its own options and
a ``build`` that turns parsed options into nagiosplugin objects). This
module does the rest the same way for every check:

- parses the command line with selfheal's own parser, so the healing flags
  are the very option table ``selfheal wrap`` uses (``--heal``,
  ``--cooldown``, ...), not a copy;
- bounds the probes by ``-t`` and turns a timeout into a result (UNKNOWN
  by default, ``--timeout-state critical`` to heal on it);
- evaluates a plain ``nagiosplugin.Check``, or a ``selfheal.Check`` when
  there is a heal, and prints nagiosplugin's standard output;
- reports any bad argument as one ``NAME UNKNOWN - ...`` line, exit 3.

``selfheal run NAME`` with ``check:``/``args:`` in the config comes through
:func:`run_configured`: the args become the same options, and errors
point at the config's ``FILE:LINE``.
"""

from __future__ import annotations

import os
import sys

from selfheal import __version__
from selfheal.checks.evaluate import Healing, evaluate
from selfheal.checks.options import DEFAULT_TIMEOUT, Values
from selfheal.config import ConfigError
from selfheal.core.argv import (
    WRAP_OPTIONS,
    Option,
    count,
    downtime,
    heal_policy,
    option_lines,
    parse_options,
    plugin_timeout,
    verbosity,
)
from selfheal.core.output import internal_error, unknown
from selfheal.core.states import SelfhealError, Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

    from selfheal.config.schema import CheckConfig, Config
    from selfheal.core.actions import Action


CONTROL: list[Option] = [
    Option(
        ("-t", "--timeout"),
        "timeout",
        "value",
        "SECONDS",
        f"give up after this long (default {DEFAULT_TIMEOUT:g}s)",
    ),
    Option(("-v", "--verbose"), "verbose", "count", "", "more detail (repeatable)"),
    Option(("-h", "--help"), "help", "flag", "", "show this help"),
    Option(("-V", "--version"), "version", "flag", "", "show the version"),
]
#: The healing flags of ``selfheal wrap``, minus what CONTROL already has.
HEALING: list[Option] = [o for o in WRAP_OPTIONS if o.dest not in {"timeout", "verbose", "help", "version"}]
#: Healing flags that mean nothing without ``--heal``: refused, not ignored.
#: (A timeout state, a name, a state dir or a downtime are fine without.)
NEEDS_HEAL = tuple(
    o.dest
    for o in HEALING
    if o.dest not in {"heal", "name", "state_dir", "journal", "downtime", "timeout_state"}
)


def find_spec(name: str) -> Spec:
    """The command-line description of the built-in check ``name``."""
    from selfheal.config.schema import BUILTIN_CHECKS

    if name not in BUILTIN_CHECKS:
        raise KeyError(name)
    module = __import__(f"selfheal.checks.{name}", fromlist=["SPEC"])
    spec: Spec = module.SPEC
    return spec


class Spec:
    """What one built-in check adds to the common command line."""

    def __init__(
        self,
        name: str,
        about: str,
        options: list[Option],
        build: Callable[[Values], list[object]],
        *,
        warning: str,
        critical: str,
        modes: dict[str, Callable[[Values, TextIO], int]] | None = None,
        mode_options: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.about = about
        self.build = build
        self.options: list[Option] = [
            *options,
            Option(("-w", "--warning"), "warning", "value", "RANGE", warning),
            Option(("-c", "--critical"), "critical", "value", "RANGE", critical),
        ]
        #: Flags that turn the program into a heal action (``--kill``,
        #: ``--clean``, ``--restart``) instead of a check.
        self.modes = modes or {}
        #: Options that only a mode reads (``--older-than``).
        self.mode_options = mode_options

    @property
    def program(self) -> str:
        return f"check_selfheal_{self.name}"

    def config_options(self) -> dict[str, Option]:
        """The options ``args:`` may set, by key (long name, ``-`` as ``_``)."""
        table = {}
        for option in self.options:
            if option.dest in self.modes or option.dest in self.mode_options:
                continue
            table[option.long[2:].replace("-", "_")] = option
        return table

    def help(self) -> str:
        lines = [
            f"usage: {self.program} [options] [-w RANGE] [-c RANGE] [-t SECONDS] [-v] [--heal 'CMD ARGS' ...]",
            "",
            self.about,
            "",
            "options:",
        ]
        sections = [
            (None, self.options),
            ("general", CONTROL),
            ("self-healing (as in 'selfheal wrap')", HEALING),
        ]
        for title, options in sections:
            if title:
                lines += ["", f"{title}:"]
            lines += option_lines(options, width=30)
        lines += [
            "",
            "Ranges use the Nagios syntax: 10 (alert outside 0..10), 10: (below 10),",
            "~:10 (above 10), 10:20 (outside 10..20), @10:20 (inside 10..20).",
            "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for bad arguments).",
        ]
        return "\n".join(lines) + "\n"


# -- the command line ------------------------------------------------------


def main(
    spec: Spec,
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run ``spec`` as a Nagios plugin; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    out = sys.stdout if stdout is None else stdout
    verbose = verbosity(args)
    name = spec.name
    try:
        options = [*spec.options, *CONTROL, *HEALING]
        raw, positional = parse_options(args, options)
        if raw["help"]:
            out.write(spec.help())
            return 0
        if raw["version"]:
            out.write(f"{spec.program} (selfheal) {__version__}\n")
            return 0
        values = Values(raw, options)
        values.positional = positional
        values.env = env
        for dest, mode in spec.modes.items():
            if values.flag(dest):
                return mode(values, out)
        if positional:
            raise Usage(f"unexpected argument {positional[0]!r}; see '{spec.program} -h'")
        for dest in spec.mode_options:
            if values.given(dest):
                modes = " or ".join(values.labels[m] for m in spec.modes)
                raise Usage(f"{values.labels[dest]} only goes with {modes}")
        if raw["name"] is not None:
            from selfheal.edges.store import check_name

            try:
                name = check_name(str(raw["name"]))
            except ValueError as exc:
                raise Usage(f"bad --name: {exc}") from None
        timeout = plugin_timeout(raw, DEFAULT_TIMEOUT)
        policy, timeout_state = heal_policy(raw)
        healing = None
        if raw["heal"] is not None:
            if raw["name"] is None:
                # The name keys the cooldown record: two tcp checks on one
                # host healing under the default "tcp" would share attempts.
                raise Usage(
                    "--heal needs --name NAME, the name of this check's heal record (e.g. the service)"
                )
            healing = Healing(
                command_heal(raw),
                policy,
                state_dir(raw["state_dir"], env, None),
                values.text("journal"),
                values.flag("dry_run"),
                downtime(raw),
            )
            if raw["verify"] or any(
                raw[f] is not None for f in ("nagios_cmd", "nagios_host", "nagios_service")
            ):
                from selfheal.report_back import report_to_flags
                from selfheal.verify import verify_spec

                report_to = report_to_flags(raw)
                argv = recheck_argv(spec, without_healing(args))
                healing.verify = verify_spec(
                    argv, timeout + 5, timeout_state, policy.grace, policy.heal_on, report_to
                )
        else:
            unused = [values.labels[d] for d in NEEDS_HEAL if values.given(d)]
            if unused:
                raise Usage(f"{unused[0]} is a healing option; it needs --heal 'CMD ARGS'")
        values.timeout = timeout
        objects = spec.build(values)
        return evaluate(name, objects, timeout, timeout_state, healing, min(verbose, 3), out, preview)
    except SelfhealError as exc:
        return unknown(out, name, str(exc))
    except KeyboardInterrupt:
        return unknown(out, name, "interrupted")
    except Exception as exc:  # the last line of defence: one line, not a traceback
        return internal_error(out, name, exc, verbose)


def without_healing(args: list[str]) -> list[str]:
    """The check's own arguments: ``args`` without the healing options and their values."""
    by_name = {name: option for option in HEALING for name in option.names}
    kept: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            kept += args[index - 1 :]
            break
        option = by_name.get(arg.partition("=")[0])
        if option is None:
            kept.append(arg)
        elif option.kind == "value" and "=" not in arg:
            index += 1
    return kept


def recheck_argv(spec: Spec, args: list[str]) -> list[str]:
    """The check itself, run again by the heal's runner (``--verify``): this interpreter, the module, ``args``.

    The margin over ``-t`` in the caller's timeout lets the check report its own timeout.
    """
    return [sys.executable, "-m", f"selfheal.checks.{spec.name}", *args]


def command_heal(raw: dict[str, object]) -> Action:
    from selfheal.core.actions import Command

    text = str(raw["heal"])
    if not text.strip():
        raise Usage("bad --heal: it must not be empty")
    try:
        return Command(text, sudo=bool(raw["sudo"]), shell=bool(raw["shell"]))
    except ValueError as exc:
        raise Usage(f"bad --heal: {exc}") from None


def state_dir(option: object, env: Mapping[str, str], configured: str | None) -> str:
    from selfheal.edges.store import resolve_state_dir

    # A "value" option: a str, or None when not given.
    return resolve_state_dir(option if isinstance(option, str) else None, env, configured)


# -- selfheal run NAME, for check: and args: -------------------------------


def config_argv(spec: Spec, check: CheckConfig) -> list[str]:
    """``args:`` as the command-line options they stand for."""
    table = spec.config_options()
    argv: list[str] = []
    for key, value in check.args.items():
        line = check.arg_lines.get(key, check.line)
        where = f"check {check.name!r}: args: {key}"
        if key not in table:
            known = ", ".join(sorted(table))
            raise ConfigError(
                f"{where}: not an option of check: {spec.name} (known: {known})", check.path, line
            )
        kind, option = table[key].kind, table[key].long
        if kind in ("flag", "count"):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: must be true or false", check.path, line)
            argv += [option] if value else []
            continue
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
            raise ConfigError(f"{where}: must be a string, a number or a list of them", check.path, line)
        argv += [option, ",".join(str(v) for v in items)]
    return argv


def run_configured(
    check: CheckConfig, cfg: Config, run_values: dict[str, object], env: Mapping[str, str], out: TextIO
) -> int:
    """``selfheal run NAME`` for a check configured as ``check:`` + ``args:``."""
    spec = find_spec(str(check.builtin))
    raw, _ = parse_options(config_argv(spec, check), spec.options)
    values = Values(raw, spec.options, config=check)
    values.env = env
    timeout = plugin_timeout(run_values, check.timeout)
    values.timeout = timeout
    objects = spec.build(values)
    budget = None
    if check.budget is not None and cfg.fleet is not None:
        from selfheal.budget_gate import BudgetGate

        budget = BudgetGate(cfg.fleet, check.budget)
    healing = Healing(
        check.heal,
        check.policy,
        state_dir(run_values["state_dir"], env, cfg.state_dir),
        cfg.journal,
        bool(run_values["dry_run"]),
        downtime(run_values),
        cfg.outputs,
        budget,
    )
    if check.verify:
        from selfheal.verify import verify_spec

        argv = recheck_argv(spec, [*config_argv(spec, check), "-t", f"{timeout:g}"])
        policy = check.policy
        healing.verify = verify_spec(
            argv, timeout + 5, check.timeout_state, policy.grace, policy.heal_on, check.report_to
        )
    verbose = min(count(run_values, "verbose"), 3)
    return evaluate(check.name, objects, timeout, check.timeout_state, healing, verbose, out, preview)


# -- evaluation --------------------------------------------------------------


def preview(heal: Action) -> list[str]:
    """What a built-in heal (``--clean``, ``--kill``, ``--restart``) would do.

    A dry run that would start such a heal runs it with ``--dry-run``, so
    the operator sees the files it would delete or the processes it would
    kill, not just the command line.
    """
    import io

    from selfheal.config.schema import BUILTIN_CHECKS

    words = list(heal.words)
    program = os.path.basename(words[0])
    name = program[len("check_selfheal_") :]
    if heal.shell or not program.startswith("check_selfheal_") or name not in BUILTIN_CHECKS:
        return []
    spec = find_spec(name)
    args = words[1:]
    if not any(f"--{mode}" in args for mode in spec.modes):
        return []
    end = args.index("--") if "--" in args else len(args)
    shown = io.StringIO()
    main(spec, [*args[:end], "--dry-run", *args[end:]], stdout=shown)
    return [f"{program}: {line}" for line in shown.getvalue().splitlines()]

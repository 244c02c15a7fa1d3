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
from selfheal.core import states
from selfheal.core.argv import Option, count, downtime, option_lines, parse_options, plugin_timeout
from selfheal.core.errors import ConfigError, SelfhealError, Usage
from selfheal.core.heal_flags import WRAP_OPTIONS, heal_policy
from selfheal.core.output import internal_error, unknown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from re import Pattern
    from typing import TextIO

    import nagiosplugin

    from selfheal.config.schema import CheckConfig, Config
    from selfheal.core.actions import Action
    from selfheal.core.policy import Policy

#: The monitoring-plugins' own default plugin timeout.
DEFAULT_TIMEOUT = 10.0

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


class Values:
    """Parsed option values, converted on demand; errors name the option.

    From the command line an error reads ``bad --port: ...``; from the
    config it is a ConfigError at the ``FILE:LINE`` of that ``args:`` key.
    """

    def __init__(
        self,
        raw: dict[str, object],
        options: list[Option],
        config: CheckConfig | None = None,
    ) -> None:
        self.raw = raw
        self.config = config
        #: The -t budget, for resources that set their own socket timeouts.
        self.timeout = DEFAULT_TIMEOUT
        #: Words after the options (``-- CMD ARGS``), for the heal modes.
        self.positional: list[str] = []
        #: The environment the check runs in (PATH for the commands it runs).
        self.env: Mapping[str, str] = os.environ
        self.labels = {option.dest: option.long for option in options}

    def fail(self, dest: str, message: str) -> SelfhealError:
        label = self.labels.get(dest, dest)
        if self.config is None:
            return Usage(f"bad {label}: {message}")
        key = label[2:].replace("-", "_")
        line = self.config.arg_lines.get(key, self.config.line)
        return ConfigError(f"check {self.config.name!r}: args: {key}: {message}", self.config.path, line)

    def given(self, dest: str) -> bool:
        return self.raw.get(dest) not in (None, False, 0)

    def flag(self, dest: str) -> bool:
        return bool(self.raw.get(dest))

    def count(self, dest: str) -> int:
        value = self.raw.get(dest) or 0
        # parse_options gives a count an int; any other value is a str.
        return int(value) if isinstance(value, int) else int(str(value))

    def text(self, dest: str, default: str | None = None) -> str | None:
        value = self.raw.get(dest)
        if value is None:
            return default
        if not str(value):
            raise self.fail(dest, "must not be empty")
        return str(value)

    def required(self, dest: str) -> str:
        value = self.text(dest)
        if value is None:
            raise self.fail(dest, "is required")
        return value

    def number(self, dest: str, default: float | None = None, minimum: float | None = None) -> float | None:
        text = self.text(dest)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise self.fail(dest, f"{text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(dest, f"{text!r} is not a finite number")
        if minimum is not None and value < minimum:
            raise self.fail(dest, f"must be at least {minimum:g}")
        return value

    def integer(
        self, dest: str, default: int | None = None, low: int = 0, high: int | None = None
    ) -> int | None:
        text = self.text(dest)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise self.fail(dest, f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise self.fail(dest, f"{value} is out of range {low}..{high if high is not None else ''}")
        return value

    def duration(self, dest: str, default: float | None = None) -> float | None:
        text = self.text(dest)
        if text is None:
            return default
        from selfheal.core.durations import parse_duration

        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.fail(dest, str(exc)) from None

    def range(self, dest: str, default: str | None = None) -> str | None:
        """A threshold in the Nagios range syntax, checked; None when not set."""
        text = self.text(dest, default)
        if text is None:
            return None
        return check_range(text, lambda message: self.fail(dest, message))

    def ranges(self, dest: str, count: int, default: str | None = None) -> list[str | None]:
        """``R`` or ``R1,R2,...``: one range per item (a single one applies to all)."""
        text = self.text(dest, default)
        if text is None:
            return [None] * count
        parts = text.split(",")
        if len(parts) == 1:
            parts = parts * count
        if len(parts) != count:
            raise self.fail(dest, f"give one range or {count} separated by commas, not {text!r}")
        return [check_range(p, lambda message: self.fail(dest, message)) if p else None for p in parts]

    def regex(self, dest: str) -> Pattern[str] | None:
        text = self.text(dest)
        if text is None:
            return None
        import re

        try:
            return re.compile(text)
        except re.error as exc:
            raise self.fail(dest, f"not a regular expression: {exc}") from None

    def choice(self, dest: str, choices: tuple[str, ...], default: str) -> str:
        text = (self.text(dest) or default).lower()
        if text not in choices:
            raise self.fail(dest, f"{text!r} is not one of {', '.join(choices)}")
        return text


def plain(value: float) -> float:
    """``9`` rather than ``9.0`` in perfdata and text."""
    return int(value) if value == int(value) else value


def check_range(text: str, fail: Callable[[str], Exception]) -> str:
    import nagiosplugin

    try:
        nagiosplugin.Range(text.strip())
    except (ValueError, TypeError):
        raise fail(f"{text!r} is not a range (use e.g. 10, 10:, ~:10, 10:20 or @10:20)") from None
    return text.strip()


class Healing:
    """What ``selfheal.Check`` needs to heal; None of it when there is no heal."""

    def __init__(
        self,
        heal: Action,
        policy: Policy,
        state_dir: str,
        journal: str | None,
        dry_run: bool,
        downtime: float,
        outputs: dict[str, object] | None = None,
    ) -> None:
        self.outputs = outputs  # syslog:, metrics:, on_event: from the config
        self.heal = heal
        self.policy = policy
        self.state_dir = state_dir
        self.journal = journal
        self.dry_run = dry_run
        self.downtime = downtime


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
    verbose = sum(len(a) - 1 for a in args if a.startswith("-v") and set(a[1:]) == {"v"})
    verbose += args.count("--verbose")
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
        else:
            unused = [values.labels[d] for d in NEEDS_HEAL if values.given(d)]
            if unused:
                raise Usage(f"{unused[0]} is a healing option; it needs --heal 'CMD ARGS'")
        values.timeout = timeout
        objects = spec.build(values)
        return evaluate(name, objects, timeout, timeout_state, healing, min(verbose, 3), out)
    except SelfhealError as exc:
        return unknown(out, name, str(exc))
    except KeyboardInterrupt:
        return unknown(out, name, "interrupted")
    except Exception as exc:  # the last line of defence: one line, not a traceback
        return internal_error(out, name, exc, verbose)


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
    healing = Healing(
        check.heal,
        check.policy,
        state_dir(run_values["state_dir"], env, cfg.state_dir),
        cfg.journal,
        bool(run_values["dry_run"]),
        downtime(run_values),
        cfg.outputs,
    )
    verbose = min(count(run_values, "verbose"), 3)
    return evaluate(check.name, objects, timeout, check.timeout_state, healing, verbose, out)


# -- evaluation --------------------------------------------------------------


class _Expired(Exception):
    """The -t deadline passed during a probe (raised by SIGALRM)."""


def evaluate(
    name: str,
    objects: list[object],
    timeout: float,
    timeout_state: int,
    healing: Healing | None,
    verbose: int,
    out: TextIO,
) -> int:
    """Probe, evaluate, heal if configured, print; the exit code."""
    import io
    import logging
    import time

    import nagiosplugin
    from nagiosplugin.output import Output

    from selfheal.checks.verdict import STATES, Summary, Verdict

    deadline = time.monotonic() + timeout
    state = STATES[states.name(timeout_state).lower()]
    for resource in objects:
        if isinstance(resource, nagiosplugin.Resource):
            bound_probe(resource, deadline, timeout, state)
    if healing is not None:
        from selfheal.check import Check

        check: nagiosplugin.Check = Check(
            name=name,
            heal=healing.heal,
            policy=healing.policy,
            state_dir=healing.state_dir,
            journal=healing.journal,
            dry_run=healing.dry_run,
            downtime=healing.downtime,
            outputs=healing.outputs,
        )
    else:
        check = nagiosplugin.Check(name=name)
    check.add(Summary(), *objects)
    if "verdict" not in check.contexts:
        check.add(Verdict())

    # nagiosplugin's log messages belong in the long output (-vv, -vvv).
    channel = logging.StreamHandler(io.StringIO())
    channel.setFormatter(logging.Formatter("%(message)s"))
    channel.setLevel({0: logging.WARNING, 1: logging.WARNING, 2: logging.INFO}.get(verbose, logging.DEBUG))
    logger = logging.getLogger("nagiosplugin")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(channel)
    try:
        check()
        output = Output(channel, verbose)
        output.add(check)
        outcome = getattr(check, "outcome", None)
        if healing is not None and healing.dry_run:
            if outcome is not None and outcome.decision.row == 9:
                output.add_longoutput(preview(healing.heal))
            output.add_longoutput("selfheal: dry run, nothing was started or recorded")
        out.write(str(output))
    finally:
        logger.removeHandler(channel)
    return int(check.exitcode)


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


def bound_probe(resource: nagiosplugin.Resource, deadline: float, timeout: float, state: object) -> None:
    """Make ``resource.probe`` stop at the deadline with a timeout verdict.

    Only the probes are bounded, not the healing step after them: a
    SIGALRM in the middle of recording an attempt would do more harm
    than a slow plugin.
    """
    import signal
    import time

    from selfheal.checks.verdict import verdict

    original = resource.probe

    def expire(signum: int, frame: object) -> None:
        raise _Expired

    def probe() -> list[object]:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise _Expired
            previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, remaining)
            try:
                return list(original() or [])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        except _Expired:
            return [verdict("timeout", state, f"timed out after {timeout:g}s")]

    resource.probe = probe

"""The ``selfheal`` command line: ``run``, ``wrap`` and ``demo``.

``main`` takes its arguments, environment and streams as parameters and
returns the exit code, so tests call it in-process.

The option parser is hand-written on purpose: every Nagios check pays
Python's start-up, and ``argparse`` (with ``re`` and ``gettext``) would
cost a healthy ``selfheal wrap`` several milliseconds per run.
"""

from __future__ import annotations

import os
import sys

from selfheal import __version__
from selfheal.core import states
from selfheal.core.errors import SelfhealError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from selfheal.core.output import PluginOutput
    from selfheal.core.policy import Policy
    from selfheal.edges.spawner import PluginRun
    from selfheal.engine import Healer

USAGE = """\
usage: selfheal run NAME [-c CONFIG] [--dry-run] [--downtime N] [-t SECONDS] [-v]
       selfheal wrap [--name NAME] --heal 'CMD ARGS' [options] -- PLUGIN [ARGS...]
       selfheal status [NAME] [--json]
       selfheal history [NAME] [--since 7d] [--json]
       selfheal report [--since 30d] [--format text|json|html] [-o FILE]
       selfheal reset NAME
       selfheal pause NAME|--all --for 2h [--reason TEXT]
       selfheal resume NAME|--all
       selfheal validate [-c CONFIG]
       selfheal doctor [NAME]
       selfheal demo
       selfheal -h | -V
"""

HELP = (
    USAGE
    + """
Self-healing Nagios checks: when the check says CRITICAL, start the heal
action (detached), say WARNING with a self-healing note, and journal it.
A heal that does not help is retried only after a growing cooldown, at
most --max-attempts times per --window, then the check says "gave up".

commands:
  run NAME      run the check NAME from the config file
  wrap          wrap any Nagios plugin given after --
  status        per check: state, attempts, cooldown, running, paused, last heal
  history       the journal's events, newest last
  report        per check over a period: heals, recoveries, time to recover
  reset         clear a check's attempt count and cooldown
  pause         no healing for a while (--for 2h), e.g. during a deploy
  resume        end a pause
  validate      check the config file; every problem as FILE:LINE: message
  doctor        can this user keep state, journal, and run each heal?
  demo          a self-contained demonstration on a throwaway service

Run 'selfheal COMMAND -h' for a command's options.
Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for bad input).
"""
)

# (names, dest, kind, metavar, help); kind: flag, count, value
_COMMON = [
    (("--dry-run",), "dry_run", "flag", "", "decide and print what would happen; start and write nothing"),
    (
        ("--downtime",),
        "downtime",
        "value",
        "N",
        "Nagios downtime depth ($SERVICEDOWNTIME$); N > 0 means no heal",
    ),
    (("-t", "--timeout"), "timeout", "value", "SECONDS", "kill the plugin after this long (default 30s)"),
    (("-v", "--verbose"), "verbose", "count", "", "more detail; -vvv shows tracebacks"),
    (("-h", "--help"), "help", "flag", "", "show this help"),
    (("-V", "--version"), "version", "flag", "", "show the version"),
]
RUN_OPTIONS = [
    (
        ("-c", "--config"),
        "config",
        "value",
        "CONFIG",
        "config file (default $SELFHEAL_CONFIG, /etc/selfheal/selfheal.yaml)",
    ),
    (
        ("--state-dir",),
        "state_dir",
        "value",
        "DIR",
        "state dir (default: $SELFHEAL_STATE_DIR, the config's state_dir, /var/lib/selfheal)",
    ),
    *_COMMON,
]
WRAP_OPTIONS = [
    (
        ("--name",),
        "name",
        "value",
        "NAME",
        "check name for state and output (default: the plugin's file name)",
    ),
    (
        ("--heal",),
        "heal",
        "value",
        "'CMD ARGS'",
        "the heal action, split like a shell would but never run by one",
    ),
    (("--sudo",), "sudo", "flag", "", "run the heal as 'sudo -n -- CMD ARGS'"),
    (("--shell",), "shell", "flag", "", "run the heal through /bin/sh -c (only if you need shell syntax)"),
    (("--cooldown",), "cooldown", "value", "DURATION", "wait after attempt 1 (default 15m)"),
    (("--backoff",), "backoff", "value", "FACTOR", "cooldown multiplier per attempt (default 2)"),
    (("--max-cooldown",), "max_cooldown", "value", "DURATION", "cooldown ceiling (default 4h)"),
    (("--max-attempts",), "max_attempts", "value", "N", "attempts per window before giving up (default 3)"),
    (("--window",), "window", "value", "DURATION", "window for --max-attempts (default 6h)"),
    (
        ("--reset-after",),
        "reset_after",
        "value",
        "DURATION",
        "healthy this long resets the count (default 1h)",
    ),
    (
        ("--action-timeout",),
        "action_timeout",
        "value",
        "DURATION",
        "kill the heal after this long (default 2m)",
    ),
    (("--grace",), "grace", "value", "DURATION", "stay WARNING this long after the heal ends (default 30s)"),
    (("--splay",), "splay", "value", "DURATION", "random delay before the heal (default 0)"),
    (("--heal-on",), "heal_on", "value", "STATES", "states that heal, comma-separated (default critical)"),
    (
        ("--timeout-state",),
        "timeout_state",
        "value",
        "STATE",
        "result when the plugin times out (default unknown)",
    ),
    (("--journal",), "journal", "value", "FILE", "journal file (default: STATE_DIR/journal.jsonl)"),
    (
        ("--state-dir",),
        "state_dir",
        "value",
        "DIR",
        "state dir (default: $SELFHEAL_STATE_DIR, else /var/lib/selfheal or ~/.local/state/selfheal)",
    ),
    *_COMMON,
]

# wrap has no -c, yet it is not blind to the config file: say so in its help.
WRAP_NOTE = """
wrap reads no config for the check itself, but when it journals an event
(never on a healthy run) it reads the config file ($SELFHEAL_CONFIG, else
/etc/selfheal/selfheal.yaml), if one exists, for syslog: and on_event:, and
for metrics: when the state dir is the config's. --state-dir is never taken
from the config.
"""


OPERATING_COMMANDS = ("status", "history", "report", "reset", "pause", "resume", "validate", "doctor")


class Usage(SelfhealError):
    """A bad command line."""


def main(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    out = sys.stdout if stdout is None else stdout
    verbose = sum(a.count("v") for a in args if a.startswith("-v") and set(a[1:]) == {"v"})
    verbose += args.count("--verbose")
    name = "selfheal"
    try:
        if not args:
            raise Usage("no command given; try 'selfheal -h'")
        if args[0] in ("-h", "--help"):
            out.write(HELP)
            return 0
        if args[0] in ("-V", "--version"):
            out.write(f"selfheal {__version__}\n")
            return 0
        command, rest = args[0], args[1:]
        if command == "run":
            return cmd_run(rest, env, out)
        if command == "wrap":
            return cmd_wrap(rest, env, out)
        if command in OPERATING_COMMANDS:
            from selfheal.commands.common import dispatch

            return dispatch(command, rest, env, out)
        if command == "demo":
            from selfheal.commands.demo import demo

            return demo(rest, out)
        raise Usage(f"unknown command {command!r}; try 'selfheal -h'")
    except SelfhealError as exc:
        return unknown(out, name, str(exc))
    except KeyboardInterrupt:
        return unknown(out, name, "interrupted")
    except Exception as exc:  # the last line of defence: one line, not a traceback
        return internal_error(out, name, exc, verbose)


def internal_error(out: TextIO, name: str, exc: Exception, verbose: int) -> int:
    """A bug reported as one UNKNOWN line; the traceback only with -vvv."""
    if verbose >= 3:
        import traceback

        traceback.print_exc(file=out)
    return unknown(out, name, f"internal error: {type(exc).__name__}: {exc} (run with -vvv for a traceback)")


def unknown(out: TextIO, name: str, message: str) -> int:
    from selfheal.core.output import clean

    out.write(f"{name.upper()} UNKNOWN - {clean(message)}\n")
    return states.UNKNOWN


def parse_options(
    args: list[str], options: list[tuple[tuple[str, ...], str, str, str, str]]
) -> tuple[dict[str, object], list[str]]:
    """Options and positional arguments; everything after ``--`` is positional."""
    by_name = {name: (dest, kind) for names, dest, kind, _, _ in options for name in names}
    values: dict[str, object] = {dest: (0 if kind == "count" else None) for _, dest, kind, _, _ in options}
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positional.extend(args[index:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, has_value, inline = arg.partition("=")
        if name not in by_name and not arg.startswith("--") and len(arg) > 2:
            # Clustered short options: -vvv, or -t10.
            if set(arg[1:]) == {"v"} and "-v" in by_name:
                values["verbose"] = int(values["verbose"]) + len(arg) - 1  # type: ignore[call-overload]
                continue
            name, has_value, inline = arg[:2], "=", arg[2:]
        if name not in by_name:
            raise Usage(f"unknown option {name}")
        dest, kind = by_name[name]
        if kind == "flag":
            if has_value:
                raise Usage(f"option {name} takes no value")
            values[dest] = True
        elif kind == "count":
            values[dest] = int(values[dest]) + 1  # type: ignore[call-overload]
        else:
            if not has_value:
                if index >= len(args):
                    raise Usage(f"option {name} needs a value")
                inline = args[index]
                index += 1
            values[dest] = inline
    return values, positional


def option_help(command: str, options: list[tuple[tuple[str, ...], str, str, str, str]]) -> str:
    usage = next(line for line in USAGE.splitlines() if f"selfheal {command} " in line)
    lines = ["usage: selfheal " + usage.split("selfheal ", 1)[1], "", "options:"]
    for names, _, _, metavar, text in options:
        label = ", ".join(names) + (f" {metavar}" if metavar else "")
        lines.append(f"  {label:<28} {text}")
    return "\n".join(lines) + "\n" + (WRAP_NOTE if command == "wrap" else "")


def common_flags(values: dict[str, object], out: TextIO, command: str, options: list) -> bool:
    """Handle -h/-V; True when the command should stop here."""
    if values["help"]:
        out.write(option_help(command, options))
        return True
    if values["version"]:
        out.write(f"selfheal {__version__}\n")
        return True
    return False


def number(values: Mapping[str, object], dest: str, option: str) -> float | None:
    text = values.get(dest)
    if text is None:
        return None
    from selfheal.core.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise Usage(f"bad {option}: {exc}") from None


def downtime(values: Mapping[str, object]) -> float:
    """``--downtime``, for wrap, run and the built-in checks alike.

    Nagios passes ``$SERVICEDOWNTIME$``, a bare depth, often "0" or "";
    a duration (``1m``) is read as one too. More than 0 means no heal.
    """
    text = values.get("downtime")
    if text is None or not str(text).strip():
        return 0.0
    return number({"downtime": text}, "downtime", "--downtime") or 0.0


def plugin_timeout(values: Mapping[str, object], default: float) -> float:
    """``-t SECONDS``, for wrap, run and the built-in checks alike: more than 0."""
    seconds = number(values, "timeout", "--timeout")
    if seconds is None:
        return default
    if seconds <= 0:
        raise Usage("bad --timeout: must be longer than 0s")
    return seconds


# -- run ------------------------------------------------------------------


def cmd_run(args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, positional = parse_options(args, RUN_OPTIONS)
    if common_flags(values, out, "run", RUN_OPTIONS):
        return 0
    if len(positional) != 1:
        raise Usage("run needs exactly one check NAME: selfheal run NAME [-c CONFIG]")
    name = positional[0]
    from selfheal.config import cache as config_cache
    from selfheal.config.loader import config_path
    from selfheal.engine import Healer

    cfg, state_dir = config_cache.load(
        config_path(values["config"], env),  # type: ignore[arg-type]
        values["state_dir"],  # type: ignore[arg-type]
        env,
        write=not values["dry_run"],
        wanted=(name,),
    )
    check = cfg.check(name)
    if check.builtin:
        from selfheal.checks.plugin import run_configured

        return run_configured(check, cfg, values, env, out)
    plugin = check.resolved_plugin(env)
    timeout = plugin_timeout(values, check.timeout)
    healer = Healer(name, check.heal, check.policy, state_dir, cfg.journal, outputs=cfg.outputs)
    return heal_plugin(name, plugin, timeout, check.timeout_state, healer, values, out)


# -- wrap -----------------------------------------------------------------


def cmd_wrap(args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, plugin = parse_options(args, WRAP_OPTIONS)
    if common_flags(values, out, "wrap", WRAP_OPTIONS):
        return 0
    if not plugin:
        raise Usage("wrap needs the plugin to run after --: selfheal wrap --heal 'CMD' -- PLUGIN [ARGS]")
    if not values["heal"] or not str(values["heal"]).strip():
        raise Usage("wrap needs --heal 'CMD ARGS'")
    from selfheal.edges.store import check_name, resolve_state_dir
    from selfheal.engine import Healer

    name = str(values["name"] or os.path.basename(plugin[0]))
    try:
        check_name(name)
    except ValueError as exc:
        raise Usage(f"bad --name: {exc}") from None
    policy, timeout_state = heal_policy(values)
    heal_text, sudo, shell = str(values["heal"]), bool(values["sudo"]), bool(values["shell"])

    def build_heal() -> object:
        from selfheal.core.actions import Command

        try:
            return Command(heal_text, sudo=sudo, shell=shell)
        except ValueError as exc:
            raise Usage(f"bad --heal: {exc}") from None

    state_dir = resolve_state_dir(values["state_dir"], env)  # type: ignore[arg-type]

    def config_outputs() -> dict[str, object]:
        # Read only when an event is journaled: a healthy wrap reads no config.
        from selfheal.hooks import config_outputs

        return config_outputs(env, state_dir)

    healer = Healer(
        name,
        build_heal,  # type: ignore[arg-type]
        policy,
        state_dir,
        values["journal"],  # type: ignore[arg-type]
        outputs=config_outputs,
    )
    timeout = plugin_timeout(values, 30.0)
    return heal_plugin(name, plugin, timeout, timeout_state, healer, values, out)


# -- shared by run and wrap -----------------------------------------------


def heal_policy(values: dict[str, object]) -> tuple[Policy, int]:
    """The healing policy and timeout state from the ``wrap`` options (shared with the built-in checks)."""
    from selfheal.core.policy import Policy

    settings: dict[str, object] = {}
    for dest in ("cooldown", "max_cooldown", "window", "reset_after", "action_timeout", "grace", "splay"):
        if values[dest] is not None:
            settings[dest] = values[dest]
    for dest, convert in (("backoff", float), ("max_attempts", int)):
        if values[dest] is not None:
            try:
                settings[dest] = convert(values[dest])  # type: ignore[operator]
            except ValueError:
                raise Usage(f"bad --{dest.replace('_', '-')}: {values[dest]!r} is not a number") from None
    if values["heal_on"] is not None:
        settings["heal_on"] = [s for s in str(values["heal_on"]).split(",") if s]
    try:
        policy = Policy(**settings)
    except ValueError as exc:
        raise Usage(
            f"bad --{str(exc).split(':')[0].replace('_', '-')}: {str(exc).split(': ', 1)[-1]}"
        ) from None
    timeout_state = states.UNKNOWN
    if values["timeout_state"] is not None:
        try:
            timeout_state = states.parse(str(values["timeout_state"]))
        except ValueError as exc:
            raise Usage(f"bad --timeout-state: {exc}") from None
    return policy, timeout_state


def heal_plugin(
    name: str,
    plugin: list[str],
    timeout: float,
    timeout_state: int,
    healer: Healer,
    values: dict[str, object],
    out: TextIO,
) -> int:
    """Run the plugin, let the healer decide, print the plugin output."""
    from selfheal.core import output

    depth = downtime(values)
    run = healer.spawner.run_plugin(plugin, timeout)
    state, result = interpret(run, plugin, timeout, timeout_state)
    outcome = healer.handle(state, dry_run=bool(values["dry_run"]), downtime=depth)
    long = list(result.long)
    if values["verbose"]:
        long.append(f"selfheal: {states.name(state)} from the plugin, decision row {outcome.decision.row}")
        long.extend(f"selfheal: {detail}" for detail in outcome.details)
    if values["dry_run"]:
        long.append("selfheal: dry run, nothing was started or recorded")
    perfdata = [
        *result.perfdata,
        output.attempts_perfdata(outcome.attempts),
        output.heals_perfdata(outcome.heals_total),
    ]
    out.write(output.render(name, outcome.state, result.text, outcome.note, perfdata, long))
    return outcome.state


def interpret(
    run: PluginRun, plugin: list[str], timeout: float, timeout_state: int
) -> tuple[int, PluginOutput]:
    """A plugin's state and parsed output, UNKNOWN when it did not behave."""
    from selfheal.core import output

    parsed = output.parse(run.stdout.decode("utf-8", "replace"))
    program = os.path.basename(plugin[0])
    if run.error:
        return states.UNKNOWN, output.PluginOutput(f"plugin {run.error}")
    if run.timed_out:
        text = f"plugin {program} timed out after {timeout:g}s"
        return timeout_state, output.PluginOutput(text, parsed.long, parsed.perfdata)
    if run.signal is not None:
        return states.UNKNOWN, output.PluginOutput(f"plugin {program} was killed by signal {run.signal}")
    code = run.exit_status
    if not parsed.text:
        stderr = run.stderr.decode("utf-8", "replace").strip().splitlines()
        parsed.text = f"(no output from {program})" + (f" stderr: {stderr[0]}" if stderr else "")
    if code not in (0, 1, 2, 3):
        parsed.text = f"plugin {program} exited {code}: {parsed.text}"
        return states.UNKNOWN, parsed
    return code, parsed

"""``selfheal run`` and ``selfheal wrap``: the plugin commands Nagios calls.

Both go check → decide → heal → record: run the plugin and read its state
(``probe``: a plugin that cannot be run, times out, is killed or exits
outside 0-3 is UNKNOWN, or the configured timeout state, with a line that
says why), let the ``Healer`` decide and act, print one Nagios status line. ``run`` takes the
check from the config (through the config cache); ``wrap`` from its
options, with no config read unless an event is journaled.
"""

from __future__ import annotations

import os

from selfheal import __version__
from selfheal.core import output, states
from selfheal.core.argv import (
    COMMON_OPTIONS,
    WRAP_OPTIONS,
    Option,
    downtime,
    heal_policy,
    option_lines,
    parse_options,
    plugin_timeout,
    retry_policy,
    text,
)
from selfheal.core.states import Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

    from selfheal.budget_gate import BudgetGate
    from selfheal.config.schema import CheckConfig, Config
    from selfheal.core.actions import Action
    from selfheal.core.output import PluginOutput
    from selfheal.core.policy import Policy
    from selfheal.edges.spawner import Spawner
    from selfheal.engine import Healer

USAGE = {
    "run": "selfheal run NAME [-c CONFIG] [--dry-run] [--downtime N] [-t SECONDS] [--retry-state STATE] [-v]",
    "wrap": "selfheal wrap [--name NAME] --heal 'CMD ARGS' [options] -- PLUGIN [ARGS...]",
}

RUN_OPTIONS = [
    Option(
        ("-c", "--config"),
        "config",
        "value",
        "CONFIG",
        "config file (default $SELFHEAL_CONFIG, /etc/selfheal/selfheal.yaml)",
    ),
    Option(
        ("--state-dir",),
        "state_dir",
        "value",
        "DIR",
        "state dir (default: $SELFHEAL_STATE_DIR, the config's state_dir, /var/lib/selfheal)",
    ),
    *(o for o in WRAP_OPTIONS if o.dest == "retry_state"),
    *COMMON_OPTIONS,
]
# wrap has no -c, yet it is not blind to the config file: say so in its help.
WRAP_NOTE = """
wrap reads no config for the check itself, but when it journals an event
(never on a healthy run) it reads the config file ($SELFHEAL_CONFIG, else
/etc/selfheal/selfheal.yaml), if one exists, for syslog: and on_event:, and
for metrics: when the state dir is the config's. --state-dir is never taken
from the config.
"""


def common_flags(values: dict[str, object], out: TextIO, command: str, options: list[Option]) -> bool:
    """Handle -h/-V; True when the command should stop here."""
    if values["help"]:
        lines = ["usage: " + USAGE[command], "", "options:", *option_lines(options)]
        out.write("\n".join(lines) + "\n" + (WRAP_NOTE if command == "wrap" else ""))
        return True
    if values["version"]:
        out.write(f"selfheal {__version__}\n")
        return True
    return False


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    return cmd_run(args, env, out) if command == "run" else cmd_wrap(args, env, out)


# -- run ------------------------------------------------------------------


def cmd_run(args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, positional = parse_options(args, RUN_OPTIONS)
    if common_flags(values, out, "run", RUN_OPTIONS):
        return 0
    if len(positional) != 1:
        raise Usage("run needs exactly one check NAME: selfheal run NAME [-c CONFIG]")
    name = positional[0]
    from selfheal.config import cache as config_cache
    from selfheal.config import config_path
    from selfheal.engine import Healer

    cfg, state_dir = config_cache.load(
        config_path(text(values, "config"), env),
        text(values, "state_dir"),
        env,
        write=not values["dry_run"],
        wanted=(name,),
    )
    check = cfg.check(name)
    if values["retry_state"] is not None:
        check.policy = retry_policy(check.policy, values["retry_state"])
    if check.builtin:
        from selfheal.checks.plugin import run_configured

        return run_configured(check, cfg, values, env, out)
    plugin = check.resolved_plugin(env)
    timeout = plugin_timeout(values, check.timeout)
    budget = fleet_gate(check, cfg)
    verify = None
    if check.verify:
        verify = lazy_verify(plugin, timeout, check.timeout_state, check.policy, check.report_to)
    healer = Healer(
        name,
        lambda: check.heal,  # built when a heal is decided: a healthy run never imports the actions
        check.policy,
        state_dir,
        cfg.journal,
        outputs=cfg.outputs,
        budget=budget,
        verify=verify,
    )
    return heal_plugin(name, plugin, timeout, check.timeout_state, healer, values, out)


def fleet_gate(check: CheckConfig, cfg: Config) -> Callable[[], BudgetGate] | None:
    """The check's fleet budget, made only when a heal asks (the healthy path never imports it)."""
    fleet, budget = cfg.fleet, check.budget
    if budget is None or fleet is None:
        return None

    def gate() -> BudgetGate:
        from selfheal.budget_gate import BudgetGate

        return BudgetGate(fleet, budget)

    return gate


# -- wrap -----------------------------------------------------------------


def cmd_wrap(args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, plugin = parse_options(args, WRAP_OPTIONS)
    if common_flags(values, out, "wrap", WRAP_OPTIONS):
        return 0
    if not plugin or not plugin[0]:
        raise Usage("wrap needs the plugin to run after --: selfheal wrap --heal 'CMD' -- PLUGIN [ARGS]")
    if not values["heal"] or not str(values["heal"]).strip():
        raise Usage("wrap needs --heal 'CMD ARGS'")
    from selfheal.edges.store import check_name, resolve_state_dir
    from selfheal.engine import Healer

    # An empty --name is a mistake (an unset variable), not "use the default".
    name = str(values["name"]) if values["name"] is not None else os.path.basename(plugin[0])
    try:
        check_name(name)
    except ValueError as exc:
        raise Usage(f"bad --name: {exc}") from None
    policy, timeout_state = heal_policy(values)
    heal_text, sudo, shell = str(values["heal"]), bool(values["sudo"]), bool(values["shell"])

    def build_heal() -> Action:
        from selfheal.core.actions import Command

        try:
            return Command(heal_text, sudo=sudo, shell=shell)
        except ValueError as exc:
            raise Usage(f"bad --heal: {exc}") from None

    state_dir = resolve_state_dir(text(values, "state_dir"), env)

    def outputs() -> dict[str, object]:
        # Read only when an event is journaled: a healthy wrap reads no config.
        return config_outputs(env, state_dir)

    timeout = plugin_timeout(values, 30.0)
    verify = None
    report_to: dict[str, object] = {}
    if any(values[flag] is not None for flag in ("nagios_cmd", "nagios_host", "nagios_service")):
        from selfheal.report_back import report_to_flags  # checked now: a bad flag is UNKNOWN at once

        report_to = report_to_flags(values)
    if values["verify"]:
        verify = lazy_verify(plugin, timeout, timeout_state, policy, report_to)
    healer = Healer(
        name,
        build_heal,
        policy,
        state_dir,
        text(values, "journal"),
        outputs=outputs,
        verify=verify,
    )
    return heal_plugin(name, plugin, timeout, timeout_state, healer, values, out)


# -- shared by run and wrap -----------------------------------------------


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

    depth = downtime(values)
    state, result = probe(healer.spawner, plugin, timeout, timeout_state)
    outcome = healer.handle(state, dry_run=bool(values["dry_run"]), downtime=depth)
    long = list(result.long)
    if values["verbose"]:
        from selfheal.core.explain import explain

        why = explain(outcome.decision, state, name, healer.policy, outcome.last, healer.clock())
        long.append(f"selfheal: {states.name(state)} from the plugin; {why}")
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


def config_outputs(env: Mapping[str, str], state_dir: str) -> dict[str, object]:
    """The config file's outputs, for ``selfheal wrap``, which has no ``-c``.

    No config, or one that does not load, means no outputs: a wrap check
    must not fail over a config it does not otherwise need. The metrics
    file lists the records of one state dir, so a wrap with a state dir of
    its own leaves it alone rather than replace it with its own records.
    """
    from selfheal.config import config_path

    path = config_path(None, env)
    if not os.path.exists(path):
        return {}
    from selfheal.config import loader as config
    from selfheal.core.states import SelfhealError
    from selfheal.edges.store import resolve_state_dir

    try:
        cfg = config.load(path)
    except SelfhealError:
        return {}
    outputs = dict(cfg.outputs)
    if outputs.get("metrics") and resolve_state_dir(None, env, cfg.state_dir) != state_dir:
        del outputs["metrics"]
    return outputs


def probe(
    spawner: Spawner, plugin: list[str], timeout: float, timeout_state: int
) -> tuple[int, PluginOutput]:
    """Run ``plugin`` through the spawner, bounded by ``timeout``; its state and output."""
    return output.interpret(spawner.run_plugin(plugin, timeout), plugin, timeout, timeout_state)


def lazy_verify(
    plugin: list[str], timeout: float, timeout_state: int, policy: Policy, report_to: dict[str, object]
) -> Callable[[], dict[str, object]]:
    """The runner's re-check spec (``selfheal.verify``), made only when a heal starts."""

    def spec() -> dict[str, object]:
        from selfheal.verify import verify_spec

        return verify_spec(plugin, timeout, timeout_state, policy.grace, policy.heal_on, report_to)

    return spec

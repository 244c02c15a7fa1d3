"""``systemd``: a unit's ActiveState and SubState, and whether it hit its start limit.

The state comes from ``systemctl show -p ...`` (a stable, scriptable
``Key=Value`` interface). ``active`` is OK; ``activating``, ``reloading``
and ``deactivating`` are WARNING (it is on its way somewhere); ``failed``
and ``inactive`` are CRITICAL, unless ``--expect`` lists them (a oneshot
unit is ``inactive`` when all is well). A unit systemd does not know is
UNKNOWN: no restart can help it. ``-w``/``-c`` are ranges on NRestarts,
the restarts systemd itself made (``Restart=``) since the unit was
last started by hand.

The restart heal (``--restart``) runs ``systemctl reset-failed UNIT``
first when the unit's Result is ``start-limit-hit``, then ``systemctl
restart UNIT``. Why: once a unit failed ``StartLimitBurst`` times within
``StartLimitIntervalSec``, systemd refuses every start ("Start request
repeated too quickly") until that interval has passed or the failure
state is reset, so a plain restart cannot heal it. selfheal's own
cooldown and ``max_attempts`` bound the retries instead, so resetting the
counter does not make a restart loop.
"""

from __future__ import annotations

import errno
import os

import nagiosplugin

from selfheal.checks.options import Values, plain
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.checks.verdict import verdict
from selfheal.core.argv import Option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from selfheal.core.output import PluginRun

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result", "NRestarts")
STATES = {
    "active": nagiosplugin.Ok,
    "reloading": nagiosplugin.Warn,
    "activating": nagiosplugin.Warn,
    "deactivating": nagiosplugin.Warn,
    "inactive": nagiosplugin.Critical,
    "failed": nagiosplugin.Critical,
}


def show(unit: str, timeout: float, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``systemctl show`` for the unit, as a dict; CheckError when it cannot tell."""
    argv = ["systemctl", "show", "--no-pager", "-p", ",".join(PROPERTIES), unit]
    done = systemctl(argv, timeout, env)
    if done.error:
        missing = done.error.endswith(os.strerror(errno.ENOENT))
        raise nagiosplugin.CheckError(
            "systemctl not found: is this a systemd host?" if missing else done.error
        )
    if done.timed_out:
        raise nagiosplugin.CheckError(f"systemctl show {unit} did not answer within {timeout:g}s")
    if done.exit_status != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = (stderr or [f"exit {done.exit_status}" if done.signal is None else f"signal {done.signal}"])[0]
        raise nagiosplugin.CheckError(f"systemctl show {unit} failed: {why}")
    fields = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def systemctl(argv: list[str], timeout: float, env: Mapping[str, str] | None) -> PluginRun:
    """Run systemctl through the spawner, which kills it (and its children) at the timeout."""
    from selfheal.edges.spawner import Spawner

    return Spawner().run_plugin(argv, timeout, env)


class Unit(nagiosplugin.Resource):
    """Yields a verdict on the unit's state and ``restarts`` (NRestarts)."""

    def __init__(
        self,
        unit: str,
        expect: tuple[str, ...] = ("active",),
        timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.unit = unit
        self.expect = expect
        self.timeout = timeout
        self.env = env

    @property
    def name(self) -> str:
        return "SYSTEMD"

    def probe(self) -> list[nagiosplugin.Metric]:
        fields = show(self.unit, self.timeout, self.env)
        load, active = fields.get("LoadState", ""), fields.get("ActiveState", "")
        sub, result = fields.get("SubState", ""), fields.get("Result", "")
        if load == "not-found" or not active:
            return [verdict("unit", nagiosplugin.Unknown, f"unit {self.unit} not found")]
        text = f"{self.unit} is {active} ({sub})"
        if active in self.expect:
            state = nagiosplugin.Ok
        else:
            state = STATES.get(active, nagiosplugin.Unknown)
            if result and result != "success":
                text += f", result {result}"
        metrics = []
        if result == "start-limit-hit":
            state = nagiosplugin.Critical
            text += ": start limit hit, a restart needs 'systemctl reset-failed' first"
        metrics.append(verdict("unit", state, text))
        restarts = fields.get("NRestarts", "")
        if restarts.isdigit():
            metrics.append(nagiosplugin.Metric("restarts", int(restarts), min=0, context="restarts"))
        return metrics


def unit_name(values: Values) -> str:
    unit = values.required("unit")
    if unit.startswith("-") or any(c.isspace() or c == "/" for c in unit):
        raise values.fail("unit", f"{unit!r} is not a unit name")
    return unit


def build(values: Values) -> list[object]:
    unit = unit_name(values)
    expect = tuple(s.strip() for s in (values.text("expect") or "active").split(",") if s.strip())
    for state in expect:
        if state not in STATES:
            raise values.fail("expect", f"{state!r} is not one of {', '.join(STATES)}")
    return [
        Unit(unit, expect, values.timeout * 0.9, dict(values.env)),
        nagiosplugin.ScalarContext(
            "restarts",
            values.range("warning"),
            values.range("critical"),
            fmt_metric=lambda m, _: f"{plain(m.value)} automatic restarts",
        ),
    ]


def restart(values: Values, out: TextIO) -> int:
    """``--restart``: ``reset-failed`` when the start limit was hit, then ``restart``."""
    unit = unit_name(values)
    try:
        fields = show(unit, 10, values.env)
    except nagiosplugin.CheckError as exc:
        out.write(f"{exc}; restarting anyway\n")
        fields = {}
    if values.flag("dry_run"):
        if fields.get("Result") == "start-limit-hit":
            out.write(f"would run systemctl reset-failed {unit} ({unit} hit its start limit)\n")
        out.write(f"would run systemctl restart {unit}\n")
        return 0
    if fields.get("Result") == "start-limit-hit":
        out.write(f"{unit} hit its start limit: systemctl reset-failed {unit}\n")
        systemctl(["systemctl", "reset-failed", unit], 30, values.env)
    out.write(f"systemctl restart {unit}\n")
    out.flush()
    # Replace this process: systemctl's exit code is the heal's.
    os.execvpe("systemctl", ["systemctl", "restart", unit], values.env)  # never returns


SPEC = Spec(
    "systemd",
    "Check a systemd unit's state; or restart it (--restart), resetting its start limit first when it was hit.",
    [
        Option(("-u", "--unit"), "unit", "value", "UNIT", "the unit, e.g. nginx.service (required)"),
        Option(
            ("-s", "--expect"),
            "expect",
            "value",
            "STATES",
            "ActiveStates that are OK (default active), e.g. active,inactive",
        ),
        Option(
            ("--restart",),
            "restart",
            "flag",
            "",
            "heal mode: reset-failed if the start limit was hit, then restart",
        ),
    ],
    build,
    warning="automatic restarts (NRestarts) that give WARNING (e.g. 3)",
    critical="automatic restarts (NRestarts) that give CRITICAL",
    modes={"restart": restart},
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

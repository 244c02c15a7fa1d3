"""``load``: the 1, 5 and 15-minute load averages, optionally per CPU.

``-w``/``-c`` take one range for all three averages or three ranges
separated by commas (``-w 15,10,5``), as monitoring-plugins' ``check_load``
does with plain numbers. ``-r`` divides the averages by the CPU count.
"""

from __future__ import annotations

import os

import nagiosplugin

from selfheal.checks.options import Values
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.core.argv import Option

PERIODS = ("load1", "load5", "load15")


class Load(nagiosplugin.Resource):
    """Yields ``load1``, ``load5`` and ``load15``."""

    def __init__(self, per_cpu: bool = False) -> None:
        self.per_cpu = per_cpu

    @property
    def name(self) -> str:
        return "LOAD"

    def probe(self) -> list[nagiosplugin.Metric]:
        averages = os.getloadavg()
        cpus = (os.cpu_count() or 1) if self.per_cpu else 1
        return [
            nagiosplugin.Metric(period, round(value / cpus, 3), min=0, context=period)
            for period, value in zip(PERIODS, averages)
        ]


def build(values: Values) -> list[object]:
    warning = values.ranges("warning", 3)
    critical = values.ranges("critical", 3)
    per = " per CPU" if values.flag("percpu") else ""
    minutes = {"load1": "1", "load5": "5", "load15": "15"}
    return [
        Load(values.flag("percpu")),
        *(
            nagiosplugin.ScalarContext(
                period,
                warn,
                crit,
                fmt_metric=lambda m, _: f"{minutes[m.name]}-minute load {m.value:.2f}{per}",
            )
            for period, warn, crit in zip(PERIODS, warning, critical)
        ),
    ]


SPEC = Spec(
    "load",
    "Check the 1, 5 and 15-minute load averages.",
    [Option(("-r", "--percpu"), "percpu", "flag", "", "divide the load averages by the number of CPUs")],
    build,
    warning="load that gives WARNING: one range, or three for 1,5,15 minutes (e.g. 15,10,5)",
    critical="load that gives CRITICAL: one range, or three for 1,5,15 minutes",
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

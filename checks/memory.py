"""``memory``: available memory in percent, and swap used in percent.

"Available" is the kernel's ``MemAvailable`` (what can be given to new
work without swapping, page cache included), not ``MemFree``, which
reads low on any healthy machine. ``-w``/``-c`` are ranges on that
percentage, by default ``10:`` and ``5:`` (alert below 10% and 5%).
Read from ``/proc/meminfo`` directly: no psutil import for one file.
"""

from __future__ import annotations

import nagiosplugin

from selfheal.checks.options import Values
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.core.argv import Option

MEMINFO = "/proc/meminfo"


def meminfo(path: str = MEMINFO) -> dict[str, int]:
    """``/proc/meminfo`` in bytes, by field name."""
    fields = {}
    with open(path) as stream:
        for line in stream:
            key, _, rest = line.partition(":")
            words = rest.split()
            if words and words[0].isdigit():
                fields[key] = int(words[0]) * (1024 if words[1:] == ["kB"] else 1)
    return fields


class Memory(nagiosplugin.Resource):
    """Yields ``available`` (%), ``available_bytes`` and ``swap_used`` (%)."""

    def __init__(self, path: str = MEMINFO) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return "MEMORY"

    def probe(self) -> list[nagiosplugin.Metric]:
        try:
            info = meminfo(self.path)
            total, available = info["MemTotal"], info["MemAvailable"]
        except (OSError, KeyError) as exc:
            raise nagiosplugin.CheckError(
                f"cannot read MemTotal and MemAvailable from {self.path}: {exc}"
            ) from None
        swap_total = info.get("SwapTotal", 0)
        swap_used = swap_total - info.get("SwapFree", 0)
        return [
            nagiosplugin.Metric(
                "available", round(100 * available / total, 2), "%", 0, 100, context="available"
            ),
            nagiosplugin.Metric("available_bytes", available, "B", 0, total, context="bytes"),
            nagiosplugin.Metric(
                "swap_used",
                round(100 * swap_used / swap_total, 2) if swap_total else 0,
                "%",
                0,
                100,
                context="swap",
            ),
        ]


def build(values: Values) -> list[object]:
    return [
        Memory(),
        nagiosplugin.ScalarContext(
            "available",
            values.range("warning", "10:"),
            values.range("critical", "5:"),
            fmt_metric=lambda m, _: f"{m.value:g}% memory available",
        ),
        # Perfdata only: the percentage says it on the status line.
        nagiosplugin.ScalarContext("bytes", fmt_metric=lambda m, _: ""),
        nagiosplugin.ScalarContext(
            "swap",
            values.range("swap_warning"),
            values.range("swap_critical"),
            fmt_metric=lambda m, _: f"{m.value:g}% swap used",
        ),
    ]


SPEC = Spec(
    "memory",
    "Check the memory available (MemAvailable) and the swap used, in percent.",
    [
        Option(
            ("--swap-warning",), "swap_warning", "value", "RANGE", "swap used % that gives WARNING (e.g. 50)"
        ),
        Option(
            ("--swap-critical",),
            "swap_critical",
            "value",
            "RANGE",
            "swap used % that gives CRITICAL (e.g. 80)",
        ),
    ],
    build,
    warning="available % that gives WARNING (default 10: = below 10%)",
    critical="available % that gives CRITICAL (default 5: = below 5%)",
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

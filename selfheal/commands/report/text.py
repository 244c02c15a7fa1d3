"""The report as a text table: one row per check, ranked, and the totals."""

from __future__ import annotations

from selfheal.commands import common as ops

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def duration_text(seconds: float | None) -> str:
    from selfheal.core.durations import format_duration

    return "-" if seconds is None else format_duration(seconds)


def rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


HEADERS = ["Rank", "Check", "Heals", "Recovered", "Rate", "Median TTR", "Worst TTR", "Gave up", "Busiest day"]


def cells(check: Mapping[str, Any]) -> list[str]:
    """One check's row, as the text and HTML tables show it."""
    busiest = check["busiest_day"]
    return [
        str(check["rank"]),
        check["name"],
        str(check["heals_started"]),
        str(check["heals_recovered"]),
        rate_text(check["success_rate"]),
        duration_text(check["time_to_recover"]["median"]),
        duration_text(check["time_to_recover"]["worst"]),
        str(check["gave_up"]),
        f"{busiest['date']} ({busiest['heals']})" if busiest else "-",
    ]


def render_text(data: dict[str, object], period: object) -> str:
    lines = [f"selfheal report: {period} up to {data['until']} (UTC), from {data['journal']}"]
    checks = data["checks"]
    assert isinstance(checks, list)  # figures.build made it
    if not checks:
        lines.append("no heals or other events in this period")
    else:
        rows = [[header.upper() for header in HEADERS]]
        rows += [cells(check) for check in checks]
        totals = data["totals"]
        assert isinstance(totals, dict)
        rows.append(
            [
                "",
                "total",
                str(totals["heals_started"]),
                str(totals["heals_recovered"]),
                rate_text(totals["success_rate"]),
                "",
                "",
                str(totals["gave_up"]),
                "",
            ]
        )
        lines.append(ops.table(rows).rstrip("\n"))
    if data["skipped"]:
        lines.append(f"({data['skipped']} corrupt journal lines skipped)")
    return "\n".join(lines) + "\n"

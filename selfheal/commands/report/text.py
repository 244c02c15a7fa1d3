"""The report as text: one row per check, ranked, the totals, the rate's basis, and one row per host."""

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


HEADERS = [
    "Rank", "Check", "Heals", "Episodes", "Recovered", "Rate", "Median TTR", "Worst TTR", "Gave up", "Busiest day",
]  # fmt: skip
HOST_HEADERS = [
    "Host",
    "Checks",
    "Heals",
    "Episodes",
    "Recovered",
    "Rate",
    "Median TTR",
    "Worst TTR",
    "Gave up",
]


def figures(row: Mapping[str, Any]) -> list[str]:
    """Heals to gave up: the cells a check's row and a host's row share."""
    return [
        str(row["heals_started"]),
        str(row["episodes"]["total"]),
        str(row["heals_recovered"]),
        rate_text(row["success_rate"]),
        duration_text(row["time_to_recover"]["median"]),
        duration_text(row["time_to_recover"]["worst"]),
        str(row["gave_up"]),
    ]


def cells(check: Mapping[str, Any]) -> list[str]:
    """One check's row, as the text and HTML tables show it."""
    busiest = check["busiest_day"]
    return [
        str(check["rank"]),
        check["name"],
        *figures(check),
        f"{busiest['date']} ({busiest['heals']})" if busiest else "-",
    ]


def host_cells(host: Mapping[str, Any]) -> list[str]:
    return [host["name"], str(host["checks"]), *figures(host)]


def rate_note(totals: Mapping[str, Any]) -> str:
    """What the rate counts, in words: the report says so wherever it shows one."""
    return (
        "Rate: episodes recovered by healing / episodes that ended (recovered or gave up). An episode runs "
        "from the first heal after healthy to recovered or gave up; "
        f"{totals['episodes']} in this period, {totals['episodes_open']} still open."
    )


def render_text(data: dict[str, Any], period: object) -> str:
    sources = ", ".join(data["journals"])
    lines = [f"selfheal report: {period} up to {data['until']} (UTC), from {sources}"]
    checks = data["checks"]
    if not checks:
        lines.append("no heals or other events in this period")
    else:
        totals = data["totals"]
        rows = [[header.upper() for header in HEADERS]]
        rows += [cells(check) for check in checks]
        rows.append(
            [
                "",
                "total",
                str(totals["heals_started"]),
                str(totals["episodes"]),
                str(totals["heals_recovered"]),
                rate_text(totals["success_rate"]),
                "",
                "",
                str(totals["gave_up"]),
                "",
            ]
        )
        lines.append(ops.table(rows).rstrip("\n"))
        lines.append(rate_note(totals))
        if len(data["hosts"]) > 1:
            rows = [[header.upper() for header in HOST_HEADERS]] + [host_cells(h) for h in data["hosts"]]
            lines.append("")
            lines.append(ops.table(rows).rstrip("\n"))
    if data["skipped"]:
        lines.append(f"({data['skipped']} corrupt journal lines skipped)")
    for problem in data["unreadable"]:
        lines.append(f"(skipped {problem})")
    return "\n".join(ops.printable(line) if "\n" not in line else line for line in lines) + "\n"

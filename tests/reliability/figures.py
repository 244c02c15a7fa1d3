"""Turn the reliability suite's figures into the table of docs/reliability.md.

Usage::

    SELFHEAL_FIGURES=figures.jsonl .venv/bin/python -m pytest tests/reliability
    python tests/reliability/figures.py figures.jsonl

Rows of the same kind are added up, in the order they were first seen.
"""

from __future__ import annotations

import json
import sys


def table(rows: list[dict[str, object]]) -> str:
    kinds: dict[str, dict[str, int]] = {}
    for row in rows:
        total = kinds.setdefault(str(row["kind"]), {"tried": 0, "lost": 0, "double": 0})
        for key in total:
            total[key] += int(row[key])  # type: ignore[call-overload]
    lines = [
        "| kind of case | cases tried | records lost | double heals |",
        "|---|---:|---:|---:|",
    ]
    for kind, total in kinds.items():
        lines.append(f"| {kind} | {total['tried']} | {total['lost']} | {total['double']} |")
    sums = {key: sum(total[key] for total in kinds.values()) for key in ("tried", "lost", "double")}
    lines.append(f"| **all** | **{sums['tried']}** | **{sums['lost']}** | **{sums['double']}** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as stream:
        rows = [json.loads(line) for line in stream if line.strip()]
    sys.stdout.write(table(rows))
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in ("kind", "tried", "lost", "double")}
        if extra:
            print(f"\n{row['kind']}: {json.dumps(extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

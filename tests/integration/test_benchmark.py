"""A smoke run of the benchmark suite: it runs and writes its report.

Never a timing assertion: the machine running the tests is shared and
noisy. What is checked is that every case ran and behaved (the suite
itself refuses a candidate whose exit code or output is wrong), that P5's
concurrent CRITICAL runs started exactly one heal, and that the report
has every table and no path of this machine in it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_the_report(tmp_path):
    report = tmp_path / "performance.md"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--no-chart",
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    for heading in ("## Targets", "## Results", "## Machine", "## How it is measured"):
        assert heading in text
    for row in (
        "`python -c pass`",
        "bare nagiosplugin check",
        "C `check_dummy 0 ok`",
        "P1 healthy wrap",
        "P2 healthy run",
        "P3 selfheal.Check",
        "P4 CRITICAL wrap returns",
        "P4 action starts after plugin start",
        "P5 10 at once: all returned",
        "P6 peak RSS, healthy wrap",
        "P6 peak RSS, selfheal.Check",
        "P7 run, 100 checks",
        "P7 run, 1000 checks",
    ):
        assert row in text, row
    # Exactly one heal for 10 simultaneous CRITICAL runs: a functional
    # property, checked here, not a time.
    assert "| P5 10 at once: heals | 1 | exactly 1 |" in text
    assert "P1 healthy `selfheal wrap`" in result.stdout  # the table is printed too
    for leak in ("selfheal-bench-", str(ROOT), str(tmp_path)):
        assert leak not in text, f"the report names a path of this machine: {leak}"

"""Draws docs/report.png: the HTML report of a month on a small fleet, as Chromium shows it.

Usage, from the repository root (Debian's ``chromium`` package)::

    python3 benchmarks/report_screenshot.py                 # writes docs/report.png
    python3 benchmarks/report_screenshot.py --html page.html --output shot.png

Three hosts' journals are written as ``rsync`` collects them, with the
events of ``report_stream.py`` (heals that work, that fail and retry, that
give up) over November 2026, seeded, so the page is the same on every run
but for the time it was made. Then ``selfheal report --since all --format
html --journal hosts`` renders it and headless Chromium takes the picture.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report_stream import HOSTS, incident

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOVEMBER = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def write_month(root: str, seed: int = 11) -> None:
    """About 40 incidents over three hosts in November; the hosts differ in how often they heal."""
    rng = random.Random(seed)
    rates = {"web1": 9, "web2": 6, "db1": 4}
    for host in HOSTS:
        directory = os.path.join(root, "hosts", host)
        os.makedirs(directory)
        lines = []
        for _ in range(rates[host]):
            when = NOVEMBER + rng.uniform(0, 29 * 86400)
            check = rng.choice(("nginx", "php-fpm", "haproxy") if host != "db1" else ("postgres", "disk-tmp"))
            events = incident(host, check, when, rng)
            # Recoveries take minutes to hours, as a real restart and its check interval do.
            for event in events:
                if event["event"] == "recovered":
                    event["time_to_recover"] = round(
                        rng.choice((45, 90, 150, 240, 420, 700, 1500, 2700)) * 1.0, 1
                    )
            lines += events
        import json

        lines.sort(key=lambda e: str(e["ts"]))
        with open(os.path.join(directory, "journal.jsonl"), "w") as journal:
            journal.writelines(json.dumps(event, separators=(",", ":")) + "\n" for event in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=os.path.join(ROOT, "docs", "report.png"))
    parser.add_argument("--html", help="also keep the page here")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1900)
    options = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("needs Debian's chromium package", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="selfheal-report-shot-")
    try:
        write_month(work)
        page = options.html or os.path.join(work, "report.html")
        env = {**os.environ, "SELFHEAL_CONFIG": os.path.join(work, "no-config.yaml"), "PYTHONPATH": ROOT}
        # Run in the temporary dir with a relative --journal: the picture names no path of this machine.
        subprocess.run(
            [sys.executable, "-m", "selfheal", "report", "--since", "all", "--format", "html",
             "-o", os.path.abspath(page), "--journal", "hosts"],
            check=True, env=env, cwd=work,
        )  # fmt: skip
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             f"--user-data-dir={os.path.join(work, 'profile')}", f"--window-size={options.width},{options.height}",
             f"--screenshot={os.path.abspath(options.output)}", "file://" + os.path.abspath(page)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        print(f"wrote {options.output}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

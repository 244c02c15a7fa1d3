"""``selfheal report`` and ``history`` over a fleet's journals: time and peak memory.

Usage, from the repository root::

    python3 benchmarks/report_stream.py                    # 1,000,000 events over 3 journals
    python3 benchmarks/report_stream.py --events 100000    # a smaller run
    python3 benchmarks/report_stream.py --python build/bench-venv/bin/python

It writes three hosts' journals as ``rsync`` would collect them
(``hosts/webN/journal.jsonl``, each with a rotated ``journal.jsonl.1`` and a
gzipped ``journal.jsonl.2.gz``), in a temporary directory, with the events a
real fleet journals: heals that work, heals that fail and retry, cooldowns,
gave up, the runner's ``action_end``. Then it runs each command as a child
process (``--rounds``, 3 by default; the median run is shown), its output to
/dev/null, and reads the child's wall time and CPU time (with its workers)
and the largest process's peak RSS from ``os.wait4``, and samples the memory
of the command and its workers together (the sum of their PSS) from
``/proc``: the figures are the whole command, start-up included, as a
person's shell would see it. The target (issue 15): 1,000,000 events in at
most 15 s and 60 MiB. Standard library only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time

HOSTS = ("web1", "web2", "db1")
CHECKS = ("nginx", "php-fpm", "postgres", "disk-tmp", "memcached", "haproxy")
START = 1_790_000_000.0  # a Tuesday in 2026; days advance from here
COMMANDS = {
    "report (text)": ["report", "--since", "all"],
    "report --format html": ["report", "--since", "all", "--format", "html"],
    "report --json": ["report", "--since", "all", "--json"],
    "history --json": ["history", "--json"],
    "history (text)": ["history"],
}


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"


def incident(host: str, check: str, when: float, rng: random.Random) -> list[dict[str, object]]:
    """The events of one incident: heals until it recovers or gives up."""
    argv = ["sudo", "-n", "--", "systemctl", "restart", check]
    events: list[dict[str, object]] = []
    first = when
    fails = rng.choice((0, 0, 0, 0, 1, 2, 3))
    for attempt in range(1, 4):
        pid = rng.randrange(1000, 4_000_000)
        events.append(
            {"ts": iso(when), "host": host, "event": "attempt", "check": check, "attempt": attempt,
             "argv": argv, "pid": pid, "runner": "systemd-run",
             "unit": f"selfheal-heal-{check}-{attempt}.service"}
        )  # fmt: skip
        ok = attempt > fails
        end = {"ts": iso(when + 2.5), "host": host, "event": "action_end", "check": check, "argv": argv,
               "pid": pid, "exit_code": 0 if ok else 1, "duration": 2.481, "timed_out": False,
               "attempt": attempt}  # fmt: skip
        if not ok:
            end["reason"] = (
                f"Job for {check}.service failed because the control process exited with error code."
            )
        events.append(end)
        if ok:
            events.append(
                {"ts": iso(when + 60), "host": host, "event": "recovered", "check": check, "attempt": attempt,
                 "argv": argv, "pid": pid, "exit_code": 0, "duration": 2.481, "timed_out": False,
                 "time_to_recover": round(when + 60 - first, 3)}
            )  # fmt: skip
            return events
        events.append(
            {"ts": iso(when + 90), "host": host, "event": "skipped_cooldown", "check": check,
             "attempt": attempt, "argv": argv, "pid": pid, "reason": "next attempt after 15m"}
        )  # fmt: skip
        when += 900 * attempt
    events.append(
        {"ts": iso(when), "host": host, "event": "gave_up", "check": check, "attempt": 3, "argv": argv,
         "reason": "3 attempts within 6h"}
    )  # fmt: skip
    return events


def write_journals(root: str, total: int, seed: int = 15) -> int:
    """Three hosts' journals (current, .1, .2.gz) with about ``total`` events; the exact count."""
    rng = random.Random(seed)
    written = 0
    per_host = total // len(HOSTS)
    for index, host in enumerate(HOSTS):
        directory = os.path.join(root, "hosts", host)
        os.makedirs(directory)
        lines: list[str] = []
        when = START
        target = per_host if index < len(HOSTS) - 1 else total - written
        while len(lines) < target:
            when += rng.uniform(30, 600)
            for event in incident(host, rng.choice(CHECKS), when, rng):
                lines.append(json.dumps(event, separators=(",", ":")))
        lines = lines[:target]
        third = len(lines) // 3
        with gzip.open(os.path.join(directory, "journal.jsonl.2.gz"), "wt", compresslevel=6) as packed:
            packed.write("\n".join(lines[:third]) + "\n")
        with open(os.path.join(directory, "journal.jsonl.1"), "w") as rotated:
            rotated.write("\n".join(lines[third : 2 * third]) + "\n")
        with open(os.path.join(directory, "journal.jsonl"), "w") as current:
            current.write("\n".join(lines[2 * third :]) + "\n")
        written += len(lines)
    return written


def measure(
    python: str, args: list[str], env: dict[str, str], flags: tuple[str, ...] = ()
) -> tuple[float, float, float, float, int]:
    """One child run: wall and CPU seconds, peak RSS and peak memory in MiB, and its exit code.

    CPU (user + system) counts the command and its workers (it reaps them).
    Peak RSS is the largest single process's (``os.wait4``). Peak memory is
    the most the command and its workers held together: the sum of their
    PSS (shared pages divided among the processes sharing them), sampled
    every 20 ms from ``/proc``.
    """
    with open(os.devnull, "wb") as devnull:
        started = time.perf_counter()
        # In a dir of its own: `-m` puts the working dir first on the path, and a checkout there
        # would be imported instead of the interpreter's selfheal.
        child = subprocess.Popen(
            [python, *flags, "-m", "selfheal", *args], stdout=devnull, env=env, cwd=tempfile.gettempdir()
        )
        together = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            together = max(together, sum(pss_kib(member) for member in tree(child.pid)))
            time.sleep(0.02)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, together / 1024, child.returncode


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants, as /proc lists them now."""
    found = [pid]
    for member in found:
        try:
            for task in os.listdir(f"/proc/{member}/task"):
                with open(f"/proc/{member}/task/{task}/children") as children:
                    found += [int(child) for child in children.read().split()]
        except OSError:
            continue  # gone meanwhile
    return found


def pss_kib(pid: int) -> int:
    """The process's proportional set size in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--python", default=sys.executable, help="the interpreter with selfheal installed")
    parser.add_argument("--keep", action="store_true", help="keep the journals (the path is printed)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per command; the median is shown")
    parser.add_argument(
        "--only", nargs="+", default=list(COMMANDS), choices=list(COMMANDS), metavar="COMMAND",
        help="measure only these (quoted labels, as in the table)",
    )  # fmt: skip
    parser.add_argument(
        "--before", metavar="CHECKOUT",
        help="also run `report` of an older checkout (PYTHONPATH) on the journals joined into one file, "
        "which is all it reads; it holds every event, so keep --events small",
    )  # fmt: skip
    parser.add_argument("--jobs", help="pass --jobs N to each command (default: the command decides)")
    parser.add_argument("--write", metavar="DIR", help=argparse.SUPPRESS)  # the child that writes them
    options = parser.parse_args()
    if options.write:
        print(write_journals(options.write, options.events))
        return 0
    root = tempfile.mkdtemp(prefix="selfheal-report-bench-")
    try:
        started = time.perf_counter()
        # Written by a child: a forked child's peak RSS starts at its parent's
        # size, so this process stays small for the measured children.
        written = subprocess.run(
            [sys.executable, __file__, "--write", root, "--events", str(options.events)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        count = int(written.stdout)
        size = sum(
            os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files
        )  # fmt: skip
        print(f"{count} events over {len(HOSTS)} journals ({size / 2**20:.0f} MiB on disk, the .2.gz "
              f"compressed), written in {time.perf_counter() - started:.1f}s", file=sys.stderr)  # fmt: skip
        env = {**os.environ, "SELFHEAL_CONFIG": os.path.join(root, "no-config.yaml")}
        journals = os.path.join(root, "hosts")
        rows = []
        load = os.getloadavg()[0]
        for label, args in COMMANDS.items():
            if label not in options.only:
                continue
            runs = []
            jobs = ["--jobs", options.jobs] if options.jobs else []
            for _ in range(options.rounds):
                wall, cpu, rss, together, code = measure(
                    options.python, [*args, "--journal", journals, *jobs], env
                )
                if code != 0:
                    print(f"{label}: exit {code}", file=sys.stderr)
                    return 1
                runs.append((wall, cpu, rss, together))
            # The median run by wall time: a shared machine's noise falls on single runs.
            wall, cpu, _, _ = sorted(runs)[len(runs) // 2]
            rss = max(run[2] for run in runs)
            together = max(run[3] for run in runs)
            rows.append(
                (label + (f" --jobs {options.jobs}" if options.jobs else ""), wall, cpu, rss, together)
            )
            print(
                f"{label}: {wall:.2f} s, {cpu:.2f} s CPU, {rss:.1f} MiB, {together:.1f} MiB", file=sys.stderr
            )
        if options.before:
            joined = os.path.join(root, "joined.jsonl")
            with open(joined, "wb") as out:
                for host in HOSTS:
                    place = os.path.join(journals, host)
                    with gzip.open(os.path.join(place, "journal.jsonl.2.gz")) as packed:
                        shutil.copyfileobj(packed, out)
                    for name in ("journal.jsonl.1", "journal.jsonl"):
                        with open(os.path.join(place, name), "rb") as plain:
                            shutil.copyfileobj(plain, out)
            # -S: no site, so no editable install's finder can put today's code first; the
            # environment's site-packages (for the dependencies) after the checkout.
            purelib = subprocess.run(
                [options.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True, capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
            before_env = {k: v for k, v in env.items() if k != "SELFHEAL_CONFIG"}
            before_env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(options.before), purelib])
            wall, cpu, rss, together, code = measure(
                options.python, ["report", "--since", "all", "--journal", joined], before_env, ("-S",)
            )
            rows.append(("report (text), the code before, one joined journal", wall, cpu, rss, together))
            print(f"before: {wall:.2f} s, {cpu:.2f} s CPU, {rss:.1f} MiB (exit {code})", file=sys.stderr)
        print(f"\n{count:,} events over {len(HOSTS)} journals (`--journal hosts`), "
              f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
              f"load average {load:.1f} before and {os.getloadavg()[0]:.1f} after:\n")  # fmt: skip
        print(f"Median of {options.rounds} runs each (the largest peaks of them). CPU counts the workers;")
        print("peak RSS is the largest process's; all processes is the sum of their PSS, sampled:\n")
        print("| command | wall | CPU (user + system) | peak RSS, one process | peak memory, all processes |")
        print("|---|---|---|---|---|")
        for label, wall, cpu, rss, together in rows:
            print(f"| `selfheal {label}` | {wall:.2f} s | {cpu:.2f} s | {rss:.1f} MiB | {together:.1f} MiB |")
        return 0
    finally:
        if options.keep:
            print(f"journals kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

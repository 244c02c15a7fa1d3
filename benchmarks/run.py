"""selfheal's cost on a Nagios server, as ratios against baselines.

Usage, from the repository root::

    python3 benchmarks/run.py            # the full run: rewrites docs/performance.md (+ .png)
    python3 benchmarks/run.py --quick --output /some/tmp/perf.md   # a smoke run

The full run installs selfheal as the README does (``pip install .``, not
editable) into ``build/bench-venv``, so it measures the real ``selfheal``
command and a site-packages import. ``--python PATH`` measures an existing
environment instead; ``--quick`` uses the interpreter running this script.

Every figure is a whole process timed from outside (wall, CPU, peak RSS
from ``os.wait4``), started by a small launcher (see ``launcher.py`` for
why). The candidates and the baselines (``python -c pass``, a bare
nagiosplugin check, the C ``check_dummy``) alternate within every round,
each round in a rotated order, after warm-up rounds; the tables show
medians. Machine drift and the noise of other work on the machine then
hit candidates and baselines alike, and only the ratios are compared with
the targets. Standard library only; the chart needs matplotlib (the
``bench`` extra) and is skipped without it.

The cases (issue 7):

- P1 a healthy ``selfheal wrap -- check_dummy 0 ok``;
- P2 a healthy ``selfheal run NAME`` from a YAML config;
- P3 a healthy ``selfheal.Check`` against the same check on bare nagiosplugin;
- P4 a CRITICAL wrap that starts a heal: return time, and the delay from
  the plugin's start to the action's start (the action writes the time);
- P5 100 simultaneous CRITICAL invocations of one check: time until all
  returned, and the number of heals (must be exactly one);
- P6 peak RSS of P1 and P3;
- P7 ``selfheal run`` with 1, 100 and 1000 configured checks and records.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
DEFAULT_VENV = os.path.join(ROOT, "build", "bench-venv")
DEFAULT_OUTPUT = os.path.join(ROOT, "docs", "performance.md")
CHECK_DUMMY = "/usr/lib/nagios/plugins/check_dummy"
#: How long P4 and P5 wait for a heal's runner to record its end.
RUNNER_WAIT = 30.0


class BenchmarkError(Exception):
    """A candidate did not do what it should: the figures would be meaningless."""


# -- the environment under test -------------------------------------------


class Environment:
    """The interpreter and ``selfheal`` command being measured."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.bin = os.path.dirname(python)
        self.selfheal = os.path.join(self.bin, "selfheal")
        if not os.access(self.selfheal, os.X_OK):
            raise BenchmarkError(f"no selfheal command beside {python}; install selfheal there first")
        probe = (
            "import json, sys, selfheal\n"
            "from importlib import metadata\n"
            "versions = {}\n"
            "for name in ('nagiosplugin', 'PyYAML', 'psutil', 'filelock', 'matplotlib'):\n"
            "    try:\n"
            "        versions[name] = metadata.version(name)\n"
            "    except metadata.PackageNotFoundError:\n"
            "        pass\n"
            "print(json.dumps({'python': sys.version.split()[0], 'selfheal': selfheal.__version__,\n"
            "    'file': selfheal.__file__, 'versions': versions}))\n"
        )
        # -I: not this checkout from the current directory, the installed one.
        found = subprocess.run([python, "-I", "-c", probe], capture_output=True, check=True, text=True)
        info = json.loads(found.stdout)
        self.python_version = info["python"]
        self.selfheal_version = info["selfheal"]
        self.versions = info["versions"]
        # Imported from this checkout, not from site-packages: an editable
        # (or source-tree) install, whose import hooks slow every start-up.
        self.editable = os.path.dirname(os.path.abspath(info["file"])) == os.path.join(ROOT, "selfheal")
        self.has_matplotlib = "matplotlib" in self.versions


def prepare_venv(path: str) -> str:
    """Install this checkout as the README does, into a venv of its own."""
    python = os.path.join(path, "bin", "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not os.path.exists(python):
        print(f"creating {os.path.relpath(path, ROOT)} (pip install '.[bench]') ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        if subprocess.run([*pip, ".[bench]"], cwd=ROOT, check=False).returncode != 0:
            print("the bench extra (matplotlib) did not install; no chart", flush=True)
            subprocess.run([*pip, "."], cwd=ROOT, check=True)
    else:
        print(f"reinstalling this checkout into {os.path.relpath(path, ROOT)} ...", flush=True)
        subprocess.run([*pip, "--no-deps", "--force-reinstall", "."], cwd=ROOT, check=True)
    return python


class Launcher:
    """The small process that starts each measured command (launcher.py)."""

    def __init__(self, cwd: str) -> None:
        # -I -S: no site-packages and no user paths, so it stays small.
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.join(BENCH_DIR, "launcher.py")],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(self, argv: list[str], env: dict[str, str]) -> Sample:
        request = marshal.dumps((argv, env))
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(len(request).to_bytes(4, "big") + request)
        self.process.stdin.flush()
        size = int.from_bytes(self.process.stdout.read(4), "big")
        started, wall, cpu, rss, code, output = marshal.loads(self.process.stdout.read(size))
        return Sample(started, wall, cpu, rss, code, output.decode("utf-8", "replace"))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


class Sample:
    __slots__ = ("code", "cpu", "extra", "output", "rss", "started", "wall")

    def __init__(self, started: float, wall: float, cpu: float, rss: int, code: int, output: str) -> None:
        self.started = started
        self.wall = wall
        self.cpu = cpu
        self.rss = rss
        self.code = code
        self.output = output
        self.extra: float | None = None


# -- the cases ------------------------------------------------------------


class Case:
    """One command measured in every round.

    ``argv`` may depend on the round (P4 needs a fresh check each time);
    ``expect`` is the exit code and the start of the output; ``after`` runs
    once the command returned, outside the timing (P4 waits for its heal).
    """

    def __init__(self, key, label, argv, env, expect, after=None, baseline=False):
        self.key = key
        self.label = label
        self.argv = argv
        self.env = env
        self.expect = expect
        self.after = after
        self.baseline = baseline

    def run(self, launcher: Launcher, round_no: int) -> Sample:
        argv = self.argv(round_no) if callable(self.argv) else self.argv
        sample = launcher.run(argv, self.env)
        code, prefix = self.expect
        if sample.code != code or not sample.output.startswith(prefix):
            raise BenchmarkError(
                f"{self.key}: expected exit {code} and output starting {prefix!r}, "
                f"got exit {sample.code}: {sample.output.strip()[:300]!r}"
            )
        if self.after is not None:
            sample.extra = self.after(round_no, sample)
        return sample


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SELFHEAL_", "PYTHON"))}
    env.update(extra)
    return env


def stamp_heal(stamp: str) -> str:
    """A heal that writes the time it started (P1 and P4 share it)."""
    return f"sh -c {shlex.quote('date +%s.%N > ' + shlex.quote(stamp))}"


def wait_for(predicate, limit: float, what: str):
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise BenchmarkError(f"gave up waiting {limit:g}s for {what}")
        time.sleep(0.005)


def read_record(state_dir: str, name: str) -> dict | None:
    try:
        with open(os.path.join(state_dir, f"{name}.json"), encoding="utf-8") as stream:
            return json.load(stream)
    except (FileNotFoundError, ValueError):
        return None


def runner_done(state_dir: str, name: str):
    """Non-None once the last attempt's runner recorded its end."""

    def check():
        record = read_record(state_dir, name)
        if record and record["attempts"] and record["attempts"][-1]["ended"] is not None:
            return record
        return None

    return check


def healed_record(env: Environment, work: str, name: str) -> dict:
    """A realistic record: one heal that ran and the check recovered since.

    Every check that ever healed keeps such a record, and a healthy run
    reads it, so the healthy cases are measured with one present.
    """
    state = os.path.join(work, "template-state")
    heal = ["--heal", "true", "--state-dir", state, "--name", name]
    subprocess.run([env.selfheal, "wrap", *heal, "--", CHECK_DUMMY, "2", "down"], capture_output=True)
    wait_for(runner_done(state, name), RUNNER_WAIT, "the template heal")
    done = subprocess.run(
        [env.selfheal, "wrap", *heal, "--grace", "0", "--", CHECK_DUMMY, "0", "ok"], capture_output=True
    )
    if done.returncode != 0:
        raise BenchmarkError(f"template check did not recover: {done.stdout!r}")
    record = read_record(state, name)
    assert record is not None
    return record


def write_records(state_dir: str, template: dict, names: list[str]) -> None:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    for name in names:
        with open(os.path.join(state_dir, f"{name}.json"), "w", encoding="utf-8") as stream:
            json.dump({**template, "check": name}, stream)


def write_config(path: str, state_dir: str, names: list[str]) -> None:
    lines = [f"state_dir: {state_dir}", "defaults:", "  cooldown: 15m", "  max_attempts: 3", "checks:"]
    for name in names:
        lines += [
            f"  {name}:",
            f"    plugin: {CHECK_DUMMY} 0 ok",
            f"    heal: {{systemd: {name}}}",
        ]
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")


def build_cases(env: Environment, work: str, sizes: tuple[int, ...], tmpfs: str | None) -> list[Case]:
    template = healed_record(env, work, "template")
    plain = base_env()
    cases = [
        Case("floor", "`/bin/true` (launcher floor)", ["/bin/true"], plain, (0, ""), baseline=True),
        Case("python", "`python -c pass`", [env.python, "-c", "pass"], plain, (0, ""), baseline=True),
        Case(
            "nagiosplugin",
            "bare nagiosplugin check",
            [env.python, os.path.join(BENCH_DIR, "check_bare.py")],
            plain,
            (0, "P3 OK"),
            baseline=True,
        ),
        Case(
            "check_dummy",
            "C `check_dummy 0 ok`",
            [CHECK_DUMMY, "0", "ok"],
            plain,
            (0, "OK: ok"),
            baseline=True,
        ),
    ]

    # P1 and P4: the same wrap, healthy and CRITICAL.
    wrap_state = os.path.join(work, "wrap-state")
    write_records(wrap_state, template, ["p1"])
    stamps = os.path.join(work, "stamps")
    os.makedirs(stamps)

    def wrap(name: str, code: str) -> list[str]:
        heal = stamp_heal(os.path.join(stamps, name))
        return [env.selfheal, "wrap", "--name", name, "--heal", heal, "--", CHECK_DUMMY, code, "ok"]

    cases.append(
        Case(
            "P1",
            "P1 healthy `selfheal wrap`",
            wrap("p1", "0"),
            base_env(SELFHEAL_STATE_DIR=wrap_state),
            (0, "P1 OK"),
        )
    )

    # P2 is P7 with one check: a healthy `selfheal run` from a config.
    for size in sizes:
        names = [f"c{index:04d}" for index in range(size)]
        where = os.path.join(work, f"run-{size}")
        os.makedirs(where)
        write_records(os.path.join(where, "state"), template, names)
        config = os.path.join(where, "selfheal.yaml")
        write_config(config, os.path.join(where, "state"), names)
        key = "P2" if size == 1 else f"P7-{size}"
        label = (
            f"P2 healthy `selfheal run` ({size} check)" if size == 1 else f"P7 `selfheal run`, {size} checks"
        )
        last = names[-1]
        cases.append(
            Case(key, label, [env.selfheal, "run", last, "-c", config], plain, (0, f"{last.upper()} OK"))
        )

    api_state = os.path.join(work, "api-state")
    write_records(api_state, template, ["p3"])
    cases.append(
        Case(
            "P3",
            "P3 healthy `selfheal.Check`",
            [env.python, os.path.join(BENCH_DIR, "check_api.py")],
            base_env(SELFHEAL_STATE_DIR=api_state),
            (0, "P3 OK"),
        )
    )

    def heal_case(key: str, label: str, state_dir: str) -> Case:
        def heal_started(round_no: int, sample: Sample) -> float:
            name = f"{key.lower()}-{round_no}"
            path = os.path.join(stamps, name)

            def stamp():
                try:
                    with open(path, encoding="ascii") as stream:
                        text = stream.read().strip()
                except FileNotFoundError:
                    return None
                return float(text) if text else None

            started = wait_for(stamp, RUNNER_WAIT, f"the heal of {name} to start")
            # Let the runner finish before the next measurement, so its work
            # does not land on another case's clock.
            wait_for(runner_done(state_dir, name), RUNNER_WAIT, f"the heal of {name} to end")
            return started - sample.started

        return Case(
            key,
            label,
            lambda round_no: wrap(f"{key.lower()}-{round_no}", "2"),
            base_env(SELFHEAL_STATE_DIR=state_dir),
            (1, f"{key}-"),
            after=heal_started,
        )

    cases.append(
        heal_case("P4", "P4 CRITICAL `selfheal wrap`, heal started", os.path.join(work, "heal-state"))
    )
    if tmpfs is not None:
        label = "P4 the same, state dir on tmpfs"
        cases.append(heal_case("P4T", label, os.path.join(tmpfs, "heal-state")))
    return cases


def tmpfs_dir() -> str | None:
    """A scratch dir on tmpfs, to show P4 without the disk's fsync cost."""
    try:
        with open("/proc/mounts", encoding="utf-8") as stream:
            mounts = {fields[1]: fields[2] for fields in (line.split() for line in stream) if len(fields) > 2}
    except OSError:
        return None
    for candidate in ("/dev/shm", "/run/shm"):
        if mounts.get(candidate) == "tmpfs" and os.access(candidate, os.W_OK):
            return tempfile.mkdtemp(prefix="selfheal-bench-", dir=candidate)
    return None


def measure(launcher: Launcher, cases: list[Case], runs: int, warmups: int) -> dict[str, list[Sample]]:
    """Every case once per round, the order rotated each round."""
    samples: dict[str, list[Sample]] = {case.key: [] for case in cases}
    for round_no in range(warmups + runs):
        shift = round_no % len(cases)
        for case in cases[shift:] + cases[:shift]:
            sample = case.run(launcher, round_no)
            if round_no >= warmups:
                samples[case.key].append(sample)
        print(f"\rround {round_no + 1}/{warmups + runs}", end="", flush=True)
    print(flush=True)
    return samples


def p5(env: Environment, work: str, count: int, rounds: int) -> list[dict]:
    """``count`` CRITICAL invocations of one check, all started at once."""
    results = []
    for round_no in range(rounds):
        where = os.path.join(work, f"p5-{round_no}")
        os.makedirs(where)
        state, heals = os.path.join(where, "state"), os.path.join(where, "heals")
        heal = f"sh -c {shlex.quote('echo heal >> ' + shlex.quote(heals))}"
        argv = [env.selfheal, "wrap", "--name", "p5", "--heal", heal, "--state-dir", state]
        argv += ["--", CHECK_DUMMY, "2", "down"]
        environ = base_env()
        pids = []
        start = time.perf_counter()
        for index in range(count):
            out = os.path.join(where, f"out-{index}")
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT, 0o600),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ]
            pids.append(os.posix_spawn(argv[0], argv, environ, file_actions=actions))
        codes: dict[int, int] = {}
        cpu = 0.0
        for pid in pids:
            _, status, usage = os.wait4(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            codes[code] = codes.get(code, 0) + 1
            cpu += usage.ru_utime + usage.ru_stime
        wall = time.perf_counter() - start
        wait_for(runner_done(state, "p5"), RUNNER_WAIT, "the P5 heal to end")
        with open(heals, encoding="utf-8") as stream:
            heal_runs = len(stream.read().splitlines())
        with open(os.path.join(state, "journal.jsonl"), encoding="utf-8") as stream:
            attempts = sum(json.loads(line)["event"] == "attempt" for line in stream)
        results.append({"wall": wall, "cpu": cpu, "codes": codes, "heals": heal_runs, "attempts": attempts})
        print(f"P5 round {round_no + 1}: {wall:.2f}s (CPU {cpu:.2f}s), exit codes {codes}, heals {heal_runs}")
    return results


# -- figures --------------------------------------------------------------


def summarise(samples: dict[str, list[Sample]]) -> dict[str, dict[str, float]]:
    summary = {}
    for key, runs in samples.items():
        summary[key] = {
            "wall_ms": statistics.median(s.wall for s in runs) * 1000,
            "cpu_ms": statistics.median(s.cpu for s in runs) * 1000,
            "rss_mib": statistics.median(s.rss for s in runs) / 1024,
            "runs": len(runs),
        }
        extras = [s.extra for s in runs if s.extra is not None]
        if extras:
            summary[key]["latency_ms"] = statistics.median(extras) * 1000
            summary[key]["latency_max_ms"] = max(extras) * 1000
    return summary


class Target:
    """One target of the issue, as measured in this run."""

    def __init__(
        self, key: str, name: str, measured: str, limit: str, against: str, met: bool, cpu: str = ""
    ):
        self.key = key
        self.name = name
        self.measured = measured
        self.limit = limit
        self.against = against
        self.met = met
        self.cpu = cpu


def targets(summary: dict, p5_results: list[dict], sizes: tuple[int, ...]) -> list[Target]:
    """Every target of the issue; time ratios are of wall time (CPU shown beside)."""
    wall = {key: row["wall_ms"] for key, row in summary.items()}
    cpu = {key: row["cpu_ms"] for key, row in summary.items()}
    rss = {key: row["rss_mib"] for key, row in summary.items()}
    rows = []

    def ratio(key: str, name: str, case: str, base: str, limit: float, against: str) -> None:
        value = wall[case] / wall[base]
        cpu_ratio = f"{cpu[case] / cpu[base]:.2f}x"
        rows.append(Target(key, name, f"{value:.2f}x", f"<= {limit:g}x", against, value <= limit, cpu_ratio))

    ratio("P1", "P1 healthy wrap", "P1", "python", 2.0, "`python -c pass`")
    ratio("P2", "P2 healthy run", "P2", "python", 2.5, "`python -c pass`")
    ratio("P3", "P3 selfheal.Check", "P3", "nagiosplugin", 1.15, "the bare nagiosplugin check")
    ratio("P4", "P4 CRITICAL wrap returns", "P4", "P1", 1.5, "the healthy wrap (P1)")
    if "P4T" in summary:
        ratio("P4T", "P4 the same, state dir on tmpfs", "P4T", "P1", 1.5, "the healthy wrap (P1)")
    latency, latency_max = summary["P4"]["latency_ms"], summary["P4"]["latency_max_ms"]
    rows.append(
        Target(
            "P4L",
            "P4 action starts after plugin start",
            f"{latency:.0f} ms (max {latency_max:.0f} ms)",
            "<= 150 ms",
            "median of the runs",
            latency <= 150,
        )
    )
    count = p5_results[0]["count"]
    slowest = max(r["wall"] for r in p5_results)
    rows.append(
        Target(
            "P5",
            f"P5 {count} at once: all returned",
            f"{slowest:.2f} s",
            "<= 3 s",
            "slowest round",
            slowest <= 3,
        )
    )
    heals = sorted({r["heals"] for r in p5_results} | {r["attempts"] for r in p5_results})
    rows.append(
        Target(
            "P5H",
            f"P5 {count} at once: heals",
            ", ".join(str(h) for h in heals),
            "exactly 1",
            "heal runs and journaled attempts, every round",
            heals == [1],
        )
    )
    for key, case in (("P6", "P1"), ("P6A", "P3")):
        value = rss[case] / rss["nagiosplugin"]
        name = "P6 peak RSS, healthy wrap" if case == "P1" else "P6 peak RSS, selfheal.Check"
        rows.append(Target(key, name, f"{value:.2f}x", "<= 1x", "the bare nagiosplugin check", value <= 1.0))
    for size in sizes[1:]:
        ratio("P7", f"P7 run, {size} checks", f"P7-{size}", "P2", 1.2, "`selfheal run` with 1 check")
    return rows


# -- the report -----------------------------------------------------------


def machine(env: Environment, work: str) -> list[tuple[str, str]]:
    def first(path: str, prefix: str) -> str:
        try:
            with open(path, encoding="utf-8") as stream:
                for line in stream:
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    memory = first("/proc/meminfo", "MemTotal")
    if memory.endswith("kB"):
        memory = f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB"
    fstype = "unknown"
    best = ""
    try:
        with open("/proc/mounts", encoding="utf-8") as stream:
            for line in stream:
                fields = line.split()
                if work.startswith(fields[1].rstrip("/") + "/") and len(fields[1]) > len(best):
                    best, fstype = fields[1], fields[2]
    except OSError:
        pass
    install = (
        "editable (figures inflated by its import hook)" if env.editable else "regular (`pip install .`)"
    )
    packages = ", ".join(f"{name} {version}" for name, version in sorted(env.versions.items()))
    return [
        ("CPU", f"{first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} logical CPUs"),
        ("memory", memory),
        ("system", f"{first('/etc/os-release', 'PRETTY_NAME').strip(chr(34))}, Linux {platform.release()}"),
        ("Python", f"{env.python_version}, selfheal {env.selfheal_version}, install {install}"),
        ("packages", packages),
        ("state dirs on", fstype),
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def results_table(cases: list[Case], summary: dict) -> str:
    base = {key: summary[key]["wall_ms"] for key in ("python", "nagiosplugin", "check_dummy")}
    rows = []
    for case in cases:
        row = summary[case.key]
        rows.append(
            [
                case.label,
                f"{row['wall_ms']:.1f}",
                f"{row['cpu_ms']:.1f}",
                f"{row['rss_mib']:.1f}",
                f"{row['wall_ms'] / base['python']:.2f}x",
                f"{row['wall_ms'] / base['nagiosplugin']:.2f}x",
                f"{row['wall_ms'] / base['check_dummy']:.1f}x",
            ]
        )
    header = ["case", "wall ms", "CPU ms", "peak RSS MiB", "x python", "x nagiosplugin", "x check_dummy"]
    return markdown_table(header, rows)


def targets_table(rows: list[Target]) -> str:
    return markdown_table(
        ["target", "measured", "limit", "against", "met", "CPU ratio"],
        [[t.name, t.measured, t.limit, t.against, "yes" if t.met else "**no**", t.cpu] for t in rows],
    )


def write_report(
    path, command, env, work, cases, summary, target_rows, p5_results, load, chart, runs, warmups
):
    missed = [t for t in target_rows if not t.met]
    verdict = (
        "Every target is met in this run."
        if not missed
        else "Missed in this run: " + "; ".join(t.name for t in missed) + ". See *Where a target is missed*."
    )
    p5_line = "; ".join(
        f"{r['wall']:.2f} s (CPU of all of them {r['cpu']:.2f} s), "
        f"exit codes {dict(sorted(r['codes'].items()))}, {r['heals']} heal"
        for r in p5_results
    )
    parts = [
        "# Performance",
        "",
        "<!-- Written by benchmarks/run.py; edit the text there, not here. -->",
        "",
        "A Nagios server runs a plugin thousands of times a minute, so a healthy",
        "selfheal check must cost little more than starting Python. These figures",
        "come from one run of the benchmark suite; every case alternates with the",
        "baselines inside every round, so the ratios hold on a busy machine",
        "where the absolute times do not.",
        "",
        f"Reproduce with `{command}` (a minute or two; see the docstring of",
        "`benchmarks/run.py`). It installs this checkout as the README does into",
        "`build/bench-venv` (with the `bench` extra, matplotlib, for the chart)",
        "and rewrites this page and its chart.",
        "",
        "## Targets",
        "",
        verdict,
        "",
        targets_table(target_rows),
        "",
        "Time targets are judged on wall time, as the issue states them. The",
        "CPU ratio (user plus system time, same cases) is shown beside: on a",
        "machine shared with other work it is the steadier of the two.",
        "",
        "## Results",
        "",
        f"Medians of {runs} rounds after {warmups} warm-up rounds. CPU is user plus",
        "system time of the process and its children (the wrapped plugin).",
        "Ratios are of wall time, against the baselines of the same rounds.",
        "",
        results_table(cases, summary),
        "",
        f"P4, plugin start to action start: median {summary['P4']['latency_ms']:.0f} ms,",
        f"max {summary['P4']['latency_max_ms']:.0f} ms. P5 rounds: {p5_line}.",
        "",
    ]
    if chart:
        parts += [f"![wall time per case and P7 growth]({os.path.basename(chart)})", ""]
    else:
        parts += ["(No chart: matplotlib is not installed; `pip install '.[bench]'` adds it.)", ""]
    parts += [
        "## Machine",
        "",
        markdown_table(["", ""], [[k, v] for k, v in machine(env, work)])
        + f"\n| load average | {load[0]:.2f} at the start, {load[1]:.2f} at the end |",
        "",
    ]
    if missed:
        parts += ["## Where a target is missed", ""]
        for key in dict.fromkeys(t.key for t in missed):
            parts += [MISSED.get(key, MISSED["noise"]).strip(), ""]
    parts += [NOTES.strip(), ""]
    parts += kept_sections(path)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("\n".join(parts))


#: Sections after this line come from other benchmarks and tests (the fleet
#: budget's, the systemd runner's): this run keeps them as they are.
KEEP_MARKER = "<!-- Measured elsewhere (see each section): benchmarks/run.py keeps what follows. -->"


def kept_sections(path):
    """The page's text from KEEP_MARKER on, as it is; nothing when there is none."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError:
        return []
    at = text.find(KEEP_MARKER)
    return [] if at < 0 else [text[at:].rstrip("\n"), ""]


#: Why a target can be missed, shown for the targets this run missed.
MISSED = {
    "P4": """
**P4, the CRITICAL run's return time.** Before it starts a heal, selfheal
writes the attempt to the state record: a temp file, `fsync`, rename and
an `fsync` of the directory (DESIGN.md section 4: never heal without first
recording the attempt, and records are fsynced). After the spawn it writes
the runner's pid and start time, fsyncing the file but not the directory:
a crash that loses that rename kills the runner too. On a disk-backed
file system those fsyncs are journal commits while Nagios waits, a cost of
the disk, not of Python; the CPU ratio beside it is the work selfheal does
itself. The tmpfs row, when present, is the same run without the disk's
cost. The safety rule is kept as it is: a faster heal is not worth an
attempt that a crash could erase.
""",
    "P4T": """
**P4 on tmpfs.** Without the disk's fsync cost, what remains is the work
of a heal: locking, reading and twice writing the record, starting the
runner (a `posix_spawn`), journaling. If this misses too, compare the CPU
ratio, which does not depend on other work running on the machine.
""",
    "P4L": """
**P4, the action's start.** The delay is the plugin's own start-up, the
decision, and then a second Python start-up: the detached runner
(`python -m selfheal.runner`), which starts the action. A loaded machine
delays both start-ups.
""",
    "P5": """
**P5, 100 at once.** One invocation starts the heal; the other 99 answer
"in progress" (row 5) from the record and write nothing: they take the
lock only in 50 ms turns and read the record between them, so none of
them queues behind the others once the heal is recorded. What remains is
CPU: the *Results* line gives the CPU time of all 100 processes (about
18 ms each, Python's start-up included); on two cores with nothing else
running that is about one second. A miss here means the cores were busy
with other work (see the load average).
""",
    "P6A": """
**P6, peak RSS of `selfheal.Check`.** A `selfheal.Check` is the bare
nagiosplugin check plus selfheal's decision engine, state and record code,
so it cannot use less memory than the bare check: the difference is the
size of that code once loaded (a few hundred KiB), a few per cent. The
wrap path, which does not load nagiosplugin, stays well under it.
""",
    "noise": """
**A ratio just over its limit** on a shared machine is usually noise: see
the load average in *Machine*, the CPU ratio beside the wall ratio, and
rerun on a quiet machine (the ratios are medians of interleaved runs, the
absolute times are not comparable between runs).
""",
}


NOTES = """
## How it is measured

- Each case is a whole process, started by `benchmarks/launcher.py` with
  `fork` and `execve`, waited for with `os.wait4`: wall time from fork to
  reap, CPU time and peak RSS from the child's resource usage. The launcher
  is a small separate process because Linux folds the parent's memory
  high-water mark into a child's `ru_maxrss` at `execve`: spawned from the
  benchmark itself, every child would look as big as the benchmark. The
  `/bin/true` row is the floor this method leaves (the launcher's own
  pages); it is far below every Python process.
- Baselines: `python -c pass` with the same interpreter (and venv) as the
  candidates; `benchmarks/check_bare.py`, a minimal check on bare
  nagiosplugin; the C `check_dummy` from monitoring-plugins-basic.
- The healthy cases run with a state record present (one earlier heal, then
  a recovery), as every check that ever healed has one: a healthy run reads it.
- P1 and P4 are the same `selfheal wrap` command, around `check_dummy 0`
  and `check_dummy 2`; each P4 run uses a new check name, so each starts a
  heal. The heal is `sh -c 'date +%s.%N > FILE'`: the latency is that
  time minus the launcher's clock just before it forked selfheal, so it
  includes `sh` and `date` starting (about 2 ms). The benchmark waits for
  the heal's runner to finish before the next measurement.
- P5 starts all invocations at once from the benchmark process and times
  until the last one is reaped; the heal appends a line to a file, and both
  those lines and the journal's `attempt` events are counted.
- P2 is P7 with one check. Configs name the plugin by full path; each check
  has its state record; the check run is the last one in the file.
- Everything runs in a temporary directory on the file system named above,
  so the `fsync` of state writes (P4, P5) costs what that disk costs. A
  heal writes its record twice (before it starts the runner, then with
  the runner's pid), each time with an `fsync` of the file and of the
  directory, while Nagios waits: on a disk with slow commits that alone
  can take P4 past 1.5x, which is why P4 is also measured with the state
  dir on tmpfs. The record writes stay fsynced: a heal is never started
  without its attempt on disk first.

## What makes selfheal fast

- **No heavy imports, healthy or healing.** `selfheal wrap`, `selfheal
  run` and a heal import none of nagiosplugin, PyYAML, psutil, filelock,
  argparse, subprocess, json, re, shlex, enum, socket, typing or logging,
  and `selfheal.Check` adds none of them to what nagiosplugin imports
  (`tests/integration/test_imports.py`, with a state record present). The option
  parser is hand-written; plugins are started with `os.posix_spawn`;
  states are plain ints, not an `enum`.
- **The `selfheal` command is a plain script** (`scripts/selfheal`), not
  pip's generated console-script wrapper, which imports `re` to tidy
  `sys.argv[0]`: with `enum` and `functools` that is about 5 ms, as much
  as all of selfheal's own modules on a healthy run.
- **State records and the journal use the C JSON accelerator** (`_json`,
  `selfheal/core/jsonio.py`), not the `json` package, whose decoder and encoder
  import `re`; heal commands are split and quoted by
  `selfheal/core/shellwords.py`, which matches `shlex` (tested against it) but
  does not import `re`.
- **A compiled config cache** (`selfheal/config/cache.py`) in the state
  dir: `selfheal run` reads the parsed config from a `marshal` file
  instead of loading PyYAML (about 16 ms to import) and parsing the YAML.
  It is used only when the config's path, size, mtimes and inode match,
  its bytes are identical to the ones it was compiled from, and selfheal's
  code is unchanged, so it never serves a stale config; it is
  written and read with the state dir's rules (no symlinks, atomic writes,
  a corrupt cache moved aside). Only the check being run is decoded, which
  keeps P7 flat.
- **The heal path** (P4, P5) locks the record with `fcntl.flock` directly,
  reads the runner's start time from `/proc`, and names the host with
  `os.uname()`. Measured with `python -X importtime` here: `filelock`
  takes 30 to 45 ms (its package imports typing, logging, inspect,
  dataclasses, pathlib, secrets and re), psutil about 20 ms, socket about
  6 ms; any one of them would cost a CRITICAL run more than selfheal's
  own work. The lock is the same `flock` lock on the same
  `NAME.lock` file that `filelock.FileLock` takes on Linux, so the two
  exclude each other (`tests/integration/test_lock.py` proves it both ways).
"""


def draw_chart(env: Environment, data_path: str, chart_path: str) -> bool:
    candidates = [env.python] if env.has_matplotlib else []
    candidates.append(sys.executable)
    for python in candidates:
        done = subprocess.run(
            [python, os.path.join(BENCH_DIR, "chart.py"), data_path, chart_path], check=False
        )
        if done.returncode == 0:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31, help="measured rounds (default 31)")
    parser.add_argument("--warmups", type=int, default=3, help="warm-up rounds (default 3)")
    parser.add_argument("--python", help="measure the selfheal installed beside this interpreter")
    parser.add_argument("--venv", default=DEFAULT_VENV, help="where the full run installs selfheal")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="the Markdown report to write")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, this interpreter")
    parser.add_argument("--p5", type=int, default=100, help="simultaneous invocations in P5 (default 100)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmups, args.p5 = min(args.runs, 2), min(args.warmups, 1), min(args.p5, 10)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not os.access(CHECK_DUMMY, os.X_OK):
        parser.error(f"{CHECK_DUMMY} is missing: install monitoring-plugins-basic")
    python = args.python or (sys.executable if args.quick else prepare_venv(args.venv))
    env = Environment(os.path.abspath(python))
    sizes = (1, 100, 1000)
    command = "python3 benchmarks/run.py" + (" --quick" if args.quick else "")
    if args.runs != 31 and not args.quick:
        command += f" --runs {args.runs}"
    load_start = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="selfheal-bench-")
    tmpfs = tmpfs_dir()
    launcher = Launcher(work)
    try:
        cases = build_cases(env, work, sizes, tmpfs)
        samples = measure(launcher, cases, args.runs, args.warmups)
        p5_results = p5(env, work, args.p5, 1 if args.quick else 3)
        for result in p5_results:
            result["count"] = args.p5
        summary = summarise(samples)
        target_rows = targets(summary, p5_results, sizes)
        load = (load_start, os.getloadavg()[0])
        chart = None
        if not args.no_chart:
            chart = os.path.splitext(args.output)[0] + ".png"
            data_path = os.path.join(work, "results.json")
            with open(data_path, "w", encoding="utf-8") as stream:
                json.dump(
                    {"labels": {c.key: c.label for c in cases}, "summary": summary, "sizes": sizes}, stream
                )
            if not draw_chart(env, data_path, chart):
                chart = None
        write_report(
            args.output,
            command,
            env,
            work,
            cases,
            summary,
            target_rows,
            p5_results,
            load,
            chart,
            args.runs,
            args.warmups,
        )
    finally:
        launcher.close()
        shutil.rmtree(work, ignore_errors=True)
        if tmpfs is not None:
            shutil.rmtree(tmpfs, ignore_errors=True)
    print(results_table(cases, summary))
    print()
    print(targets_table(target_rows))
    print(f"\nwrote {os.path.relpath(args.output)}" + (f" and {os.path.relpath(chart)}" if chart else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fleet budget wired in: ``selfheal run`` on simulated hosts against a real etcd.

Each simulated host is its own state dir and ``$SELFHEAL_HOST``, running
the real ``selfheal run`` (a process per check) with one shared config.
The heal is a small program that appends its own start and end times to a
file: concurrency is measured from those, not from what selfheal says.
The figures (peak concurrency, heals, how long a dead host's slot takes
to come back, the heal path's latency with and without a budget) are
printed: run with ``-rP`` to see them. ``SELFHEAL_FLEET_RUNS`` sets the
number of runs of the latency figure (5 by default; docs/performance.md
used 50).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import need
from e2e.etcd import ETCD, EtcdCluster, EtcdUnavailable
from e2e.spans import peak_overlap

ROOT = Path(__file__).resolve().parents[2]
CHECK_DUMMY = "/usr/lib/nagios/plugins/check_dummy"

HEAL = """\
import os, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, f"S {os.getpid()} {time.time():.6f} {os.environ.get('SELFHEAL_HOST', '?')}\\n".encode())
time.sleep(seconds)
os.write(fd, f"E {os.getpid()} {time.time():.6f}\\n".encode())
"""


def figure(text: str) -> None:
    print(f"fleet figure: {text}")


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    need(os.access(ETCD, os.X_OK), f"{ETCD} is missing (apt-get install etcd-server)")
    need(
        os.access(CHECK_DUMMY, os.X_OK),
        f"{CHECK_DUMMY} is missing (apt-get install monitoring-plugins-basic)",
    )
    try:
        import etcd3gw  # noqa: F401
    except ImportError:
        need(False, "the etcd3gw client is missing (pip install -e '.[fleet]')")
    try:
        cluster = EtcdCluster(1).__enter__()
    except EtcdUnavailable as exc:
        need(False, str(exc))
        raise
    yield cluster
    cluster.stop()


class Site:
    """One config shared by simulated hosts, the heal's own span file, and what to kill afterwards."""

    def __init__(self, root: Path, endpoints: list[str], budget: str, *, heal_seconds: float = 2.0,
                 timeout: str = "2s", on_unreachable: str = "heal", action_timeout: str = "10s") -> None:  # fmt: skip
        self.root = root
        (root / "operator").mkdir(parents=True, mode=0o700)  # the fleet commands' state dir and journal
        self.spans = root / "spans"
        script = root / "heal.py"
        script.write_text(HEAL)
        self.config = root / "selfheal.yaml"
        self.config.write_text(
            "fleet:\n"
            f"  etcd: {{endpoints: {json.dumps(endpoints)}, timeout: {timeout}}}\n"
            f"  on_unreachable: {on_unreachable}\n"
            "checks:\n"
            "  web:\n"
            f"    plugin: {CHECK_DUMMY} 2 down\n"
            f"    heal: {{command: {json.dumps([sys.executable, str(script), str(self.spans), str(heal_seconds)])}}}\n"
            f"    cooldown: 0\n    grace: 0\n    max_attempts: 1000\n    action_timeout: {action_timeout}\n"
            f"    budget: {budget}\n"
        )

    def env(self, host: str) -> dict[str, str]:
        return {**os.environ, "SELFHEAL_HOST": host, "SELFHEAL_STATE_DIR": str(self.root / host)}

    def run(self, host: str, *args: str) -> tuple[int, str, float]:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "selfheal", "run", "web", "-c", str(self.config), *args],
            env=self.env(host), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr, time.monotonic() - began

    def command(self, *args: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "selfheal", *args, "-c", str(self.config)],
            env=self.env("operator"), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr

    def heals(self) -> dict[int, list[float | None]]:
        """Each heal's own [start, end] by its pid; end None while it runs (or when it was killed)."""
        found: dict[int, list[float | None]] = {}
        if not self.spans.exists():
            return found
        for line in self.spans.read_text().splitlines():
            kind, pid, stamp = line.split()[:3]
            found.setdefault(int(pid), [None, None])[0 if kind == "S" else 1] = float(stamp)
        return found

    def journal(self, host: str) -> list[dict[str, object]]:
        path = self.root / host / "journal.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def wait_heals_ended(self, timeout: float = 20, started: int = 0) -> None:
        """Until every heal has ended, and at least ``started`` have begun (a runner takes a moment)."""
        deadline = time.monotonic() + timeout
        while len(self.heals()) < started or any(end is None for _, end in self.heals().values()):
            assert time.monotonic() < deadline, "heals still running"
            time.sleep(0.1)

    def kill_all(self) -> None:
        """Kill the runners and heals the test started (their pids are in the records and the span file)."""
        pids = {pid for pid, (_, end) in self.heals().items() if end is None}
        for record in self.root.glob("*/web.json"):
            try:
                attempts = json.loads(record.read_text())["attempts"]
            except (OSError, ValueError, KeyError):
                continue
            pids.update(a["pid"] for a in attempts if a.get("pid") and a.get("ended") is None)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[list[Site]]:
    made: list[Site] = []
    yield made
    for site in made:
        site.kill_all()


# -- (a) 20 hosts, max_concurrent 2 ------------------------------------------------------


def test_twenty_hosts_heal_at_most_two_at_a_time(
    etcd: EtcdCluster, tmp_path: Path, sites: list[Site]
) -> None:
    site = Site(tmp_path, etcd.endpoints, "{group: storm, max_concurrent: 2}")
    sites.append(site)
    hosts = [f"host{i:02d}" for i in range(20)]
    seconds = 25.0
    outputs: dict[str, list[str]] = {h: [] for h in hosts}
    errors: list[BaseException] = []
    start = threading.Barrier(len(hosts))
    stop_at = [0.0]

    def host(name: str) -> None:
        try:
            start.wait()
            if not stop_at[0]:
                stop_at[0] = time.monotonic() + seconds
            while time.monotonic() < stop_at[0]:
                code, out, _ = site.run(name, "-v")
                assert code in (1, 2), out
                outputs[name].append(out)
                time.sleep(1.0)  # the deferred checks leave CPU to the runners on a small machine
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=host, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 90)
    assert not errors, errors
    site.wait_heals_ended()
    spans = [(s, e) for s, e in site.heals().values() if s is not None and e is not None]
    peak = peak_overlap(spans)  # type: ignore[arg-type]
    runs = sum(len(o) for o in outputs.values())
    deferred = sum("self-healing deferred: fleet budget storm 2/2 in use (hosts " in out
                   for o in outputs.values() for out in o)  # fmt: skip
    acquired = [e for h in hosts for e in site.journal(h) if e["event"] == "fleet_acquired"]
    deadline = time.monotonic() + 15
    while True:  # each runner journals its release just after its heal's end
        released = [e for h in hosts for e in site.journal(h) if e["event"] == "fleet_released"]
        if len(released) >= len(acquired) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    figure(
        f"20 hosts x {seconds:g} s, max_concurrent 2, heals of 2 s: {runs} checks, {len(spans)} heals, "
        f"peak {peak} at once (from the heals' own times), {deferred} deferred"
    )
    assert peak <= 2, "more heals at once than max_concurrent"
    assert len(spans) == len(acquired) >= 4, (len(spans), len(acquired))
    slots = [e["slot"] for e in acquired]
    assert set(slots) == {0, 1} and min(slots.count(0), slots.count(1)) >= 2, "the slots were not reused"
    assert len({e["group"] for e in acquired}) == 1 and len(released) == len(acquired)
    assert all(e["released"] is True for e in released), released
    assert deferred > 0
    assert len([h for h in hosts if any(e["event"] == "fleet_acquired" for e in site.journal(h))]) > 2


# -- (b) the breaker ---------------------------------------------------------------------


def test_the_breaker_stops_at_exactly_max_per_window(
    etcd: EtcdCluster, tmp_path: Path, sites: list[Site]
) -> None:
    budget = "{group: breaker, max_concurrent: 4, max_per_window: 3, window: 1h}"
    site = Site(tmp_path, etcd.endpoints, budget, heal_seconds=0.2)
    sites.append(site)
    outputs = []
    for round_ in range(3):
        for host in ("a", "b", "c"):
            outputs.append(site.run(host)[1])
        site.wait_heals_ended(started=3)  # round 0 starts the three the breaker allows
        time.sleep(0.5 if round_ == 0 else 0.1)  # the runners release their slots
    heals = site.heals()
    held = [o for o in outputs if "self-healing held fleet-wide: 3 heals in group breaker within 1h" in o]
    figure(f"breaker max_per_window 3: {len(heals)} heals out of {len(outputs)} CRITICAL checks")
    assert len(heals) == 3
    assert len(held) == len(outputs) - 3
    events = [e for h in ("a", "b", "c") for e in site.journal(h)]
    assert sum(e["event"] == "fleet_held" for e in events) == len(held)
    assert all(e["group"] == "breaker" for e in events if str(e["event"]).startswith("fleet_"))


# -- (c) a dead host ------------------------------------------------------------------------


def test_a_runner_killed_mid_heal_frees_its_slot_at_the_ttl(
    etcd: EtcdCluster, tmp_path: Path, sites: list[Site]
) -> None:
    # action_timeout 3s: the slot's TTL is 3 + kill grace 5 + margin 5 = 13 s.
    site = Site(
        tmp_path, etcd.endpoints, "{group: dead, max_concurrent: 1}", heal_seconds=60, action_timeout="3s"
    )
    sites.append(site)
    code, out, _ = site.run("doomed")
    assert code == 1 and "self-healing: started" in out, out
    deadline = time.monotonic() + 10
    while not site.heals():
        assert time.monotonic() < deadline, "the heal never started"
        time.sleep(0.05)
    record = json.loads((tmp_path / "doomed" / "web.json").read_text())
    attempt = record["attempts"][-1]
    ttl = attempt["fleet"]["ttl"]
    assert attempt["fleet"]["group"] == "dead" and attempt["fleet"]["slot"] == 0 and ttl == 13
    # The host dies: its runner and its heal, at once, with no chance to release.
    killed_at = time.monotonic()
    for pid in [attempt["pid"], *site.heals()]:
        os.kill(pid, signal.SIGKILL)
    code, out, _ = site.run("other")
    assert code == 2 and "self-healing deferred: fleet budget dead 1/1 in use (hosts doomed)" in out, out
    while True:
        code, out = site.command("fleet", "status", "dead", "--json")
        assert code == 0, out
        groups = json.loads(out)["groups"]
        if not groups or not groups[0]["slots"]:
            break
        assert time.monotonic() - killed_at < ttl + 3, "the dead host's slot outlived its TTL"
        time.sleep(0.25)
    back = time.monotonic() - killed_at
    figure(f"a runner SIGKILLed mid-heal: its slot came back {back:.1f} s after the kill (TTL {ttl} s)")
    assert back > ttl - 3, "the slot came back before its TTL: something released it"
    code, out, _ = site.run("other")
    assert code == 1 and "self-healing: started" in out, out


# -- (d) etcd down -----------------------------------------------------------------------------


def blackhole() -> tuple[socket.socket, str]:
    """An endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("mode", ["hold", "heal"])
def test_all_members_down_follows_on_unreachable_within_twice_the_timeout(
    tmp_path: Path, sites: list[Site], mode: str
) -> None:
    need(os.access(ETCD, os.X_OK), f"{ETCD} is missing (apt-get install etcd-server)")
    try:
        cluster = EtcdCluster(1).__enter__()
    except EtcdUnavailable as exc:
        need(False, str(exc))
        raise
    hole, silent = blackhole()
    try:
        site = Site(tmp_path, [*cluster.endpoints, silent], "{group: down, max_concurrent: 1}",
                    heal_seconds=0.1, timeout="2s", on_unreachable=mode)  # fmt: skip
        sites.append(site)
        site.run("warm", "--dry-run")  # Python's own start-up caches, outside the timing
        for member in cluster.members:
            member.kill()
        code, out, took = site.run("h1")
    finally:
        hole.close()
        cluster.stop()
    figure(f"all etcd members down, timeout 2 s, on_unreachable {mode}: the check returned in {took:.2f} s")
    assert took < 4.0, f"the check took {took:.2f}s with etcd down (timeout 2s)"
    events = [e["event"] for e in site.journal("h1")]
    if mode == "hold":
        assert code == 2, out
        assert "self-healing held: fleet budget down unreachable (" in out and "on_unreachable: hold" in out
        assert "fleet_unreachable" in events and "attempt" not in events
        time.sleep(0.5)
        assert site.heals() == {}, "a heal ran with on_unreachable: hold"
    else:
        assert code == 1, out
        assert "self-healing: started" in out and "fleet budget down unreachable, local limits only" in out
        assert events[:2] == ["attempt", "fleet_unreachable"], events
        site.wait_heals_ended(started=1)
        assert len(site.heals()) == 1


# -- (e) the fleet commands ---------------------------------------------------------------------


def test_fleet_status_and_release(etcd: EtcdCluster, tmp_path: Path, sites: list[Site]) -> None:
    site = Site(tmp_path, etcd.endpoints, "{group: ops, max_concurrent: 1}", heal_seconds=60)
    sites.append(site)
    code, out, _ = site.run("stuck")
    assert code == 1, out
    code, out = site.command("fleet", "status", "--json")
    assert code == 0, out
    groups = {g["group"]: g for g in json.loads(out)["groups"]}
    slots = groups["ops"]["slots"]
    assert [(s["host"], s["check"], s["index"]) for s in slots] == [("stuck", "web", 0)]
    assert 0 < slots[0]["ttl_left"] <= slots[0]["ttl"] and abs(slots[0]["since"] - time.time()) < 30
    assert groups["ops"]["heals_in_window"] == 0
    code, text = site.command("fleet", "status", "ops")
    assert code == 0 and "group ops: 1 slot(s) held" in text and "stuck" in text, text
    assert site.run("next")[0] == 2  # deferred while "stuck" holds the only slot
    code, out = site.command("fleet", "release", "ops", "stuck")
    assert code == 0 and "released 1 slot(s) of group ops held by stuck: slot 0 (check web)" in out, out
    released = [e for e in site.journal("operator") if e["event"] == "fleet_released"]
    assert [(e["group"], e["slot"], e["holder"], e["check"]) for e in released] == [
        ("ops", 0, "stuck", "web")
    ]
    assert released[0]["by"]
    code, out = site.command("fleet", "release", "ops", "stuck")
    assert code == 1 and "no slot of group ops is held by stuck" in out, out
    code, out, _ = site.run("next")
    assert code == 1 and "self-healing: started" in out, out


def test_fleet_commands_without_fleet_or_etcd_are_one_line_unknowns(tmp_path: Path) -> None:
    config = tmp_path / "plain.yaml"
    config.write_text(f"checks:\n  web:\n    plugin: {CHECK_DUMMY} 0\n    heal: {{systemd: nginx}}\n")
    env = {**os.environ, "SELFHEAL_STATE_DIR": str(tmp_path / "s")}
    done = subprocess.run([sys.executable, "-m", "selfheal", "fleet", "status", "-c", str(config)],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 3 and "has no 'fleet:' section" in done.stdout, done.stdout
    hole, silent = blackhole()
    try:
        config.write_text(f"fleet:\n  etcd: {{endpoints: [{silent}], timeout: 1s}}\n{config.read_text()}")
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "selfheal", "fleet", "status", "-c", str(config)],
                              env=env, capture_output=True, text=True, check=False)  # fmt: skip
    finally:
        hole.close()
    assert done.returncode == 3 and done.stdout.count("\n") == 1, done.stdout
    assert time.monotonic() - began < 10


# -- (f) bad input -----------------------------------------------------------------------------------


def test_validate_names_every_bad_fleet_input_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "fleet:\n"  # 1
        "  etcd:\n"  # 2
        "    endpoints: [http://127.0.0.1:2379]\n"  # 3
        f"    ca: {tmp_path}/missing-ca.pem\n"  # 4
        "  on_unreachable: maybe\n"  # 5
        "checks:\n"  # 6
        "  web:\n"  # 7
        f"    plugin: {CHECK_DUMMY} 0\n"  # 8
        "    heal: {systemd: nginx}\n"  # 9
        "    budget:\n"  # 10
        "      group: web/eu\n"  # 11
        "      max_concurrent: 0\n"  # 12
        "      window: 1h\n"  # 13
    )
    done = subprocess.run([sys.executable, "-m", "selfheal", "validate", "-c", str(config)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode != 0
    assert any(line.startswith(f"{config}:5: fleet.on_unreachable must be heal or hold") for line in lines), (
        lines
    )
    assert any(f"{config}:11: check 'web': budget.group" in line and "no '/'" in line for line in lines), (
        lines
    )
    assert any(f"{config}:12: check 'web': budget.max_concurrent must be between 1" in line for line in lines)
    assert any(f"{config}:13: check 'web': budget.max_per_window and budget.window go together" in line
               for line in lines), lines  # fmt: skip
    # With on_unreachable fixed, the TLS file is read (validate only) and named at its line.
    config.write_text(config.read_text().replace("maybe", "hold"))
    done = subprocess.run([sys.executable, "-m", "selfheal", "validate", "-c", str(config)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert f"{config}:4: fleet.etcd.ca: cannot read {tmp_path}/missing-ca.pem" in done.stdout, done.stdout
    # A budget without fleet:.
    config.write_text("\n".join(config.read_text().splitlines()[5:]) + "\n")
    done = subprocess.run([sys.executable, "-m", "selfheal", "validate", "-c", str(config)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert f"{config}:5: check 'web': budget needs a top-level 'fleet:' section" in done.stdout, done.stdout


# -- figures: the heal path's latency ---------------------------------------------------------------


def test_heal_latency_with_and_without_a_budget(etcd: EtcdCluster, tmp_path: Path, sites: list[Site]) -> None:
    runs = int(os.environ.get("SELFHEAL_FLEET_RUNS", "5"))
    with_budget = Site(tmp_path / "budget", etcd.endpoints, "{group: latency, max_concurrent: 1000}",
                       heal_seconds=0)  # fmt: skip
    without = Site(tmp_path / "plain", etcd.endpoints, "{group: unused, max_concurrent: 1}", heal_seconds=0)
    # The same config without the check's budget: (fleet: stays, unused).
    without.config.write_text(without.config.read_text().split("    budget:")[0])
    sites.extend([with_budget, without])
    times: dict[str, list[float]] = {"budget": [], "plain": []}
    for site in (with_budget, without):
        site.run("h", "--dry-run")  # the config cache and Python's caches, outside the timing
    for done in range(1, runs + 1):
        for key, site in (("budget", with_budget), ("plain", without)):
            record = site.root / "h" / "web.json"
            if record.exists():
                record.unlink()  # a fresh record: every run is a first heal (row 9)
            code, out, took = site.run("h")
            assert code == 1 and "self-healing: started" in out, out
            times[key].append(took)
            site.wait_heals_ended(started=done)
            time.sleep(0.2)  # the runner finishes (and releases) outside the next timing
    acquired = [e for e in with_budget.journal("h") if e["event"] == "fleet_acquired"]
    assert len(acquired) == runs and not [e for e in without.journal("h") if e["event"].startswith("fleet_")]

    def stats(values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"

    figure(f"heal path, {runs} CRITICAL runs each, fresh record: with a budget {stats(times['budget'])}; "
           f"without {stats(times['plain'])}")  # fmt: skip
    assert statistics.median(times["budget"]) < statistics.median(times["plain"]) + 2.0


def test_doctor_checks_the_files_and_reaches_each_endpoint(etcd: EtcdCluster, tmp_path: Path) -> None:
    hole, silent = blackhole()
    config = tmp_path / "selfheal.yaml"
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    body = f"checks:\n  web:\n    plugin: {CHECK_DUMMY} 0\n    heal: {{systemd: nginx}}\n"
    env = {**os.environ, "SELFHEAL_STATE_DIR": str(state), "SELFHEAL_HOST": "web-17"}
    try:
        config.write_text(
            f"fleet:\n  etcd: {{endpoints: {json.dumps([*etcd.endpoints, silent])}, timeout: 1s}}\n{body}"
        )
        done = subprocess.run([sys.executable, "-m", "selfheal", "doctor", "-c", str(config)],
                              env=env, capture_output=True, text=True, check=False)  # fmt: skip
    finally:
        hole.close()
    out = done.stdout
    assert done.returncode == 1, out
    assert "PASS  fleet: etcd client: etcd3gw is installed" in out
    assert "PASS  fleet: this host: web-17" in out
    assert f"PASS  fleet: etcd {etcd.endpoints[0]}: answered in" in out
    assert f"FAIL  fleet: etcd {silent}: no etcd endpoint answered" in out, out
    config.write_text(
        f"fleet:\n  etcd:\n    endpoints: {json.dumps(etcd.endpoints)}\n    ca: {tmp_path}/none.pem\n{body}"
    )
    done = subprocess.run([sys.executable, "-m", "selfheal", "doctor", "-c", str(config)],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    assert (
        f"FAIL  fleet: TLS and password files: fleet.etcd.ca: cannot read {tmp_path}/none.pem" in done.stdout
    )


def test_a_built_in_check_heals_within_the_budget_too(etcd: EtcdCluster, tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, not listening: the port refuses connections
    port = sock.getsockname()[1]
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"fleet:\n  etcd: {{endpoints: {json.dumps(etcd.endpoints)}, timeout: 2s}}\n"
        f"checks:\n  port:\n    check: tcp\n    args: {{host: 127.0.0.1, port: {port}}}\n"
        "    heal: {command: [sleep, '5']}\n    budget: {group: builtin, max_concurrent: 1}\n"
    )
    outs = {}
    try:
        for host in ("a", "b"):
            env = {**os.environ, "SELFHEAL_HOST": host, "SELFHEAL_STATE_DIR": str(tmp_path / host)}
            done = subprocess.run([sys.executable, "-m", "selfheal", "run", "port", "-c", str(config)],
                                  env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
            outs[host] = (done.returncode, done.stdout)
    finally:
        sock.close()
        for record in tmp_path.glob("*/port.json"):
            for attempt in json.loads(record.read_text())["attempts"]:
                if attempt.get("pid"):
                    try:
                        os.killpg(attempt["pid"], signal.SIGKILL)  # the runner's session, its sleep too
                    except OSError:
                        pass
    assert outs["a"][0] == 1 and "self-healing: started sleep 5" in outs["a"][1], outs
    assert (
        outs["b"][0] == 2
        and "self-healing deferred: fleet budget builtin 1/1 in use (hosts a)" in outs["b"][1]
    )

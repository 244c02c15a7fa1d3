"""The fleet budget against real etcd members (Debian's etcd-server) on loopback.

Each simulated host is its own ``Fleet`` with its own host name, in a
thread (or, for the dead host, a process that is SIGKILLed). Concurrency
is measured from the holders' own start and end times, taken inside the
span in which each held its slot. The figures (latency, peak, how long a
dead host's slot takes to come back) are printed: run with ``-rP`` to see
them.
"""

from __future__ import annotations

import json
import os
import re
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
from e2e.etcd import ETCD, EtcdCluster, EtcdUnavailable, Tls
from e2e.spans import peak_overlap
from selfheal.fleet.budget import (
    DEFERRED,
    GRANTED,
    HELD,
    Budget,
    Fleet,
    FleetClientMissing,
    FleetConfigError,
    FleetRefused,
    FleetSettings,
    FleetUnreachable,
    client_available,
)

ROOT = Path(__file__).resolve().parents[2]


def need_etcd() -> None:
    need(os.access(ETCD, os.X_OK), f"{ETCD} is missing (apt-get install etcd-server)")
    need(client_available(), "the etcd3gw client is missing (pip install -e '.[fleet]')")


def start_cluster(size: int, tls: bool = False) -> EtcdCluster:
    need_etcd()
    try:
        return EtcdCluster(size, tls=tls).__enter__()
    except EtcdUnavailable as exc:
        need(False, str(exc))
        raise


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    cluster = start_cluster(1)
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster3() -> Iterator[EtcdCluster]:
    cluster = start_cluster(3)
    yield cluster
    cluster.stop()


_groups = iter(range(1_000_000))


def group_name() -> str:
    """A group of its own for each test on the shared member."""
    return f"g{next(_groups)}-{os.getpid()}"


def fleet(endpoints: list[str], host: str, timeout: float = 2.0) -> Fleet:
    return Fleet(FleetSettings(endpoints, timeout=timeout, host=host))


def figure(text: str) -> None:
    print(f"fleet figure: {text}")


def storm(
    endpoints: list[str], budget: Budget, hosts: int, seconds: float, heal: float
) -> tuple[list[tuple[float, float, int, str]], list[BaseException], int]:
    """``hosts`` threads keep asking for a slot for ``seconds``; each heal holds it ``heal`` seconds."""
    spans: list[tuple[float, float, int, str]] = []
    errors: list[BaseException] = []
    deferred = [0]
    lock = threading.Lock()
    start = threading.Barrier(hosts)
    stop_at = time.monotonic() + seconds

    def host(name: str) -> None:
        try:
            client = fleet(endpoints, name)
            start.wait()
            while time.monotonic() < stop_at:
                grant = client.acquire(budget, "nginx", ttl=30)
                if grant.granted:
                    began = time.monotonic()
                    time.sleep(heal)
                    ended = time.monotonic()
                    assert grant.lease is not None and grant.slot is not None
                    assert client.release(grant.lease), "a slot held for less than its TTL was gone"
                    with lock:
                        spans.append((began, ended, grant.slot, name))
                else:
                    assert grant.outcome == DEFERRED, grant
                    assert len(grant.in_use) == budget.max_concurrent
                    with lock:
                        deferred[0] += 1
                    time.sleep(0.05)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=host, args=(f"host{i:02d}",)) for i in range(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return spans, errors, deferred[0]


def test_twenty_hosts_never_exceed_max_concurrent_and_reuse_the_slots(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=2)
    spans, errors, deferred = storm(etcd.endpoints, budget, hosts=20, seconds=4, heal=0.25)
    assert not errors, errors
    peak = peak_overlap([(s, e) for s, e, _, _ in spans])
    figure(
        f"20 hosts, max_concurrent 2, 4 s, heals of 0.25 s: {len(spans)} heals, peak {peak}, {deferred} deferrals"
    )
    assert peak == 2
    slots = [slot for _, _, slot, _ in spans]
    assert set(slots) == {0, 1}
    assert min(slots.count(0), slots.count(1)) >= 3, "the slots were not reused"
    assert len({name for _, _, _, name in spans}) > 2, "only the first hosts ever healed"
    assert deferred > 0
    left = fleet(etcd.endpoints, "observer").status(budget.group)
    assert left == [] or left[0].slots == (), "a released slot is still there"


def test_release_frees_the_slot_for_another_host(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=1)
    a, b = fleet(etcd.endpoints, "a"), fleet(etcd.endpoints, "b")
    first = a.acquire(budget, "nginx", ttl=30)
    assert first.granted and first.slot == 0
    refused = b.acquire(budget, "nginx", ttl=30)
    assert refused.outcome == DEFERRED
    assert refused.note() == f"fleet budget {budget.group} 1/1 in use (hosts a)"
    assert first.lease is not None and a.release(first.lease) is True
    assert a.release(first.lease) is False, "a second release must say the slot was already gone"
    second = b.acquire(budget, "nginx", ttl=30)
    assert second.granted and second.slot == 0


def test_breaker_stops_at_exactly_max_per_window(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=3, max_per_window=7, window=60)
    granted: list[str] = []
    seen: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def host(name: str) -> None:
        try:
            client = fleet(etcd.endpoints, name)
            start.wait()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                grant = client.acquire(budget, "nginx", ttl=30)
                if grant.outcome == HELD:
                    with lock:
                        seen.append(grant.note())
                    return
                if grant.granted:
                    with lock:
                        granted.append(name)
                    assert grant.lease is not None
                    client.release(grant.lease)
                else:
                    time.sleep(0.02)
            raise AssertionError(f"{name} was never held")
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=host, args=(f"host{i:02d}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not errors, errors
    assert len(granted) == 7
    assert seen == [f"7 heals in group {budget.group} within 1m"] * 20
    observer = fleet(etcd.endpoints, "observer")
    assert observer.peek(budget).outcome == HELD
    (status,) = observer.status(budget.group)
    assert sorted(h.index for h in status.heals) == list(range(7))
    assert status.slots == ()
    assert observer.operator_reset(budget.group) == 7
    assert observer.acquire(budget, "nginx", ttl=30).granted


def test_the_window_passes_and_the_breaker_opens(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=2, max_per_window=2, window=2)
    client = fleet(etcd.endpoints, "a")
    began = time.monotonic()
    for _ in range(2):
        grant = client.acquire(budget, "nginx", ttl=30)
        assert grant.granted and grant.lease is not None
        client.release(grant.lease)
    assert client.acquire(budget, "nginx", ttl=30).outcome == HELD
    while time.monotonic() - began < 10:
        grant = client.acquire(budget, "nginx", ttl=30)
        if grant.granted:
            break
        assert grant.outcome == HELD
        time.sleep(0.05)
    reopened = time.monotonic() - began
    figure(f"a 2 s window reopened after {reopened:.2f} s")
    assert grant.granted
    assert 1.5 <= reopened <= 4.5


DEAD_HOLDER = """
import json, sys, time
from selfheal.fleet.budget import Budget, Fleet, FleetSettings
client = Fleet(FleetSettings(sys.argv[1].split(","), host="dead-host"))
grant = client.acquire(Budget(sys.argv[2], 1), "nginx", ttl=float(sys.argv[3]))
print(json.dumps({"outcome": grant.outcome, "lease": grant.lease, "ttl": grant.ttl}), flush=True)
time.sleep(120)
"""


def test_a_dead_holders_slot_comes_back_at_its_ttl(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=1)
    ttl = 3
    with subprocess.Popen(
        [sys.executable, "-c", DEAD_HOLDER, ",".join(etcd.endpoints), budget.group, str(ttl)],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            reply = json.loads(holder.stdout.readline())
            granted_at = time.monotonic()
        finally:
            holder.kill()
    assert reply["outcome"] == GRANTED and reply["ttl"] == ttl
    other = fleet(etcd.endpoints, "survivor")
    outcomes = []
    while time.monotonic() - granted_at < ttl + 5:
        grant = other.acquire(budget, "nginx", ttl=30)
        outcomes.append((time.monotonic() - granted_at, grant.outcome))
        if grant.granted:
            break
        assert grant.hosts == ("dead-host",)
        time.sleep(0.05)
    came_back = outcomes[-1][0]
    figure(f"a SIGKILLed holder's slot (TTL {ttl} s) came back after {came_back:.2f} s")
    assert outcomes[-1][1] == GRANTED
    assert any(outcome == DEFERRED and at > ttl - 1 for at, outcome in outcomes), "it came back too early"
    assert ttl - 0.5 <= came_back <= ttl + 1.5
    # The dead host, were it alive, would learn that its slot is gone.
    assert other.release(reply["lease"]) is False
    assert other.lease_left(reply["lease"]) is None


def test_status_and_operator_release(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=2, max_per_window=5, window=600)
    a, b, c = (fleet(etcd.endpoints, name) for name in ("a", "b", "c"))
    before = time.time()
    ga = a.acquire(budget, "nginx", ttl=120)
    gb = b.acquire(budget, "php-fpm", ttl=60)
    assert ga.granted and gb.granted and {ga.slot, gb.slot} == {0, 1}
    (status,) = c.status(budget.group)
    assert [(s.host, s.check, s.index) for s in status.slots] == [
        ("a", "nginx", ga.slot),
        ("b", "php-fpm", gb.slot),
    ]
    for slot, ttl in zip(status.slots, (120, 60)):
        assert before - 1 <= slot.since <= time.time() + 1
        assert slot.ttl == ttl and slot.ttl_left is not None and ttl - 5 <= slot.ttl_left <= ttl
    assert len(status.heals) == 2
    assert all(h.ttl == 600 and h.ttl_left is not None and 590 <= h.ttl_left <= 600 for h in status.heals)
    document = json.loads(json.dumps([g.as_dict() for g in c.status()]))
    assert budget.group in [g["group"] for g in document]

    freed = c.operator_release(budget.group, "a")
    assert [(h.host, h.index) for h in freed] == [("a", ga.slot)]
    assert c.operator_release(budget.group, "a") == []
    assert ga.lease is not None and a.release(ga.lease) is False
    taken = c.acquire(budget, "nginx", ttl=30)
    assert taken.granted and taken.slot == ga.slot
    (status,) = c.status(budget.group)
    assert sorted(s.host for s in status.slots) == ["b", "c"]
    assert len(status.heals) == 3, "an operator release frees a slot, not the window"


def test_peek_takes_nothing(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=1, max_per_window=3, window=60)
    client = fleet(etcd.endpoints, "a")
    for _ in range(3):
        assert client.peek(budget).outcome == "available"
    assert client.status(budget.group) == []
    grant = client.acquire(budget, "nginx", ttl=30)
    assert grant.granted
    peeked = fleet(etcd.endpoints, "b").peek(budget)
    assert peeked.outcome == DEFERRED and peeked.hosts == ("a",) and len(peeked.heals) == 1


def test_acquire_and_release_latency(etcd: EtcdCluster) -> None:
    budget = Budget(group_name(), max_concurrent=2, max_per_window=1000, window=3600)
    client = fleet(etcd.endpoints, "a")
    client.peek(budget)  # the connection, as a long-lived client would have it
    took = []
    for _ in range(50):
        began = time.perf_counter()
        grant = client.acquire(budget, "nginx", ttl=30)
        assert grant.granted and grant.lease is not None
        assert client.release(grant.lease)
        took.append(time.perf_counter() - began)
    median = statistics.median(took)
    p95 = statistics.quantiles(took, n=20)[-1]
    figure(f"acquire+release on loopback, 50 runs: median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    assert p95 < client.settings.timeout


def test_three_member_cluster_survives_one_member_and_fails_fast_without_quorum(
    cluster3: EtcdCluster,
) -> None:
    endpoints = cluster3.endpoints
    leader = cluster3.wait_for_leader()
    leader.kill()
    # The dead member first: every host's first try fails over.
    ordered = [leader.client_url] + [e for e in endpoints if e != leader.client_url]
    cluster3.wait_for_leader()
    budget = Budget(group_name(), max_concurrent=2, max_per_window=1000, window=3600)
    spans, errors, _ = storm(ordered, budget, hosts=10, seconds=3, heal=0.2)
    assert not errors, errors
    peak = peak_overlap([(s, e) for s, e, _, _ in spans])
    figure(f"3 members, leader killed, 10 hosts: {len(spans)} heals, peak {peak}")
    assert peak == 2 and len(spans) >= 6

    timeout = 1.0
    survivors = [m for m in cluster3.members if m.running]
    survivors[0].kill()
    # One member of three: it accepts connections but cannot answer without a quorum.
    for what in ("without quorum", "all members down"):
        client = fleet(ordered, "late", timeout=timeout)
        for call in ("acquire", "peek"):
            began = time.monotonic()
            with pytest.raises(FleetUnreachable, match="no etcd endpoint answered"):
                if call == "acquire":
                    client.acquire(budget, "nginx", ttl=30)
                else:
                    client.peek(budget)
            took = time.monotonic() - began
            figure(f"{what}: {call} raised FleetUnreachable after {took:.2f} s (timeout {timeout:g} s)")
            assert took < 2 * timeout
        survivors[1].kill()


def test_tls_with_client_certificates() -> None:
    cluster = start_cluster(1, tls=True)
    try:
        tls = cluster.tls
        assert tls is not None and cluster.endpoints[0].startswith("https://")
        files = {"ca": str(tls.ca), "cert": str(tls.client), "key": str(tls.client_key)}
        client = Fleet(FleetSettings(cluster.endpoints, host="a", **files))
        grant = client.acquire(Budget("web", 1), "nginx", ttl=30)
        assert grant.granted and grant.lease is not None and client.release(grant.lease)

        stranger = Tls(cluster.root / "stranger", name="stranger-ca")
        refused = {
            "certificate verify failed (is fleet.etcd.ca the CA": {**files, "ca": str(stranger.ca)},
            "etcd closed the TLS handshake (no client certificate": {"ca": str(tls.ca)},
            "etcd closed the TLS handshake (no client certificate, or one it does not trust": {
                **files,
                "cert": str(stranger.client),
                "key": str(stranger.client_key),
            },
        }
        for message, settings in refused.items():
            # Time enough for the handshake to finish even on a loaded machine:
            # cut short by the timeout, it would say only "TLS handshake failed".
            with pytest.raises(FleetUnreachable, match=re.escape(message)):
                Fleet(FleetSettings(cluster.endpoints, host="a", timeout=10, **settings)).peek(
                    Budget("web", 1)
                )
        mismatched = FleetSettings(
            cluster.endpoints, host="a", cert=str(tls.client), key=str(stranger.client_key)
        )
        (problem,) = mismatched.problems()
        assert problem.startswith(f"fleet.etcd.cert/key: {tls.client} and {stranger.client_key} are not")
    finally:
        cluster.stop()


def test_user_and_password(tmp_path: Path) -> None:
    cluster = start_cluster(1)
    try:
        cluster.enable_auth("selfheal", "s3cret", "/selfheal/fleet/")
        password = tmp_path / "etcd-password"
        password.write_text("s3cret\n")
        login = {"user": "selfheal", "password_file": str(password)}
        client = Fleet(FleetSettings(cluster.endpoints, host="a", **login))
        budget = Budget("web", 1, max_per_window=5, window=60)
        grant = client.acquire(budget, "nginx", ttl=30)
        assert grant.granted and grant.lease is not None
        (status,) = client.status()
        assert [s.host for s in status.slots] == ["a"] and len(status.heals) == 1
        assert client.release(grant.lease)

        with pytest.raises(FleetRefused, match="etcdserver: user name is empty"):
            Fleet(FleetSettings(cluster.endpoints, host="a")).peek(budget)
        # The role allows /selfheal/fleet/ only.
        with pytest.raises(FleetRefused, match="permission denied") as raised:
            Fleet(FleetSettings(cluster.endpoints, host="a", prefix="/elsewhere/", **login)).peek(budget)
        assert raised.value.code == 7
        password.write_text("wrong\n")
        with pytest.raises(FleetRefused, match="authentication failed"):
            Fleet(FleetSettings(cluster.endpoints, host="a", **login)).peek(budget)
    finally:
        cluster.stop()


def test_unreachable_endpoints_fail_within_twice_the_timeout() -> None:
    need(client_available(), "the etcd3gw client is missing (pip install -e '.[fleet]')")
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        for endpoints in (
            [f"127.0.0.1:{closed_port}"],
            [f"http://127.0.0.1:{silent.getsockname()[1]}", f"http://127.0.0.1:{closed_port}"],
        ):
            client = fleet(endpoints, "a", timeout=1.0)
            began = time.monotonic()
            with pytest.raises(FleetUnreachable) as raised:
                client.acquire(Budget("web", 2), "nginx", ttl=30)
            assert time.monotonic() - began < 2.0
            for endpoint in endpoints:
                assert endpoint.split("//")[-1] in str(raised.value)
            assert "connection refused" in str(raised.value)
    finally:
        silent.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Budget("web/api", 2), "no '/'"),
        (lambda: Budget("", 2), "budget.group"),
        (lambda: Budget("web", 0), "budget.max_concurrent must be between 1 and"),
        (lambda: Budget("web", True), "budget.max_concurrent must be a whole number"),
        (lambda: Budget("web", 2, max_per_window=10), "go together"),
        (lambda: Budget("web", 2, max_per_window=0, window=3600), "budget.max_per_window must be between 1"),
        (lambda: Budget("web", 2, max_per_window=10, window=0.5), "budget.window must be between 1s"),
        (lambda: FleetSettings([]), "at least one endpoint"),
        (lambda: FleetSettings(["ftp://etcd1:2379"]), "the scheme must be http or https"),
        (lambda: FleetSettings(["http://etcd1:notaport"]), "etcd1:notaport"),
        (lambda: FleetSettings(["http://etcd1:2379/v3"]), "no path"),
        (lambda: FleetSettings(["etcd1:2379"], timeout=0), "fleet.etcd.timeout"),
        (lambda: FleetSettings(["etcd1:2379"], on_unreachable="maybe"), "heal or hold"),
        (lambda: FleetSettings(["etcd1:2379"], host="web 17"), "fleet.host"),
        (lambda: FleetSettings(["https://etcd1:2379"], cert="c.pem"), "cert and fleet.etcd.key go together"),
        (lambda: FleetSettings(["etcd1:2379"], user="selfheal"), "password_file go together"),
    ],
)
def test_bad_settings_give_clear_errors(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        make()  # type: ignore[operator]
    assert isinstance(raised.value, FleetConfigError)


def test_bad_tls_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    settings = FleetSettings(["https://127.0.0.1:2379"], ca=str(missing), cert=str(garbage), key=str(garbage))
    problems = settings.problems()
    assert problems == [f"fleet.etcd.ca: cannot read {missing}: No such file or directory"]
    with pytest.raises(FleetConfigError, match=r"missing-ca\.pem"):
        Fleet(settings)
    settings = FleetSettings(["https://127.0.0.1:2379"], ca=str(garbage), cert=str(garbage), key=str(garbage))
    problems = settings.problems()
    assert len(problems) == 2
    assert problems[0].startswith(f"fleet.etcd.ca: {garbage} holds no PEM certificate")
    assert problems[1].startswith(f"fleet.etcd.cert/key: {garbage} and {garbage} are not a PEM certificate")
    empty = tmp_path / "password"
    empty.write_text("\n")
    assert FleetSettings(["127.0.0.1:2379"], user="u", password_file=str(empty)).problems() == [
        f"fleet.etcd.password_file: {empty} is empty"
    ]


def test_a_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as an absent package would.
    monkeypatch.setitem(sys.modules, "etcd3gw", None)
    monkeypatch.setitem(sys.modules, "etcd3gw.client", None)
    with pytest.raises(FleetClientMissing, match=r"selfheal\[fleet\]"):
        Fleet(FleetSettings(["127.0.0.1:2379"], host="a"))


def test_importing_the_budget_does_not_import_the_client() -> None:
    probe = "import sys, selfheal.fleet.budget; print(sorted({'etcd3gw', 'requests'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"

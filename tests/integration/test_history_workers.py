"""``history`` and ``report`` reading a fleet's journals in worker processes, tested against their contract.

The contract (``selfheal.edges.workers``, ``selfheal history --jobs N``):
the output of ``history`` (text and ``--json``) and of ``report`` (text,
json, html) is byte for byte the same whatever ``--jobs`` is, the report's
"until" (the current time) aside; a bad ``--jobs`` is one line for a person
(exit 3); and the command never hangs, never prints a traceback and never
leaves a process behind: not when its reader goes away (``| head -1``), not
on Ctrl-C, not when a worker is killed, which is then named among what was
not read.

Written by someone who did not write the workers, from that contract. The
journals are a fleet as it is found on a log host: several hosts, rotated
and gzipped copies, a host whose lines carry no ``host``, corrupt lines,
odd fields, lines out of order, equal times across journals, files that
cannot be read (a FIFO, a symlink, a damaged ``.gz``). Every test runs the
real command in its own process (the unit tests of ``Workers`` fork real
workers from this one); processes are found through ``/proc``, by a marker
in their environment that the workers, being forks, inherit.
"""

from __future__ import annotations

import calendar
import gzip
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import assert_no_traceback, clean_env, run_selfheal, selfheal_argv, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfheal.cli import main
from selfheal.core.states import SelfhealError
from selfheal.edges import journals, workers
from selfheal.edges.journals import Reading, Source

ROOT = Path(__file__).resolve().parents[2]
NOW = time.time()
DAY = 86400
# Two clusters of events, 9 to 6 days ago and 3 to 1 days ago: `--since 5d` falls in the gap between
# them, so it picks the same events however far apart the runs are.
OLD = int(NOW) // 60 * 60 - 9 * DAY
RECENT = int(NOW) // 60 * 60 - 3 * DAY
JOBS = ["1", "2", "3", "5", "64", None]  # None: the default, which the journals' size decides
CHECKS = ("nginx", "php-fpm", "postgres", "haproxy")
REASONS = (
    "Job for nginx.service failed because the control process exited with error code.",
    "caf\u00e9 \u001b[31mred\u001b[0m still failing",  # non-ASCII and a terminal escape
    "<script>alert(1)</script>",
)
# A line moved further than twice history's sort window (journals.window) is listed late: the same
# late place whatever --jobs is.
FAR = 600


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


# -- a fleet's journals -----------------------------------------------------


def incident(rng: random.Random, check: str, ms: int) -> list[tuple[int, dict[str, object]]]:
    """One incident's events: heals until it recovers or gives up, with what an operator may add."""
    argv = ["systemctl", "restart", check]
    fails = rng.choice((0, 0, 1, 2, 3))
    first = ms
    out: list[tuple[int, dict[str, object]]] = []
    if rng.random() < 0.1:
        out.append(
            (ms - 5000, {"event": "paused", "check": check, "by": "alice", "reason": rng.choice(REASONS)})
        )
        out.append((ms - 4000, {"event": "resumed", "check": check, "by": "alice"}))
    for n in range(1, 4):
        out.append((ms, {"event": "attempt", "check": check, "attempt": n, "argv": argv, "pid": 1000 + n}))
        ok = n > fails
        end: dict[str, object] = {
            "event": "action_end", "check": check, "attempt": n, "argv": argv, "exit_code": 0 if ok else 1,
            "duration": rng.choice((0.5, 1.25, 2.481)), "timed_out": False,
        }  # fmt: skip
        if not ok:
            end["reason"] = rng.choice(REASONS)
        out.append((ms + rng.choice((1000, 2500)), end))
        if ok:
            ttr = (ms + 60_000 - first) / 1000
            out.append(
                (ms + 60_000, {"event": "recovered", "check": check, "attempt": n, "time_to_recover": ttr})
            )
            return out
        out.append((ms + 90_000, {"event": "skipped_cooldown", "check": check, "attempt": n}))
        ms += 900_000 * n
    out.append((ms, {"event": "gave_up", "check": check, "attempt": 3, "reason": "3 attempts within 6h"}))
    if rng.random() < 0.5:
        out.append((ms + 600_000, {"event": "reset", "check": check, "by": "bob"}))
    return out


def timeline(rng: random.Random, incidents: int, ties: list[int]) -> list[tuple[int, dict[str, object]]]:
    """A host's events in time order: incidents in both clusters, and events at the fleet's shared times."""
    events: list[tuple[int, dict[str, object]]] = []
    for start in (OLD, RECENT):
        ms = start * 1000
        # Each cluster within two days: its events stay clear of the `--since 5d` boundary.
        for _ in range(incidents):
            ms += rng.randrange(120, 1800) * 1000  # whole seconds: ties within a journal too
            if ms > (start + 2 * DAY - 6 * 3600) * 1000:
                break
            events.extend(incident(rng, rng.choice(CHECKS), ms))
            ms = max(when for when, _ in events)
    # The same times on every host (a fleet-wide deploy pauses every check at once): ties across journals.
    for n, tie in enumerate(ties):
        events.append(
            (tie, {"event": "paused", "check": CHECKS[n % 4], "by": "deploy", "until": iso(tie + 600_000)})
        )
    events.sort(key=lambda item: item[0])
    return events


def lines(events: list[tuple[int, dict[str, object]]], host: str | None) -> list[str]:
    """The journal's lines as selfheal writes them, with ``host`` unless None (an older writer)."""
    out = []
    for ms, event in events:
        line: dict[str, object] = {"ts": iso(ms)}
        if host is not None:
            line["host"] = host
        line.update(event)
        out.append(json.dumps(line, separators=(",", ":")))
    return out


CORRUPT = [
    "not json at all",
    "[1, 2, 3]",
    '{"ts": "yesterday", "event": "attempt", "check": "nginx"}',
    '{"ts": "2026-11-28T03:10:06.123Z", "event": "attempt"}',
    '{"ts": "2026-11-28T03:10',
    "\x00\x00\x00",
    "x" * ((1 << 20) + 10),  # longer than any journal line may be
]


def odd(ms: int, host: str | None) -> list[str]:
    """Lines that place an event but hold an odd field or two: the field is dropped, the event stays."""
    base: dict[str, object] = {"ts": iso(ms), "check": "nginx"}
    if host:
        base["host"] = host
    variants: list[dict[str, object]] = [
        {"event": "attempt", "attempt": "two", "argv": 5, "pid": -1},
        {"event": "action_end", "attempt": 2, "exit_code": 300, "duration": 1e300, "timed_out": "yes"},
        {"event": "recovered", "time_to_recover": -4, "extra": {"nested": [1, 2]}},
        {"event": "something_new", "note": "from a newer selfheal", "duration": float("nan")},
    ]
    return [json.dumps({**base, **variant}) for variant in variants]


def sprinkle(rng: random.Random, text_lines: list[str], extra: list[str]) -> list[str]:
    out = list(text_lines)
    for line in extra:
        out.insert(rng.randrange(len(out) + 1), line)
    return out


def disorder(rng: random.Random, text_lines: list[str]) -> list[str]:
    """Concurrent writers' small disorder (neighbours swapped), and one line far out of place."""
    out = list(text_lines)
    for i in range(0, len(out) - 1, 7):
        if rng.random() < 0.5:
            out[i], out[i + 1] = out[i + 1], out[i]
    if len(out) > FAR + 10:
        out.insert(FAR + 5, out.pop(3))
    return out


def write_lines(path: Path, text_lines: list[str], packed: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in text_lines).encode()
    path.write_bytes(gzip.compress(data) if packed else data)


def thirds(items: list[str]) -> tuple[list[str], list[str], list[str]]:
    third = len(items) // 3
    return items[:third], items[third : 2 * third], items[2 * third :]


def build_fleet(root: Path, seed: int = 7, incidents: int = 40, padding: int = 17 << 20) -> Path:
    """The fleet under ``root``; with ``padding``, a journal damaged by a crash makes it a large one.

    ``padding`` bytes of NULs (the blocks a crash on ext4 leaves in a file
    being appended) make the journals' size, as the workers count it, pass
    the 16 MiB above which the default reads them in workers, at the cost
    of one corrupt line.
    """
    rng = random.Random(seed)
    ties = sorted(rng.sample(range(OLD * 1000, (OLD + 2 * DAY) * 1000, 1000), 12))
    ties += sorted(rng.sample(range(RECENT * 1000, (RECENT + DAY) * 1000, 1000), 12))
    hosts = root / "hosts"
    # web1: the live journal, .1 and .2.gz; a FIFO and a symlink among its rotated copies.
    old, middle, new = thirds(lines(timeline(rng, incidents, ties), "web1"))
    write_lines(hosts / "web1" / "journal.jsonl.2.gz", old, packed=True)
    write_lines(hosts / "web1" / "journal.jsonl.1", sprinkle(rng, middle, CORRUPT[:4]))
    write_lines(hosts / "web1" / "journal.jsonl", new)
    os.mkfifo(hosts / "web1" / "journal.jsonl.3")
    os.symlink("journal.jsonl.1", hosts / "web1" / "journal.jsonl.4")
    # web2: out of order, rotated with logrotate's dateext.
    events = disorder(rng, lines(timeline(rng, 2 * incidents, ties), "web2"))
    half = len(events) // 2
    write_lines(hosts / "web2" / "journal.jsonl-20261128.gz", events[:half], packed=True)
    write_lines(hosts / "web2" / "journal.jsonl", sprinkle(rng, events[half:], CORRUPT[4:]))
    # db1: an older writer, no "host" on its lines: the directory names the host.
    events = lines(timeline(rng, incidents, ties), None)
    write_lines(hosts / "db1" / "journal.jsonl", sprinkle(rng, events, odd(RECENT * 1000 + 7000, None)))
    # cache1.jsonl: the file names the host; one line says it is web1's; its .1.gz was cut short.
    events = lines(timeline(rng, incidents // 2, ties), None)
    events.insert(
        len(events) // 2, lines([(ties[3], {"event": "reset", "check": "nginx", "by": "carol"})], "web1")[0]
    )
    rotated = gzip.compress("".join(line + "\n" for line in events[: len(events) // 2]).encode())
    (root / "cache1.jsonl.1.gz").write_bytes(rotated[: len(rotated) * 2 // 3])
    write_lines(root / "cache1.jsonl", events[len(events) // 2 :])
    # db2: a crash left NUL blocks in its rotated copy; the lines after them still count.
    events = lines(timeline(rng, incidents // 4, ties), "db2")
    (hosts / "db2").mkdir(parents=True)
    with open(hosts / "db2" / "journal.jsonl.1", "wb") as damaged:
        damaged.write("".join(line + "\n" for line in events[:10]).encode())
        damaged.write(b"\0" * padding + b"\n")
        damaged.write("".join(line + "\n" for line in events[10:]).encode())
    write_lines(hosts / "db2" / "journal.jsonl", odd(RECENT * 1000 + 7000, "db2"))
    # web3's rotated copy is a hard link to web1's (a careless rsync): read once, with web1.
    write_lines(hosts / "web3" / "journal.jsonl", lines(timeline(rng, incidents // 4, ties), "web3"))
    os.link(hosts / "web1" / "journal.jsonl.1", hosts / "web3" / "journal.jsonl.1")
    # An empty journal, and a file that is not a journal.
    write_lines(hosts / "spare" / "journal.jsonl", [])
    (hosts / "README").write_text("rsync'd from each host nightly\n")
    return root


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 events of three hosts (about 27 MiB as the workers count it), written once per module."""
    root = tmp_path_factory.mktemp("big") / "fleet"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "report_stream.py"),
            "--write",
            str(root),
            "--events",
            "100000",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root


def masked(text: str) -> str:
    """``text`` with the times a run takes from the clock (the report's "until", a --since's start) masked.

    Any time within ten minutes of now, or of now minus 5 days: the fleet
    has no event near either.
    """
    now = time.time()
    moments = (now, now - 5 * DAY)

    def mask(match: re.Match[str]) -> str:
        value = match.group(0)
        stamp = calendar.timegm(time.strptime(value[:19].replace("T", " "), "%Y-%m-%d %H:%M:%S"))
        return "<clock>" if any(abs(stamp - moment) < 600 for moment in moments) else value

    return re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+Z?)?", mask, text)


def difference(reference: str, other: str) -> str:
    import difflib

    return "\n".join(list(difflib.unified_diff(reference.splitlines(), other.splitlines(), lineterm=""))[:40])


# -- 1. the same output whatever --jobs -----------------------------------

OUTPUTS = {
    "history": ["history"],
    "history-json": ["history", "--json"],
    "history-name-since": ["history", "nginx", "--since", "5d"],
    "history-name-since-json": ["history", "nginx", "--since", "5d", "--json"],
    "history-nothing": ["history", "nosuchcheck", "--since", "2d"],
    # Overlapping --journal values: a glob, then a rotated copy of a journal the glob found.
    "history-overlapping-json": [
        "history",
        "--json",
        "--journal",
        "{fleet}/hosts/*/journal.jsonl",
        "--journal",
        "{fleet}/hosts/web1/journal.jsonl.1",
    ],
    "report-text": ["report", "--since", "all"],
    "report-json": ["report", "--since", "all", "--json"],
    "report-html": ["report", "--since", "all", "--format", "html"],
    "report-5d-json": ["report", "--since", "5d", "--format", "json"],
}


@pytest.mark.parametrize("args", list(OUTPUTS.values()), ids=list(OUTPUTS))
def test_the_output_is_the_same_whatever_jobs(fleet: Path, args: list[str]) -> None:
    outputs: dict[str | None, str] = {}
    if any("{fleet}" in arg for arg in args):
        args = [arg.format(fleet=fleet) for arg in args]
    else:
        args = [*args, "--journal", str(fleet)]
    for jobs in JOBS:
        done = run_selfheal(*args, *([] if jobs is None else ["--jobs", jobs]), timeout=60)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        assert done.stderr == ""
        assert_no_traceback(done.stdout)
        outputs[jobs] = masked(done.stdout)
    reference = outputs["1"]
    assert "web1" in reference  # a host, or at least the FIFO among its copies
    for jobs, text in outputs.items():
        label = "the default" if jobs is None else f"--jobs {jobs}"
        assert text == reference, f"{label} differs from --jobs 1:\n{difference(reference, text)}"


def test_the_fleet_has_what_it_claims(fleet: Path) -> None:
    """The fleet above holds each awkward case, and the default reads it in workers."""
    sources = journals.find([str(fleet)])
    assert len(sources) >= 5
    assert workers.default_count(sources) > 1
    done = run_selfheal("history", "--json", "--journal", fleet, "--jobs", "1")
    assert done.returncode == 0, done.stdout[-2000:]
    data = json.loads(done.stdout)
    problems = "\n".join(data["unreadable"])
    assert "journal.jsonl.3" in problems and "journal.jsonl.4" in problems  # the FIFO and the symlink
    # The corrupt lines, the NUL block and the cut .gz.
    assert data["skipped"] >= len(CORRUPT) + 2
    assert data["dropped_fields"] > 0
    events = data["events"]
    hosts = {event["host"] for event in events}
    assert {"web1", "web2", "db1", "db2", "cache1"} <= hosts
    times: dict[str, set[str]] = {}
    for event in events:
        times.setdefault(event["ts"], set()).add(event["host"])
    assert max(len(h) for h in times.values()) >= 4  # equal times across journals
    assert (
        sum(file.endswith("journal.jsonl.1") for file in data["files"]) == 2
    )  # web1's and db2's, not web3's
    assert any(a["ts"] > b["ts"] for a, b in zip(events, events[1:]))  # a line beyond the sort window


# Few times, so that ties are frequent; kinds that open, end and follow episodes.
KINDS = ("attempt", "action_end", "recovered", "gave_up", "skipped_cooldown", "reset", "paused", "verified")
EVENT = st.tuples(
    st.integers(0, 30), st.sampled_from(KINDS), st.sampled_from(("nginx", "sshd")), st.integers(1, 3),
    st.sampled_from((0, 1, -9, "x")),
)  # fmt: skip
LINE = st.one_of(EVENT, EVENT, EVENT, st.sampled_from(CORRUPT[:6]))
JOURNAL = st.tuples(
    st.lists(LINE, max_size=25), st.booleans(), st.integers(1, 3), st.sampled_from(("dir", "file"))
)


def random_fleet(root: Path, drawn: list[tuple[list[object], bool, int, str]]) -> None:
    """Journals from random event sequences: host on the lines or not, rotated and gzipped or not."""
    for index, (items, with_host, copies, layout) in enumerate(drawn):
        host = f"h{index}"
        text_lines = []
        for item in items:
            if isinstance(item, str):
                text_lines.append(item)
                continue
            second, kind, check, attempt, code = item  # type: ignore[misc]
            event: dict[str, object] = {"event": kind, "check": check, "attempt": attempt, "exit_code": code}
            if kind == "recovered":
                event["time_to_recover"] = second * 7.5
            text_lines += lines([((RECENT + second) * 1000, event)], host if with_host else None)
        path = root / "hosts" / host / "journal.jsonl" if layout == "dir" else root / f"{host}.jsonl"
        parts = [text_lines[i::copies] for i in range(copies)]  # interleaved: out of order across copies
        write_lines(path, parts[0])
        for number, part in enumerate(parts[1:], 1):
            rotated = path.with_name(f"{path.name}.{number}" + (".gz" if number == 2 else ""))
            write_lines(rotated, part, packed=number == 2)


def test_a_hundred_and_fifty_journals_read_in_sixty_four_workers(tmp_path: Path) -> None:
    """Many journals: each gets a small sort window, which their interleaved copies overrun."""
    rng = random.Random(3)
    drawn = []
    for _ in range(150):
        items: list[object] = [
            (
                rng.randrange(30),
                rng.choice(KINDS),
                rng.choice(("nginx", "sshd")),
                rng.randrange(1, 4),
                rng.choice((0, 1)),
            )
            for _ in range(rng.randrange(120))
        ]
        drawn.append((items, rng.random() < 0.5, rng.randrange(1, 4), rng.choice(("dir", "file"))))
    random_fleet(tmp_path, drawn)
    for args in (["history"], ["history", "--json"], ["report", "--since", "all", "--json"]):
        outputs = {}
        for jobs in ("1", "64"):
            done = run_selfheal(*args, "--journal", tmp_path, "--jobs", jobs, timeout=60)
            assert (done.returncode, done.stderr) == (0, ""), done.stdout[-2000:] + done.stderr
            outputs[jobs] = masked(done.stdout)
        assert outputs["64"] == outputs["1"], difference(outputs["1"], outputs["64"])
    events = json.loads(run_selfheal("history", "--json", "--journal", tmp_path, "--jobs", "1").stdout)[
        "events"
    ]
    assert len({event["host"] for event in events}) > 100
    assert any(a["ts"] > b["ts"] for a, b in zip(events, events[1:]))  # lines beyond the small windows


def cli(*args: object) -> tuple[int, str]:
    """The command in this process: its workers are forks of the test."""
    out = io.StringIO()
    code = main([str(a) for a in args], env={"SELFHEAL_CONFIG": "/nonexistent/selfheal.yaml"}, stdout=out)
    assert_no_traceback(out.getvalue())
    return code, out.getvalue()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=st.lists(JOURNAL, min_size=2, max_size=5))
def test_random_fleets_read_the_same_in_one_process_and_in_three(
    drawn: list[tuple[list[object], bool, int, str]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        random_fleet(root, drawn)
        for args in (
            ["history"],
            ["history", "--json"],
            ["history", "sshd", "--json"],
            ["report", "--since", "all", "--json"],
        ):
            results = [cli(*args, "--journal", root, "--jobs", jobs) for jobs in ("1", "3", "2")]
            texts = [(code, masked(text)) for code, text in results]
            assert texts[0][0] == 0, texts[0][1]
            assert texts[1] == texts[0], difference(texts[0][1], texts[1][1])
            assert texts[2] == texts[0], difference(texts[0][1], texts[2][1])


# -- processes: found through /proc, by a marker in their environment -----

MARKER = "SELFHEAL_TEST_MARKER"


def marked(marker: str) -> list[int]:
    """The live processes whose environment holds the marker (the command and its workers, forks of it).

    A zombie has no environment left: it has ended and counts as gone.
    """
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environment = Path("/proc", entry, "environ").read_bytes()
            except OSError:
                continue
            if needle in environment.split(b"\0"):
                found.append(int(entry))
    return found


def children(pid: int) -> list[int]:
    kids = []
    try:
        for task in Path("/proc", str(pid), "task").iterdir():
            kids += [int(kid) for kid in (task / "children").read_text().split()]
    except OSError:
        pass  # it has ended
    return kids


def reading(pid: int) -> list[str]:
    """The journal files process ``pid`` has open."""
    files = []
    try:
        for fd in Path("/proc", str(pid), "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if ".jsonl" in target:
                files.append(target)
    except OSError:
        pass
    return files


#: The number of the write system call, by machine.
WRITE = {"x86_64": "1", "aarch64": "64", "i686": "4", "armv7l": "4"}


def writing_stdout(pid: int) -> bool:
    """Whether ``pid`` is in a write to its stdout (blocked on a full pipe, when it stays there)."""
    try:
        call = Path("/proc", str(pid), "syscall").read_text().split()
    except OSError:
        return False
    return call[:2] == [WRITE.get(os.uname().machine, "1"), "0x1"]


def start(marker: str, *args: object, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        selfheal_argv(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(**{MARKER: marker}),
        **kwargs,
    )


def none_left(marker: str) -> None:
    """Wait (30 s at most: not a bound on speed, a bound on a hang) until no marked process lives."""
    deadline = time.monotonic() + 30
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {
        pid: Path("/proc", str(pid), "cmdline").read_bytes().replace(b"\0", b" ") for pid in marked(marker)
    }
    assert not left, f"processes left behind: {left}"


def end_marked(marker: str, command: subprocess.Popen[bytes]) -> None:
    """After a failed test: end what this test started, by pid, and close its pipes."""
    for pid in marked(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    command.wait(timeout=30)
    for stream in (command.stdout, command.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def marker() -> str:
    return uuid.uuid4().hex


# -- 2. the reader goes away: `selfheal history | head -1` ----------------


@pytest.mark.parametrize("form", [[], ["--json"]], ids=["text", "json"])
def test_a_reader_that_leaves_after_one_line_leaves_no_process(
    big: Path, marker: str, form: list[str]
) -> None:
    command = start(marker, "history", *form, "--journal", big)
    try:
        assert command.stdout is not None and command.stderr is not None
        first = command.stdout.readline()
        assert first.strip(), command.stderr.read()
        # The default reads this fleet in workers: the command blocks on its full pipe, they on theirs.
        wait_for(lambda: len(children(command.pid)) >= 2, 30, what="the default's workers")
        command.stdout.close()  # as `head -1` exits
        code = command.wait(timeout=60)
        errors = command.stderr.read().decode()
        assert code == 0, errors
        assert errors == ""
        none_left(marker)
    finally:
        end_marked(marker, command)


# -- 3. Ctrl-C -----------------------------------------------------------------


def interrupt(big: Path, to: str, read: int) -> tuple[int, str, str]:
    """``history`` interrupted (SIGINT) while it waits on its reader: its exit code, output and errors.

    Its own session, as a shell's job: the terminal's Ctrl-C goes to the
    whole process group; ``kill -INT PID`` to the command alone. The
    reader takes ``read`` lines and then stops, so the command waits in a
    write to its full stdout, as it mostly does: the listing is far bigger
    than a pipe.
    """
    marker = uuid.uuid4().hex
    command = start(marker, "history", "--journal", big, start_new_session=True)
    try:
        assert command.stdout is not None and command.stderr is not None
        first = b"".join(command.stdout.readline() for _ in range(read))
        assert first.count(b"\n") == read, command.stderr.read()
        wait_for(lambda: len(children(command.pid)) >= 2, 30, what="the default's workers")
        wait_for(lambda: writing_stdout(command.pid), 30, what="the command to wait on its full stdout")
        if to == "group":
            os.killpg(command.pid, signal.SIGINT)
        else:
            os.kill(command.pid, signal.SIGINT)
        rest = command.stdout.read()
        errors = command.stderr.read().decode()
        code = command.wait(timeout=60)
        none_left(marker)
    finally:
        end_marked(marker, command)
    return code, (first + rest).decode(), errors


@pytest.mark.parametrize("to", ["group", "command"])
def test_ctrl_c_while_reading_says_interrupted_and_leaves_no_process(big: Path, to: str) -> None:
    # Where the interrupted write stopped varies from run to run: a few runs, in the table's first
    # write (read=1) and in the later ones (read=3000).
    glued = []
    for read in (1, 3000, 1, 3000):
        code, text, errors = interrupt(big, to, read)
        assert_no_traceback(text, errors)
        assert (code, errors) == (3, "")
        last = text.splitlines()[-1]
        assert last.endswith("selfheal history: interrupted"), text[-500:]
        if last != "selfheal history: interrupted":
            glued.append(last)
    # Its own line, not glued to a row the interrupted write cut short.
    assert not glued, glued


# -- 4. a worker killed -------------------------------------------------------


@pytest.fixture(scope="module")
def big_listing(big: Path) -> dict[str, str]:
    """The big fleet's history read in one process, the reference for a run whose worker was killed."""
    listing = {}
    for form in ("text", "json"):
        done = run_selfheal(
            "history", *(["--json"] if form == "json" else []), "--journal", big, "--jobs", "1"
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        listing[form] = done.stdout
    return listing


def rows_by_host(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """History's table rows by their HOST column, and the notes after the table (``(skipped ...)``)."""
    header, *rest = text.splitlines()
    left, right = header.index("HOST"), header.index("CHECK")
    rows: dict[str, list[str]] = {}
    notes = []
    for line in rest:
        if line.startswith("("):
            notes.append(line)
        else:
            rows.setdefault(line[left:right].strip(), []).append(line)
    return rows, notes


@pytest.mark.parametrize("form", ["text", "json"])
def test_a_worker_killed_is_named_and_what_it_sent_is_listed(
    big: Path, big_listing: dict[str, str], marker: str, form: str
) -> None:
    command = start(
        marker, "history", *(["--json"] if form == "json" else []), "--journal", big, "--jobs", "3"
    )
    victim_host = "web1"
    try:
        assert command.stdout is not None and command.stderr is not None
        # Fifty lines printed: the merge has taken a first batch from every worker (it needs each one's
        # first event before it prints any), so the killed one has sent some of its events.
        first = b"".join(command.stdout.readline() for _ in range(50))
        assert first.count(b"\n") == 50, command.stderr.read()

        def victim() -> int | None:
            # The command stops reading while its stdout is full: its workers wait on their pipes, mid-journal.
            kids = children(command.pid)
            if len(kids) != 3:
                return None
            hosts = {kid: reading(kid) for kid in kids}
            return next(
                (kid for kid, files in hosts.items() if any(f"/{victim_host}/" in f for f in files)), None
            )

        pid = wait_for(victim, 30, what=f"the worker reading {victim_host}'s journal")
        os.kill(pid, signal.SIGKILL)
        rest = command.stdout.read()
        errors = command.stderr.read().decode()
        code = command.wait(timeout=60)
        text = (first + rest).decode()
        assert_no_traceback(text, errors)
        assert (code, errors) == (0, "")
        none_left(marker)
    finally:
        end_marked(marker, command)
    named = f"{big / 'hosts' / victim_host / 'journal.jsonl'}: reading stopped early (its reader was killed by SIGKILL)"
    reference = big_listing[form]
    if form == "text":
        rows, notes = rows_by_host(text)
        expected, expected_notes = rows_by_host(reference)
        assert notes == [*expected_notes, f"(skipped {named})"]
    else:
        data = json.loads(text)
        whole = json.loads(reference)
        assert data["unreadable"] == [*whole["unreadable"], named]
        rows, expected = {}, {}
        for listing, events in ((rows, data["events"]), (expected, whole["events"])):
            for event in events:
                listing.setdefault(event["host"], []).append(json.dumps(event))
    # The other workers' journals are listed whole; the killed one's up to where it was killed.
    assert set(expected) == {"web1", "web2", "db1"}
    for host in ("web2", "db1"):
        assert rows[host] == expected[host], host
    sent = rows.get(victim_host, [])
    assert 0 < len(sent) < len(expected[victim_host])
    assert sent == expected[victim_host][: len(sent)]


# -- 5. Workers itself, in this process ---------------------------------------


def groups(count: int) -> list[list[Source]]:
    """``count`` groups of one made-up journal each: the ``work`` functions below read no file."""
    return [[Source(f"journal{n}", [], f"host{n}")] for n in range(count)]


class Refused(SelfhealError):
    exit_code = 1


def failing(exc: Exception) -> Callable[[list[Source], Reading], Iterator[object]]:
    def work(group: list[Source], found: Reading) -> Iterator[object]:
        if group[0].path == "journal1":
            yield from range(2000)  # several batches sent before the error
            raise exc
        yield from range(10)

    return work


@pytest.mark.parametrize(
    ("exc", "text", "code"),
    [
        (Refused("journal1: refused by the test"), "journal1: refused by the test", 1),
        (KeyError("ts"), "KeyError", None),
    ],
    ids=["selfheal-error", "other-error"],
)
def test_an_error_in_a_worker_is_raised_in_the_command(exc: Exception, text: str, code: int | None) -> None:
    with pytest.raises(Exception) as raised, workers.Workers(groups(3), failing(exc), Reading()) as running:
        pids = list(running.pids)
        for stream in running.streams():
            list(stream)
    if code is not None:
        assert isinstance(raised.value, SelfhealError)
        assert (str(raised.value), raised.value.exit_code) == (text, code)
    else:
        assert not isinstance(raised.value, SelfhealError)
        assert text in str(raised.value) and "'ts'" in str(raised.value)
    reaped(pids)


def reaped(pids: list[int]) -> None:
    """Each worker ended and reaped: no longer a child of this process, not even a zombie."""
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_worker_that_exits_mid_stream_is_named_with_its_exit_code() -> None:
    def work(group: list[Source], found: Reading) -> Iterator[object]:
        found.files.append(group[0].path)
        for n in range(5000):
            if n == 3000 and group[0].path == "journal1":
                os._exit(7)
            yield n

    found = Reading()
    with workers.Workers(groups(3), work, found) as running:
        pids = list(running.pids)
        items = [list(stream) for stream in running.streams()]
    assert items[0] == items[2] == list(range(5000))
    assert items[1] == list(range(len(items[1])))  # what it sent, in order, and nothing after
    assert found.unreadable == ["journal1: reading stopped early (its reader exited 7)"]
    assert found.files == ["journal0", "journal2"]  # the dead worker's own reading never came
    reaped(pids)


def test_leaving_early_ends_and_reaps_every_worker() -> None:
    def endless(group: list[Source], found: Reading) -> Iterator[object]:
        n = 0
        while True:  # a worker that would never end by itself
            yield n
            n += 1

    with workers.Workers(groups(4), endless, Reading()) as running:
        pids = list(running.pids)
        stream = running.streams()[1]
        taken = [next(stream) for _ in range(3)]
    assert taken == [0, 1, 2]
    reaped(pids)


def test_items_arrive_in_order_and_readings_are_added_in_worker_order() -> None:
    def work(group: list[Source], found: Reading) -> Iterator[object]:
        n = int(group[0].path[-1])
        if n == 0:
            time.sleep(0.5)  # the first worker finishes last
        found.skipped += n + 1
        found.files.append(f"file{n}")
        found.unreadable.append(f"problem{n}")
        yield from ((n, i) for i in range(1500))

    found = Reading()
    found.unreadable.append("found while listing")
    with workers.Workers(groups(3), work, found) as running:
        pids = list(running.pids)
        streams = running.streams()
        # Taken last first: the readings must still be added in the workers' order.
        items = {n: list(streams[n]) for n in (2, 1, 0)}
    assert all(items[n] == [(n, i) for i in range(1500)] for n in range(3))
    assert found.files == ["file0", "file1", "file2"]
    assert found.unreadable == ["found while listing", "problem0", "problem1", "problem2"]
    assert found.skipped == 6
    reaped(pids)


# -- 6. bad --jobs -----------------------------------------------------------------

BAD_JOBS = {
    "zero": "0",
    "negative": "-1",
    "65": "65",
    "a-word": "x",
    "a-fraction": "1.5",
    "empty": "",
    "huge": "99999999999999999999999",
    # Longer than Python's int() converts (4300 digits since 3.11): still a number, still too many.
    "5000-digits": "9" * 5000,
    "arabic-indic-3": "\u0663",
    "superscript-3": "\u00b3",
    "leading-space": " 3",
    "trailing-space": "3 ",
    "plus-sign": "+3",
    "newline": "3\n4",
}


@pytest.mark.parametrize("command", ["history", "report"])
@pytest.mark.parametrize("value", list(BAD_JOBS.values()), ids=list(BAD_JOBS))
def test_bad_jobs_is_one_line_for_a_person(fleet: Path, command: str, value: str) -> None:
    done = run_selfheal(command, "--journal", fleet, "--jobs", value)
    assert_no_traceback(done.stdout, done.stderr)
    assert done.stderr == ""
    assert done.stdout.startswith(f"selfheal {command}: bad --jobs: "), done.stdout[:300]
    assert done.stdout.count("\n") == 1 and done.stdout.endswith("\n"), done.stdout[:300]
    assert done.returncode == 3


@pytest.fixture(scope="module")
def fleet_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    random_fleet(root, [([(n, "attempt", "nginx", 1, 0) for n in range(5)], True, 2, "dir")] * 3)
    return root


def valid_jobs(value: str) -> bool:
    """1 to 64 in ASCII digits (leading zeros allowed, as for any count on a command line)."""
    digits = value.lstrip("0")
    return re.fullmatch(r"[0-9]{1,2}", digits) is not None and 1 <= int(digits) <= 64


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.text(),
        st.integers().map(str),
        st.from_regex(r"\A[0-9]{1,6000}\Z"),
        st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=3),
    ),
    command=st.sampled_from(["history", "report"]),
)
def test_fuzzed_jobs_is_one_line_or_runs(fleet_small: Path, value: str, command: str) -> None:
    code, text = cli(command, "--journal", fleet_small, "--jobs", value)
    if valid_jobs(value):
        assert code == 0, text
        return
    assert text.startswith(f"selfheal {command}: bad --jobs: "), (value[:20], text[:300])
    assert text.count("\n") == 1 and text.endswith("\n"), text[:300]
    assert code == 3


# -- more: ties among the report's listed episodes; a killed report worker; the command killed --------


def test_the_listed_episodes_are_the_same_whatever_jobs_when_their_times_tie(tmp_path: Path) -> None:
    """Two journals of one host whose episodes start and end at the same times but went differently.

    More ended episodes than the report lists (500) and than it keeps
    while reading (1000): which of the tied ones are listed, and in which
    order, must not depend on how the journals were shared out.
    """
    for name, code in (("a", 1), ("b", 0), ("c", 2)):
        events = []
        for n in range(450):
            ms = (RECENT + 600 * n) * 1000
            events.append((ms, {"event": "attempt", "check": "nginx", "attempt": 1, "argv": ["true"]}))
            end: dict[str, object] = {
                "event": "action_end",
                "check": "nginx",
                "attempt": 1,
                "exit_code": code,
            }
            if code:
                end["reason"] = f"failed in journal {name}"
            events.append((ms + 1000, end))
            events.append(
                (ms + 60_000, {"event": "recovered", "check": "nginx", "attempt": 1, "time_to_recover": 60})
            )
        write_lines(tmp_path / name / "web1.jsonl", lines(events, None))  # the file names the host: web1
    outputs = {}
    for jobs in ("1", "2", "3"):
        done = run_selfheal("report", "--since", "all", "--json", "--journal", tmp_path, "--jobs", jobs)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        outputs[jobs] = masked(done.stdout)
    listed = json.loads(outputs["1"])["episodes"]
    assert len(listed) == 500 and len({episode["reason"] for episode in listed}) == 3
    assert outputs["2"] == outputs["1"], difference(outputs["1"], outputs["2"])
    assert outputs["3"] == outputs["1"], difference(outputs["1"], outputs["3"])


def stopped_worker(command: subprocess.Popen[bytes], host: str) -> int | None:
    """A worker of ``command`` stopped (SIGSTOP) while it still reads ``host``'s journal; None if too late."""
    deadline = time.monotonic() + 30
    while command.poll() is None and time.monotonic() < deadline:
        for kid in children(command.pid):
            if any(f"/{host}/" in file for file in reading(kid)):
                os.kill(kid, signal.SIGSTOP)
                # Stopped with a journal open: it has not sent its figures (a report's worker sends them last).
                if any(f"/{host}/" in file for file in reading(kid)):
                    return kid
                os.kill(kid, signal.SIGCONT)
        time.sleep(0.005)
    return None


def test_a_report_worker_killed_is_named_and_the_other_journals_counted(big: Path, marker: str) -> None:
    for _ in range(3):  # a worker may finish before it is caught: then the run is tried again
        command = start(marker, "report", "--since", "all", "--json", "--journal", big, "--jobs", "3")
        try:
            victim = stopped_worker(command, "web1")
            if victim is not None:
                os.kill(victim, signal.SIGKILL)
            out, errors = command.communicate(timeout=120)
            assert_no_traceback(out.decode(), errors.decode())
            assert (command.returncode, errors) == (0, b"")
            none_left(marker)
        finally:
            end_marked(marker, command)
        if victim is not None:
            break
    else:
        pytest.fail("the worker reading web1 ended each time before it could be stopped")
    killed = json.loads(out)
    others = run_selfheal(
        "report",
        "--since",
        "all",
        "--json",
        "--journal",
        big / "hosts" / "db1",
        "--journal",
        big / "hosts" / "web2",
    )
    assert others.returncode == 0, others.stdout[-2000:]
    expected = json.loads(others.stdout)
    named = f"{big / 'hosts' / 'web1' / 'journal.jsonl'}: reading stopped early (its reader was killed by SIGKILL)"
    assert killed.pop("unreadable") == [named]
    for data in (killed, expected):
        for key in ("until", "journal", "journals", "unreadable"):
            data.pop(key, None)
    assert killed == expected
    assert {host["name"] for host in killed["hosts"]} == {"db1", "web2"}


@pytest.mark.parametrize("args", [["history"], ["report", "--since", "all"]], ids=["history", "report"])
def test_workers_end_when_their_command_is_killed(big: Path, marker: str, args: list[str]) -> None:
    """SIGKILL to the command alone (the OOM killer, `kill -9 PID`): its workers end by themselves."""
    command = start(marker, *args, "--journal", big, "--jobs", "3")
    try:
        wait_for(lambda: len(children(command.pid)) == 3, 30, what="the command's workers")
        os.kill(command.pid, signal.SIGKILL)
        command.wait(timeout=30)
        none_left(marker)
    finally:
        end_marked(marker, command)

"""Fuzzing the state record and journal boundaries, by property (issue 11).

Every case runs through the real command line in a process that has not
imported ``json`` before it (``fuzz_child.py``, ``python -I -S``), where
the jsonio fast path meets its errors alone. The properties are the
invariants of issue 11:

- records (arbitrary JSON, raw bytes, and mutations and truncations of a
  real record): ``status``, an OK ``wrap`` and a CRITICAL ``wrap`` never
  print a traceback or "internal error"; OK stays OK, exit 0; a CRITICAL
  run with a record that does not load is moved aside, journaled, and heals;
- journal lines (the same kinds, spread over the current, a rotated and a
  gzipped file): ``history``, ``history --json`` and ``report`` in text,
  JSON and HTML always answer, exit 0, and their JSON is strict JSON;
- a fleet's journals (issue 15): trees of journals, rotated and damaged
  copies, FIFOs, directories and symlinks where a journal belongs, and
  ``--journal`` files, directories and globs that match or not: the
  reading, or one line for a person (exit 1);
- jsonio against json, on truncations and mutations of real records and
  journal lines: the same value, or a ValueError from both.

Bounded by ``fuzz_support.fuzz_settings`` (about 30 s together in CI);
``SELFHEAL_FUZZ_SCALE=10`` hunts longer. Each test prints its figure line
for docs/reliability.md.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY
from fuzz_support import FuzzCli, assert_clean, fuzz_settings
from harness import figure
from hypothesis import given
from hypothesis import strategies as st

from selfheal.core import jsonio
from selfheal.core.record import CorruptRecord, load_record
from selfheal.edges.journal import iso_utc

NAME = "web"
NOW = time.time()

REAL_RECORD = {
    "version": 1,
    "check": NAME,
    "last_state": 2,
    "last_change": NOW - 900,
    "ok_since": None,
    "open_since": NOW - 900,
    "streak": 1,
    "reset_at": None,
    "attempts": [
        {
            "id": "5f0c9a1b2c3d",
            "number": 1,
            "started": NOW - 900,
            "action": "true",
            "argv": ["true"],
            "pid": 4242,
            "create_time": NOW - 900,
            "ended": NOW - 899,
            "exit_code": 0,
            "timed_out": False,
            "duration": 0.8,
            "error": None,
            "log": "/var/lib/selfheal/web.heal-5f0c9a1b2c3d.log",
        }
    ],
    "gave_up_at": None,
    "cooldown_noted": None,
    "paused_until": None,
    "pause_reason": None,
    "heals_total": 1,
    "heals_succeeded": 1,
    "heals_failed": 0,
    "heals_timed_out": 0,
    "gave_up_total": 0,
    "policy": {"cooldown": 900.0, "backoff": 2.0, "max_cooldown": 14400.0, "max_attempts": 3},
}

REAL_EVENTS = [
    {"event": "attempt", "attempt": 1, "argv": ["systemctl", "restart", "web"], "pid": 4242},
    {
        "event": "action_end",
        "attempt": 1,
        "exit_code": 1,
        "duration": 0.8,
        "timed_out": False,
        "reason": "no",
    },
    {"event": "recovered", "attempt": 1, "time_to_recover": 42.5},
    {"event": "paused", "until": "2026-11-28T05:00:00.000Z", "duration": 7200, "by": "root"},
    {"event": "state_error", "reason": "corrupt state record: moved aside"},
    {"event": "gave_up", "attempt": 3, "reason": "3 attempts within 6h"},
]

ODD_NUMBERS = [math.nan, math.inf, -math.inf, 1e300, -1e300, 10**30, -(10**30), -1, 0, 2**63, 253402300800.0]
ODD_TIMES = [
    "9999-12-31T23:59:59.999Z",
    "10000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "2026-11-28T03:10:06.NaNZ",
    "",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_NUMBERS),
    st.text(max_size=20),
    st.sampled_from(ODD_TIMES),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
deep = st.integers(min_value=2, max_value=3000).map(lambda n: "[" * n + "]" * n)


def dumps(value: object) -> str:
    return json.dumps(value)  # NaN and Infinity as json writes them: tokens the reader must survive


@st.composite
def mutated(draw: st.DrawFn, real: dict[str, object]) -> str:
    """A real document with one field replaced, truncated, or a character changed."""
    how = draw(st.sampled_from(["field", "attempt-field", "truncate", "replace", "insert", "delete", "deep"]))
    if how in ("field", "attempt-field") and (how == "field" or "attempts" in real):
        value = dict(real)
        target = value
        if how == "attempt-field":
            target = dict(real["attempts"][0])  # type: ignore[index]
            value["attempts"] = [target]
        key = draw(st.sampled_from(sorted(target)) | st.text(max_size=6))
        target[key] = draw(json_values)
        return dumps(value)
    text = dumps(real)
    if how == "deep":
        key = draw(st.sampled_from(sorted(real)))
        return dumps({**real, key: None}).replace("null", draw(deep), 1)
    at = draw(st.integers(min_value=0, max_value=len(text)))
    if how == "truncate":
        return text[:at]
    char = draw(st.sampled_from(list('{}[]",:0-eE.\\ntfaNI\x00\x1b')) | st.characters())
    if how == "replace":
        return text[:at] + char + text[at + 1 :]
    if how == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + text[at + 1 :]


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # lone surrogates: bytes that are not UTF-8


record_bytes = st.one_of(
    mutated(REAL_RECORD).map(encode),
    json_values.map(dumps).map(encode),
    st.binary(max_size=200),
)


def event_line(event: dict[str, object]) -> dict[str, object]:
    return {"ts": iso_utc(NOW - 3600), "host": "h", "check": NAME, **event}


journal_lines = st.one_of(
    st.sampled_from(REAL_EVENTS).map(event_line).map(dumps),
    st.sampled_from(REAL_EVENTS).map(event_line).flatmap(mutated),
    json_values.map(dumps),
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    deep,
)


@pytest.fixture(scope="module")
def cli() -> Iterator[FuzzCli]:
    child = FuzzCli()
    yield child
    child.close()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Module-wide: hypothesis runs many examples per test function, and the
    # detached heal runners may still write into a case's state dir.
    path = Path(tempfile.mkdtemp(prefix="selfheal-fuzz-"))
    yield path
    time.sleep(0.5)
    shutil.rmtree(path, ignore_errors=True)


def fresh_state(workdir: Path) -> Path:
    state = Path(tempfile.mkdtemp(dir=workdir))
    state.chmod(0o700)
    return state


def wrap(cli: FuzzCli, state: Path, code: int) -> tuple[int, str]:
    result = cli.run(
        *("wrap", "--name", NAME, "--heal", "true", "--state-dir", state, "--grace", "0"),
        *("--", CHECK_DUMMY, code, "dummy"),
    )
    assert_clean(*result)
    return result[0], result[1]


def strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def loads_or_error(load, text: str) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "value", repr(load(text))
    except (ValueError, RecursionError):  # json's own answer to a deep document is RecursionError
        return "error", None


RECORD_CASES = {"tried": 0, "corrupt": 0}
JOURNAL_CASES = {"tried": 0}
FLEET_CASES = {"tried": 0}
DIFFERENTIAL = {"tried": 0}


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    """One figure line per fuzzer that ran, for docs/reliability.md."""
    yield
    if RECORD_CASES["tried"]:
        figure("fuzzed records: status, OK and CRITICAL wrap, no json imported", **RECORD_CASES)
    if JOURNAL_CASES["tried"]:
        figure("fuzzed journal lines (current, rotated, gzipped): history, report", **JOURNAL_CASES)
    if FLEET_CASES["tried"]:
        figure("fuzzed fleet journals (dirs, globs, FIFOs, damaged .gz): history, report", **FLEET_CASES)
    if DIFFERENTIAL["tried"]:
        figure("jsonio against json: mutated records and journal lines", **DIFFERENTIAL)


@fuzz_settings(40)
@given(data=record_bytes)
def test_fuzzed_records_never_break_a_run(cli: FuzzCli, workdir: Path, data: bytes) -> None:
    state = fresh_state(workdir)
    (state / f"{NAME}.json").write_bytes(data)
    try:
        load_record(data, NAME)
        corrupt = False
    except CorruptRecord:
        corrupt = True
    code, out, err = cli.run("status", "--state-dir", state, "--json")
    assert_clean(code, out, err)
    assert code == 0, out
    strict(out)
    code, out = wrap(cli, state, 0)
    assert code == 0 and out.startswith(f"{NAME.upper()} OK"), out
    code, out = wrap(cli, state, 2)
    if corrupt:
        assert code == 1 and "self-healing: started" in out, out
        assert len(list(state.glob(f"{NAME}.json.corrupt-*"))) == 1
    else:
        assert code in (1, 2) and "self-healing" in out, out
    RECORD_CASES["tried"] += 1
    RECORD_CASES["corrupt"] += corrupt


@fuzz_settings(40)
@given(
    current=st.lists(journal_lines, max_size=6),
    rotated=st.lists(journal_lines, max_size=4),
    gzipped=st.lists(journal_lines, max_size=4),
    cut_gzip=st.booleans(),
)
def test_fuzzed_journal_lines_never_break_history_or_report(
    cli: FuzzCli, workdir: Path, current: list[str], rotated: list[str], gzipped: list[str], cut_gzip: bool
) -> None:
    state = fresh_state(workdir)
    (state / "journal.jsonl").write_bytes(encode("\n".join(current) + "\n"))
    (state / "journal.jsonl.1").write_bytes(encode("\n".join(rotated)))
    packed = gzip.compress(encode("\n".join(gzipped) + "\n"))
    (state / "journal.jsonl.2.gz").write_bytes(packed[: len(packed) // 2] if cut_gzip else packed)
    for args in (("history",), ("history", "--json")):
        code, out, err = cli.run(*args, "--state-dir", state)
        assert_clean(code, out, err)
        assert code == 0, out
        if "--json" in args:
            strict(out)
    for fmt in ("text", "json", "html"):
        code, out, err = cli.run("report", "--since", "all", "--format", fmt, "--state-dir", state)
        assert_clean(code, out, err)
        assert code == 0, out
        if fmt == "json":
            strict(out)
        if fmt == "html":
            page = strict(out.split('id="report-data">', 1)[1].split("</script>", 1)[0])
            assert len(page["days"]) <= 400  # type: ignore[index]
    JOURNAL_CASES["tried"] += 1


#: What a fleet's journal directory may hold: journals and rotated copies, and what is not one.
FLEET_FILES = [
    "journal.jsonl", "journal.jsonl.1", "journal.jsonl.2.gz", "journal.jsonl-20261128.gz", "web9.jsonl",
    "notes.txt", "fifo:journal.jsonl", "fifo:journal.jsonl.3", "dir:journal.jsonl.4", "link:journal.jsonl.5",
]  # fmt: skip
#: ``--journal`` values, relative to the fleet's root (made absolute), or a missing place.
FLEET_SPECS = [
    "hosts", "hosts/*", "hosts/*/journal.jsonl*", "hosts/web1/journal.jsonl", "hosts/web2", "hosts/web1/*.gz",
    "hosts/nowhere/*", "missing.jsonl", "hosts/db 3/journal.jsonl.1", "hosts/[", "",
]  # fmt: skip


@fuzz_settings(40)
@given(
    layout=st.dictionaries(
        st.sampled_from(["web1", "web2", "db 3"]),
        st.lists(
            st.tuples(st.sampled_from(FLEET_FILES), st.lists(journal_lines, max_size=4), st.booleans()),
            max_size=4,
        ),
        max_size=3,
    ),
    specs=st.lists(st.sampled_from(FLEET_SPECS), min_size=1, max_size=3),
)
def test_fuzzed_fleet_journals_never_break_history_or_report(
    cli: FuzzCli, workdir: Path, layout: dict[str, list[tuple[str, list[str], bool]]], specs: list[str]
) -> None:
    """Many journals (issue 15): any tree of journals, FIFOs, damaged .gz and odd --journal values.

    Every answer is either the reading (exit 0, strict JSON for --json) or
    one line for a person (exit 1): never a traceback, never a hang (a FIFO
    is never opened for a blocking read: the child would stop answering).
    """
    root = fresh_state(workdir)
    for host, files in layout.items():
        place = root / "hosts" / host
        place.mkdir(parents=True, exist_ok=True)
        for name, lines, cut in files:
            kind, _, name = name.rpartition(":")
            path = place / name
            if path.exists() or path.is_symlink():
                continue
            if kind == "fifo":
                os.mkfifo(path)
            elif kind == "dir":
                path.mkdir()
            elif kind == "link":
                path.symlink_to(place / "journal.jsonl")
            else:
                data = encode("\n".join(lines) + "\n")
                if name.endswith(".gz"):
                    data = gzip.compress(data)
                path.write_bytes(data[: len(data) // 2] if cut else data)
    args = [word for spec in specs for word in ("--journal", str(root / spec) if spec else "")]
    runs = [("history", *args), ("history", "--json", *args)]
    runs += [("report", "--since", "all", "--format", fmt, *args) for fmt in ("text", "json", "html")]
    for run in runs:
        code, out, err = cli.run(*run)
        assert_clean(code, out, err)
        if code == 1:
            assert out.count("\n") == 1 and out.startswith(f"selfheal {run[0]}: "), out
            continue
        assert code == 0, out
        if "--json" in run or "json" in run:
            strict(out)
    FLEET_CASES["tried"] += 1


@fuzz_settings(400)
@given(
    text=st.one_of(
        mutated(REAL_RECORD),
        st.sampled_from(REAL_EVENTS).map(event_line).flatmap(mutated),
        json_values.map(dumps),
        st.text(max_size=40),
    )
)
def test_jsonio_reads_what_json_reads(text: str) -> None:
    expected = loads_or_error(json.loads, text)
    if expected[0] == "value" and jsonio.deeper_than(json.loads(text), 50):
        return
    assert loads_or_error(jsonio.loads, text) == expected
    DIFFERENTIAL["tried"] += 1

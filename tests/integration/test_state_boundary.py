"""The state record and journal boundaries against the defects of issue 11.

Each test here failed before its fix. The command lines run in a process
that has not imported ``json`` (``fuzz_child.py``, ``python -I -S``), as a
plugin run is: there, and only there, ``_json`` turned a truncated record
into a SystemError.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, journal_events, wait_for
from fuzz_support import REPO, FuzzCli, assert_clean

from selfheal.core import states
from selfheal.core.decision import decide
from selfheal.core.policy import Policy
from selfheal.core.record import Attempt, Record
from selfheal.edges.journal import iso_utc

NAME = "web"


@pytest.fixture(scope="module")
def cli() -> Iterator[FuzzCli]:
    child = FuzzCli()
    yield child
    child.close()


def json_free(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in ``python -I -S`` with the repo on sys.path, and no json imported."""
    prelude = f"import sys; sys.path.insert(0, {str(REPO)!r}); assert 'json' not in sys.modules\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + code], capture_output=True, text=True, check=False
    )


# -- defect 1: a truncated document, in a process without json -------------------


@pytest.mark.parametrize(
    "text", ['{"a": 1', '"abc', '{"version": 1, "check": "web", "attempts": [{"id": "a1", "numb']
)
def test_a_truncated_document_is_a_value_error_without_json(text: str) -> None:
    result = json_free(
        "from selfheal.core import jsonio\n"
        "jsonio.loads('{\"a\": [1, 2.5, null]}')\n"
        "assert 'json' not in sys.modules, 'the healthy path imported json'\n"
        f"try:\n    jsonio.loads({text!r})\nexcept ValueError as exc:\n    print('ValueError', exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ValueError"), result.stdout


def test_a_truncated_record_is_corrupt_without_json() -> None:
    result = json_free(
        "from selfheal.core.record import CorruptRecord\nfrom selfheal.edges.store import load_record\n"
        'try:\n    load_record(b\'{"version": 1, "check": "web"\', \'web\')\n'
        "except CorruptRecord as exc:\n    print('corrupt:', exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("corrupt:"), result.stdout


# -- defects 2 and 3: deep or impossible records ----------------------------------

REAL = {
    "version": 1,
    "check": NAME,
    "last_state": 2,
    "last_change": time.time() - 120,
    "streak": 1,
    "attempts": [
        {
            "id": "a1b2c3",
            "number": 1,
            "started": time.time() - 120,
            "action": "true",
            "argv": ["true"],
            "pid": None,
            "ended": None,
        }
    ],
    "heals_total": 1,
}


def with_attempt(**fields: object) -> dict[str, object]:
    return {**REAL, "attempts": [{**REAL["attempts"][0], **fields}]}  # type: ignore[index]


BAD_RECORDS: dict[str, bytes] = {
    "nested-lists-2kb": b'{"version": 1, "check": "web", "attempts": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "nested-policy": json.dumps({**REAL, "policy": {"cooldown": [[[[[1]]]]]}}).encode(),
    # A NaN start with no pid was "being spawned right now", for ever.
    "started-nan": json.dumps(with_attempt(started=math.nan, pid=None)).encode(),
    "started-minus-1e300": json.dumps(with_attempt(started=-1e300, ended=-1e300)).encode(),
    "paused-until-infinity": json.dumps({**REAL, "paused_until": math.inf}).encode(),
    "paused-until-1e300": json.dumps({**REAL, "paused_until": 1e300}).encode(),
    "last-state-7": json.dumps({**REAL, "last_state": 7}).encode(),
    "negative-streak": json.dumps({**REAL, "streak": -3}).encode(),
    "attempt-number-0": json.dumps(with_attempt(number=0)).encode(),
    "year-10000": json.dumps({**REAL, "last_change": 253402300800.0}).encode(),
    "exit-code-huge": json.dumps(with_attempt(ended=time.time(), exit_code=10**30)).encode(),
    "policy-nan": json.dumps({**REAL, "policy": {"cooldown": math.nan}}).encode(),
}


def wrap(cli: FuzzCli, state: Path, code: int, *extra: str) -> tuple[int, str]:
    result = cli.run(
        *("wrap", "--name", NAME, "--heal", "true", "--state-dir", state, "--grace", "0", *extra),
        *("--", CHECK_DUMMY, code, "dummy"),
    )
    assert_clean(*result)
    return result[0], result[1]


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_an_impossible_record_leaves_ok_alone_then_is_moved_aside_and_heals(
    cli: FuzzCli, tmp_path: Path, case: str
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / f"{NAME}.json").write_bytes(BAD_RECORDS[case])
    # Invariant 2: OK stays OK, exit 0.
    code, out = wrap(cli, state, 0)
    assert code == 0 and out.startswith(f"{NAME.upper()} OK"), out
    code, out, err = cli.run("status", "--state-dir", state)
    assert_clean(code, out, err)
    assert code == 0, out
    code, out, err = cli.run("status", "--state-dir", state, "--json")
    assert_clean(code, out, err)
    json.loads(out)
    # Invariant 3: the next CRITICAL moves it aside, journals it, and heals.
    code, out = wrap(cli, state, 2)
    assert code == 1 and "self-healing: started" in out, out
    (aside,) = state.glob(f"{NAME}.json.corrupt-*")
    assert aside.read_bytes() == BAD_RECORDS[case]
    (error,) = journal_events(state, "state_error", in_flight=True)
    assert aside.name in str(error["reason"])
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal's end")


def test_a_deep_journal_line_is_one_corrupt_line(cli: FuzzCli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    good = {"ts": iso_utc(time.time() - 60), "host": "h", "event": "attempt", "check": NAME, "attempt": 1}
    lines = [json.dumps(good), '{"ts": "x", "deep": ' + "[" * 5000 + "]" * 5000 + "}", "[" * 100000]
    (state / "journal.jsonl").write_text("\n".join(lines) + "\n")
    for args in (
        ("history",),
        ("history", "--json"),
        *(("report", "--format", f) for f in ("text", "json", "html")),
    ):
        code, out, err = cli.run(*args, "--state-dir", state)
        assert_clean(code, out, err)
        assert code == 0, out
    data = json.loads(cli.run("history", "--json", "--state-dir", state)[1])
    assert data["skipped"] == 2 and len(data["events"]) == 1


# -- defect 4: odd journal values ----------------------------------------------


def strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def odd_journal(state: Path, *extra: dict[str, object]) -> None:
    now = time.time()
    base = {"host": "h", "check": NAME}
    events = [
        {**base, "ts": iso_utc(now - 300), "event": "attempt", "attempt": 1, "argv": 5},
        {**base, "ts": iso_utc(now - 200), "event": "recovered", "time_to_recover": math.nan},
        {**base, "ts": iso_utc(now - 100), "event": "attempt", "attempt": 2, "argv": ["true"]},
        {**base, "ts": iso_utc(now - 50), "event": "recovered", "time_to_recover": math.inf},
        {**base, "ts": iso_utc(now - 40), "event": "action_end", "duration": -math.inf, "exit_code": 1e400},
        *extra,
    ]
    with open(state / "journal.jsonl", "w") as stream:
        for event in events:
            stream.write(json.dumps(event) + "\n")  # json writes NaN and Infinity as such


def test_odd_journal_values_are_dropped_and_json_output_stays_json(cli: FuzzCli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    odd_journal(state)
    code, out, err = cli.run("history", "--state-dir", state)
    assert_clean(code, out, err)
    assert code == 0 and len(re.findall(r" attempt +attempt \d", out)) == 2, out
    data = strict(cli.run("history", "--json", "--state-dir", state)[1])
    assert len(data["events"]) == 5 and data["skipped"] == 0 and data["dropped_fields"] == 5  # type: ignore[index]
    for fmt in ("text", "json", "html"):
        code, out, err = cli.run("report", "--format", fmt, "--state-dir", state)
        assert_clean(code, out, err)
        assert code == 0, out
        if fmt == "json":
            report = strict(out)
            (check,) = report["checks"]  # type: ignore[index]
            assert check["heals_started"] == 2 and check["time_to_recover"]["count"] == 0
        if fmt == "html":
            payload = out.split('id="report-data">', 1)[1].split("</script>", 1)[0]
            strict(payload)


def test_a_year_9999_heal_draws_a_bounded_chart_in_chromium(cli: FuzzCli, tmp_path: Path) -> None:
    from test_report import render_in_chromium

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    far = {"ts": "9999-12-31T23:59:59.000Z", "host": "h", "event": "attempt", "check": NAME, "attempt": 3}
    odd_journal(state, far)
    page = tmp_path / "report.html"
    code, out, err = cli.run("report", "--format", "html", "--since", "all", "-o", page, "--state-dir", state)
    assert_clean(code, out, err)
    assert code == 0, out
    root = render_in_chromium(page, tmp_path / "profile").split(">", 1)[0]
    assert "data-error" not in root, root
    assert 'data-chart="ok"' in root, root
    assert "The chart shows the 400 days up to 9999-12-31" in page.read_text()


# -- lower severity: rotated names that are not files, escapes, attempt 0/N -------------


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_a_rotated_name_that_is_not_a_file_is_skipped(cli: FuzzCli, tmp_path: Path, kind: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    odd_journal(state)
    rotated = state / "journal.jsonl.1"
    if kind == "fifo":
        os.mkfifo(rotated)
    elif kind == "directory":
        rotated.mkdir()
    else:
        (tmp_path / "elsewhere").write_text(json.dumps({"ts": iso_utc(1), "event": "x", "check": "y"}) + "\n")
        rotated.symlink_to(tmp_path / "elsewhere")
    older = state / "journal.jsonl.2.gz"
    older.write_bytes(gzip.compress(b'{"ts": "2001-01-01T00:00:00Z", "event": "reset", "check": "web"}\n'))
    code, out, err = cli.run("history", "--state-dir", state)
    assert_clean(code, out, err)
    assert code == 0 and f"(skipped journal {rotated} " in out and re.search(r" web +reset$", out, re.M), out
    for fmt in ("text", "json", "html"):
        code, out, err = cli.run("report", "--format", fmt, "--state-dir", state)
        assert_clean(code, out, err)
        assert code == 0, out


def test_history_shows_control_characters_as_escapes(cli: FuzzCli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    reason = "exited 1: \x1b[2J\x1b]0;owned\x07 cleared\rline"
    event = {"ts": iso_utc(time.time()), "event": "action_end", "check": NAME, "reason": reason}
    (state / "journal.jsonl").write_text(json.dumps(event) + "\n")
    code, out, err = cli.run("history", "--state-dir", state)
    assert_clean(code, out, err)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out, repr(out)
    assert "\\x1b[2J\\x1b]0;owned\\x07 cleared\\rline" in out, out
    # --json keeps the reason as recorded (JSON escapes it).
    assert json.loads(cli.run("history", "--json", "--state-dir", state)[1])["events"][0]["reason"] == reason


def test_a_reset_during_a_running_heal_never_shows_attempt_0() -> None:
    now = time.time()
    policy = Policy()
    running = Attempt(id="a", number=2, started=now - 10, action="restart web", argv=["true"], pid=7)
    record = Record(check=NAME, streak=0, reset_at=now - 5, attempts=[running], heals_total=2)
    decision = decide(states.CRITICAL, record, policy, now, runner_alive=True)
    assert decision.row == 5
    assert "attempt 1/3" in decision.note, decision.note

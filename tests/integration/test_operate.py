"""status, history, reset, pause and resume on a real state dir and journal.

The state and journal come from real ``selfheal wrap`` runs around
``check_dummy`` with real (detached) heals, as Nagios would run them; the
operating commands then read or change them, and the next check run
shows the change in the decision table.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, assert_no_traceback, journal_events, run_selfheal, wait_for

from selfheal.cli import main

FAST = ("--grace", "0", "--cooldown", "1h", "--reset-after", "1h")
NO_COOLDOWN = ("--cooldown", "0")


def wrap(state: Path, name: str, code: int, *policy: str, heal: str = "true", downtime: str | None = None):  # type: ignore[no-untyped-def]
    args = ["wrap", "--name", name, "--heal", heal, "--state-dir", state, *FAST, *policy]
    if downtime is not None:
        args += ["--downtime", downtime]
    result = run_selfheal(*args, "--", CHECK_DUMMY, code, f"state {code}")
    assert_no_traceback(result.stdout, result.stderr)
    return result


def heal_and_wait(state: Path, name: str, *policy: str, heal: str = "true") -> None:
    """One CRITICAL run that starts a heal, then wait for the runner to finish."""
    before = len([e for e in journal_events(state, "action_end") if e["check"] == name])
    result = wrap(state, name, 2, *policy, heal=heal)
    assert result.returncode == 1 and "self-healing: started" in result.stdout, result.stdout
    wait_for(
        lambda: (
            len([e for e in journal_events(state, "action_end", in_flight=True) if e["check"] == name])
            > before
        ),
        20,
        what=f"{name}'s heal to end",
    )


def cli(*args: object, tty: bool = False, env: dict[str, str] | None = None) -> tuple[int, str]:
    out: io.StringIO = _Tty() if tty else io.StringIO()
    code = main([str(a) for a in args], env=env or {"PATH": "/usr/bin:/bin"}, stdout=out)
    text = out.getvalue()
    assert_no_traceback(text)
    return code, text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def healed(tmp_path: Path) -> Path:
    """web: healed once and recovered; db: healed once, still CRITICAL."""
    state = tmp_path / "state"
    heal_and_wait(state, "web", "--max-attempts", "4")
    assert wrap(state, "web", 0, "--max-attempts", "4").returncode == 0
    heal_and_wait(state, "db", heal="sh -c 'echo db will not start; exit 7'")
    assert wrap(state, "db", 2).returncode == 2  # did not help: cooldown
    return state


def test_status_json_agrees_with_the_journal(healed: Path) -> None:
    code, text = cli("status", "--state-dir", healed, "--json")
    assert code == 0
    data = json.loads(text)
    rows = {row["name"]: row for row in data["checks"]}
    assert sorted(rows) == ["db", "web"]
    web, db = rows["web"], rows["db"]
    # web: the max came from its own --max-attempts (no config), and it recovered.
    assert (web["last_state"], web["attempts"], web["max_attempts"], web["heals_total"]) == ("OK", 1, 4, 1)
    assert web["last_heal"]["outcome"] == "exited 0" and web["last_heal"]["recovered"] is True
    assert web["next_attempt"]["verdict"] == "cooldown"
    assert web["running"] is None and web["paused_until"] is None
    # db: failed heal, in its cooldown; the time is the journal's action_end + 1h.
    assert (db["last_state"], db["attempts"], db["max_attempts"]) == ("CRITICAL", 1, 3)
    assert db["last_heal"]["exit_code"] == 7 and db["last_heal"]["recovered"] is False
    end = next(e for e in journal_events(healed, "action_end") if e["check"] == "db")
    assert db["last_heal"]["ended"][:19] == end["ts"][:19]
    assert db["cooldown"] == 3600
    assert db["next_attempt"]["verdict"] == "cooldown"
    from selfheal.commands.history import parse_ts

    assert abs(parse_ts(db["next_attempt"]["after"]) - (parse_ts(end["ts"]) + 3600)) < 1


def test_status_text_is_aligned_and_coloured_only_on_a_tty(healed: Path) -> None:
    code, text = cli("status", "--state-dir", healed)
    assert code == 0 and "\033[" not in text
    lines = text.splitlines()
    assert lines[0].split() == [
        "CHECK", "STATE", "ATTEMPTS", "NEXT", "COOLDOWN", "NEXT", "ATTEMPT", "RUNNING", "PAUSED", "LAST", "HEAL",
    ]  # fmt: skip
    column = lines[0].index("ATTEMPTS")
    assert [line[column : column + 3] for line in lines[1:3]] == ["1/3", "1/4"]
    # db's last run healed with 'true', its attempt with 'sh -c ...': one record, two heals.
    assert lines[3:] == ["* db: one record, two heals: it last ran 'sh -c 'echo db will not start; exit 7'', "
                         "and 'true' uses the same name (wrap --name and the config?)"]  # fmt: skip
    assert re.search(r"^db \*\s+CRITICAL\s+1/3\s+1h\s+after \S+", lines[1])
    assert "#1 at" in lines[1] and "exited 7 (db will not start), not recovered" in lines[1]
    assert "exited 0, recovered" in lines[2]
    _, coloured = cli("status", "--state-dir", healed, tty=True)
    assert "\033[31mCRITICAL\033[0m" in coloured and "\033[32mOK\033[0m" in coloured
    _, plain = cli("status", "--state-dir", healed, tty=True, env={"NO_COLOR": "1"})
    assert "\033[" not in plain
    code, one = cli("status", "web", "--state-dir", healed)
    assert code == 0 and len(one.splitlines()) == 2 and one.splitlines()[1].startswith("web ")


def test_history_lists_events_newest_last(healed: Path) -> None:
    code, text = cli("history", "--state-dir", healed, "--json")
    assert code == 0
    data = json.loads(text)
    kinds = [(e["check"], e["event"]) for e in data["events"]]
    assert kinds == [(e["check"], e["event"]) for e in journal_events(healed)]
    assert ("web", "recovered") in kinds and ("db", "skipped_cooldown") in kinds
    assert data["skipped"] == 0
    timestamps = [e["ts"] for e in data["events"]]
    assert timestamps == sorted(timestamps)
    _, only_db = cli("history", "db", "--state-dir", healed, "--json")
    assert {e["check"] for e in json.loads(only_db)["events"]} == {"db"}
    code, listing = cli("history", "--state-dir", healed)
    lines = listing.splitlines()
    assert lines[0].split() == ["TIME", "CHECK", "EVENT", "DETAILS"]
    assert len(lines) == 1 + len(kinds)
    assert "exited 7" in next(line for line in lines if "db" in line and "action_end" in line)
    _, none = cli("history", "--state-dir", healed, "--since", "0s", "--json")
    assert json.loads(none)["events"] == []


def test_history_shows_only_numbers_as_numbers(healed: Path) -> None:
    recovered = next(e for e in journal_events(healed, "recovered") if e["check"] == "web")
    ended = next(e for e in journal_events(healed, "action_end") if e["check"] == "db")
    # Lines that parse but whose figures are not numbers (an editor, another tool).
    with open(healed / "journal.jsonl", "a") as f:
        for event in (
            {**recovered, "time_to_recover": "x"},
            {**ended, "duration": "x", "exit_code": "seven", "attempt": True},
        ):
            f.write(json.dumps(event) + "\n")
    code, listing = cli("history", "--state-dir", healed)
    assert code == 0
    lines = listing.splitlines()
    real, odd = [line for line in lines if " web " in line and " recovered " in line]
    assert re.search(r"recovered\s+attempt 1, \d+(\.\d+)?s after the first heal$", real), real
    assert re.search(r"recovered\s+attempt 1$", odd), odd
    real, odd = [line for line in lines if " db " in line and " action_end " in line]
    assert re.search(r"action_end\s+attempt 1, exited 7, after \d+(\.\d+)?s \(db will not start\)$", real), (
        real
    )
    assert re.search(r"action_end\s+\(db will not start\)$", odd), odd
    assert "xs" not in listing and "seven" not in listing and "True" not in listing
    # They are events all the same, not corrupt lines; --json leaves the odd
    # figures out (each field holds its type or is absent) and counts them.
    data = json.loads(cli("history", "--state-dir", healed, "--json")[1])
    assert data["skipped"] == 0
    assert data["dropped_fields"] == 4
    odd_recovered = [e for e in data["events"] if e["event"] == "recovered" and e["check"] == "web"][1]
    assert "time_to_recover" not in odd_recovered and odd_recovered["attempt"] == 1
    odd_end = [e for e in data["events"] if e["event"] == "action_end" and e["check"] == "db"][1]
    assert not {"duration", "exit_code", "attempt"} & set(odd_end)
    assert odd_end["reason"] == "db will not start"


def test_history_reads_rotated_journals_and_skips_corrupt_lines(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = state / "journal.jsonl"
    heal_and_wait(state, "web")  # oldest: becomes journal.jsonl.2.gz
    with open(journal, "rb") as plain, gzip.open(state / "journal.jsonl.2.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    journal.unlink()
    wrap(state, "web", 0)  # recovered: becomes journal.jsonl.1, with two bad lines
    with open(journal, "a") as f:
        f.write('{"ts": "torn\n')
        f.write("not json at all\n")
    journal.rename(state / "journal.jsonl.1")
    code, text = cli("reset", "web", "--state-dir", state)  # the live journal
    assert code == 0, text
    code, text = cli("history", "--state-dir", state, "--json")
    data = json.loads(text)
    assert [e["event"] for e in data["events"]] == ["attempt", "action_end", "recovered", "reset"]
    assert data["skipped"] == 2
    assert [Path(f).name for f in data["files"]] == ["journal.jsonl.2.gz", "journal.jsonl.1", "journal.jsonl"]
    _, listing = cli("history", "--state-dir", state)
    assert listing.splitlines()[-1] == "(2 corrupt journal lines skipped)"


def test_pause_stops_healing_until_resume(tmp_path: Path) -> None:
    state = tmp_path / "state"
    heal_and_wait(state, "web", *NO_COOLDOWN)
    wrap(state, "web", 0)
    code, text = cli("pause", "web", "--for", "2h", "--reason", "deploy 42", "--state-dir", state)
    assert code == 0 and re.fullmatch(r"web: paused until \S+ \(deploy 42\)\n", text), text
    paused = wrap(state, "web", 2, *NO_COOLDOWN)
    assert paused.returncode == 2  # row 3: CRITICAL, pages a human
    assert re.search(r"self-healing paused until \S+ \(deploy 42\)", paused.stdout)
    assert len(journal_events(state, "attempt")) == 1  # the first heal only
    event = journal_events(state, "paused")[0]
    assert event["reason"] == "deploy 42" and event["duration"] == 7200 and event["by"]
    _, status = cli("status", "web", "--state-dir", state, "--json")
    row = json.loads(status)["checks"][0]
    assert row["pause_reason"] == "deploy 42" and row["next_attempt"]["verdict"] == "paused"
    assert cli("resume", "web", "--state-dir", state) == (0, "web: healing resumed\n")
    healed = wrap(state, "web", 2, *NO_COOLDOWN)
    assert healed.returncode == 1 and "self-healing: started true (attempt 2/3)" in healed.stdout
    assert [e["event"] for e in journal_events(state)][-3:] == ["paused", "resumed", "attempt"]


def test_pause_a_check_that_never_ran_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, text = cli("pause", "fresh", "--for", "1h", "--state-dir", state)
    assert code == 1 and "no check named 'fresh' is configured or recorded" in text, text
    code, text = cli("pause", "fresh", "--for", "1h", "--force", "--state-dir", state)
    assert code == 0 and text.startswith("fresh: note: not configured and no record yet"), text
    assert wrap(state, "fresh", 2).returncode == 2


def test_reset_rearms_a_check_that_gave_up(tmp_path: Path) -> None:
    state = tmp_path / "state"
    heal_and_wait(state, "web", "--max-attempts", "1")
    gave_up = wrap(state, "web", 2, "--max-attempts", "1")
    assert gave_up.returncode == 2 and "self-healing gave up" in gave_up.stdout
    _, status = cli("status", "web", "--state-dir", state, "--json")
    assert json.loads(status)["checks"][0]["next_attempt"]["verdict"] == "gave_up"
    code, text = cli("reset", "web", "--state-dir", state)
    assert code == 0 and "reset" in text
    again = wrap(state, "web", 2, "--max-attempts", "1")
    assert again.returncode == 1 and "self-healing: started true (attempt 1/1)" in again.stdout
    assert [e["event"] for e in journal_events(state)][-3:] == ["gave_up", "reset", "attempt"]
    assert journal_events(state, "reset")[0]["by"]


def test_nagios_downtime_stops_healing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    down = wrap(state, "web", 2, downtime="1")
    assert down.returncode == 2 and "self-healing paused (Nagios downtime)" in down.stdout
    assert journal_events(state, "attempt") == []
    healed = wrap(state, "web", 2, downtime="0")  # $SERVICEDOWNTIME$ is 0 outside downtime
    assert healed.returncode == 1 and "self-healing: started" in healed.stdout


def test_pause_all_and_resume_all_cover_every_configured_check(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "selfheal.yaml"
    checks = {name: {"plugin": [CHECK_DUMMY, "0"], "heal": ["true"]} for name in ("a", "b")}
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}))
    code, text = cli("pause", "--all", "--for", "30m", "-c", config)
    assert code == 0 and [line.split(":")[0] for line in text.splitlines()] == ["a", "b"]
    assert {e["check"] for e in journal_events(state, "paused")} == {"a", "b"}
    _, status = cli("status", "-c", config, "--json")
    assert all(row["paused_until"] for row in json.loads(status)["checks"])
    assert cli("resume", "--all", "-c", config)[0] == 0
    _, status = cli("status", "-c", config, "--json")
    assert not any(row["paused_until"] for row in json.loads(status)["checks"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pause", "web"], "selfheal pause: --for is required"),
        (["pause", "web", "--for", "soon"], "bad --for"),
        (["resume", "nosuch"], "no check named 'nosuch'"),
        (["pause", "../x", "--for", "1h"], "may only use letters"),
        (["reset"], "reset needs exactly one check NAME"),
        (["status", "a", "b"], "status takes at most one check NAME"),
        (["history", "--since", "yesterday"], "bad --since"),
        (["history", "--bogus"], "unknown option --bogus"),
        (["status", "-c", "/nonexistent/selfheal.yaml"], "config file not found"),
    ],
)
def test_bad_arguments_give_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    wrap(tmp_path / "state", "web", 0)
    code, text = cli(*args, "--state-dir", tmp_path / "state")
    assert code == 3 and text.count("\n") == 1 and message in text, text
    # Said to a person, not as a Nagios status line.
    assert text.startswith(f"selfheal {args[0]}: ") and "UNKNOWN" not in text, text


def test_a_typo_in_pause_is_refused_with_the_closest_names(tmp_path: Path) -> None:
    state = tmp_path / "state"
    heal_and_wait(state, "web")  # recorded
    code, text = cli("pause", "wbe", "--for", "1h", "--state-dir", state)
    assert code == 1, text
    assert (
        text
        == "selfheal pause: no check named 'wbe' is configured or recorded; did you mean web? (--force pauses it anyway)\n"
    )
    assert not (state / "wbe.json").exists() and journal_events(state, "paused") == []
    code, text = cli("pause", "wbe", "--for", "1h", "--force", "--state-dir", state)
    assert code == 0 and text.startswith("wbe: note: not configured and no record yet; paused"), text
    assert [e["check"] for e in journal_events(state, "paused")] == ["wbe"]


def test_forget_removes_the_record_and_logs_under_the_lock_and_journals_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    wrap(state, "web", 2)  # a heal: a record and an attempt log
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), 30, what="the heal's end")
    assert list(state.glob("web.heal-*.log"))
    code, text = cli("forget", "web", "--state-dir", state)
    assert code == 0 and text.startswith("web: record and 1 heal log(s) removed"), text
    assert not (state / "web.json").exists() and not list(state.glob("web.heal-*.log"))
    assert (state / "web.lock").exists()  # never deleted: a run may be waiting on it
    (event,) = journal_events(state, "forgotten")
    assert event["check"] == "web" and event["logs"] == 1 and event["by"]
    _, listing = cli("status", "--state-dir", state, "--json")
    assert [row["name"] for row in json.loads(listing)["checks"]] == []
    code, text = cli("forget", "nosuch", "--state-dir", state)
    assert code == 3 and "no check named 'nosuch'" in text, text


@pytest.mark.parametrize(
    "command", ["status", "history", "report", "reset", "pause", "resume", "forget", "validate", "doctor"]
)
def test_every_command_has_help(command: str) -> None:
    code, text = cli(command, "-h")
    assert code == 0 and text.startswith(f"usage: selfheal {command}") and "-h, --help" in text


def test_status_shows_a_running_heal_with_its_pid_and_age(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = wrap(state, "web", 2, heal="sleep 3")
    assert started.returncode == 1
    code, text = cli("status", "web", "--state-dir", state, "--json")
    assert code == 0
    row = json.loads(text)["checks"][0]
    pid = journal_events(state, "attempt")[0]["pid"]
    assert row["running"]["pid"] == pid and 0 <= row["running"]["age"] < 3
    assert row["next_attempt"]["verdict"] == "running"
    assert row["last_heal"]["outcome"] == "still running"
    _, table = cli("status", "web", "--state-dir", state)
    assert re.search(rf"in progress\s+pid {pid}, \d+s\s", table.splitlines()[1]), table
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), 20, what="the heal to end")
    _, after = cli("status", "web", "--state-dir", state, "--json")
    assert json.loads(after)["checks"][0]["running"] is None

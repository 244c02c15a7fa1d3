"""Only regular files are opened: a FIFO at a journal or log path never blocks a check.

Opening a FIFO for writing waits for a reader, for reading waits for a
writer: a planted FIFO at the journal or an attempt's log would hang a
CRITICAL check while it holds the record's lock, until Nagios kills it.
Each run here is a child process with a timeout, so a hang fails the
test instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, assert_no_traceback, clean_env, run_selfheal, write_script

from selfheal.core.states import StateError
from selfheal.edges.store import StateDir

#: A hang is a failure; a prompt run takes well under a second.
PROMPT = 20


def heal_marker(where: Path) -> tuple[Path, Path]:
    marker = where / "healed"
    return write_script(where / "heal", f'echo healed >> "{marker}"\n'), marker


def assert_refused_promptly(result: subprocess.CompletedProcess[str], why: str, marker: Path) -> None:
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 2, result
    assert "self-healing disabled: " in result.stdout and why in result.stdout, result.stdout
    time.sleep(0.3)  # a wrongly started runner shows within milliseconds
    assert not marker.exists(), "a heal ran although it could not be journaled or logged"


def test_a_fifo_journal_refuses_the_heal_without_blocking(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.mkfifo(state / "journal.jsonl")
    heal, marker = heal_marker(tmp_path)
    args = ("wrap", "--name", "web", "--heal", heal, "--state-dir", state, "--", CHECK_DUMMY, "2", "down")
    result = run_selfheal(*args, timeout=PROMPT)
    assert_refused_promptly(result, "not a regular file", marker)


def test_a_fifo_attempt_log_refuses_the_heal_without_blocking(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.mkfifo(state / "web.heal-a1.log")  # the attempt id is pinned below
    heal, marker = heal_marker(tmp_path)
    code = textwrap.dedent(f"""
        import functools
        from selfheal import engine, facts
        from selfheal.core.actions import Command
        from selfheal.core.policy import Policy
        facts.decide = functools.partial(facts.decide, attempt_id="a1")  # a CRITICAL run decides there
        outcome = engine.Healer("web", Command([{str(heal)!r}]), Policy(), {str(state)!r}).handle(2)
        print(outcome.decision.row, outcome.note)
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=PROMPT
    )
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stdout.startswith("4 self-healing disabled: "), result
    assert "not a regular file" in result.stdout, result.stdout
    time.sleep(0.3)
    assert not marker.exists()
    # Recorded nothing it did not do: no attempt in the record.
    assert not (state / "web.json").exists() or '"attempts": []' in (state / "web.json").read_text()


def test_a_journal_outside_the_state_dir_that_is_a_fifo_or_in_an_open_dir_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    heal, marker = heal_marker(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    journal = logs / "selfheal.jsonl"
    os.mkfifo(journal)
    base = ("wrap", "--name", "web", "--heal", heal, "--state-dir", state)
    check = ("--", CHECK_DUMMY, "2", "down")
    result = run_selfheal(*base, "--journal", journal, *check, timeout=PROMPT)
    assert_refused_promptly(result, "not a regular file", marker)
    journal.unlink()
    logs.chmod(0o777)  # anyone could swap the journal for anything
    result = run_selfheal(*base, "--journal", journal, *check, timeout=PROMPT)
    assert_refused_promptly(result, "writable by everyone", marker)
    assert not journal.exists()
    logs.chmod(0o1777)  # sticky, like /tmp: others cannot replace our file
    result = run_selfheal(*base, "--journal", journal, *check, timeout=PROMPT)
    assert result.returncode == 1 and "self-healing" in result.stdout, result


def test_every_opener_refuses_a_fifo(tmp_path):
    with StateDir.open(str(tmp_path / "s")) as state_dir:
        for name in ("log.txt", "web.lock", "web.json"):
            os.mkfifo(tmp_path / "s" / name)
        with pytest.raises(StateError, match="not a regular file"):
            state_dir.open_append("log.txt")
        with pytest.raises(StateError, match="not a regular file"), state_dir.lock("web"):
            pass
        with pytest.raises(StateError, match="not a regular file"):
            state_dir.peek("web")


@pytest.mark.skipif(os.geteuid() != 0, reason="root writing in another user's dir")
def test_root_does_not_append_to_a_hard_linked_log_in_a_service_users_dir(tmp_path):
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"  # root's file, elsewhere
    victim.write_text("keep")
    os.link(victim, state / "log.txt")
    os.chown(state, 65534, 65534)
    with StateDir.open(str(state)) as state_dir, pytest.raises(StateError, match="hard link"):
        state_dir.open_append("log.txt")
    assert victim.read_text() == "keep" and victim.stat().st_uid == 0


def test_a_second_link_that_is_a_file_being_made_is_not_counted(tmp_path):
    # root's create_owned links its temp name into place, then unlinks it:
    # a run opening the file in that moment saw two links and refused the
    # lock (a state_error in the two-user concurrency storm, even after a
    # wait of 100 ms on a loaded machine). The temp name, beside the file, is
    # no link from elsewhere, however long it stays.
    from selfheal.edges.files import open_regular

    (tmp_path / "web.lock").write_text("")
    os.link(tmp_path / "web.lock", tmp_path / ".web.lock.123.abcd1234.new")
    fd = open_regular(str(tmp_path / "web.lock"), os.O_RDWR, single_link=True)
    os.close(fd)


def test_a_file_being_made_does_not_hide_a_link_from_elsewhere(tmp_path):
    from selfheal.edges.files import open_regular

    (tmp_path / "victim").write_text("keep")
    (tmp_path / "s").mkdir()
    os.link(tmp_path / "victim", tmp_path / "s" / "web.lock")
    os.link(tmp_path / "victim", tmp_path / "s" / ".web.lock.123.abcd1234.new")
    with pytest.raises(StateError, match="1 other hard link"):
        open_regular(str(tmp_path / "s" / "web.lock"), os.O_RDWR, single_link=True)
    # Another file's temp name is not this file's; nor is a temp name of another file.
    os.link(tmp_path / "victim", tmp_path / "s" / ".other.lock.1.a.new")
    (tmp_path / "s" / ".web.lock.9.b.new").write_text("")
    with pytest.raises(StateError, match="2 other hard link"):
        open_regular(str(tmp_path / "s" / "web.lock"), os.O_RDWR, single_link=True)


def test_a_second_link_that_stays_is_still_refused(tmp_path):
    from selfheal.edges.files import open_regular

    (tmp_path / "victim").write_text("keep")
    os.link(tmp_path / "victim", tmp_path / "web.lock")
    with pytest.raises(StateError, match="1 other hard link"):
        open_regular(str(tmp_path / "web.lock"), os.O_RDWR, single_link=True)

"""Issue 15 with the real CLI: a failed heal says so at once, a retry stays
CRITICAL, a healthy line says healing is off, -v explains in words, and a
record shared by two heals shows in status, doctor and (once) the journal.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import CHECK_DUMMY, assert_no_traceback, journal_events, run_selfheal, wait_for
from test_operate import cli

FAILING = "sh -c 'echo start-web: port already in use; exit 1'"


def wrap(state: Path, code: int, *policy: str, heal: str = FAILING, name: str = "web"):  # type: ignore[no-untyped-def]
    args = ["wrap", "--name", name, "--heal", heal, "--state-dir", state, *policy]
    result = run_selfheal(*args, "--", CHECK_DUMMY, code, f"state {code}")
    assert_no_traceback(result.stdout, result.stderr)
    return result


def ended(state: Path, count: int) -> None:
    wait_for(
        lambda: len(journal_events(state, "action_end", in_flight=True)) >= count, 20, what="the heal to end"
    )


def test_failed_heal_is_did_not_help_at_once_with_its_reason(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = wrap(state, 2, "--grace", "30s", "--cooldown", "1h")
    assert first.returncode == 1 and "self-healing: started" in first.stdout, first.stdout
    ended(state, 1)
    # Within the 30 s grace, yet not "waiting for recovery": the heal exited 1.
    result = wrap(state, 2, "--grace", "30s", "--cooldown", "1h")
    assert result.returncode == 2, result.stdout
    assert "self-healing did not help: attempt 1 at " in result.stdout
    assert " exited 1 (start-web: port already in use); next attempt after " in result.stdout
    dry = wrap(state, 2, "--grace", "30s", "--cooldown", "1h", "--dry-run", "-v")
    assert (
        "the last attempt exited 1 (start-web: port already in use) within grace: did not help" in dry.stdout
    )
    assert "decision row" not in dry.stdout


def test_retry_after_did_not_help_stays_critical_unless_retry_state_warning(tmp_path: Path) -> None:
    for retry_state, code in (("critical", 2), ("warning", 1)):
        state = tmp_path / retry_state
        policy = ("--grace", "0", "--cooldown", "1", "--retry-state", retry_state)
        assert wrap(state, 2, *policy).returncode == 1
        ended(state, 1)
        assert wrap(state, 2, *policy).returncode == 2  # did not help: the page
        time.sleep(1.1)  # the 1 s cooldown
        retry = wrap(state, 2, *policy)
        assert retry.returncode == code, retry.stdout
        assert "self-healing: retrying sh -c " in retry.stdout and "(attempt 2/3)" in retry.stdout
    bad = wrap(tmp_path / "bad", 2, "--retry-state", "ok")
    assert bad.returncode == 3
    assert bad.stdout.startswith("SELFHEAL UNKNOWN - bad --retry-state: must be critical or warning")


def test_ok_after_gave_up_says_healing_is_off(tmp_path: Path) -> None:
    state = tmp_path / "state"
    policy = ("--grace", "0", "--max-attempts", "1")
    assert wrap(state, 2, *policy).returncode == 1
    ended(state, 1)
    gave_up = wrap(state, 2, *policy)
    assert gave_up.returncode == 2 and "self-healing gave up: 1 attempts since" in gave_up.stdout
    fixed = wrap(state, 0, *policy)
    assert fixed.returncode == 0
    first = fixed.stdout.splitlines()[0]
    assert first.startswith("WEB OK - OK: state 0; self-healing off since "), first
    assert first.split(" | ")[0].endswith("(gave up); run 'selfheal reset web'"), first
    dry = wrap(state, 0, *policy, "--dry-run", "-v")
    assert "healthy, but self-healing is off (gave up)" in dry.stdout
    assert cli("reset", "web", "--state-dir", state)[0] == 0
    after = wrap(state, 0, *policy)
    assert "self-healing off" not in after.stdout


def test_shared_name_shows_in_status_doctor_and_once_in_the_journal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "selfheal.yaml"
    config.write_text(f"state_dir: {state}\nchecks:\n  web:\n    plugin: {CHECK_DUMMY} 2\n    heal: 'true'\n")
    assert wrap(state, 2, "--grace", "0").returncode == 1  # wrap --name web heals with FAILING
    ended(state, 1)
    for _ in range(3):
        assert run_selfheal("run", "web", "-c", config).returncode == 2
    changed = journal_events(state, "heal_changed")
    assert len(changed) == 1, changed
    assert changed[0]["heal"] == "true" and FAILING.split()[0] in changed[0]["reason"]
    code, text = cli("status", "-c", config)
    assert code == 0
    header, row = text.splitlines()[:2]
    assert "NEXT COOLDOWN" in header and " COOLDOWN " not in header.replace("NEXT COOLDOWN", "")
    assert row.startswith("web *"), text
    assert "* web: one record, two heals: it last ran 'sh -c " in text and "'true' uses the same name" in text
    code, text = cli("doctor", "-c", config)
    warn = [line for line in text.splitlines() if line.startswith("WARN  web: shared name:")]
    assert warn and "'true'" in warn[0] and "sh -c" in warn[0], text

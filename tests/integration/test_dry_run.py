"""``--dry-run`` decides and says what it would do, and changes nothing."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from conftest import CHECK_DUMMY, assert_no_traceback, run_selfheal, write_script


def dry_run(tmp_path: Path, state: Path, marker: Path):  # type: ignore[no-untyped-def]
    heal = write_script(tmp_path / "heal", 'echo healed > "$1"\n')
    return run_selfheal(
        "wrap",
        "--name",
        "web",
        "--dry-run",
        "--heal",
        f"{shlex.quote(str(heal))} {shlex.quote(str(marker))}",
        "--state-dir",
        state,
        "--",
        CHECK_DUMMY,
        "2",
        "down",
        cwd=tmp_path,
    )


def test_dry_run_on_critical_starts_and_writes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    marker = tmp_path / "healed"

    result = dry_run(tmp_path, state, marker)

    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1, result.stdout
    status = result.stdout.splitlines()[0]
    assert status.startswith("WEB WARNING - CRITICAL: down; self-healing: would start "), status
    assert "(attempt 1/3)" in status
    assert "would start" in result.stdout
    assert "self-healing: started" not in result.stdout
    time.sleep(1.0)
    assert not marker.exists()
    assert sorted(p.name for p in state.iterdir()) == []
    assert not (state / "web.json").exists()
    assert not (state / "journal.jsonl").exists()
    assert list(state.glob("*.log")) == []


def test_dry_run_twice_still_would_start_the_first_attempt(tmp_path: Path) -> None:
    # Nothing was recorded by the first dry run, so the second decides alike.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    marker = tmp_path / "healed"
    first = dry_run(tmp_path, state, marker)
    second = dry_run(tmp_path, state, marker)
    assert first.returncode == second.returncode == 1
    assert "would start" in second.stdout
    assert "(attempt 1/3)" in second.stdout
    assert list(state.iterdir()) == []


def test_dry_run_before_the_state_dir_exists(tmp_path: Path) -> None:
    state = tmp_path / "state"  # a fresh install: never run for real
    marker = tmp_path / "healed"

    result = dry_run(tmp_path, state, marker)

    assert_no_traceback(result.stdout, result.stderr)
    assert not state.exists()  # writes nothing: not even the dir
    time.sleep(0.5)
    assert not marker.exists()
    assert "would start" in result.stdout, result.stdout
    assert result.returncode == 1


def perfdata(result) -> str:  # type: ignore[no-untyped-def]
    return result.stdout.splitlines()[0].split(" | ", 1)[1]


def test_dry_run_perfdata_reports_what_is_recorded_not_the_would_be_heal(tmp_path: Path) -> None:
    # The note describes the would-be attempt ("attempt 1/3"); the perfdata
    # counts what IS recorded: no heal happened, with or without a state dir.
    marker = tmp_path / "healed"
    missing = dry_run(tmp_path, tmp_path / "not-yet", marker)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    existing = dry_run(tmp_path, state, marker)
    for result in (missing, existing):
        assert "(attempt 1/3)" in result.stdout, result.stdout
        assert "selfheal_attempts=0;" in perfdata(result), result.stdout
        assert "selfheal_heals_total=0c" in perfdata(result), result.stdout
    assert perfdata(missing) == perfdata(existing)

"""Privilege (issue 6, item 8).

- A config that another user can change decides what root runs: ``selfheal
  run`` refuses it (one UNKNOWN line, nothing run), ``validate`` reports it
  as a problem, and the milder case (writable by its group) is a
  ``validate`` warning and a ``doctor`` FAIL with the fix.
- A state dir that another user can write is refused by the engine (see
  test_hostile_state.py) and by ``doctor``.
- Heals never run as a more privileged user than the ``sudo`` rule allows:
  without ``sudo`` the action runs as the invoking user; with ``sudo: true``
  it is exactly ``sudo -n -- argv``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, UNKNOWN_LINE, assert_no_traceback, journal_events, run_selfheal, wait_for
from harness import SERVICE_USER, SharedDir, figure, gid_of, lines, run_as, uid_of


@pytest.fixture
def shared():
    where = SharedDir()
    yield where
    where.remove()


def write_config(where: Path, state: Path, heal: object, mode: int = 0o644, **check: object) -> Path:
    config = where / "selfheal.yaml"
    body = {"plugin": f"{CHECK_DUMMY} 2 down", "heal": heal, **check}
    config.write_text(json.dumps({"state_dir": str(state), "checks": {"web": body}}))
    config.chmod(mode)
    return config


def assert_refused_config(result, config: Path, why: str) -> None:  # type: ignore[no-untyped-def]
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 3, result.stdout
    (line,) = result.stdout.splitlines()
    assert UNKNOWN_LINE.match(line), line
    assert f"{config}: refusing a config that others can change: {why}" in line, line


def test_run_refuses_a_world_writable_config(shared: SharedDir) -> None:
    state = shared.path / "state"
    marker = shared.path / "healed"
    config = write_config(shared.path, state, f"touch {marker}", mode=0o666)
    result = run_selfheal("run", "web", "-c", config)
    assert_refused_config(result, config, "writable by everyone (mode 0666)")
    assert f"chmod go-w {config}" in result.stdout
    assert not marker.exists() and not state.exists()  # nothing ran, nothing was written
    figure("config writable by others: run refuses it", 1)


def test_root_refuses_a_config_the_service_user_owns(shared: SharedDir) -> None:
    """nagios could edit it to choose what root runs; as nagios it is that user's own."""
    state = shared.state_dir(owner=SERVICE_USER)
    marker = state / "healed"  # where nagios may write
    config = write_config(shared.path, state, f"touch {marker}")
    os.chown(config, uid_of(SERVICE_USER), gid_of(SERVICE_USER))
    result = run_selfheal("run", "web", "-c", config)
    assert_refused_config(result, config, f"owned by {SERVICE_USER} (uid {uid_of(SERVICE_USER)})")
    assert not marker.exists()
    as_owner = run_as(SERVICE_USER, "run", "web", "-c", config)
    assert "self-healing: started" in as_owner.stdout, as_owner.stdout
    wait_for(marker.exists, 10, what="the nagios user's heal")
    figure("config writable by others: run refuses it", 1)


def test_root_refuses_a_config_in_a_directory_another_user_owns(shared: SharedDir) -> None:
    where = shared.path / "conf.d"
    where.mkdir(mode=0o755)
    os.chown(where, uid_of(SERVICE_USER), gid_of(SERVICE_USER))
    config = write_config(where, shared.path / "state", "true")
    result = run_selfheal("run", "web", "-c", config)
    assert_refused_config(result, config, f"its directory {where} is owned by {SERVICE_USER}")
    figure("config writable by others: run refuses it", 1)


def test_validate_reports_configs_others_can_change(shared: SharedDir) -> None:
    config = write_config(shared.path, shared.path / "state", "true", mode=0o666)
    result = run_selfheal("validate", "-c", config)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith(
        f"{config}: refusing a config that others can change: writable by everyone"
    )
    config.chmod(0o664)
    result = run_selfheal("validate", "-c", config)
    assert result.returncode == 0, result.stdout
    warning, summary = result.stdout.splitlines()
    assert warning.startswith(f"{config}: warning: writable by its group (mode 0664)")
    assert summary.startswith(f"{config}: OK")
    figure("config writable by others: validate and doctor say so", 2)


def test_doctor_fails_a_group_writable_config_and_a_foreign_state_dir(shared: SharedDir) -> None:
    state = shared.state_dir()  # root's
    state.chmod(0o755)
    config = write_config(shared.path, state, "true", mode=0o664)
    result = run_selfheal("doctor", "-c", config)
    assert result.returncode == 1, result.stdout
    assert f"FAIL  config: {config} is writable by its group (mode 0664)" in result.stdout, result.stdout
    assert f"fix: chmod go-w {config}" in result.stdout
    config.chmod(0o644)
    as_service = run_as(SERVICE_USER, "doctor", "-c", config)
    assert as_service.returncode == 1, as_service.stdout
    assert f"FAIL  state dir: state dir {state} is owned by uid 0" in as_service.stdout, as_service.stdout
    figure("config writable by others: validate and doctor say so", 2)


# -- heals run with no more privilege than the sudo rule gives ----------------


def test_without_sudo_the_heal_runs_as_the_invoking_user(shared: SharedDir) -> None:
    state = shared.state_dir(owner=SERVICE_USER)
    out = shared.path / "ids"
    out.touch()
    out.chmod(0o666)
    heal = ["/bin/sh", "-c", f'echo "$(id -u) $(id -g) $(id -G)" >> {out}']
    config = write_config(shared.path, state, heal)
    result = run_as(SERVICE_USER, "run", "web", "-c", config)
    assert "self-healing: started" in result.stdout, result.stdout
    (end,) = wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal")
    assert end["argv"] == heal  # no sudo, no shell added
    uid, gid = str(uid_of(SERVICE_USER)), str(gid_of(SERVICE_USER))
    assert lines(out) == [f"{uid} {gid} {gid}"]  # not root, no extra groups
    figure("heal privilege matches the sudo rule", 1)


def test_with_sudo_the_heal_is_exactly_sudo_n(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = tmp_path / "ids"
    config = write_config(tmp_path, state, {"command": f"/bin/sh -c 'id -u > {out}'"}, sudo=True)
    result = run_selfheal("run", "web", "-c", config)
    assert "self-healing: started sudo /bin/sh -c" in result.stdout, result.stdout
    (end,) = wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal")
    assert end["argv"] == ["sudo", "-n", "--", "/bin/sh", "-c", f"id -u > {out}"]
    assert end["exit_code"] == 0, end
    assert out.read_text() == "0\n"  # root may; the nagios case fails at once (test_misbehaving_actions)
    figure("heal privilege matches the sudo rule", 1)


@pytest.mark.parametrize(
    ("mode", "why"), [(0o770, "writable by its group"), (0o777, "writable by everyone")], ids=["0770", "0777"]
)
def test_validate_and_doctor_warn_of_a_state_dir_others_can_write(
    tmp_path: Path, mode: int, why: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    config = write_config(tmp_path, state, "true")
    result = run_selfheal("validate", "-c", config)
    assert result.returncode == 0, result.stdout  # the config itself is right
    assert f"{config}: warning: state dir {state} is {why} (mode {mode:04o})" in result.stdout, result.stdout
    doctor = run_selfheal("doctor", "-c", config)
    assert doctor.returncode == 1, doctor.stdout
    assert f"FAIL  state dir: state dir {state} is {why}" in doctor.stdout, doctor.stdout
    assert "fix: chmod" in doctor.stdout
    figure("state dir writable by others: validate and doctor say so", 2)

"""``selfheal validate`` and ``selfheal doctor`` on real files, users and sudo.

The sudo tests need root: they create a throwaway user and a sudoers.d
drop-in with a unique name (checked with ``visudo -c`` before it is put in
place, since a broken drop-in breaks sudo for the whole machine), and
remove both afterwards. Doctor then runs as that user, as it would run as
``nagios``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, assert_no_traceback, run_selfheal
from e2e.conftest import need

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


# -- validate -------------------------------------------------------------

BROKEN = f"""\
state_dir: state
colour: blue
checks:
  good:
    plugin: {CHECK_DUMMY} 0
    heal: {{systemd: nginx}}
  slow:
    plugin: {CHECK_DUMMY} 0
    heal: "true"
    cooldown: soon
  missing:
    plugin: /nonexistent/check_thing
    heal: "true"
  twice:
    plugin: {CHECK_DUMMY} 0
    check: tcp
    heal: "true"
"""


def test_validate_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "selfheal.yaml", BROKEN)
    result = run_selfheal("validate", "-c", config)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{config}:2: unknown key 'colour' in top level (allowed: checks, defaults, fleet, journal, metrics, on_event, state_dir, syslog)",
        f"{config}:10: check 'slow': cooldown: not a duration: 'soon' (use e.g. 90, 90s, 15m, 6h or 7d)",
        f"{config}:12: check 'missing': plugin not found or not executable: /nonexistent/check_thing",
        f"{config}:14: check 'twice' needs exactly one of 'plugin:' (a Nagios plugin) or 'check:' (a built-in)",
    ]
    data = json.loads(run_selfheal("validate", "-c", config, "--json").stdout)
    assert data["valid"] is False
    assert [(p["line"], p["message"].split(":")[0]) for p in data["problems"]] == [
        (2, "unknown key 'colour' in top level (allowed"),
        (10, "check 'slow'"),
        (12, "check 'missing'"),
        (14, "check 'twice' needs exactly one of 'plugin"),
    ]


MANY_IN_ONE_CHECK = f"""\
state_dir: state
checks:
  web:
    plugin: {CHECK_DUMMY} 0
    cooldown: soon
    colour: blue
    heal: {{systemd: nginx, verb: --now}}
    max_attempts: 0
    size: large
  db:
    sudo: maybe
    timeout: fast
    timeout_state: warning
"""


def test_validate_lists_every_problem_within_a_check(tmp_path: Path) -> None:
    config = write_config(tmp_path / "selfheal.yaml", MANY_IN_ONE_CHECK)
    result = run_selfheal("validate", "-c", config)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1
    allowed = (
        "action_timeout, args, backoff, budget, check, cooldown, description, grace, heal, heal_on, max_attempts,"
        " max_cooldown, plugin, report_to, reset_after, retry_state, splay, sudo, timeout, timeout_state, verify, window"
    )
    assert result.stdout.splitlines() == [
        f"{config}:5: check 'web': cooldown: not a duration: 'soon' (use e.g. 90, 90s, 15m, 6h or 7d)",
        f"{config}:6: unknown key 'colour' in check 'web' (allowed: {allowed})",
        f"{config}:7: check 'web': heal: verb must be a word such as restart",
        f"{config}:8: check 'web': max_attempts: must be a whole number of at least 1, not 0",
        f"{config}:9: unknown key 'size' in check 'web' (allowed: {allowed})",
        f"{config}:10: check 'db' needs exactly one of 'plugin:' (a Nagios plugin) or 'check:' (a built-in)",
        f"{config}:10: check 'db' needs a 'heal:' action",
        f"{config}:11: check 'db': sudo must be true or false",
        f"{config}:12: check 'db': timeout: not a duration: 'fast' (use e.g. 90, 90s, 15m, 6h or 7d)",
        f"{config}:13: check 'db': timeout_state must be critical or unknown",
    ]
    # run reads the same config and stops at its first problem: one UNKNOWN line.
    run = run_selfheal("run", "db", "-c", config, cwd=tmp_path)
    assert_no_traceback(run.stdout, run.stderr)
    assert run.returncode == 3
    assert (
        run.stdout
        == f"SELFHEAL UNKNOWN - {config}:6: unknown key 'colour' in check 'web' (allowed: {allowed})\n"
    )


def test_validate_passes_a_good_config_in_one_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "selfheal.yaml", BROKEN.split("  slow:")[0].replace("colour: blue\n", "")
    )
    result = run_selfheal("validate", "-c", config)
    assert (result.returncode, result.stdout) == (0, f"{config}: OK, 1 check (good)\n")


def test_validate_warns_when_others_can_change_the_config(tmp_path: Path) -> None:
    text = BROKEN.split("  slow:")[0].replace("colour: blue\n", "")
    config = write_config(tmp_path / "selfheal.yaml", text, 0o664)
    result = run_selfheal("validate", "-c", config)
    assert result.returncode == 0
    warning, summary = result.stdout.splitlines()
    assert warning.startswith(f"{config}: warning: writable by its group (mode 0664)")
    assert f"chmod go-w {config}" in warning
    assert summary == f"{config}: OK, 1 check (good)"
    config.chmod(0o646)
    assert "writable by everyone" in run_selfheal("validate", "-c", config).stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("checks: [\n", ":2: invalid YAML"),
        ("", ":1: config is empty"),
        ("defaults: {}\n", ":1: missing 'checks:' section"),
    ],
)
def test_validate_unreadable_configs(tmp_path: Path, text: str, expected: str) -> None:
    config = write_config(tmp_path / "selfheal.yaml", text)
    result = run_selfheal("validate", "-c", config)
    assert (
        result.returncode == 1 and result.stdout == f"{config}{expected}" + result.stdout.split(expected)[1]
    )
    assert result.stdout.count("\n") == 1


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = run_selfheal("validate", "-c", tmp_path / "nope.yaml")
    assert (result.returncode, result.stdout) == (1, f"{tmp_path / 'nope.yaml'}: config file not found\n")


# -- doctor ---------------------------------------------------------------


def doctor_config(directory: Path, state: Path, heal: str, sudo: bool) -> Path:
    text = (
        f"state_dir: {state}\n"
        "checks:\n"
        "  web:\n"
        f"    plugin: {CHECK_DUMMY} 0\n"
        f"    heal: {json.dumps(heal)}\n"
        f"    sudo: {'true' if sudo else 'false'}\n"
    )
    return write_config(directory / "selfheal.yaml", text)


def lines_of(output: str) -> dict[str, str]:
    """'PASS  web: heal: ...' -> {'web: heal': 'PASS  web: heal: ...'}"""
    items = {}
    for line in output.splitlines():
        if line.startswith(("PASS  ", "FAIL  ")):
            label = line[6:].split(": ")[0]
            if line[6:].startswith("web: "):
                label = ": ".join(line[6:].split(": ")[:2])
            items[label] = line
    return items


def test_doctor_passes_a_working_setup(tmp_path: Path) -> None:
    config = doctor_config(tmp_path, tmp_path / "state", "true", sudo=False)
    result = run_selfheal("doctor", "-c", config)
    assert_no_traceback(result.stdout)
    assert result.returncode == 0, result.stdout
    items = lines_of(result.stdout)
    assert set(items) == {"state dir", "journal", "runner", "config", "web: plugin", "web: heal"}
    assert all(line.startswith("PASS") for line in items.values())
    assert result.stdout.splitlines()[-1] == "6 passed, 0 failed"
    assert not (tmp_path / "state").exists(), "doctor must not create the state dir"


def test_doctor_fails_a_missing_heal_executable(tmp_path: Path) -> None:
    config = doctor_config(tmp_path, tmp_path / "state", "/nonexistent/restart-web now", sudo=False)
    result = run_selfheal("doctor", "-c", config)
    assert result.returncode == 1
    items = lines_of(result.stdout)
    assert items["web: heal"] == "FAIL  web: heal: /nonexistent/restart-web not found"
    fix = result.stdout.splitlines()[result.stdout.splitlines().index(items["web: heal"]) + 1]
    assert fix == f"      fix: install it, or give its full path in heal: at {config}:3"
    data = json.loads(run_selfheal("doctor", "-c", config, "--json").stdout)
    assert data["ok"] is False
    assert [i["item"] for i in data["items"] if not i["ok"]] == ["heal"]


@pytest.mark.skipif(
    os.path.isdir("/run/systemd/system"), reason="systemd is PID 1 here (tests/e2e/test_systemd.py)"
)
def test_doctor_fails_a_systemd_heal_where_systemd_is_not_pid_1(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "selfheal.yaml",
        f"state_dir: {tmp_path / 'state'}\nchecks:\n  web:\n    plugin: {CHECK_DUMMY} 0\n"
        "    heal: {systemd: nginx.service}\n",
    )
    result = run_selfheal("doctor", "-c", config)
    assert_no_traceback(result.stdout)
    assert result.returncode == 1, result.stdout
    items = lines_of(result.stdout)
    assert items["web: systemd"] == (
        "FAIL  web: systemd: systemd is not PID 1 on this host (/run/systemd/system does not exist):"
        " the heal's systemctl would fail with 'Failed to connect to bus'"
    )
    assert (
        "fix: heal through the init script instead, heal: {init: nginx}, or heal: 'service nginx restart'"
        f" (docs/without-systemd.md), at {config}:3"
    ) in result.stdout
    # Without systemd, a new session is the right way to start a heal: no failure there.
    assert items["runner"] == (
        "PASS  runner: heals start in a new session (setsid): systemd is not PID 1"
        " (/run/systemd/system does not exist)"
    )


def test_doctor_fails_an_unsafe_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    config = doctor_config(tmp_path, state, "true", sudo=False)
    result = run_selfheal("doctor", "-c", config)
    assert result.returncode == 1
    line = lines_of(result.stdout)["state dir"]
    assert line.startswith("FAIL") and "writable by everyone" in line
    assert f"fix: chmod o-w {state}" in result.stdout


# -- doctor as another user, with sudo (root only) -------------------------


class ThrowawayUser:
    """A system user and a sudoers.d drop-in, both removed afterwards."""

    def __init__(self) -> None:
        self.name = f"shdoc{os.getpid() % 100000}{os.urandom(2).hex()}"
        self.sudoers = Path("/etc/sudoers.d") / f"selfheal-test-{self.name}"
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", self.name],
            check=True,
            capture_output=True,
        )

    def allow(self, command: str) -> None:
        rule = f"{self.name} ALL=(root) NOPASSWD: {command}\n"
        with tempfile.NamedTemporaryFile(
            "w", dir="/etc/sudoers.d", prefix=".selfheal-test-", delete=False
        ) as f:
            f.write(rule)
        staged = Path(f.name)
        try:
            staged.chmod(0o440)
            subprocess.run(["visudo", "-c", "-q", "-f", str(staged)], check=True, capture_output=True)
            staged.rename(self.sudoers)
        finally:
            staged.unlink(missing_ok=True)

    def remove(self) -> None:
        self.sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", self.name], check=False, capture_output=True)


@pytest.fixture
def throwaway() -> Iterator[ThrowawayUser]:
    need(os.geteuid() == 0, "needs root: creates a throwaway user and a sudoers.d drop-in")
    for tool in ("useradd", "userdel", "visudo", "sudo", "runuser"):
        need(shutil.which(tool), f"needs {tool} (Debian packages passwd, sudo, util-linux)")
    user = ThrowawayUser()
    try:
        yield user
    finally:
        user.remove()


#: What ``selfheal doctor`` imports besides selfheal itself (the [project] dependencies).
DEPENDENCIES = ("nagiosplugin", "psutil", "PyYAML")


@pytest.fixture(scope="module")
def readable_install() -> Iterator[Path]:
    """selfheal and its dependencies copied where any user can read them.

    The checkout and its .venv may sit where the throwaway user cannot
    go (under /root, say): the copy is this source, laid out as installed
    (checks/ as selfheal/checks), so the test runs the code under test.
    """
    from importlib.metadata import distribution

    lib = Path(tempfile.mkdtemp(prefix="selfheal-doctor-lib-"))
    skip = shutil.ignore_patterns("__pycache__")
    try:
        shutil.copytree(REPO / "selfheal", lib / "selfheal", ignore=skip)
        shutil.copytree(REPO / "checks", lib / "selfheal" / "checks", ignore=skip)
        for name in DEPENDENCIES:
            dist = distribution(name)
            tops = {
                f.parts[0] for f in dist.files or [] if ".dist-info" not in f.parts[0] and f.parts[0] != ".."
            }
            for top in tops:
                source = Path(str(dist.locate_file(top)))
                if source.is_dir():
                    shutil.copytree(source, lib / top, ignore=skip)
                elif source.is_file():
                    shutil.copy(source, lib / top)
        for directory, _dirs, files in os.walk(lib):
            os.chmod(directory, 0o755)
            for file in files:
                os.chmod(os.path.join(directory, file), 0o644)
        yield lib
    finally:
        shutil.rmtree(lib, ignore_errors=True)


def run_as(user: str, lib: Path, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """selfheal run as ``user``, from ``lib``, with an interpreter that user can execute."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    # Only PYTHONPATH: -s -E would drop it, and the user has no site dir anyway.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(lib), "HOME": str(cwd)}
    tried = []
    # Same version as ours: the copied C extensions (psutil, yaml) need its ABI.
    for python in dict.fromkeys([getattr(sys, "_base_executable", ""), f"/usr/bin/python{version}"]):
        if not python:
            continue
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                user,
                "--",
                python,
                "-s",
                "-c",
                "import selfheal.commands.doctor, yaml, psutil",
            ],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return subprocess.run(
                ["runuser", "-u", user, "--", python, "-s", "-m", "selfheal", *map(str, args)],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        tried.append(f"{python}: {probe.stderr.strip()[-120:]}")
    need(False, f"no Python {version} that user {user} can run: {'; '.join(tried)}")
    raise AssertionError("not reached")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temp dir the throwaway user can read (pytest's tmp_path is 0700 root)."""
    directory = Path(tempfile.mkdtemp(prefix="selfheal-doctor-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_doctor_as_the_check_user_fails_a_missing_sudo_rule(
    throwaway: ThrowawayUser, shared_dir: Path, readable_install: Path
) -> None:
    true = shutil.which("true")
    assert true is not None
    config = doctor_config(shared_dir, shared_dir / "state", f"{true} --heal", sudo=True)
    result = run_as(throwaway.name, readable_install, "doctor", "-c", config, cwd=shared_dir)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1, result.stdout
    line = lines_of(result.stdout)["web: sudo"]
    assert line.startswith(f"FAIL  web: sudo: sudo -n -l {true} --heal: not allowed")
    rule = f"{throwaway.name} ALL=(root) NOPASSWD: {true} --heal"
    assert f"fix: add with 'visudo -f /etc/sudoers.d/selfheal': {rule}" in result.stdout
    # The fix, applied exactly as printed, makes the item pass.
    throwaway.allow(f"{true} --heal")
    fixed = run_as(throwaway.name, readable_install, "doctor", "-c", config, cwd=shared_dir)
    assert lines_of(fixed.stdout)["web: sudo"] == (
        f"PASS  web: sudo: {throwaway.name} may run '{true} --heal' without a password"
    )
    assert "note: running as root" not in fixed.stdout


def test_doctor_as_the_check_user_fails_an_unwritable_state_dir(
    throwaway: ThrowawayUser, shared_dir: Path, readable_install: Path
) -> None:
    state = shared_dir / "state"
    state.mkdir(mode=0o755)  # root's, as after a 'selfheal reset' by root created it
    config = doctor_config(shared_dir, state, "true", sudo=False)
    result = run_as(throwaway.name, readable_install, "doctor", "-c", config, cwd=shared_dir)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1, result.stdout
    line = lines_of(result.stdout)["state dir"]
    assert line.startswith("FAIL") and "owned by uid 0, not by this user" in line, line
    assert f"fix: chown {throwaway.name}:" in result.stdout
    assert lines_of(result.stdout)["journal"].startswith("FAIL")


def test_doctor_checks_the_event_outputs(tmp_path: Path) -> None:
    config = doctor_config(tmp_path, tmp_path / "state", "true", sudo=False)
    config.write_text(
        config.read_text()
        + f"metrics: {tmp_path / 'missing' / 'selfheal.prom'}\n"
        + f"syslog: {{address: {tmp_path / 'no.sock'}}}\n"
        + "on_event: {command: [/nonexistent/notify, --room, ops]}\n"
    )
    result = run_selfheal("doctor", "-c", config)
    assert result.returncode == 1
    items = lines_of(result.stdout)
    who = pwd.getpwuid(os.geteuid()).pw_name
    assert items["metrics"] == f"FAIL  metrics: {tmp_path / 'missing'} is missing or not writable by {who}"
    assert items["syslog"].startswith(f"FAIL  syslog: {tmp_path / 'no.sock'} is not a socket")
    assert items["on_event"] == "FAIL  on_event: /nonexistent/notify not found or not executable"
    (tmp_path / "missing").mkdir()
    assert lines_of(run_selfheal("doctor", "-c", config).stdout)["metrics"].startswith("PASS")


def test_doctor_name_checks_one_check(tmp_path: Path) -> None:
    config = doctor_config(tmp_path, tmp_path / "state", "/nonexistent/heal", sudo=False)
    config.write_text(config.read_text() + f"  db:\n    plugin: {CHECK_DUMMY} 0\n    heal: 'true'\n")
    one = run_selfheal("doctor", "db", "-c", config)
    assert one.returncode == 0, one.stdout
    assert [line.split(":")[0] for line in one.stdout.splitlines() if line.startswith(("PASS", "FAIL"))] == [
        "PASS  state dir",
        "PASS  journal",
        "PASS  runner",
        "PASS  config",
        "PASS  db",
        "PASS  db",
    ]
    assert "web:" not in one.stdout
    assert run_selfheal("doctor", "-c", config).returncode == 1  # web's heal is missing
    unknown = run_selfheal("doctor", "nosuch", "-c", config)
    assert unknown.returncode == 3 and "no check named 'nosuch'" in unknown.stdout

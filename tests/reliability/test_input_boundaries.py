"""Hostile input at the argument, config, plugin and pidfile boundaries (issue 11, the input half).

One test (at least) per defect: each failed before its fix. Every run is
a real ``selfheal`` (or ``check_selfheal_*``) process with a timeout, so a
hang fails the test rather than hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    CHECK_DUMMY,
    PROBLEM_LINE,
    assert_no_traceback,
    clean_env,
    process_gone,
    selfheal_argv,
    wait_for,
    write_script,
)
from harness import figure

#: A hang is a failure; a prompt run takes well under a second.
PROMPT = 20
BIN = Path(sys.executable).parent


def run(
    *args: object, env: dict[str, str] | None = None, timeout: float = PROMPT
) -> subprocess.CompletedProcess[str]:
    # Surrogate escapes in a str argument reach the process as the raw bytes they stand for.
    result = subprocess.run(
        [*selfheal_argv(), *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        env={**clean_env(LC_ALL="C.UTF-8"), **(env or {})},
        timeout=timeout,
        check=False,
    )
    assert_no_traceback(result.stdout, result.stderr)
    assert "internal error" not in result.stdout, result.stdout
    return result


def check(name: str, *args: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / f"check_selfheal_{name}"), *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(LC_ALL="C.UTF-8"),
        timeout=PROMPT,
        check=False,
    )
    assert_no_traceback(result.stdout, result.stderr)
    assert "internal error" not in result.stdout, result.stdout
    return result


def one_unknown(result: subprocess.CompletedProcess[str], why: str) -> str:
    assert result.returncode == 3, result.stdout
    (line,) = result.stdout.splitlines()
    assert PROBLEM_LINE.match(line), line
    assert why in line, line
    return line


def heal_marker(where: Path) -> tuple[Path, Path]:
    marker = where / "healed"
    return write_script(where / "heal", f'echo healed >> "{marker}"\n'), marker


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o644)
    return path


def valid_config(where: Path, state: Path) -> str:
    return json.dumps(
        {"state_dir": str(state), "checks": {"web": {"plugin": f"{CHECK_DUMMY} 2 down", "heal": "true"}}}
    )


# -- defect 5: a config that is a FIFO or a device -------------------------


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_config_that_is_no_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        config = tmp_path / "selfheal.yaml"
        os.mkfifo(config)
    else:
        config = Path("/dev/zero")  # an endless read: memory until the OOM killer
    # run() bounds each command (a hang fails the test): no timing here.
    result = run("run", "web", "-c", config)
    one_unknown(result, f"{config}: cannot read config: it is not a regular file")
    validate = run("validate", "-c", config)
    assert validate.returncode == 1, validate.stdout
    assert validate.stdout.startswith(f"{config}: cannot read config: it is not a regular file"), (
        validate.stdout
    )
    figure("config file kinds (FIFO, device): refused at once", 2)


def test_a_huge_config_is_refused_not_read(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yaml"
    with config.open("wb") as stream:
        stream.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    config.chmod(0o644)
    one_unknown(run("run", "web", "-c", config), "is too large")


@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_a_critical_wrap_heals_whatever_its_default_config_is(tmp_path: Path, kind: str) -> None:
    """wrap reads the default config only for its outputs: one it cannot read means no outputs."""
    config = tmp_path / "selfheal.yaml"
    if kind == "fifo":
        os.mkfifo(config)
    else:
        write_config(config, "checks:\n  web:\n    plugin: x\n    heal: " + "[" * 250 + "]" * 250 + "\n")
    heal, marker = heal_marker(tmp_path)
    result = run(
        "wrap", "--name", "web", "--heal", heal, "--state-dir", tmp_path / "state", "--", CHECK_DUMMY, "2", "down",
        env={"SELFHEAL_CONFIG": str(config)},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "self-healing: started" in result.stdout, result.stdout
    wait_for(marker.exists, 10, what="the heal")


# -- defect 7: deep YAML nesting -------------------------------------------


@pytest.mark.parametrize("shape", ["flow", "block", "alias"])
def test_deep_yaml_is_a_located_error(tmp_path: Path, shape: str) -> None:
    if shape == "flow":
        value = "[" * 250 + "]" * 250
    elif shape == "block":
        value = "\n      " + "- " * 250 + "x"  # compact nested block sequences
    else:
        # 20 levels anchored, then aliased 20 levels deeper: 40 through the alias.
        value = "[" * 20 + "]" * 20
    text = f"checks:\n  web:\n    plugin: {CHECK_DUMMY} 0 ok\n    heal: 'true'\n    description: {value}\n"
    if shape == "alias":
        text = f"x: &deep {value}\n" + text.replace(value, "[" * 20 + "*deep" + "]" * 20)
    config = write_config(tmp_path / "selfheal.yaml", text)
    line = one_unknown(run("run", "web", "-c", config), "nested more than 32 levels deep")
    assert f"{config}:" in line
    validate = run("validate", "-c", config)
    assert validate.returncode == 1
    assert "nested more than 32 levels deep" in validate.stdout and validate.stdout.startswith(f"{config}:")
    figure("deep YAML nesting: a FILE:LINE error", 2)


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    text = f"checks:\n  web:\n    plugin: {CHECK_DUMMY} 0 ok\n    heal: 'true'\n    description: &a [*a]\n"
    config = write_config(tmp_path / "selfheal.yaml", text)
    one_unknown(run("run", "web", "-c", config), "an alias inside its own anchor")


# -- defect 8: trust judges the real path ---------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_root_owned_symlink_into_another_users_directory_is_not_trusted(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    real = write_config(theirs / "selfheal.yaml", valid_config(tmp_path, tmp_path / "state"))  # root's file
    os.chown(theirs, 65534, 65534)  # nobody could swap it for their own
    safe = tmp_path / "etc"
    safe.mkdir(mode=0o755)
    link = safe / "selfheal.yaml"
    link.symlink_to(real)
    result = run("run", "web", "-c", link)
    one_unknown(result, f"refusing a config that others can change: its directory {theirs} is owned by")
    validate = run("validate", "-c", link)
    assert validate.returncode == 1 and f"its directory {theirs}" in validate.stdout, validate.stdout
    os.chown(theirs, 0, 0)
    assert run("run", "web", "-c", link, "--dry-run").returncode == 1  # trusted again: heals
    figure("trust through a symlink: the real path is judged", 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_config_below_another_users_directory_is_not_trusted(tmp_path: Path) -> None:
    """Every directory on the path counts: the owner of /a can rename /a/b away."""
    tmp_path.chmod(0o755)
    theirs = tmp_path / "theirs"
    (theirs / "etc").mkdir(parents=True, mode=0o755)
    config = write_config(theirs / "etc" / "selfheal.yaml", valid_config(tmp_path, tmp_path / "state"))
    os.chown(theirs, 65534, 65534)
    one_unknown(run("run", "web", "-c", config), f"the directory {theirs} is owned by")


# -- defect 9: bytes that are not UTF-8 ------------------------------------

NOT_UTF8 = "x\udcff\udcfe"  # the bytes ff fe, as Python holds them from argv


def test_a_pause_reason_that_is_not_utf8_keeps_critical_runs_critical(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"SELFHEAL_STATE_DIR": str(state)}
    assert run("pause", "web", "--for", "1h", "--force", "--reason", NOT_UTF8, env=env).returncode == 0
    heal, marker = heal_marker(tmp_path)
    result = run("wrap", "--name", "web", "--heal", heal, "--", CHECK_DUMMY, "2", "down", env=env)
    assert result.returncode == 2, result.stdout
    assert "self-healing paused until" in result.stdout and "x\ufffd\ufffd" in result.stdout, result.stdout
    assert run("status", env=env).returncode == 0
    assert not marker.exists()


def test_a_heal_argv_that_is_not_utf8_starts_and_says_warning(tmp_path: Path) -> None:
    marker = tmp_path / "healed"
    heal = write_script(tmp_path / "heal", f'echo "$1" >> "{marker}"\n')
    result = run(
        "wrap", "--name", "web", "--heal", f"{heal} {NOT_UTF8}", "--state-dir", tmp_path / "state",
        "--", CHECK_DUMMY, "2", "down",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "self-healing: started" in result.stdout, result.stdout
    wait_for(marker.exists, 10, what="the heal")
    assert marker.read_bytes() == b"x\xff\xfe\n"  # the heal got the bytes as given


def test_a_plugin_path_that_is_not_utf8_is_one_unknown_line(tmp_path: Path) -> None:
    plugin = str(tmp_path / f"check_{NOT_UTF8}")
    result = run("wrap", "--name", "web", "--heal", "true", "--state-dir", tmp_path / "state", "--", plugin)
    assert result.returncode == 3, result.stdout
    assert "plugin cannot execute" in result.stdout.splitlines()[0], result.stdout
    write_script(Path(os.fsencode(plugin).decode("utf-8", "surrogateescape")), "echo 'CRIT'; exit 2\n")
    result = run("wrap", "--name", "web", "--heal", "true", "--state-dir", tmp_path / "state", "--", plugin)
    assert result.returncode == 1, result.stdout


# -- defect 10: a plugin that closes its output, then exits ----------------


def test_a_plugin_that_closes_its_output_is_still_heard(tmp_path: Path) -> None:
    # Exiting later than the 2 s selfheal used to wait after the pipes closed.
    plugin = write_script(tmp_path / "plugin", "exec >&- 2>&-\nsleep 2.5\nexit 2\n")
    args = (
        "wrap",
        "-t",
        "10",
        "--dry-run",
        "--heal",
        "true",
        "--state-dir",
        tmp_path / "state",
        "--",
        plugin,
    )
    result = run(*args)
    assert result.returncode == 1, result.stdout  # CRITICAL from the plugin, so it would heal
    assert "exited None" not in result.stdout and "would start" in result.stdout, result.stdout


def test_a_plugin_that_closes_its_output_and_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    plugin = write_script(tmp_path / "plugin", f'echo $$ > "{pidfile}"\nexec >&- 2>&-\nexec sleep 60\n')
    result = run(
        "wrap", "-t", "1", "--dry-run", "--heal", "true", "--state-dir", tmp_path / "state", "--", plugin
    )
    one_line = result.stdout.splitlines()[0]
    assert result.returncode == 3 and "timed out after 1s" in one_line, result.stdout
    pid = int(pidfile.read_text())
    wait_for(lambda: process_gone(pid), 5, what="the plugin gone")


# -- defect 11: --timeout-state and timeout_state agree ---------------------


@pytest.mark.parametrize("state", ["ok", "warning"])
def test_timeout_state_ok_or_warning_is_refused_everywhere(tmp_path: Path, state: str) -> None:
    wrap = run("wrap", "--heal", "true", "--timeout-state", state, "--", CHECK_DUMMY, "0", "ok")
    one_unknown(wrap, "bad --timeout-state: must be critical or unknown")
    builtin = check("tcp", "-H", "127.0.0.1", "-p", "1", "--timeout-state", state)
    assert builtin.returncode == 3 and "bad --timeout-state: must be critical or unknown" in builtin.stdout
    text = f"checks:\n  web:\n    plugin: {CHECK_DUMMY} 0 ok\n    heal: 'true'\n    timeout_state: {state}\n"
    config = write_config(tmp_path / "selfheal.yaml", text)
    one_unknown(run("run", "web", "-c", config), "timeout_state must be critical or unknown")
    for good in ("critical", "unknown"):
        assert (
            run("wrap", "--heal", "true", "--timeout-state", good, "--", CHECK_DUMMY, "0", "ok").returncode
            == 0
        )


# -- defect 13: huge durations ---------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["pause", "web", "--for", "1e17"],
        ["wrap", "--heal", "true", "--grace", "1e300", "--", CHECK_DUMMY, "2", "x"],
        ["wrap", "--heal", "true", "--splay", "1e300", "--", CHECK_DUMMY, "2", "x"],
        ["wrap", "--heal", "true", "--cooldown", "99999999999d", "--", CHECK_DUMMY, "2", "x"],
        ["wrap", "--heal", "true", "-t", "9.3e9", "--", CHECK_DUMMY, "0", "x"],
    ],
    ids=["pause-for", "grace", "splay", "cooldown", "wrap-t"],
)
def test_huge_durations_are_refused_where_they_are_given(tmp_path: Path, args: list[str]) -> None:
    result = run(*args, env={"SELFHEAL_STATE_DIR": str(tmp_path / "state")})
    one_unknown(result, "too long")
    assert not (tmp_path / "state" / "web.json").exists()


def test_a_huge_check_timeout_is_refused(tmp_path: Path) -> None:
    result = check("tcp", "-H", "127.0.0.1", "-p", "1", "-t", "9.3e9")
    assert result.returncode == 3 and "bad --timeout: too long" in result.stdout, result.stdout


# -- defect 14: a pidfile of odd bytes --------------------------------------


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\n", "\u00b2\n".encode(), "\u0661\u0662\n".encode(), b"99999999999\n"]
)
def test_a_pidfile_without_a_pid_is_critical(tmp_path: Path, content: bytes) -> None:
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_bytes(content)
    result = check("process", "-p", pidfile)
    assert result.returncode == 2, result.stdout
    assert f"pidfile {pidfile} holds no pid" in result.stdout, result.stdout


# -- the argument items -----------------------------------------------------


def test_every_command_takes_the_verbose_the_internal_error_line_offers(tmp_path: Path) -> None:
    config = write_config(tmp_path / "selfheal.yaml", valid_config(tmp_path, tmp_path / "state"))
    assert run("validate", "-vvv", "-c", config).returncode == 0
    env = {"SELFHEAL_STATE_DIR": str(tmp_path / "state")}
    for command in ("status", "history", "doctor"):
        assert run(command, "-v", env=env).returncode in (0, 1)


@pytest.mark.parametrize(
    "args",
    [
        ["wrap", "--heal", "true", "-vx", "--", CHECK_DUMMY, "0", "ok"],
        ["wrap", "--heal", "true", "--verbose=foo", "--", CHECK_DUMMY, "0", "ok"],
        ["status", "-vx"],
        ["validate", "--verbose=2"],
    ],
)
def test_verbose_takes_no_value(args: list[str]) -> None:
    one_unknown(run(*args), "takes no value")


def test_verbose_after_the_double_dash_is_the_plugins() -> None:
    from selfheal.core.argv import verbosity

    assert verbosity(["-vv", "--", "plugin", "-vvv", "--verbose"]) == 2
    assert verbosity(["-v", "--verbose"]) == 2


def test_an_empty_name_is_refused() -> None:
    one_unknown(run("wrap", "--name", "", "--heal", "true", "--", CHECK_DUMMY, "0", "ok"), "bad --name")


@pytest.mark.parametrize("port", ["1_0", "\u0661\u0660", "0x10", " "])
def test_a_port_is_plain_digits(port: str) -> None:
    result = check("tcp", "-H", "127.0.0.1", "-p", port)
    assert result.returncode == 3 and "bad --port" in result.stdout, result.stdout

"""Built-in checks from ``selfheal.yaml``: ``check: NAME`` plus ``args: {...}``.

Run as Nagios or NRPE would: ``selfheal run NAME -c CONFIG`` in a real
process, against a real socket, with a real heal action.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from checks_support import Server, clean_env, free_port
from conftest import journal_events, run_selfheal, selfheal_argv, wait_for, write_script


def config(tmp_path: Path, checks: dict[str, dict[str, object]]) -> Path:
    path = tmp_path / "selfheal.yaml"
    # JSON is YAML; indent=2 puts every key on a line of its own.
    path.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "checks": checks}, indent=2) + "\n")
    return path


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_healthy_builtin_check_from_config(tmp_path: Path) -> None:
    with Server(banner=b"220 ready\r\n") as server:
        path = config(
            tmp_path,
            {
                "smtp": {
                    "check": "tcp",
                    "args": {"host": "127.0.0.1", "port": server.port, "expect": "220", "critical": 5},
                    "heal": ["true"],
                }
            },
        )
        result = run_selfheal("run", "smtp", "-c", path)
    assert result.returncode == 0, result.stdout
    line = result.stdout.splitlines()[0]
    assert line.startswith("SMTP OK - ") and f"response time on 127.0.0.1:{server.port}" in line
    assert "selfheal_attempts=0;;;0" in line and ";5;0;" in line  # the critical range from args


def test_a_critical_builtin_check_heals_and_says_so(tmp_path: Path) -> None:
    marker = tmp_path / "healed"
    heal = write_script(tmp_path / "heal", f'echo healed >> "{marker}"\n')
    port = free_port()
    path = config(
        tmp_path, {"web": {"check": "tcp", "args": {"host": "127.0.0.1", "port": port}, "heal": [str(heal)]}}
    )
    result = run_selfheal("run", "web", "-c", path)
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines()[0] == (
        f"WEB WARNING - cannot connect to 127.0.0.1:{port}: Connection refused; "
        f"self-healing: started {shlex.quote(str(heal))} (attempt 1/3) | selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0"
    )
    wait_for(lambda: marker.exists(), timeout=10, what="the heal to run")
    assert [e["event"] for e in journal_events(tmp_path / "state")][:1] == ["attempt"]


def test_dry_run_starts_and_writes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "healed"
    heal = write_script(tmp_path / "heal", f'echo healed >> "{marker}"\n')
    path = config(
        tmp_path,
        {"web": {"check": "tcp", "args": {"host": "127.0.0.1", "port": free_port()}, "heal": [str(heal)]}},
    )
    result = run_selfheal("run", "web", "-c", path, "--dry-run")
    assert result.returncode == 1, result.stdout
    assert "would start" in result.stdout
    assert not marker.exists()
    assert journal_events(tmp_path / "state") == []


def test_unknown_builtin_check_is_located(tmp_path: Path) -> None:
    path = config(tmp_path, {"web": {"check": "telnet", "heal": ["true"]}})
    result = run_selfheal("run", "web", "-c", path)
    assert result.returncode == 3
    line = line_of(path, '"check": "telnet"')
    assert result.stdout.startswith(
        f"SELFHEAL UNKNOWN - {path}:{line}: check 'web': unknown built-in check 'telnet'"
    )
    assert result.stdout.count("\n") == 1


def test_unknown_arg_is_located_and_lists_the_known_ones(tmp_path: Path) -> None:
    path = config(
        tmp_path, {"web": {"check": "tcp", "args": {"host": "127.0.0.1", "prot": 80}, "heal": ["true"]}}
    )
    result = run_selfheal("run", "web", "-c", path)
    assert result.returncode == 3
    line = line_of(path, '"prot"')
    assert result.stdout.startswith(
        f"SELFHEAL UNKNOWN - {path}:{line}: check 'web': args: prot: not an option of check: tcp (known: "
    )
    assert "port" in result.stdout and "critical" in result.stdout and result.stdout.count("\n") == 1


def test_bad_arg_value_is_located(tmp_path: Path) -> None:
    path = config(
        tmp_path, {"web": {"check": "tcp", "args": {"host": "127.0.0.1", "port": 99999}, "heal": ["true"]}}
    )
    result = run_selfheal("run", "web", "-c", path)
    assert result.returncode == 3
    line = line_of(path, '"port"')
    assert (
        result.stdout
        == f"SELFHEAL UNKNOWN - {path}:{line}: check 'web': args: port: 99999 is out of range 1..65535\n"
    )


def test_bad_range_and_bad_flag_are_located(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        {
            "a": {"check": "tcp", "args": {"host": "h", "port": 1, "warning": "10:5"}, "heal": ["true"]},
            "b": {"check": "tcp", "args": {"host": "h", "port": 1, "ssl": "yes"}, "heal": ["true"]},
        },
    )
    a = run_selfheal("run", "a", "-c", path)
    assert a.returncode == 3
    assert f"{path}:{line_of(path, '10:5')}: check 'a': args: warning: '10:5' is not a range" in a.stdout
    b = run_selfheal("run", "b", "-c", path)
    assert (
        b.stdout
        == f"SELFHEAL UNKNOWN - {path}:{line_of(path, 'yes')}: check 'b': args: ssl: must be true or false\n"
    )
    path = config(tmp_path, {"c": {"check": "tcp", "args": ["host"], "heal": ["true"]}})
    c = run_selfheal("run", "c", "-c", path)
    line = line_of(path, '"args"')
    assert (
        c.stdout == f"SELFHEAL UNKNOWN - {path}:{line}: check 'c': args must be a mapping of keys to values\n"
    )


def test_every_builtin_check_runs_from_config(tmp_path: Path) -> None:
    """One config, all eight checks, each run by ``selfheal run`` as NRPE would."""
    heartbeat = tmp_path / "heartbeat"
    heartbeat.write_text("beat")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # A systemctl that answers `show` for an active unit (the systemd tests fake it fully).
    write_script(
        fake_bin / "systemctl",
        'printf "Id=web.service\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\n"\n',
    )
    with Server(banner=b"220 ready\r\n") as server:
        checks = {
            "procs": {
                "check": "process",
                "args": {"argument_regex": "no-such-process-here", "critical": "0:0"},
            },
            "port": {"check": "tcp", "args": {"host": "127.0.0.1", "port": server.port, "expect": "220"}},
            "web": {"check": "http", "args": {"url": f"http://127.0.0.1:{free_port()}/", "critical": 5}},
            "root": {"check": "disk", "args": {"path": "/", "warning": 100, "critical": 100}},
            "mem": {"check": "memory", "args": {"warning": "0:", "critical": "0:"}},
            "cpu": {
                "check": "load",
                "args": {"warning": "100000", "critical": "100000,100000,100000", "percpu": True},
            },
            "beat": {
                "check": "file_age",
                "args": {"file": str(heartbeat), "warning": 60, "size_critical": "1:"},
            },
            "unit": {"check": "systemd", "args": {"unit": "web.service"}},
        }
        path = config(tmp_path, {name: {**entry, "heal": ["true"]} for name, entry in checks.items()})
        env = {**clean_env(), "PATH": f"{fake_bin}:/usr/bin:/bin"}
        results = {
            name: subprocess.run(
                selfheal_argv("run", name, "-c", path, "--dry-run"), capture_output=True, text=True, env=env
            )
            for name in checks
        }
    expected = {
        "procs": (0, "PROCS OK - 0 processes matching 'no-such-process-here'"),
        "port": (0, "PORT OK - "),
        "web": (1, "WEB WARNING - cannot fetch http://127.0.0.1:"),  # refused: CRITICAL, would heal
        "root": (0, "ROOT OK - /: "),
        "mem": (0, "MEM OK - "),
        "cpu": (0, "CPU OK - 1-minute load "),
        "beat": (0, f"BEAT OK - {heartbeat} is "),
        "unit": (0, "UNIT OK - web.service is active (running)"),
    }
    for name, (code, start) in expected.items():
        result = results[name]
        assert (result.returncode, result.stdout[: len(start)]) == (code, start), (
            name,
            result.stdout,
            result.stderr,
        )
        assert "selfheal_attempts=" in result.stdout

"""``--downtime`` and ``-t`` mean the same to every way of running a check.

Four ways, each a real process as Nagios starts it, each on a check that
is CRITICAL with a heal configured: ``selfheal wrap`` around check_dummy,
``selfheal run`` of a plugin check, the ``check_selfheal_tcp`` console
script on a closed port, and ``selfheal run`` of a built-in ``check: tcp``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from checks_support import BIN, clean_env, free_port
from conftest import CHECK_DUMMY, journal_events

WAYS = ("wrap", "run", "builtin", "run-builtin")


def argv(way: str, tmp_path: Path, *options: str) -> list[str]:
    """The command line of one way with ``options``, its state dir in tmp_path."""
    state = tmp_path / "state"
    selfheal = [sys.executable, "-m", "selfheal"]
    port = free_port()
    if way == "wrap":
        return [*selfheal, "wrap", "--name", "web", "--heal", "true", "--state-dir", str(state), *options,
                "--", CHECK_DUMMY, "2", "down"]  # fmt: skip
    if way == "builtin":
        return [str(BIN / "check_selfheal_tcp"), "-H", "127.0.0.1", "-p", str(port), "--name", "web",
                "--heal", "true", "--state-dir", str(state), *options]  # fmt: skip
    check = (
        {"plugin": [CHECK_DUMMY, "2", "down"]}
        if way == "run"
        else {"check": "tcp", "args": {"host": "127.0.0.1", "port": port}}
    )
    config = tmp_path / "selfheal.yaml"
    config.write_text(json.dumps({"state_dir": str(state), "checks": {"web": {**check, "heal": ["true"]}}}))
    return [*selfheal, "run", "web", "-c", str(config), *options]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=clean_env(), timeout=30
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("depth", ["1", "1m"])
def test_downtime_pauses_healing(tmp_path: Path, way: str, depth: str) -> None:
    result = run(argv(way, tmp_path, "--downtime", depth))
    assert result.returncode == 2, result.stdout
    assert "self-healing paused (Nagios downtime)" in result.stdout.splitlines()[0]
    assert journal_events(tmp_path / "state", "attempt") == []


@pytest.mark.parametrize("way", WAYS)
def test_no_downtime_heals(tmp_path: Path, way: str) -> None:
    """The counter-check: $SERVICEDOWNTIME$ is "" or 0 outside downtime, and then it heals."""
    result = run(argv(way, tmp_path, "--downtime", ""))
    assert result.returncode == 1 and "self-healing: started true" in result.stdout, result.stdout


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("seconds", "why"),
    [
        ("0", "must be longer than 0s"),
        ("0s", "must be longer than 0s"),
        ("-5", "not a duration: '-5' (must be a finite, non-negative time)"),
    ],
)
def test_a_timeout_of_zero_or_less_is_unknown(tmp_path: Path, way: str, seconds: str, why: str) -> None:
    result = run(argv(way, tmp_path, "-t", seconds))
    assert result.returncode == 3, result.stdout
    assert result.stdout.endswith(f" UNKNOWN - bad --timeout: {why}\n"), result.stdout
    assert result.stdout.count("\n") == 1

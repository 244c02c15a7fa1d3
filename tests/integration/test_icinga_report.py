"""``send()`` without an Icinga: what it refuses before the network, and the network's failures.

Real files, a FIFO, a closed port and a name that does not resolve; the
answers of a real Icinga 2 are in ``tests/e2e/test_icinga2_api.py``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from selfheal.edges.icinga_api import IcingaTarget, send

SECRET = "s3cret-password"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def target(password_file: Path, url: str | None = None) -> IcingaTarget:
    return IcingaTarget(
        url=url or f"https://127.0.0.1:{closed_port()}",
        host="web1",
        service="nginx",
        user="selfheal",
        password_file=str(password_file),
        timeout=3,
    )


def password_file(tmp_path: Path, mode: int, text: str = SECRET + "\n") -> Path:
    path = tmp_path / "icinga.password"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_password_file_readable_by_everyone_is_refused_before_connecting(tmp_path: Path) -> None:
    path = password_file(tmp_path, 0o644)
    error = send(target(path), 0, "NGINX OK", "a comment")
    assert error is not None and f"password file {path} is readable by everyone (mode 0644)" in error, error
    assert f"chmod o-rwx {path}" in error, error
    assert "connection refused" not in error and SECRET not in error, error


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_a_password_file_of_the_owner_or_its_group_is_used(tmp_path: Path, mode: int) -> None:
    error = send(target(password_file(tmp_path, mode)), 0, "NGINX OK", None)
    # It got as far as the network: nothing listens there.
    assert error is not None and "connection refused" in error, error
    assert error.startswith("icinga web1!nginx at 127.0.0.1:"), error
    assert SECRET not in error


@pytest.mark.parametrize(("text", "problem"), [("", "is empty"), ("\n", "is empty"), ("\r\n", "is empty")])
def test_an_empty_password_file_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = password_file(tmp_path, 0o600, text)
    error = send(target(path), 0, "NGINX OK", None)
    assert error is not None and f"password file {path} {problem}" in error, error


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no-such.password"
    error = send(target(path), 0, "NGINX OK", None)
    assert error is not None and f"password file {path} is missing" in error, error


def test_a_fifo_as_the_password_file_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "fifo.password"
    os.mkfifo(path, 0o600)
    error = send(target(path), 0, "NGINX OK", None)
    assert error is not None and "password file unreadable" in error and "not a regular file" in error, error


@pytest.mark.parametrize("state", [4, -1, True, "0"])
def test_a_state_that_is_not_a_nagios_state_is_refused(tmp_path: Path, state: object) -> None:
    error = send(target(password_file(tmp_path, 0o600)), state, "NGINX OK", None)  # type: ignore[arg-type]
    assert error is not None and "the state must be 0, 1, 2 or 3" in error, error


def test_a_name_that_does_not_resolve_is_an_error_line(tmp_path: Path) -> None:
    error = send(target(password_file(tmp_path, 0o600), url="https://no-such-host.invalid"), 0, "OK", None)
    assert error is not None and "no-such-host.invalid" in error, error
    assert "cannot look up" in error or "timed out looking up" in error, error
    assert "\n" not in error

"""The Icinga 2 report-back (``selfheal.edges.icinga_api``) against a real Icinga 2 API.

One Icinga 2 (``e2e.icinga``) for the module; ``send()`` is called directly,
and what arrived is read back through the API, never assumed.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import need
from e2e.icinga import HOST, OTHER, SERVICE, Icinga, running_icinga
from selfheal.edges.icinga_api import IcingaTarget, send


@pytest.fixture(scope="module")
def icinga() -> Iterator[Icinga]:
    with running_icinga("selfheal-e2e-icinga-api-") as daemon:
        yield daemon


def test_a_critical_then_an_ok_with_a_comment_arrive(icinga: Icinga) -> None:
    before = icinga.comments()
    assert send(icinga.target(), 2, "NGINX CRITICAL - connection refused | time=0.000s;;;0", None) is None
    result = icinga.service()["last_check_result"]
    assert isinstance(result, dict)
    assert (result["state"], result["output"]) == (2, "NGINX CRITICAL - connection refused"), result
    assert result["performance_data"] == ["time=0.000s;;;0"], result
    assert result["check_source"] == socket.gethostname(), result
    assert icinga.comments() == before, "a report without a comment added one"

    comment = f"self-healing: systemctl restart nginx (attempt 1/3) helped; OK again ({secrets.token_hex(4)})"
    output = "NGINX OK - 612 bytes in 0.002s\nlong output line | time=0.002s;;;0"
    assert send(icinga.target(), 0, output, comment) is None
    result = icinga.service()["last_check_result"]
    assert isinstance(result, dict)
    assert (result["state"], result["output"]) == (0, "NGINX OK - 612 bytes in 0.002s\nlong output line")
    assert result["performance_data"] == ["time=0.002s;;;0"], result
    (arrived,) = [c for c in icinga.comments() if c["text"] == comment]
    assert (arrived["author"], arrived["text"]) == ("selfheal", comment), arrived
    assert (arrived["host_name"], arrived["service_name"]) == (HOST, SERVICE), arrived


def test_a_wrong_password_is_an_error_naming_401(icinga: Icinga) -> None:
    wrong = icinga.root / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    error = send(icinga.target(password_file=str(wrong)), 0, "NGINX OK", "must not arrive")
    assert error is not None and "401" in error, error
    assert "process-check-result" in error and f"{HOST}!{SERVICE}" in error, error
    assert "not-the-password" not in error and icinga.password not in error
    assert "must not arrive" not in [c["text"] for c in icinga.comments()]


def test_a_password_file_written_on_windows_is_read(icinga: Icinga) -> None:
    """One trailing newline is not part of the password, CRLF included."""
    crlf = icinga.root / "crlf.password"
    crlf.write_text(icinga.password + "\r\n")
    crlf.chmod(0o640)
    assert send(icinga.target(password_file=str(crlf)), 0, "NGINX OK - crlf", None) is None
    result = icinga.service()["last_check_result"]
    assert isinstance(result, dict) and result["output"] == "NGINX OK - crlf", result


def test_a_certificate_from_another_ca_is_a_tls_error(icinga: Icinga) -> None:
    other = icinga.root / "other-ca"
    other.mkdir()
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(other / "ca.key"), "-out", str(other / "ca.crt"), "-days", "1",
         "-subj", "/CN=another CA", "-addext", "basicConstraints=critical,CA:TRUE"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    need(done.returncode == 0, f"openssl cannot make a CA (apt-get install openssl): {done.stderr}")
    error = send(icinga.target(ca_file=str(other / "ca.crt")), 0, "NGINX OK", None)
    assert error is not None and "TLS failure: certificate verify failed" in error, error


def test_a_name_the_certificate_does_not_carry_is_a_tls_error(icinga: Icinga) -> None:
    """The certificate names ``localhost`` only: the host name is verified, not just the chain."""
    error = send(icinga.target(url=f"https://127.0.0.1:{icinga.port}"), 0, "NGINX OK", None)
    assert error is not None and "TLS failure: certificate verify failed" in error, error
    assert "mismatch" in error, error


def test_a_service_icinga_does_not_know_is_an_error_naming_it(icinga: Icinga) -> None:
    error = send(icinga.target(service="no-such-service"), 2, "NGINX CRITICAL", "must not arrive")
    assert error is not None and f"{HOST}!no-such-service" in error, error
    assert "404" in error and "No objects found" in error, error


def test_a_listener_that_accepts_and_never_answers_ends_within_the_timeout(tmp_path: Path) -> None:
    """The no-hang property: the whole report is bounded by ``timeout``, whatever the peer does.

    No Icinga here: a socket of the test's own accepts the connection and
    says nothing, as a hung API would (the TLS handshake never completes).
    """
    password_file = tmp_path / "password"
    password_file.write_text("secret\n")
    password_file.chmod(0o600)
    timeout = 1.0
    held: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        accepting = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
        accepting.start()
        target = IcingaTarget(
            url=f"https://127.0.0.1:{listener.getsockname()[1]}",
            host=HOST,
            service=SERVICE,
            user="selfheal",
            password_file=str(password_file),
            timeout=timeout,
        )
        started = time.monotonic()
        error = send(target, 0, "NGINX OK", "a comment")
        took = time.monotonic() - started
        accepting.join(5)
        for connection in held:
            connection.close()
    print(f"\nsend() to a listener that never answers: {took:.3f}s with timeout={timeout}s: {error}")
    assert held, "the test's listener never accepted the connection"
    assert error is not None and "timed out in the TLS handshake" in error, error
    # The bound: the timeout, plus a little for the scheduler of a loaded machine.
    assert took <= timeout + 0.5, f"send() returned after {took:.2f}s with timeout={timeout}s"


def test_the_documented_filter_limits_the_user_to_the_selfheal_service_group(icinga: Icinga) -> None:
    comment = f"self-healing: restarted nginx ({secrets.token_hex(4)})"
    assert send(icinga.target(user="selfheal-filtered"), 1, "NGINX WARNING - slow", comment) is None
    result = icinga.service()["last_check_result"]
    assert isinstance(result, dict) and (result["state"], result["output"]) == (1, "NGINX WARNING - slow")
    assert comment in [c["text"] for c in icinga.comments()]

    error = send(icinga.target(user="selfheal-filtered", service=OTHER), 2, "PG CRITICAL", None)
    assert error is not None and f"{HOST}!{OTHER}" in error, error
    assert "404" in error and "No objects found" in error, error
    # The plain user of the docs may report for it.
    assert send(icinga.target(service=OTHER), 2, "PG CRITICAL", None) is None

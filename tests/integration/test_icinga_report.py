"""``send()`` without an Icinga: what it refuses before the network, and the network's failures.

Real files, a FIFO, a closed port and a name that does not resolve; the
answers of a real Icinga 2 are in ``tests/e2e/test_icinga2_api.py``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from selfheal.edges.icinga_api import IcingaTarget, send

SECRET = "s3cret-password"


class TlsPeer:
    """A TLS server on loopback with a certificate for 127.0.0.1; ``answer`` speaks for Icinga.

    Each connection is handed, after the handshake and the request, to
    ``answer(connection, request)``. ``requests`` keeps what arrived.
    """

    def __init__(self, directory: Path, answer: Callable[[ssl.SSLSocket, bytes], None]) -> None:
        self.cert, key = directory / "peer.crt", directory / "peer.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(self.cert), "-days", "1", "-subj", "/CN=peer",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, key)
        self.answer = answer
        self.requests: list[bytes] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            with self.context.wrap_socket(raw, server_side=True) as connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                try:
                    self.answer(connection, request)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


Answer = Callable[[ssl.SSLSocket, bytes], None]
StartPeer = Callable[[Answer], TlsPeer]


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[StartPeer]:
    started: list[TlsPeer] = []

    def start(answer: Callable[[ssl.SSLSocket, bytes], None]) -> TlsPeer:
        started.append(TlsPeer(tmp_path, answer))
        return started[-1]

    yield start
    for one in started:
        one.close()


def json_answer(status: str, document: object) -> Callable[[ssl.SSLSocket, bytes], None]:
    def answer(connection: ssl.SSLSocket, request: bytes) -> None:
        body = json.dumps(document).encode()
        connection.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    return answer


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def target(
    password_file: Path, url: str | None = None, ca_file: Path | None = None, timeout: float = 3
) -> IcingaTarget:
    return IcingaTarget(
        url=url or f"https://127.0.0.1:{closed_port()}",
        host="web1",
        service="nginx",
        user="selfheal",
        password_file=str(password_file),
        ca_file=None if ca_file is None else str(ca_file),
        timeout=timeout,
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


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_ca_file_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    # OpenSSL's own open would block on a FIFO for ever, and read /dev/zero for ever:
    # in a child, so that a hang fails this test rather than the whole suite.
    ca = tmp_path / "ca.fifo"
    if kind == "fifo":
        os.mkfifo(ca, 0o600)
    else:
        ca = Path("/dev/zero")
    code = (
        "from selfheal.edges.icinga_api import IcingaTarget, send\n"
        f"t = IcingaTarget(url='https://127.0.0.1:1', host='h', service='s', user='u', "
        f"password_file={str(password_file(tmp_path, 0o600))!r}, ca_file={str(ca)!r}, timeout=1)\n"
        "print(send(t, 0, 'OK'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert "TLS: ca_file unreadable" in result.stdout and "not a regular file" in result.stdout, result


@pytest.mark.parametrize("state", [4, -1, True, "0"])
def test_a_state_that_is_not_a_nagios_state_is_refused(tmp_path: Path, state: object) -> None:
    error = send(target(password_file(tmp_path, 0o600)), state, "NGINX OK", None)  # type: ignore[arg-type]
    assert error is not None and "the state must be 0, 1, 2 or 3" in error, error


def test_a_name_that_does_not_resolve_is_an_error_line(tmp_path: Path) -> None:
    error = send(target(password_file(tmp_path, 0o600), url="https://no-such-host.invalid"), 0, "OK", None)
    assert error is not None and "no-such-host.invalid" in error, error
    assert "cannot look up" in error or "timed out looking up" in error, error
    assert "\n" not in error


def test_the_requests_carry_the_result_and_the_comment(tmp_path: Path, peer: StartPeer) -> None:
    icinga = peer(json_answer("200 OK", {"results": [{"code": 200.0, "status": "done"}]}))
    url = f"https://127.0.0.1:{icinga.port}"
    output = "NGINX OK - fine\nmore | time=1s;;;0"
    assert send(target(password_file(tmp_path, 0o600), url, icinga.cert), 0, output, "healed it") is None
    (first, second) = icinga.requests
    head, _, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/actions/process-check-result HTTP/1.1\r\n"), head
    token = base64.b64encode(f"selfheal:{SECRET}".encode())
    assert b"Authorization: Basic " + token in head.split(b"\r\n"), head
    sent = json.loads(body)
    assert sent == {
        "type": "Service",
        "service": "web1!nginx",
        "exit_status": 0,
        "plugin_output": "NGINX OK - fine\nmore",
        "performance_data": ["time=1s;;;0"],
        "check_source": socket.gethostname(),
    }
    head, _, body = second.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/actions/add-comment HTTP/1.1\r\n"), head
    assert json.loads(body) == {
        "type": "Service",
        "service": "web1!nginx",
        "author": "selfheal",
        "comment": "healed it",
    }


@pytest.mark.parametrize(
    ("status", "document", "expected"),
    [
        ("500 Internal Server Error", {"error": 500, "status": "Action failed."}, "HTTP 500 Internal Server Error: Action failed."),
        ("200 OK", {"results": [{"code": 403.0, "status": "Passive checks are disabled for object 'web1!nginx'."}]},
         "Icinga answered 403: Passive checks are disabled"),
        ("200 OK", {"results": []}, "but no result in the answer"),
        ("200 OK", ["not", "a", "mapping"], "but no result in the answer"),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_a_success_is_an_error_line(
    tmp_path: Path, peer: StartPeer, status: str, document: object, expected: str
) -> None:
    icinga = peer(json_answer(status, document))
    url = f"https://127.0.0.1:{icinga.port}"
    error = send(target(password_file(tmp_path, 0o600), url, icinga.cert), 0, "NGINX OK", "comment")
    assert error is not None and expected in error, error
    assert "process-check-result" in error and len(icinga.requests) == 1, error


def test_an_answer_dripped_byte_by_byte_ends_at_the_deadline_not_per_read(
    tmp_path: Path, peer: StartPeer
) -> None:
    """Each byte comes well within the timeout; the whole answer would take far longer."""

    def drip(connection: ssl.SSLSocket, request: bytes) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 10:
            connection.sendall(bytes([byte]))
            time.sleep(0.1)

    icinga = peer(drip)
    timeout = 1.0
    url = f"https://127.0.0.1:{icinga.port}"
    started = time.monotonic()
    error = send(target(password_file(tmp_path, 0o600), url, icinga.cert, timeout), 0, "NGINX OK", None)
    took = time.monotonic() - started
    assert error is not None and "timed out waiting for the answer" in error, error
    # The no-hang bound: the timeout, plus a little for a loaded machine's scheduler.
    assert took <= timeout + 0.5, f"send() returned after {took:.2f}s with timeout={timeout}s"

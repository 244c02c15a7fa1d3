"""One HTTPS POST under one deadline: look-up, connect, TLS handshake, request and answer.

For reports sent from the heal runner (``edges.icinga_api``): a peer that
accepts and never answers, a resolver that hangs, an answer dripped byte by
byte must all end at the deadline, not after a timeout per step. Each step
is given what is left: the socket timeouts bound connect, the handshake
(Python's ssl module keeps one deadline across its retries) and each read;
the name look-up, which has no timeout, runs in a daemon thread that is
abandoned at the deadline. Failures are ``PostFailed``, one line without
the request's headers (they carry the credentials).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from typing import cast

#: Larger answers are refused: the callers expect a few hundred bytes of JSON.
MAX_ANSWER = 1 << 20


class PostFailed(Exception):
    """What went wrong, in one line fit for an operator."""


def remaining(deadline: float, doing: str) -> float:
    """Seconds left before ``deadline`` (``time.monotonic()``), or PostFailed: timed out ``doing``."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise PostFailed(f"timed out {doing}")
    return left


def post(
    host: str,
    port: int,
    context: ssl.SSLContext,
    path: str,
    headers: dict[str, str],
    body: bytes,
    deadline: float,
) -> tuple[int, str, bytes]:
    """POST ``body`` to ``https://host:port/path``; the answer's status, reason and body."""
    netloc = f"[{host}]" if ":" in host else host
    head = "".join(
        f"{name}: {value}\r\n"
        for name, value in {
            "Host": f"{netloc}:{port}",
            **headers,
            "Content-Length": str(len(body)),
            "Connection": "close",
        }.items()
    )
    request = f"POST {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body
    return _decode(_exchange(host, port, context, deadline, request))


def _resolve(host: str, port: int, deadline: float) -> list[tuple[int, tuple[object, ...]]]:
    """The addresses to try; a name is looked up in a thread, as getaddrinfo has no timeout."""
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    found: list[list[tuple[int, tuple[object, ...]]] | OSError] = []

    def lookup() -> None:
        try:
            found.append(
                [(info[0], info[4]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
            )
        except OSError as exc:
            found.append(exc)

    if literal:
        lookup()
    else:
        thread = threading.Thread(target=lookup, name="selfheal-lookup", daemon=True)
        thread.start()
        thread.join(remaining(deadline, f"looking up {host}"))
    if not found:
        raise PostFailed(f"timed out looking up {host}")
    addresses = found[0]
    if isinstance(addresses, OSError):
        raise PostFailed(f"cannot look up {host}: {addresses.strerror or addresses}")
    return addresses


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    problems = []
    for family, address in _resolve(host, port, deadline):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(remaining(deadline, f"connecting to {host}:{port}"))
            sock.connect(address)
            return sock
        except socket.timeout:
            sock.close()
            raise PostFailed(f"timed out connecting to {host}:{port}") from None
        except ConnectionRefusedError:
            problems.append("connection refused")
        except OSError as exc:
            problems.append(exc.strerror or str(exc))
        except BaseException:
            sock.close()
            raise
        sock.close()
    raise PostFailed(f"cannot connect to {host}:{port}: {', '.join(dict.fromkeys(problems)) or 'no address'}")


def _exchange(host: str, port: int, context: ssl.SSLContext, deadline: float, request: bytes) -> bytes:
    sock = _connect(host, port, deadline)
    doing = "in the TLS handshake"
    try:
        tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    with tls:
        try:
            tls.settimeout(remaining(deadline, doing))
            tls.do_handshake()
            doing = "sending the request"
            unsent = memoryview(request)
            while unsent:  # not sendall(): each send gets only what is left of the deadline
                tls.settimeout(remaining(deadline, doing))
                unsent = unsent[tls.send(unsent) :]
            doing = "waiting for the answer"
            answer = bytearray()
            while not _complete(answer):
                tls.settimeout(remaining(deadline, doing))
                chunk = tls.recv(65536)
                if not chunk:
                    break
                answer += chunk
                if len(answer) > MAX_ANSWER:
                    raise PostFailed(f"the answer is larger than {MAX_ANSWER} bytes")
        except socket.timeout:
            raise PostFailed(f"timed out {doing}") from None
        except ssl.SSLCertVerificationError as exc:
            raise PostFailed(f"TLS failure: certificate verify failed: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            raise PostFailed(f"TLS failure {doing}: {exc.reason or exc}") from None
        except OSError as exc:
            raise PostFailed(f"connection lost {doing}: {exc.strerror or exc}") from None
    return bytes(answer)


def _complete(answer: bytearray) -> bool:
    """Whether the answer is whole (Content-Length, or the last chunk): no wait for the peer's close."""
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return False
    body = len(answer) - end - 4
    for line in bytes(answer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length" and value.strip().isdigit():
            return body >= int(value)
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return answer.endswith(b"0\r\n\r\n")
    return False


class _Received:
    """The answer's bytes, as the socket ``http.client.HTTPResponse`` reads from."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.raw)


def _decode(raw: bytes) -> tuple[int, str, bytes]:
    if not raw:
        raise PostFailed("the server closed the connection without an answer")
    response = http.client.HTTPResponse(cast("socket.socket", _Received(raw)))
    try:
        response.begin()
        body = response.read()
    except (http.client.HTTPException, ValueError) as exc:
        raise PostFailed(f"not an HTTP answer: {type(exc).__name__}: {exc}") from None
    return response.status, response.reason, body

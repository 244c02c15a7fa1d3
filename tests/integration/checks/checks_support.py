"""Helpers for the built-in check tests: run a check, run its C twin.

A check runs either in-process (``check()``, through the same ``main`` the
console script calls, for the many threshold edges) or as the installed
console script (``script()``, as Nagios runs it). Nothing is mocked: the
resources are real sockets, servers, files, mounts and processes.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

PLUGINS = Path("/usr/lib/nagios/plugins")
BIN = Path(sys.executable).parent


class Run(NamedTuple):
    code: int
    out: str

    @property
    def line(self) -> str:
        return self.out.splitlines()[0] if self.out else ""

    @property
    def perfdata(self) -> dict[str, str]:
        """``label -> value;warn;crit;min;max`` from the status line."""
        _, _, perf = self.line.partition("|")
        return dict(item.split("=", 1) for item in perf.split())


def check(name: str, *args: object, env: dict[str, str] | None = None) -> Run:
    """The check's ``main`` in this process, as the console script calls it."""
    from selfheal.checks.plugin import find_spec as spec
    from selfheal.checks.plugin import main

    out = io.StringIO()
    code = main(spec(name), [str(a) for a in args], env=env if env is not None else clean_env(), stdout=out)
    return Run(code, out.getvalue())


def script(name: str, *args: object, env: dict[str, str] | None = None, timeout: float = 30) -> Run:
    """The installed console script ``check_selfheal_NAME`` as Nagios runs it."""
    result = subprocess.run(
        [str(BIN / f"check_selfheal_{name}"), *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return Run(result.returncode, result.stdout)


def c_plugin(name: str, *args: object, timeout: float = 30) -> Run:
    """A monitoring-plugins C plugin (Debian's monitoring-plugins-basic)."""
    path = PLUGINS / name
    assert os.access(path, os.X_OK), f"{path} is missing: apt-get install monitoring-plugins-basic"
    result = subprocess.run(
        [str(path), *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    return Run(result.returncode, result.stdout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFHEAL_")}
    env.update(extra)
    return env


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A real TCP server on loopback, in a thread; ``reply(data) -> bytes``.

    ``banner`` is sent on connect; ``reply`` answers each received chunk
    (None closes). ``silent`` accepts and then says nothing at all.
    """

    def __init__(self, banner: bytes = b"", reply=None, tls=None, silent: bool = False) -> None:  # type: ignore[no-untyped-def]
        import threading

        self.banner = banner
        self.reply = reply
        self.tls = tls
        self.silent = silent
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            try:
                conn.settimeout(5)
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    self.open.append(conn)
                if self.silent:
                    continue
                conn.settimeout(5)
                if self.banner:
                    conn.sendall(self.banner)
                while self.reply is not None:
                    data = conn.recv(4096)
                    answer = self.reply(data) if data else None
                    if answer is None:
                        break
                    conn.sendall(answer)
                conn.close()
            except OSError:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.open:
            conn.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_cert(
    directory: Path, days: int = 90, names: str = "DNS:localhost,IP:127.0.0.1"
) -> tuple[Path, Path]:
    """A self-signed certificate (for localhost and 127.0.0.1), by the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", str(days), "-subj", "/CN=localhost",
            "-addext", f"subjectAltName={names}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(cert: Path, key: Path):  # type: ignore[no-untyped-def]
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context

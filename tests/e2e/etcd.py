"""Real etcd members (Debian's ``etcd-server``) on loopback, for the fleet budget tests.

``EtcdCluster(size)`` starts ``size`` members of one new cluster, each on
two free loopback ports (client and peer), with its data dir and log in a
temp dir; ``stop()`` kills what is left and removes the dir. Nothing here
touches a system etcd (Debian's package may start one on port 2379): the
ports are picked free, and the members are found by the processes this
class started, never by name.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ETCD = "/usr/bin/etcd"


class EtcdUnavailable(Exception):
    """etcd is not installed, or would not start."""


def free_ports(count: int) -> list[int]:
    """Ports free now on 127.0.0.1 (held together so that they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Tls:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""

    def __init__(self, root: Path, name: str = "ca") -> None:
        if shutil.which("openssl") is None:
            raise EtcdUnavailable("openssl is missing (apt-get install openssl)")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.ca, self.ca_key = root / f"{name}.pem", root / f"{name}.key"
        self._openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", f"/CN=selfheal test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self.server, self.server_key = self._issue(
            "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"
        )
        self.client, self.client_key = self._issue("client", "extendedKeyUsage=clientAuth")

    def _openssl(self, *args: object) -> None:
        done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EtcdUnavailable(f"openssl {args[0]} failed: {done.stderr.strip()}")

    def _issue(self, who: str, extensions: str) -> tuple[Path, Path]:
        cert, key, request = self.root / f"{who}.pem", self.root / f"{who}.key", self.root / f"{who}.csr"
        ext = self.root / f"{who}.ext"
        # Key identifiers too: Python's strict X.509 checks (3.13 and later) want them.
        ext.write_text(f"{extensions}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        self._openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", request, "-subj", f"/CN={who}",
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", request, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext,
        )  # fmt: skip
        return cert, key


class Member:
    def __init__(
        self, name: str, root: Path, client_port: int, peer_port: int, tls: Tls | None = None
    ) -> None:
        self.name = name
        self.tls = tls
        self.data_dir = root / f"{name}.etcd"
        self.log_path = root / f"{name}.log"
        self.client_port = client_port
        self.peer_port = peer_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, initial_cluster: str, token: str) -> None:
        argv = [
            ETCD,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-token", token,
            "--initial-cluster-state", "new",
        ]  # fmt: skip
        if self.tls is not None:
            argv += [
                "--cert-file", str(self.tls.server), "--key-file", str(self.tls.server_key),
                "--trusted-ca-file", str(self.tls.ca), "--client-cert-auth",
            ]  # fmt: skip
        # ETCD_* variables would configure etcd behind our back (Debian's service reads them).
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would: no goodbye to the peers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def _context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        context.load_cert_chain(str(self.tls.client), str(self.tls.client_key))
        return context

    def get(self, path: str, timeout: float = 1.0) -> dict[str, object]:
        with urllib.request.urlopen(
            self.client_url + path, timeout=timeout, context=self._context()
        ) as reply:
            return json.loads(reply.read())

    def post(
        self, path: str, payload: dict[str, object], timeout: float = 2.0, token: str | None = None
    ) -> dict[str, object]:
        request = urllib.request.Request(
            self.client_url + path, data=json.dumps(payload).encode(), method="POST"
        )
        if token is not None:
            request.add_header("Authorization", token)
        with urllib.request.urlopen(request, timeout=timeout, context=self._context()) as reply:
            return json.loads(reply.read())

    def healthy(self) -> bool:
        try:
            return self.get("/health").get("health") == "true"
        except (OSError, ValueError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class EtcdCluster:
    """``size`` etcd members on loopback: ``with EtcdCluster(3) as cluster: cluster.endpoints``."""

    def __init__(self, size: int = 1, tls: bool = False) -> None:
        if not os.access(ETCD, os.X_OK):
            raise EtcdUnavailable(f"{ETCD} is missing (apt-get install etcd-server)")
        self.size = size
        self.root = Path(tempfile.mkdtemp(prefix="selfheal-etcd-"))
        self.members: list[Member] = []
        try:
            self.tls = Tls(self.root / "tls") if tls else None
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def __enter__(self) -> EtcdCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def start(self, timeout: float = 30) -> None:
        # A port picked free may be taken by someone else before etcd binds it: try new ones.
        for attempt in range(3):
            ports = free_ports(2 * self.size)
            self.members = [
                Member(f"m{i}", self.root / f"try{attempt}", ports[2 * i], ports[2 * i + 1], self.tls)
                for i in range(self.size)
            ]
            (self.root / f"try{attempt}").mkdir()
            initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
            token = f"selfheal-test-{os.getpid()}-{time.monotonic_ns()}"
            for member in self.members:
                member.start(initial, token)
            if self._wait_healthy(timeout):
                return
            address_in_use = any("address already in use" in m.log_tail(50) for m in self.members)
            for member in self.members:
                member.kill()
            if not address_in_use:
                break
        tails = "\n".join(f"--- {m.name}:\n{m.log_tail()}" for m in self.members)
        raise EtcdUnavailable(f"etcd did not become healthy within {timeout}s\n{tails}")

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not all(m.running for m in self.members):
                return False
            if all(m.healthy() for m in self.members):
                return True
            time.sleep(0.1)
        return False

    def leader(self) -> Member:
        """The member that leads now (asked of the living members)."""
        for member in self.members:
            if not member.running:
                continue
            try:
                status = member.post("/v3/maintenance/status", {})
            except (OSError, ValueError):
                continue
            header = status.get("header")
            if isinstance(header, dict) and status.get("leader") == header.get("member_id"):
                return member
        raise EtcdUnavailable("no member says it leads")

    def wait_for_leader(self, timeout: float = 15) -> Member:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.leader()
            except EtcdUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def enable_auth(self, user: str, password: str, prefix: str) -> None:
        """etcd's auth on, with ``user`` allowed to read and write under ``prefix`` only."""
        member = self.members[0]

        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()

        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        member.post("/v3/auth/role/add", {"name": "root"})
        member.post("/v3/auth/user/add", {"name": "root", "password": "root-" + password})
        member.post("/v3/auth/user/grant", {"user": "root", "role": "root"})
        member.post("/v3/auth/role/add", {"name": "fleet"})
        member.post(
            "/v3/auth/role/grant",
            {"name": "fleet", "perm": {"permType": "READWRITE", "key": b64(prefix), "range_end": b64(end)}},
        )
        member.post("/v3/auth/user/add", {"name": user, "password": password})
        member.post("/v3/auth/user/grant", {"user": user, "role": "fleet"})
        member.post("/v3/auth/enable", {})

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.root, ignore_errors=True)

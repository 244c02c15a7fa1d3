"""Real etcd members (Debian's ``etcd-server``) on loopback, for the fleet budget tests.

``EtcdCluster(size)`` starts ``size`` members of one new cluster, each on
two free loopback ports (client and peer), with its data dir and log in a
temp dir; ``stop()`` kills what is left and removes the dir. Nothing here
touches a system etcd (Debian's package may start one on port 2379): the
ports are picked free, and the members are found by the processes this
class started, never by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
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


class Member:
    def __init__(self, name: str, root: Path, client_port: int, peer_port: int) -> None:
        self.name = name
        self.data_dir = root / f"{name}.etcd"
        self.log_path = root / f"{name}.log"
        self.client_port = client_port
        self.peer_port = peer_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

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

    def get(self, path: str, timeout: float = 1.0) -> dict[str, object]:
        with urllib.request.urlopen(self.client_url + path, timeout=timeout) as reply:
            return json.loads(reply.read())

    def post(self, path: str, payload: dict[str, object], timeout: float = 2.0) -> dict[str, object]:
        request = urllib.request.Request(
            self.client_url + path, data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as reply:
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

    def __init__(self, size: int = 1) -> None:
        if not os.access(ETCD, os.X_OK):
            raise EtcdUnavailable(f"{ETCD} is missing (apt-get install etcd-server)")
        self.size = size
        self.root = Path(tempfile.mkdtemp(prefix="selfheal-etcd-"))
        self.members: list[Member] = []

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
                Member(f"m{i}", self.root / f"try{attempt}", ports[2 * i], ports[2 * i + 1])
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

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.root, ignore_errors=True)

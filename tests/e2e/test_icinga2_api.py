"""The Icinga 2 report-back (``selfheal.edges.icinga_api``) against a real Icinga 2 API.

One ``icinga2 daemon`` (as ``nagios``) for the module: its ApiListener on
127.0.0.1 and a free port, with a CA and a certificate for ``localhost``
made by ``icinga2 pki`` in the temp dir; the ``ApiUser`` of
``docs/report-back.md`` (the permissions it documents, and no more) for
``send()``, and a second user that may only read, for the assertions. What
arrived is read back through the API, never assumed.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import nagios_owned_dir, need, need_executable
from e2e.daemons import ICINGA2, RUN_AS, free_port, give_to_nagios, stop_daemon
from e2e.test_examples import icinga2_dirs
from selfheal.edges.icinga_api import IcingaTarget, send

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report-back.md"
HOST, SERVICE = "web1", "nginx"
#: A service outside the ``selfheal`` service group.
OTHER = "postgres"
#: An answer may take a moment on a loaded machine; the no-hang test sets its own.
TIMEOUT = 10.0


def documented_api_users(password: str) -> tuple[str, str]:
    """docs/report-back.md's two ``ApiUser "selfheal"`` blocks, with this password; the second renamed.

    The first has the plain permissions, the second the same ones limited
    to the ``selfheal`` service group (and it defines that group).
    """
    text = DOCS.read_text()
    plain, filtered = re.findall(
        r'^(?:object ServiceGroup.*?\n\n)?object ApiUser "selfheal" \{\n.*?^\}\n', text, re.M | re.S
    )
    for block in (plain, filtered):
        assert '"actions/process-check-result"' in block and '"actions/add-comment"' in block, block
    plain, filtered = (
        re.sub(r'password = "[^"]*"', f'password = "{password}"', b) for b in (plain, filtered)
    )
    return plain, filtered.replace('ApiUser "selfheal"', 'ApiUser "selfheal-filtered"')


class Icinga:
    """A running Icinga 2 with its API; ``get()`` reads it as the read-only observer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        give_to_nagios(root)
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.observer_password = secrets.token_hex(16)
        self.dirs = icinga2_dirs(root, user=RUN_AS)
        give_to_nagios(*(root / name for name in ("datadir", "logdir", "cachedir", "spooldir", "initrundir")))
        self.certs = root / "datadir" / "certs"
        self.certs.mkdir()
        give_to_nagios(self.certs)
        self.ca = self.certs / "ca.crt"
        self._pki()
        self.daemon: subprocess.Popen[bytes] | None = None

    def _icinga2(self, *args: str) -> None:
        done = subprocess.run(
            [ICINGA2, *args, *self.dirs], capture_output=True, text=True, cwd=self.root, check=False
        )
        assert done.returncode == 0, f"icinga2 {' '.join(args)}: {done.stdout}{done.stderr}"

    def _pki(self) -> None:
        """Icinga's own PKI, as ``icinga2 node setup`` would make it: a CA, and the node's certificate."""
        self._icinga2("pki", "new-ca")
        key, csr, crt = (self.certs / f"localhost.{ext}" for ext in ("key", "csr", "crt"))
        self._icinga2("pki", "new-cert", "--cn", "localhost", "--key", str(key), "--csr", str(csr))
        self._icinga2("pki", "sign-csr", "--csr", str(csr), "--cert", str(crt))
        shutil.copy(self.root / "datadir" / "ca" / "ca.crt", self.ca)
        give_to_nagios(self.ca)

    def start(self) -> None:
        conf = self.root / "icinga2.conf"
        plain, filtered = documented_api_users(self.password)
        conf.write_text(
            f"""
include <itl>
const NodeName = "localhost"
object Endpoint NodeName {{ }}
object Zone NodeName {{ endpoints = [ NodeName ] }}
object ApiListener "api" {{
  bind_host = "127.0.0.1"
  bind_port = {self.port}
  accept_config = false
  accept_commands = false
}}
object FileLogger "main-log" {{
  severity = "notice"
  path = "{self.root / "icinga2.log"}"
}}
{plain}
{filtered}
object ApiUser "observer" {{
  password = "{self.observer_password}"
  permissions = [ "objects/query/Service", "objects/query/Comment" ]
}}
object Host "{HOST}" {{
  check_command = "dummy"
  enable_active_checks = false
}}
object Service "{SERVICE}" {{
  host_name = "{HOST}"
  check_command = "dummy"
  enable_active_checks = false
  enable_passive_checks = true
  max_check_attempts = 1
  groups = [ "selfheal" ]
}}
object Service "{OTHER}" {{
  host_name = "{HOST}"
  check_command = "dummy"
  enable_active_checks = false
}}
"""
        )
        with (self.root / "daemon.out").open("wb") as out:
            self.daemon = subprocess.Popen(
                [ICINGA2, "daemon", "-c", str(conf), *self.dirs],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.daemon.poll() is None, (self.root / "daemon.out").read_text()
            try:
                self.service()
                return
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, (self.root / "daemon.out").read_text()[-3000:]
                time.sleep(0.2)

    def stop(self) -> None:
        if self.daemon is not None:
            stop_daemon(self.daemon, self.root)

    def get(self, path: str, **query: str) -> list[dict[str, object]]:
        url = f"https://localhost:{self.port}{path}?{urllib.parse.urlencode(query)}"
        token = base64.b64encode(f"observer:{self.observer_password}".encode()).decode()
        request = urllib.request.Request(
            url, headers={"Authorization": f"Basic {token}", "Accept": "application/json"}
        )
        context = ssl.create_default_context(cafile=str(self.ca))
        context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            results = json.load(answer)["results"]
        assert isinstance(results, list)
        return results

    def service(self) -> dict[str, object]:
        (found,) = self.get(f"/v1/objects/services/{HOST}!{SERVICE}", attrs="last_check_result")
        attrs = found["attrs"]
        assert isinstance(attrs, dict)
        return attrs

    def comments(self) -> list[dict[str, object]]:
        found = self.get("/v1/objects/comments", filter=f'service.name=="{SERVICE}"')
        return [c["attrs"] for c in found]  # type: ignore[misc]

    def target(self, **changes: object) -> IcingaTarget:
        password_file = self.root / "api.password"
        if not password_file.exists():
            password_file.write_text(self.password + "\n")
            password_file.chmod(0o600)
        plain: dict[str, object] = {
            "url": f"https://localhost:{self.port}",
            "host": HOST,
            "service": SERVICE,
            "user": "selfheal",
            "password_file": str(password_file),
            "ca_file": str(self.ca),
            "timeout": TIMEOUT,
        }
        plain.update(changes)
        return IcingaTarget.from_json(plain)


@pytest.fixture(scope="module")
def icinga() -> Iterator[Icinga]:
    need_executable(ICINGA2, "icinga2-bin")
    with nagios_owned_dir("selfheal-e2e-icinga-api-") as root:
        daemon = Icinga(root / "icinga2")
        try:
            daemon.start()
            yield daemon
        finally:
            daemon.stop()


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

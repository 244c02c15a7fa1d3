"""A real Icinga 2 with its API on loopback, for the end-to-end tests of the Icinga report-back.

One ``icinga2 daemon`` (as ``nagios``): its ApiListener on 127.0.0.1 and a
free port, with a CA and a certificate for ``localhost`` made by ``icinga2
pki`` in the temp dir; the ``ApiUser`` of ``docs/report-back.md`` (the
permissions it documents, and no more) for the reports, and a second user
that may only read, for the assertions. What arrived is read back through
the API, never assumed. A test module starts one with ``running_icinga()``
in a module-scoped fixture.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from e2e.conftest import nagios_owned_dir, need_executable
from e2e.daemons import ICINGA2, RUN_AS, free_port, give_to_nagios, stop_daemon
from e2e.test_examples import icinga2_dirs
from selfheal.edges.icinga_api import IcingaTarget

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


@contextmanager
def running_icinga(prefix: str) -> Iterator[Icinga]:
    """An Icinga 2 started in a temp dir of its own (skipped, or failed under SELFHEAL_E2E=require,
    without icinga2); stopped and removed afterwards."""
    need_executable(ICINGA2, "icinga2-bin")
    with nagios_owned_dir(prefix) as root:
        daemon = Icinga(root / "icinga2")
        try:
            daemon.start()
            yield daemon
        finally:
            daemon.stop()

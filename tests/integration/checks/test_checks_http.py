"""The ``http`` check against a real local HTTP(S) server, and against ``check_http``.

The https server uses a self-signed certificate made by the test with
the openssl CLI; its validity (in days) is chosen per test.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from checks_support import Server, c_plugin, check, free_port, make_cert, script, server_tls

ROUTES = {
    "/ok": (200, b"status: healthy\n"),
    "/empty": (204, b""),
    "/moved": (302, b""),
    "/missing": (404, b"not here\n"),
    "/broken": (500, b"status: on fire\n"),
    "/unavailable": (503, b"maintenance\n"),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ROUTES.get(self.path.split("?")[0], (404, b""))
        if self.path == "/host":
            status, body = 200, f"you asked for {self.headers['Host']}\n".encode()
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Web:
    def __init__(self, tls=None) -> None:  # type: ignore[no-untyped-def]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def web():  # type: ignore[no-untyped-def]
    server = Web()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("tls")


def https(directory: Path, days: int, names: str = "DNS:localhost,IP:127.0.0.1"):  # type: ignore[no-untyped-def]
    sub = directory / f"d{days}{names.replace(':', '_').replace(',', '_')}"
    sub.mkdir(exist_ok=True)
    cert, key = make_cert(sub, days=days, names=names)
    return Web(server_tls(cert, key)), cert


def test_ok_with_time_and_size_perfdata(web: Web) -> None:
    run = check("http", "-u", web.url("/ok"), "-w", "5", "-c", "9")
    assert run.code == 0, run.out
    assert re.fullmatch(
        rf"HTTP OK - HTTP 200 OK from {re.escape(web.url('/ok'))}, \d+\.\d{{3}}s response time, 16 bytes "
        r"\| size=16B;;;0 time=[\d.e-]+s;5;9;0;9",
        run.line,
    ), run.line


@pytest.mark.parametrize(
    ("path", "code"),
    [("/ok", 0), ("/empty", 0), ("/moved", 0), ("/missing", 1), ("/broken", 2), ("/unavailable", 2)],
)
def test_status_codes_as_check_http_judges_them(web: Web, path: str, code: int) -> None:
    run = check("http", "-u", web.url(path))
    assert run.code == code, run.out


def test_expected_codes(web: Web) -> None:
    assert check("http", "-u", web.url("/empty"), "-e", "200,204").code == 0
    run = check("http", "-u", web.url("/ok"), "-e", "204")
    assert run.code == 2
    assert run.line.startswith(f"HTTP CRITICAL - HTTP 200 OK from {web.url('/ok')}")
    assert check("http", "-u", web.url("/missing"), "-e", "4xx").code == 0
    assert check("http", "-u", web.url("/moved"), "--expect", "2xx").code == 2


def test_body_regex(web: Web) -> None:
    assert check("http", "-u", web.url("/ok"), "-r", r"status: health(y|ier)").code == 0
    run = check("http", "-u", web.url("/broken"), "-e", "500", "-r", "healthy")
    assert run.code == 2
    assert run.line.startswith("HTTP CRITICAL - pattern 'healthy' not found in the body")


@pytest.mark.parametrize(
    ("warning", "critical", "code"),
    [("1000", "2000", 0), ("0", "2000", 1), ("1000", "0", 2), ("@0:1000", "2000", 1)],
)
def test_time_thresholds(web: Web, warning: str, critical: str, code: int) -> None:
    assert check("http", "-u", web.url("/ok"), "-w", warning, "-c", critical).code == code


def test_refused_connection_is_critical() -> None:
    port = free_port()
    run = check("http", "-u", f"http://127.0.0.1:{port}/")
    assert run.out == f"HTTP CRITICAL - cannot fetch http://127.0.0.1:{port}/: Connection refused\n"


def test_https_verified_with_days_to_expiry(tls_dir: Path) -> None:
    server, cert = https(tls_dir, 20)
    try:
        url = server.url("/ok", "https")
        run = check("http", "-u", url, "--ca-file", cert)
        assert run.code == 0, run.out
        assert "certificate expires in 20 days" in run.line or "certificate expires in 19 days" in run.line
        days = float(run.perfdata["cert_days"].split(";")[0])
        assert 19 < days <= 20
        # Days-left edges around 20 (the clock moves: margins of a day or more).
        assert (
            check("http", "-u", url, "--ca-file", cert, "--cert-warning", "18:", "--cert-critical", "7:").code
            == 0
        )
        assert (
            check("http", "-u", url, "--ca-file", cert, "--cert-warning", "30:", "--cert-critical", "7:").code
            == 1
        )
        assert (
            check(
                "http", "-u", url, "--ca-file", cert, "--cert-warning", "30:", "--cert-critical", "21:"
            ).code
            == 2
        )
        untrusted = check("http", "-u", url)
        assert untrusted.code == 2 and "certificate verify failed" in untrusted.line
        assert check("http", "-u", url, "-k").code == 0
        refused = check("http", "-u", url, "-k", "--cert-warning", "30:")
        assert refused.code == 3 and "drop --insecure" in refused.line
    finally:
        server.close()


def test_https_hostname_must_match(tls_dir: Path) -> None:
    server, cert = https(tls_dir, 90, names="DNS:localhost")
    try:
        # The certificate names localhost, not 127.0.0.1.
        run = check("http", "-u", server.url("/ok", "https"), "--ca-file", cert)
        assert run.code == 2, run.out
        assert "certificate verify failed: IP address mismatch" in run.line, run.out
        assert check("http", "-u", server.url("/ok", "https", "localhost"), "--ca-file", cert).code == 0
    finally:
        server.close()


def test_bad_url_and_expect_are_one_line_unknowns() -> None:
    assert (
        check("http", "-u", "ftp://x/").out
        == "HTTP UNKNOWN - bad --url: 'ftp://x/' is not an http:// or https:// URL\n"
    )
    assert check("http", "-u", "http://x/", "-e", "2x").out == (
        "HTTP UNKNOWN - bad --expect: '2x' is not a status code such as 200 or 2xx\n"
    )
    assert check("http", "-u", "http://x/", "-r", "(").code == 3


# -- the same state as monitoring-plugins' check_http --------------------------------


@pytest.mark.parametrize(
    ("path", "ours", "theirs", "expected"),
    [
        ("/ok", [], [], 0),
        ("/moved", [], [], 0),  # a redirect is OK unless followed
        ("/missing", [], [], 1),  # 4xx
        ("/broken", [], [], 2),  # 5xx
        ("/ok", ["-e", "200"], ["-e", "200"], 0),
        ("/missing", ["-e", "200"], ["-e", "200"], 2),
        ("/ok", ["-r", "healthy"], ["-r", "healthy"], 0),
        ("/ok", ["-r", "on fire"], ["-r", "on fire"], 2),
        ("/ok", ["-w", "1000", "-c", "2000"], ["-w", "1000", "-c", "2000"], 0),
        ("/ok", ["-c", "0.000001"], ["-c", "0.000001"], 2),
    ],
)
def test_same_state_as_check_http(
    web: Web, path: str, ours: list[str], theirs: list[str], expected: int
) -> None:
    """Both say the expected state: agreeing on UNKNOWN (a bad option, say) is no pass."""
    mine = script("http", "-u", web.url(path), *ours)
    c = c_plugin("check_http", "-I", "127.0.0.1", "-p", web.port, "-u", path, *theirs)
    assert (mine.code, c.code) == (expected, expected), (mine.out, c.out)


def test_same_state_as_check_http_for_certificate_expiry(tls_dir: Path) -> None:
    server, cert = https(tls_dir, 20)
    try:
        for ours, theirs, expected in [  # the certificate has 20 days left
            (["--cert-warning", "30:", "--cert-critical", "10:"], ["-C", "30,10"], 1),
            (["--cert-warning", "15:", "--cert-critical", "10:"], ["-C", "15,10"], 0),
            (["--cert-warning", "40:", "--cert-critical", "30:"], ["-C", "40,30"], 2),
        ]:
            mine = script("http", "-u", server.url("/ok", "https"), "--ca-file", cert, *ours)
            c = c_plugin(
                "check_http", "-I", "127.0.0.1", "-p", server.port, "-S", "--sni", "-H", "localhost", *theirs
            )
            assert (mine.code, c.code) == (expected, expected), (mine.out, c.out)
    finally:
        server.close()


def test_a_hung_server_is_critical_within_the_timeout() -> None:
    with Server(silent=True) as server:  # accepts, never answers
        url = f"http://127.0.0.1:{server.port}/"
        run = check("http", "-u", url, "-t", "1")
    assert (run.code, run.out) == (2, f"HTTP CRITICAL - no answer from {url} within 0.9s\n")


def test_address_connects_elsewhere_and_keeps_the_host_name(web: Web, tls_dir: Path) -> None:
    url = f"http://web.example:{web.port}/host"  # a name no resolver knows
    assert check("http", "-u", url).code == 2
    run = check("http", "-u", url, "-I", "127.0.0.1", "-r", f"you asked for web.example:{web.port}$")
    assert run.code == 0, run.out
    server, cert = https(tls_dir, 90, names="DNS:localhost")
    try:
        # The certificate names localhost: verified against the URL's host, not the address.
        secure = check(
            "http", "-u", f"https://localhost:{server.port}/ok", "-I", "127.0.0.1", "--ca-file", cert
        )
        assert secure.code == 0, secure.out
    finally:
        server.close()


def test_same_state_as_check_http_for_a_virtual_host(web: Web) -> None:
    for regex, expected in ((f"web.example:{web.port}", 0), ("other.example", 2)):
        mine = script("http", "-u", f"http://web.example:{web.port}/host", "-I", "127.0.0.1", "-r", regex)
        c = c_plugin(
            "check_http",
            "-I",
            "127.0.0.1",
            "-p",
            web.port,
            "-H",
            f"web.example:{web.port}",
            "-u",
            "/host",
            "-r",
            regex,
        )
        assert (mine.code, c.code) == (expected, expected), (mine.out, c.out)

"""``http``: fetch a URL; check the status, the body, the time and the certificate.

Without ``--expect``, the status is judged as monitoring-plugins'
``check_http`` does: 2xx and 3xx OK (redirects are not followed), 4xx
WARNING, 5xx CRITICAL. With ``--expect 200,204`` any other status is
CRITICAL. ``--regex`` must match somewhere in the body (CRITICAL if not).
``-w``/``-c`` are the response time in seconds; for https,
``--cert-warning``/``--cert-critical`` are ranges on the days left
before the certificate expires (``30:`` = fewer than 30 days).

Built on ``http.client`` from the standard library: no HTTP dependency.
"""

from __future__ import annotations

import socket
import ssl
import time

import nagiosplugin

from selfheal import __version__
from selfheal.checks import tls
from selfheal.checks.options import Values, plain
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.checks.tcp import reason, tls_context
from selfheal.checks.verdict import verdict
from selfheal.core.argv import Option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from re import Pattern

#: Read at most this much of the body (for --regex and the size).
MAX_BODY = 1 << 20


class Http(nagiosplugin.Resource):
    """One HTTP request; yields ``time``, ``size``, ``cert_days`` and verdicts."""

    def __init__(
        self,
        url: str,
        *,
        expect: tuple[str, ...] = (),
        regex: Pattern[str] | None = None,
        method: str = "GET",
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        address: str | None = None,
    ) -> None:
        from urllib.parse import urlsplit

        self.url = url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.expect = expect
        self.regex = regex
        self.method = method
        self.tls_context = tls_context or (tls.context(None, False) if self.https else None)
        self.timeout = timeout
        #: Connect here instead of the URL's host (``check_http -I``); the
        #: Host header, SNI and the certificate check keep the URL's host.
        self.address = address

    @property
    def name(self) -> str:
        return "HTTP"

    def probe(self) -> list[nagiosplugin.Metric]:
        import http.client

        start = time.monotonic()
        if self.https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.tls_context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        metrics = []
        try:
            if self.address:
                sock = socket.create_connection((self.address, self.port), timeout=self.timeout)
                if self.https:
                    assert self.tls_context is not None  # __init__ made one for https
                    sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
                # http.client sends on a socket it finds already set.
                conn.sock = sock
            else:
                conn.connect()
            if self.https:
                assert isinstance(conn.sock, ssl.SSLSocket)  # an HTTPS connection's
                days = tls.days_left(conn.sock)
                if days is not None:
                    metrics.append(nagiosplugin.Metric("cert_days", round(days, 2), context="cert"))
            conn.request(
                self.method, self.target, headers={"User-Agent": f"check_selfheal_http/{__version__}"}
            )
            response = conn.getresponse()
            body = response.read(MAX_BODY)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            return [
                verdict(
                    "tls", nagiosplugin.Critical, f"TLS with {self.host}:{self.port} failed: {reason(exc)}"
                )
            ]
        except socket.timeout:
            return [
                verdict("http", nagiosplugin.Critical, f"no answer from {self.url} within {self.timeout:g}s")
            ]
        except (OSError, http.client.HTTPException) as exc:
            return [
                verdict(
                    "http",
                    nagiosplugin.Critical,
                    f"cannot fetch {self.url}: {reason(exc) or type(exc).__name__}",
                )
            ]
        finally:
            conn.close()
        elapsed = round(time.monotonic() - start, 6)
        status = f"{response.status} {response.reason}".strip()
        metrics.append(verdict("status", self.judge(response.status), f"HTTP {status} from {self.url}"))
        if self.regex is not None and not self.regex.search(body.decode("utf-8", "replace")):
            metrics.append(
                verdict(
                    "regex", nagiosplugin.Critical, f"pattern {self.regex.pattern!r} not found in the body"
                )
            )
        metrics.append(
            nagiosplugin.Metric("time", elapsed, "s", 0, plain(round(self.timeout, 3)), context="time")
        )
        metrics.append(nagiosplugin.Metric("size", len(body), "B", 0, context="size"))
        return metrics

    def judge(self, status: int) -> nagiosplugin.state.ServiceState:
        if self.expect:
            code = str(status)
            ok = any(code == e or (e.endswith("xx") and code[0] == e[0]) for e in self.expect)
            return nagiosplugin.Ok if ok else nagiosplugin.Critical
        if status >= 500:
            return nagiosplugin.Critical
        if status >= 400:
            return nagiosplugin.Warn
        return nagiosplugin.Ok


def build(values: Values) -> list[object]:
    url = values.required("url")
    expect = tuple(e.strip().lower() for e in (values.text("expect") or "").split(",") if e.strip())
    for code in expect:
        if not (len(code) == 3 and (code.isdigit() or (code[0].isdigit() and code[1:] == "xx"))):
            raise values.fail("expect", f"{code!r} is not a status code such as 200 or 2xx")
    cert_warning, cert_critical = values.range("cert_warning"), values.range("cert_critical")
    if (cert_warning or cert_critical) and values.flag("insecure"):
        raise values.fail(
            "cert_warning", "the expiry of an unverified certificate cannot be read; drop --insecure"
        )
    context = tls_context(values) if url.lower().startswith("https:") else None
    try:
        resource = Http(
            url,
            expect=expect,
            regex=values.regex("regex"),
            method=(values.text("method") or "GET").upper(),
            tls_context=context,
            # Just under -t: a hung server is CRITICAL, not the plugin's UNKNOWN timeout.
            timeout=values.timeout * 0.9,
            address=values.text("address"),
        )
    except ValueError as exc:
        raise values.fail("url", str(exc)) from None
    return [
        resource,
        nagiosplugin.ScalarContext(
            "time",
            values.range("warning"),
            values.range("critical"),
            fmt_metric=lambda m, _: f"{m.value:.3f}s response time",
        ),
        nagiosplugin.ScalarContext("size", fmt_metric=lambda m, _: f"{plain(m.value)} bytes"),
        nagiosplugin.ScalarContext(
            "cert",
            cert_warning,
            cert_critical,
            fmt_metric=lambda m, _: f"certificate expires in {m.value:.0f} days",
        ),
    ]


SPEC = Spec(
    "http",
    "Fetch a URL and check the status code, the body, the response time and, for https, the certificate expiry.",
    [
        Option(("-u", "--url"), "url", "value", "URL", "http:// or https:// URL (required)"),
        Option(
            ("-e", "--expect"),
            "expect",
            "value",
            "CODES",
            "status codes that are OK, e.g. 200,204 or 2xx (others CRITICAL)",
        ),
        Option(("-r", "--regex"), "regex", "value", "REGEX", "the body must match this regular expression"),
        Option(("-j", "--method"), "method", "value", "METHOD", "request method (default GET)"),
        Option(
            ("-I", "--address"),
            "address",
            "value",
            "ADDRESS",
            "connect to ADDRESS, not the URL's host (which stays the Host header and TLS name)",
        ),
        Option(
            ("--cert-warning",),
            "cert_warning",
            "value",
            "RANGE",
            "days to certificate expiry that give WARNING (30: = under 30)",
        ),
        Option(
            ("--cert-critical",),
            "cert_critical",
            "value",
            "RANGE",
            "days to certificate expiry that give CRITICAL",
        ),
        *tls.TLS_OPTIONS,
    ],
    build,
    warning="response time in seconds that gives WARNING",
    critical="response time in seconds that gives CRITICAL",
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

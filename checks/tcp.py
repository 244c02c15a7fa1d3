"""``tcp``: connect to HOST:PORT, optionally send, expect a banner, speak TLS.

The response time (connect, TLS handshake and the send/expect exchange)
is checked against ``-w``/``-c`` in seconds. A refused or timed-out
connection is CRITICAL; an unexpected banner is WARNING by default, as
with monitoring-plugins' ``check_tcp`` (``--mismatch`` changes it).
"""

from __future__ import annotations

import socket
import sys
import time

import nagiosplugin

from selfheal.checks import tls
from selfheal.checks.options import Values, plain
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.checks.verdict import STATES, verdict
from selfheal.core.argv import Option

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

#: Read at most this much while waiting for --expect.
MAX_RESPONSE = 65536


class Tcp(nagiosplugin.Resource):
    """One TCP (or TLS) conversation; yields ``time`` and verdicts."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        send: str | None = None,
        expect: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        mismatch: nagiosplugin.state.ServiceState = nagiosplugin.Warn,
    ) -> None:
        self.host = host
        self.port = port
        self.send = send
        self.expect = expect
        self.tls_context = tls_context
        self.timeout = timeout
        self.mismatch = mismatch

    @property
    def name(self) -> str:
        return "TCP"

    def probe(self) -> list[nagiosplugin.Metric]:
        where = f"{self.host}:{self.port}"
        start = time.monotonic()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except socket.timeout:
            return [
                verdict("connect", nagiosplugin.Critical, f"no answer from {where} within {self.timeout:g}s")
            ]
        except OSError as exc:
            return [verdict("connect", nagiosplugin.Critical, f"cannot connect to {where}: {reason(exc)}")]
        metrics = []
        try:
            if self.tls_context is not None:
                import ssl  # only for TLS: it costs a plain tcp check milliseconds

                try:
                    sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    return [
                        verdict(
                            "tls", nagiosplugin.Critical, f"TLS handshake with {where} failed: {reason(exc)}"
                        )
                    ]
            response = b""
            if self.send is not None:
                sock.sendall(self.send.encode())
            if self.expect is not None:
                wanted = self.expect.encode()
                while wanted not in response and len(response) < MAX_RESPONSE:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    response += chunk
                    if not could_complete(response, wanted):
                        break
                if wanted not in response:
                    got = " ".join(response[:60].decode("utf-8", "replace").split())
                    metrics.append(
                        verdict(
                            "expect", self.mismatch, f"expected {self.expect!r} from {where}, got {got!r}"
                        )
                    )
        except socket.timeout:
            return [
                verdict(
                    "connect", nagiosplugin.Critical, f"{where} stopped answering within {self.timeout:g}s"
                )
            ]
        except OSError as exc:
            return [verdict("connect", nagiosplugin.Critical, f"connection to {where} failed: {reason(exc)}")]
        finally:
            sock.close()
        elapsed = round(time.monotonic() - start, 6)
        return [
            nagiosplugin.Metric(
                "time", elapsed, "s", min=0, max=plain(round(self.timeout, 3)), context="time"
            ),
            *metrics,
        ]


def could_complete(response: bytes, wanted: bytes) -> bool:
    """Whether more data could still complete ``wanted`` (its start ends the reply).

    As check_tcp does: a reply that cannot turn into a match is a
    mismatch now, not after the timeout.
    """
    return wanted in response or any(response.endswith(wanted[:n]) for n in range(1, len(wanted)))


def reason(exc: BaseException) -> str:
    """An OSError's words without the errno number."""
    # Without ssl imported (no TLS asked for) it cannot be a TLS error.
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if ssl is not None and isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None):
        return str(exc.reason)
    return str(getattr(exc, "strerror", None) or exc)


def time_context(warning: str | None, critical: str | None, where: str) -> nagiosplugin.ScalarContext:
    return nagiosplugin.ScalarContext(
        "time", warning, critical, fmt_metric=lambda m, _: f"{m.value:.3f}s response time on {where}"
    )


def build(values: Values) -> list[object]:
    host = values.required("host")
    port = values.integer("port", low=1, high=65535)
    if port is None:
        raise values.fail("port", "is required")
    context = None
    if values.flag("ssl"):
        context = tls_context(values)
    resource = Tcp(
        host,
        port,
        send=values.text("send"),
        expect=values.text("expect"),
        tls_context=context,
        # A socket timeout just under -t: a silent port is reported as
        # CRITICAL by the probe, not as the UNKNOWN of the plugin timeout.
        timeout=values.timeout * 0.9,
        mismatch=STATES[values.choice("mismatch", ("ok", "warning", "critical"), "warning")],
    )
    return [resource, time_context(values.range("warning"), values.range("critical"), f"{host}:{port}")]


def tls_context(values: Values) -> ssl.SSLContext:
    import ssl

    try:
        return tls.context(values.text("ca_file"), values.flag("insecure"))
    except (OSError, ssl.SSLError) as exc:
        raise values.fail("ca_file", f"cannot load: {reason(exc)}") from None


SPEC = Spec(
    "tcp",
    "Connect to HOST:PORT (optionally over TLS), optionally send a string and expect a reply.",
    [
        Option(("-H", "--host"), "host", "value", "HOST", "host name or address (required)"),
        Option(("-p", "--port"), "port", "value", "PORT", "TCP port (required)"),
        Option(("-s", "--send"), "send", "value", "STRING", "send this after connecting"),
        Option(("-e", "--expect"), "expect", "value", "STRING", "expect this string in the reply"),
        Option(
            ("-M", "--mismatch"),
            "mismatch",
            "value",
            "STATE",
            "state when --expect does not match (default warning)",
        ),
        Option(("-S", "--ssl"), "ssl", "flag", "", "speak TLS; the certificate is verified"),
        *tls.TLS_OPTIONS,
    ],
    build,
    warning="response time in seconds that gives WARNING (e.g. 1 = over 1s)",
    critical="response time in seconds that gives CRITICAL",
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

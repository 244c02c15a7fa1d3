"""TLS for the tcp and http checks: a verifying context, and days to expiry.

Certificates are verified by default (against the system CAs or
``--ca-file``), unlike monitoring-plugins' ``check_tcp -S``: a check that
accepts any certificate cannot tell a healthy service from an impostor.
``--insecure`` turns verification off, and with it the expiry reading,
because Python only decodes a peer certificate it has verified.
"""

from __future__ import annotations

import time

from selfheal.core.argv import Option

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

TLS_OPTIONS = [
    Option(
        ("--ca-file",),
        "ca_file",
        "value",
        "FILE",
        "trust the CA certificates in FILE (PEM) instead of the system's",
    ),
    Option(
        ("-k", "--insecure"), "insecure", "flag", "", "do not verify the certificate (no expiry check then)"
    ),
]


def context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    # Imported here: ssl costs a plain tcp check several milliseconds.
    import ssl

    if insecure:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        return tls
    return ssl.create_default_context(cafile=ca_file)


def days_left(sock: ssl.SSLSocket, now: float | None = None) -> float | None:
    """Days until the peer certificate expires; None when it was not verified."""
    import ssl

    cert = sock.getpeercert()
    if not cert or "notAfter" not in cert:
        return None
    expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
    return (expires - (time.time() if now is None else now)) / 86400

"""How an etcd connection failed, in the words the operator reads: each way requests says it, and etcd's own answer."""

from __future__ import annotations

import pytest

from selfheal.fleet.client import _short

UNTRUSTED = "etcd closed the TLS handshake (no client certificate, or one it does not trust"


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("Max retries exceeded (Caused by NewConnectionError(... [Errno 111] Connection refused))", "connection refused"),
        ("HTTPSConnectionPool(host='e1', port=2379): Read timed out. (read timeout=1)", "timed out"),
        ("Failed to resolve 'nowhere' ([Errno -2] Name or service not known)", "unknown host"),
        ("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed'))",
         "certificate verify failed (is fleet.etcd.ca"),
        # etcd hanging up on an untrusted client certificate: seen as its hang-up or, when the
        # client reads first, as its alert (both seen against a real etcd, in about 7 to 1).
        ("SSLError(SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)'))", UNTRUSTED),
        ("SSLError(SSLError(1, '[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)'))",
         UNTRUSTED),
        ("SSLError(SSLError(1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required'))",
         UNTRUSTED),
        ("SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)'))",
         "TLS handshake failed"),
        ('{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}', "etcdserver: no leader"),
    ],
)  # fmt: skip
def test_each_failure_in_words(raw: str, said: str) -> None:
    assert _short(RuntimeError(raw)).startswith(said)

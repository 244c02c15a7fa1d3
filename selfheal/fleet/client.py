"""The etcd connection: endpoints, deadlines, TLS, authentication, and its errors.

One ``Gateway`` per ``FleetSettings``: an ``etcd3gw`` client (imported
only here, when a Gateway is made) per endpoint, speaking etcd v3's
HTTP/JSON gateway at ``/v3/``.

*Partitions and dead members.* Every call goes to one endpoint, and on a
connection failure, a timeout or an "unavailable" answer (no leader, lost
quorum) to the next, within one deadline (``post``): a caller that gives
one deadline to several calls bounds them all (per try at most twice its
share in the worst case of a slow connect followed by a slow answer).
When no endpoint answers, ``FleetUnreachable`` is raised; when etcd
answers no (authentication failed, permission denied), ``FleetRefused``
with etcd's gRPC code. With a user, each endpoint gets its own token
(simple tokens are valid on the member that issued them only), renewed
once when it has expired.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from selfheal.fleet.errors import FleetClientMissing, FleetError, FleetRefused, FleetUnreachable
from selfheal.fleet.settings import FleetSettings

# grpc status codes that etcd's gateway returns in its JSON errors.
NOT_FOUND = 5
_UNAUTHENTICATED = 16


class Gateway:
    """etcd's v3 gateway on every endpoint of the settings. One per thread: it keeps sessions."""

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self._password = settings.password()
        self._clients = self._connect()
        self._authenticated: set[int] = set()
        self._preferred = 0

    def _connect(self) -> list[Any]:
        try:
            from etcd3gw import exceptions
            from etcd3gw.client import Etcd3Client
        except ImportError as exc:
            raise FleetClientMissing(
                f"the fleet budget needs the etcd3gw client ({exc}): pip install 'selfheal[fleet]' "
                "(on Debian: apt-get install python3-etcd3gw)"
            ) from None
        self._exceptions = exceptions
        settings = self.settings
        clients = []
        for endpoint in settings.parsed:
            # api_path fixed at /v3/ (etcd >= 3.4): no discovery round trip, and etcd3gw 2.0's
            # default (/v3alpha/) is gone from etcd 3.4.
            client = Etcd3Client(
                host=endpoint.host,
                port=endpoint.port,
                protocol=endpoint.scheme,
                ca_cert=settings.ca,
                cert_key=settings.key,
                cert_cert=settings.cert,
                api_path="/v3/",
            )
            # requests would otherwise read HTTPS_PROXY, REQUESTS_CA_BUNDLE and ~/.netrc: a check
            # under NRPE must talk to the endpoints it was given, as configured.
            client.session.trust_env = False
            clients.append(client)
        return clients

    # -- transport ---------------------------------------------------------

    def _post_one(self, index: int, path: str, payload: dict[str, Any], timeout: float) -> Any:
        client = self._clients[index]
        url = client.get_url(path)
        if "timeout" in vars(client):
            # etcd3gw >= 2.1 passes its own attribute to requests and refuses a timeout argument.
            client.timeout = (timeout, timeout)
            return client.post(url, json=payload)
        return client.post(url, json=payload, timeout=(timeout, timeout))

    def _authenticate(self, index: int, timeout: float) -> None:
        client = self._clients[index]
        client.session.headers.pop("Authorization", None)
        reply = self._post_one(
            index, "/auth/authenticate", {"name": self.settings.user, "password": self._password}, timeout
        )
        # Simple tokens are valid on the member that issued them only: one per endpoint.
        client.session.headers["Authorization"] = reply["token"]
        self._authenticated.add(index)

    def post(self, path: str, payload: dict[str, Any], deadline: float) -> Any:
        """One etcd call on the first endpoint that answers before the deadline."""
        exceptions = self._exceptions
        count = len(self._clients)
        errors: list[str] = []
        for attempt in range(count):
            index = (self._preferred + attempt) % count
            left = deadline - time.monotonic()
            if left <= 0:
                break
            share = left / (count - attempt)
            try:
                if self.settings.user is not None and index not in self._authenticated:
                    self._authenticate(index, share)
                try:
                    reply = self._post_one(index, path, payload, share)
                except exceptions.Etcd3Exception as exc:
                    if self.settings.user is None or _grpc_code(getattr(exc, "detail_text", "")) != (
                        _UNAUTHENTICATED
                    ):
                        raise
                    # The token expired (simple tokens live five minutes): once more with a new one.
                    self._authenticate(index, max(0.001, deadline - time.monotonic()))
                    reply = self._post_one(index, path, payload, max(0.001, deadline - time.monotonic()))
            except (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError) as exc:
                errors.append(f"{self.settings.parsed[index]}: {_short(exc)}")
                continue
            except exceptions.Etcd3Exception as exc:
                detail = getattr(exc, "detail_text", None) or str(exc)
                raise FleetRefused(
                    self.settings.parsed[index], _grpc_code(detail), _message(detail)
                ) from None
            except (OSError, ValueError) as exc:
                # requests' own errors outside etcd3gw's mapping: a CA bundle or key it cannot load,
                # a reply that is not JSON.
                raise FleetError(f"etcd at {self.settings.parsed[index]}: {exc}") from None
            self._preferred = index
            return reply
        if not errors:
            errors.append("no time left")
        raise FleetUnreachable(
            f"no etcd endpoint answered (timeout {self.settings.timeout:g}s): {'; '.join(errors)}"
        )

    def deadline(self) -> float:
        """A deadline ``timeout`` from now: one per operation, shared by its calls."""
        return time.monotonic() + self.settings.timeout

    # -- the calls the budget makes ------------------------------------------

    def range(self, prefix: str, deadline: float) -> list[dict[str, Any]]:
        """Every key under ``prefix``, as etcd's ``kvs`` (base64 keys and values)."""
        reply = self.post("/kv/range", {"key": b64(prefix), "range_end": b64(range_end(prefix))}, deadline)
        return list(reply.get("kvs", ()))

    def delete_range(self, prefix: str, deadline: float) -> int:
        """Delete every key under ``prefix``; how many there were."""
        reply = self.post(
            "/kv/deleterange", {"key": b64(prefix), "range_end": b64(range_end(prefix))}, deadline
        )
        return int(reply.get("deleted", 0))

    def grant_lease(self, ttl: int, deadline: float) -> tuple[int, int]:
        """A new lease: its id and the TTL etcd granted (never shorter than asked)."""
        reply = self.post("/lease/grant", {"TTL": ttl, "ID": 0}, deadline)
        if reply.get("error"):
            raise FleetError(f"etcd refused a lease of {ttl}s: {reply['error']}")
        return int(reply["ID"]), int(reply["TTL"])

    def revoke(self, lease: int, deadline: float) -> bool:
        """Revoke a lease and the keys bound to it; False when it was already gone."""
        try:
            self.post("/lease/revoke", {"ID": lease}, deadline)
        except FleetRefused as exc:
            if exc.code == NOT_FOUND:
                return False
            raise
        return True

    def time_to_live(self, lease: int, deadline: float) -> float | None:
        """Seconds left on a lease, None when it is gone."""
        reply = self.post("/lease/timetolive", {"ID": lease}, deadline)
        left = int(reply.get("TTL", -1))
        return None if left < 0 else float(left)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def range_end(prefix: str) -> str:
    # Every key that starts with the prefix sorts before this one.
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _grpc_code(detail: object) -> int | None:
    try:
        return int(json.loads(str(detail)).get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


def absent(key: str) -> dict[str, Any]:
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}


def put(key: str, value: str, lease: int) -> dict[str, Any]:
    return {"request_put": {"key": b64(key), "value": b64(value), "lease": lease}}


def range_kvs(reply: dict[str, Any]) -> list[dict[str, Any]]:
    for response in reply.get("responses", ()):
        if "response_range" in response:
            return list(response["response_range"].get("kvs", ()))
    return []


def _message(detail: object) -> str:
    try:
        parsed = json.loads(str(detail))
        return str(parsed.get("message") or parsed.get("error") or detail)
    except (ValueError, AttributeError):
        return str(detail)[:200]


_UNTRUSTED = (
    "etcd closed the TLS handshake (no client certificate, or one it does not trust: fleet.etcd.cert and key)"
)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "detail_text", None) or exc)
    if text.startswith("{"):
        # etcd's own answer: "etcdserver: no leader" and the like.
        return _message(text)
    # requests nests its reason in a long repr; these say what happened.
    for marker, said in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        (
            "CERTIFICATE_VERIFY_FAILED",
            "certificate verify failed (is fleet.etcd.ca the CA that signed etcd's certificate?)",
        ),
        # etcd with --client-cert-auth hangs up on a client without a certificate it
        # trusts: the client sees the hang-up, or, when it reads first, etcd's alert.
        ("EOF occurred in violation of protocol", _UNTRUSTED),
        ("ALERT_BAD_CERTIFICATE", _UNTRUSTED),
        ("ALERT_CERTIFICATE_REQUIRED", _UNTRUSTED),
        ("ALERT_UNKNOWN_CA", _UNTRUSTED),
        ("SSLError", "TLS handshake failed"),
    ):
        if marker in text:
            return said
    return text[:200] or type(exc).__name__

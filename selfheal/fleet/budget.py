"""The fleet heal budget and the fleet-wide breaker, kept in etcd.

When a shared dependency fails, every host's check goes CRITICAL at once
and each would restart its service on its own. A *budget* bounds that
across hosts: at most ``max_concurrent`` heals of one *group* run at
once, and after ``max_per_window`` heals started within ``window`` the
group is *held* fleet-wide until the window has passed (or an operator
resets it). The state lives in etcd v3 and is reached through the
HTTP/JSON gateway with the ``etcd3gw`` client (the ``selfheal[fleet]``
extra), which is imported only when a :class:`Fleet` is made.

This module imports nothing from the rest of selfheal. Durations are float
seconds; the caller parses ``2s``/``1h``.

Use::

    fleet = Fleet(FleetSettings(["https://etcd1:2379"], timeout=2, host="web-17"))
    grant = fleet.acquire(Budget("web", max_concurrent=2, max_per_window=10, window=3600),
                          check="nginx", ttl=runner_lifetime)
    if grant.granted:      # spawn the runner with grant.lease; it calls
        ...                # fleet.release(grant.lease) when the action ends
    else:                  # grant.outcome is DEFERRED (8a) or HELD (8b)
        note = grant.note()

Key layout
==========

Under ``prefix`` (default ``/selfheal/fleet/``), for a group ``G``::

    <prefix>G/slots/<n>   n in 0..max_concurrent-1: a heal running now.
                          Bound to the slot lease (TTL = the runner's
                          lifetime limit), revoked by the runner at the end.
    <prefix>G/heals/<n>   n in 0..max_per_window-1: a heal started within
                          the window. Bound to its own lease whose TTL is
                          the window, never revoked by the runner: the key
                          disappears when the window has passed.

Values are JSON: ``{"host", "check", "since" (the holder's wall clock,
for display only), "ttl", "max"}``.

Taking a slot
=============

:meth:`Fleet.acquire` reads the group (one range), picks the lowest free
slot ``i`` and, with a breaker, the lowest free heal ticket ``j``, grants
the two leases, then runs ONE transaction::

    if slots/i.create_revision == 0 and heals/j.create_revision == 0:
        put slots/i (slot lease), put heals/j (window lease)
    else:
        range the group            # the fresh state, for the next try

The compare on ``create_revision == 0`` makes a slot and a ticket each go
to exactly one host, and putting both in one transaction makes the
breaker exact: a heal that gets a slot has also been counted, so the
``max_per_window``-th heal is the last one, never one more. Counting keys
under ``heals/`` would have been racy (two hosts reading 9 of 10 would both
start); numbered tickets turn the count into the same compare-and-create
as the slots. A lost race costs one more transaction on the fresh state
the failure branch returned; each loss means another host took a slot or
a ticket, so the loop ends after at most ``max_concurrent`` losses (or
``max_per_window``) unless slots are freed meanwhile, and always within
the call's deadline. One transaction per slot attempt, rather than one
transaction over all N slots, because etcd's compares are conjunctive:
"any of slots 0..N-1 is free" cannot be a single compare without nesting
N transactions.

Guarantees and failure modes
============================

*What is guaranteed.* While etcd keeps a quorum, at most
``max_concurrent`` slot keys of a group exist at any instant, and at most
``max_per_window`` heal tickets (etcd transactions are serialisable and
reads are linearizable: a member cut off from the quorum cannot answer).
A heal runs only while its slot key exists, as long as the runner ends the
action before the slot lease's TTL, which is why the TTL is the runner's
whole lifetime limit (splay + action_timeout + kill grace + a margin).

*A lease that expires while its holder still believes it holds it*
(etcd #10811, #11456). Slot leases are not kept alive: their TTL is the
longest the runner can live, so they expire early only if the runner
overruns its own hard limit (the host was suspended, SIGSTOPped, or the
runner is broken). The runner can ask :meth:`Fleet.lease_left` before it
starts the action (after the splay) and refuse to start on an expired
lease; :meth:`Fleet.release` returns False when the lease was already gone,
which the caller journals (the slot may have served someone else
meanwhile). Releasing revokes *our* lease, never deletes a slot by name,
so a late release cannot free a slot that changed hands.

*Leases last longer, never shorter, than asked.* etcd's leader keeps
lease deadlines in memory; a new leader resets every lease to its full TTL
(plus an election timeout). A dead host's slot therefore comes back within
the TTL after the *last* leader change, and a window can stretch likewise.
Both err on the side of fewer heals. etcd also rounds a TTL up to its
minimum (2 s with default timings) and checks for expiry every 500 ms.

*Clocks.* Nothing compares clocks across hosts: TTLs are counted by the
etcd leader from the moment it grants the lease. ``since`` in a value is
the holder's wall clock, shown by ``status`` and never used to decide.

*Partitions and dead members.* Every call goes to one endpoint, and on a
connection failure, a timeout or an "unavailable" answer (no leader, lost
quorum) to the next, within one deadline: :meth:`acquire` and
:meth:`peek` as a whole take at most ``timeout`` (per try at most twice its
share in the worst case of a slow connect followed by a slow answer).
When no endpoint answers, :class:`FleetUnreachable` is raised and the
caller applies ``on_unreachable`` (``heal``: local limits only; ``hold``:
no heal). A host cut off from etcd while holding a slot cannot release
it; the slot comes back at its TTL.

*Ambiguous writes.* A transaction whose answer was lost may have been
applied. The retry is the same transaction: it either applies (the first
did not) or fails, and the failure branch shows our lease on the slot,
which counts as granted. An unanswered grant or transaction can leave a
slot or a ticket taken for a heal that never ran: the budget over-counts,
never under-counts, until the leases expire.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Where the keys of every group live unless the settings say otherwise.
DEFAULT_PREFIX = "/selfheal/fleet/"

GRANTED = "granted"
#: peek() found a free slot (and ticket): acquire() would grant now.
AVAILABLE = "available"
#: Decision row 8a: every slot of the group is in use.
DEFERRED = "deferred"
#: Decision row 8b: max_per_window heals started in the group within the window.
HELD = "held"

ON_UNREACHABLE = ("heal", "hold")

#: etcd's own ceiling on a lease TTL (lease.MaxLeaseTTL).
MAX_TTL = 9_000_000_000
#: A check waits on etcd inside Nagios' plugin timeout; a minute is a typo.
MAX_TIMEOUT = 60.0
#: A slot key per running heal: more than this is a typo, not a fleet.
MAX_CONCURRENT = 1000
MAX_PER_WINDOW = 10_000

_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_PREFIX = re.compile(r"/(?:[A-Za-z0-9_.-]+/)*\Z")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,252}\Z")

# grpc status codes that etcd's gateway returns in its JSON errors.
_NOT_FOUND = 5
_UNAUTHENTICATED = 16


class FleetError(Exception):
    """etcd answered, but not as expected (permission denied, bad request...)."""


class FleetConfigError(FleetError, ValueError):
    """The fleet settings or a budget are invalid."""


class FleetClientMissing(FleetError, ImportError):
    """The etcd client is not installed."""


class FleetUnreachable(FleetError):
    """No etcd endpoint answered within the deadline."""


class FleetRefused(FleetError):
    """etcd answered with an error: authentication failed, permission denied, a bad request.

    ``code`` is the gRPC status code etcd gave (5: not found, 7: permission
    denied, 16: unauthenticated), None when its answer had none.
    """

    def __init__(self, endpoint: Endpoint, code: int | None, message: str) -> None:
        super().__init__(f"etcd at {endpoint}: {message}")
        self.code = code


def resolve_host(configured: str | None = None) -> str:
    """This host's name in the fleet: ``$SELFHEAL_HOST``, else the config's ``host``, else the host name."""
    return os.environ.get("SELFHEAL_HOST") or configured or socket.gethostname()


def client_available() -> bool:
    """Whether etcd3gw can be imported, without importing it (for validate and doctor)."""
    import importlib.util

    return importlib.util.find_spec("etcd3gw") is not None


def format_seconds(seconds: float) -> str:
    """``3600`` -> ``1h``: the window as a person wrote it."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise FleetConfigError(f"{what} must be a number of seconds, not {value!r}")
    return float(value)


def _integer(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FleetConfigError(f"{what} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise FleetConfigError(f"{what} must be between {low} and {high}, not {value}")
    return value


def _ttl(seconds: float, what: str) -> int:
    """Float seconds to etcd's whole seconds, rounded up: a lease never shorter than asked."""
    value = _number(seconds, what)
    if not 0 < value <= MAX_TTL:
        raise FleetConfigError(f"{what} must be more than 0 and at most {MAX_TTL} seconds, not {seconds!r}")
    return max(1, math.ceil(value))


def _label(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
        raise FleetConfigError(f"{what} must be 1-200 printable characters, not {value!r}")
    return value


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(text: object) -> Endpoint:
    """``https://etcd1:2379``, ``http://[::1]:2379`` or ``etcd1:2379`` (http); the port defaults to 2379."""
    if not isinstance(text, str) or not text.strip():
        raise FleetConfigError(f"fleet.etcd.endpoints: an endpoint must be a URL, not {text!r}")
    url = text.strip() if "://" in text else f"http://{text.strip()}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FleetConfigError(f"fleet.etcd.endpoints: {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise FleetConfigError(f"fleet.etcd.endpoints: {text!r}: the scheme must be http or https")
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise FleetConfigError(
            f"fleet.etcd.endpoints: {text!r}: expected scheme://host:port and nothing else"
        )
    if parts.path not in ("", "/"):
        raise FleetConfigError(f"fleet.etcd.endpoints: {text!r}: no path (the client adds /v3/)")
    return Endpoint(parts.scheme, parts.hostname, port or 2379)


@dataclass(frozen=True)
class FleetSettings:
    """The ``fleet:`` section of the config. ``host`` None means :func:`resolve_host`."""

    endpoints: tuple[str, ...]
    timeout: float = 2.0
    host: str | None = None
    on_unreachable: str = "heal"
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    user: str | None = None
    password_file: str | None = None
    prefix: str = DEFAULT_PREFIX
    parsed: tuple[Endpoint, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # As given, from YAML: a string or a list; normalised to the tuple the annotation says.
        given: object = self.endpoints
        endpoints = (given,) if isinstance(given, str) else given
        if not isinstance(endpoints, (list, tuple)) or not endpoints:
            raise FleetConfigError("fleet.etcd.endpoints must list at least one endpoint")
        object.__setattr__(self, "endpoints", tuple(endpoints))
        object.__setattr__(self, "parsed", tuple(parse_endpoint(e) for e in endpoints))
        timeout = _number(self.timeout, "fleet.etcd.timeout")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise FleetConfigError(f"fleet.etcd.timeout must be more than 0 and at most {MAX_TIMEOUT:g}s")
        object.__setattr__(self, "timeout", timeout)
        host = resolve_host(None) if self.host is None else self.host
        if not isinstance(host, str) or not _HOST.match(host):
            raise FleetConfigError(
                f"fleet.host must be a host name (letters, digits, '.', '_', ':', '@', '-'), not {host!r}"
            )
        object.__setattr__(self, "host", host)
        if self.on_unreachable not in ON_UNREACHABLE:
            raise FleetConfigError(f"fleet.on_unreachable must be heal or hold, not {self.on_unreachable!r}")
        for name in ("ca", "cert", "key", "user", "password_file"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise FleetConfigError(f"fleet.etcd.{name} must be a non-empty string, not {value!r}")
        if (self.cert is None) != (self.key is None):
            raise FleetConfigError("fleet.etcd.cert and fleet.etcd.key go together: give both or neither")
        if (self.user is None) != (self.password_file is None):
            raise FleetConfigError(
                "fleet.etcd.user and fleet.etcd.password_file go together: give both or neither"
            )
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            raise FleetConfigError(f"fleet prefix must look like /a/b/, not {self.prefix!r}")

    def problems(self) -> list[str]:
        """What is wrong with the files the settings name (for validate and doctor); no network."""
        found: list[str] = []
        for name in ("ca", "cert", "key", "password_file"):
            path = getattr(self, name)
            if path is None:
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read(1 << 20)
            except OSError as exc:
                found.append(f"fleet.etcd.{name}: cannot read {path}: {exc.strerror or exc}")
                continue
            if name == "password_file" and not data.strip():
                found.append(f"fleet.etcd.password_file: {path} is empty")
        if found:
            return found
        import ssl

        if self.ca is not None:
            try:
                ssl.create_default_context(cafile=self.ca)
            except (ssl.SSLError, ValueError) as exc:
                found.append(f"fleet.etcd.ca: {self.ca} holds no PEM certificate ({exc})")
        if self.cert is not None and self.key is not None:
            try:
                ssl.create_default_context().load_cert_chain(self.cert, self.key)
            except (ssl.SSLError, ValueError) as exc:
                found.append(
                    f"fleet.etcd.cert/key: {self.cert} and {self.key} are not a PEM certificate "
                    f"and its private key ({exc})"
                )
        if (self.ca or self.cert) and not any(e.scheme == "https" for e in self.parsed):
            found.append("fleet.etcd: ca/cert are set, but no endpoint is https://")
        return found

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        with open(self.password_file, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")


@dataclass(frozen=True)
class Budget:
    """The ``budget:`` of one check. ``max_per_window`` and ``window`` go together (or neither: no breaker)."""

    group: str
    max_concurrent: int
    max_per_window: int | None = None
    window: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.group, str) or not _GROUP.match(self.group):
            raise FleetConfigError(
                f"budget.group must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                f"or digit (no '/'), not {self.group!r}"
            )
        _integer(self.max_concurrent, "budget.max_concurrent", 1, MAX_CONCURRENT)
        if (self.max_per_window is None) != (self.window is None):
            raise FleetConfigError(
                "budget.max_per_window and budget.window go together: give both or neither"
            )
        if self.max_per_window is not None:
            _integer(self.max_per_window, "budget.max_per_window", 1, MAX_PER_WINDOW)
        if self.window is not None:
            window = _number(self.window, "budget.window")
            if not 1 <= window <= MAX_TTL:
                raise FleetConfigError(
                    f"budget.window must be between 1s and {MAX_TTL}s, not {self.window!r}"
                )
            object.__setattr__(self, "window", window)


@dataclass(frozen=True)
class Holder:
    """One key of a group: a slot (a heal running) or a heal ticket (a heal started within the window)."""

    group: str
    kind: str  # "slot" or "heal"
    index: int
    host: str
    check: str
    since: float  # the holder's wall clock: display only
    lease: int
    ttl: int  # as granted
    ttl_left: float | None = None  # filled by status(); None: not asked, or the lease is gone

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "kind": self.kind,
            "index": self.index,
            "host": self.host,
            "check": self.check,
            "since": self.since,
            "lease": self.lease,
            "ttl": self.ttl,
            "ttl_left": self.ttl_left,
        }


@dataclass(frozen=True)
class Grant:
    """What acquire() or peek() found. ``lease`` is the release handle when granted."""

    outcome: str  # GRANTED, AVAILABLE (peek), DEFERRED (row 8a) or HELD (row 8b)
    budget: Budget
    slots: tuple[Holder, ...]  # the group's slots after the call, ours included
    heals: tuple[Holder, ...]  # heal tickets in the window, ours included
    slot: int | None = None
    lease: int | None = None
    ttl: int | None = None
    ticket: int | None = None

    @property
    def granted(self) -> bool:
        return self.outcome == GRANTED

    @property
    def in_use(self) -> tuple[Holder, ...]:
        """The slots this budget counts (another host may be configured with more)."""
        return tuple(s for s in self.slots if s.index < self.budget.max_concurrent)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(s.host for s in self.in_use)

    def note(self) -> str:
        """The decision note, without the ``self-healing ...:`` head the engine adds."""
        budget = self.budget
        if self.outcome == HELD:
            window = format_seconds(budget.window or 0)
            return f"{len(self.heals)} heals in group {budget.group} within {window}"
        used = f"{len(self.in_use)}/{budget.max_concurrent}"
        if self.outcome == DEFERRED:
            return f"fleet budget {budget.group} {used} in use (hosts {', '.join(self.hosts)})"
        if self.outcome == GRANTED:
            return f"fleet budget {budget.group} slot {self.slot}, {used} in use"
        return f"fleet budget {budget.group} {used} in use, a slot is free"


@dataclass(frozen=True)
class GroupStatus:
    group: str
    slots: tuple[Holder, ...]
    heals: tuple[Holder, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "slots": [s.as_dict() for s in self.slots],
            "heals_in_window": len(self.heals),
            "heals": [h.as_dict() for h in self.heals],
        }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _range_end(prefix: str) -> str:
    # Every key that starts with the prefix sorts before this one.
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _grpc_code(detail: object) -> int | None:
    try:
        return int(json.loads(str(detail)).get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


class Fleet:
    """The budget in one etcd cluster. One instance per thread: it keeps per-endpoint sessions."""

    def __init__(self, settings: FleetSettings) -> None:
        problems = settings.problems()
        if problems:
            raise FleetConfigError("; ".join(problems))
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

    def _post(self, path: str, payload: dict[str, Any], deadline: float) -> Any:
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

    def _deadline(self) -> float:
        return time.monotonic() + self.settings.timeout

    # -- reading -----------------------------------------------------------

    def _group_prefix(self, group: str) -> str:
        return f"{self.settings.prefix}{group}/"

    def _range(self, prefix: str, deadline: float) -> list[dict[str, Any]]:
        reply = self._post(
            "/kv/range", {"key": _b64(prefix), "range_end": _b64(_range_end(prefix))}, deadline
        )
        return list(reply.get("kvs", ()))

    def _parse(self, kvs: list[dict[str, Any]]) -> list[Holder]:
        holders = []
        root = self.settings.prefix
        for kv in kvs:
            key = base64.b64decode(kv["key"]).decode("utf-8", "replace")
            parts = key[len(root) :].split("/")
            if not key.startswith(root) or len(parts) != 3 or parts[1] not in ("slots", "heals"):
                continue
            group, kind, index = parts
            if not index.isdigit():
                continue
            try:
                value = json.loads(base64.b64decode(kv.get("value", "")))
                if not isinstance(value, dict):
                    value = {}
            except ValueError:
                value = {}
            holders.append(
                Holder(
                    group=group,
                    kind="slot" if kind == "slots" else "heal",
                    index=int(index),
                    host=str(value.get("host", "?")),
                    check=str(value.get("check", "?")),
                    since=float(value.get("since", 0) or 0),
                    lease=int(kv.get("lease", 0) or 0),
                    ttl=int(value.get("ttl", 0) or 0),
                )
            )
        holders.sort(key=lambda h: (h.group, h.kind, h.index))
        return holders

    def _verdict(
        self, budget: Budget, holders: list[Holder], granted: str
    ) -> tuple[Grant, int | None, int | None]:
        slots = tuple(h for h in holders if h.kind == "slot")
        heals = tuple(h for h in holders if h.kind == "heal")
        taken = {h.index for h in slots}
        free_slot = next((i for i in range(budget.max_concurrent) if i not in taken), None)
        free_ticket = None
        if budget.max_per_window is not None:
            tickets = {h.index for h in heals}
            free_ticket = next((j for j in range(budget.max_per_window) if j not in tickets), None)
        # Row 8a before 8b, as in the decision table: a full budget is what the host meets first.
        if free_slot is None:
            outcome = DEFERRED
        elif budget.max_per_window is not None and free_ticket is None:
            outcome = HELD
        else:
            outcome = granted
        return Grant(outcome, budget, slots, heals), free_slot, free_ticket

    def peek(self, budget: Budget) -> Grant:
        """What acquire() would decide now, for a dry run: one read, nothing taken."""
        kvs = self._range(self._group_prefix(budget.group), self._deadline())
        grant, _, _ = self._verdict(budget, self._parse(kvs), AVAILABLE)
        return grant

    # -- taking and giving back ----------------------------------------------

    def _grant_lease(self, ttl: int, deadline: float) -> tuple[int, int]:
        reply = self._post("/lease/grant", {"TTL": ttl, "ID": 0}, deadline)
        if reply.get("error"):
            raise FleetError(f"etcd refused a lease of {ttl}s: {reply['error']}")
        return int(reply["ID"]), int(reply["TTL"])

    def acquire(self, budget: Budget, check: str, ttl: float) -> Grant:
        """Take a slot (and a heal ticket) for one heal, or say why not.

        ``ttl`` is the runner's lifetime limit in seconds. Returns a GRANTED,
        DEFERRED or HELD :class:`Grant`; raises :class:`FleetUnreachable`
        within about ``timeout`` when etcd cannot be reached.
        """
        check = _label(check, "check name")
        slot_ttl = _ttl(ttl, "slot ttl")
        deadline = self._deadline()
        prefix = self._group_prefix(budget.group)
        holders = self._parse(self._range(prefix, deadline))
        verdict, slot, ticket = self._verdict(budget, holders, GRANTED)
        if not verdict.granted:
            return verdict
        slot_lease, slot_granted = self._grant_lease(slot_ttl, deadline)
        window_lease = window_granted = 0
        try:
            if budget.window is not None:
                window_lease, window_granted = self._grant_lease(_ttl(budget.window, "window"), deadline)
            while True:
                assert slot is not None
                since = time.time()
                slot_key = f"{prefix}slots/{slot}"
                compare = [_absent(slot_key)]
                success = [_put(slot_key, self._value(check, since, slot_granted, budget), slot_lease)]
                if ticket is not None:
                    heal_key = f"{prefix}heals/{ticket}"
                    compare.append(_absent(heal_key))
                    success.append(
                        _put(heal_key, self._value(check, since, window_granted, budget), window_lease)
                    )
                failure = [{"request_range": {"key": _b64(prefix), "range_end": _b64(_range_end(prefix))}}]
                reply = self._post(
                    "/kv/txn", {"compare": compare, "success": success, "failure": failure}, deadline
                )
                if reply.get("succeeded"):
                    holders = [
                        h for h in holders if (h.kind, h.index) not in {("slot", slot), ("heal", ticket)}
                    ]
                    mine = self._parse(_range_kvs_of_puts(success))
                    holders = sorted([*holders, *mine], key=lambda h: (h.kind, h.index))
                    grant, _, _ = self._verdict(budget, holders, GRANTED)
                    return _granted(grant, slot, slot_lease, slot_granted, ticket)
                holders = self._parse(_range_kvs(reply))
                ours = next((h for h in holders if h.kind == "slot" and h.lease == slot_lease), None)
                if ours is not None:
                    # An earlier try of this same transaction was applied, and its answer lost.
                    grant, _, _ = self._verdict(budget, holders, GRANTED)
                    ours_ticket = next(
                        (h.index for h in holders if h.kind == "heal" and h.lease == window_lease), None
                    )
                    return _granted(grant, ours.index, slot_lease, slot_granted, ours_ticket)
                verdict, slot, ticket = self._verdict(budget, holders, GRANTED)
                if not verdict.granted:
                    self._revoke_quietly(slot_lease, window_lease)
                    return verdict
        except FleetUnreachable:
            # Nothing to undo that could be undone: etcd is gone. The leases expire by themselves.
            raise
        except BaseException:
            self._revoke_quietly(slot_lease, window_lease)
            raise

    def _value(self, check: str, since: float, ttl: int, budget: Budget) -> str:
        return json.dumps(
            {
                "host": self.settings.host,
                "check": check,
                "since": round(since, 3),
                "ttl": ttl,
                "max": budget.max_concurrent,
            },
            separators=(",", ":"),
        )

    def _revoke_quietly(self, *leases: int) -> None:
        deadline = self._deadline()
        for lease in leases:
            if lease:
                try:
                    self._revoke(lease, deadline)
                except FleetError:
                    pass

    def _revoke(self, lease: int, deadline: float) -> bool:
        try:
            self._post("/lease/revoke", {"ID": lease}, deadline)
        except FleetRefused as exc:
            if exc.code == _NOT_FOUND:
                return False
            raise
        return True

    def release(self, lease: int) -> bool:
        """Give a slot back: revoke its lease. False when it was already gone (expired or released by an operator)."""
        return self._revoke(_lease_id(lease), self._deadline())

    def lease_left(self, lease: int) -> float | None:
        """Seconds left on a lease, None when it is gone: the runner asks before it starts the action."""
        reply = self._post("/lease/timetolive", {"ID": _lease_id(lease)}, self._deadline())
        left = int(reply.get("TTL", -1))
        return None if left < 0 else float(left)

    # -- operators -------------------------------------------------------------

    def status(self, group: str | None = None) -> list[GroupStatus]:
        """Every group (or one), its slots and its heals in the window, with each lease's time left."""
        if group is not None:
            Budget(group, 1)
        prefix = self.settings.prefix if group is None else self._group_prefix(group)
        holders = self._parse(self._range(prefix, self._deadline()))
        left: dict[int, float | None] = {}
        for holder in holders:
            if holder.lease and holder.lease not in left:
                left[holder.lease] = self.lease_left(holder.lease)
        groups: dict[str, list[Holder]] = {}
        for holder in holders:
            filled = Holder(**{**holder.as_dict(), "ttl_left": left.get(holder.lease)})
            groups.setdefault(holder.group, []).append(filled)
        return [
            GroupStatus(
                name,
                tuple(h for h in members if h.kind == "slot"),
                tuple(h for h in members if h.kind == "heal"),
            )
            for name, members in sorted(groups.items())
        ]

    def operator_release(self, group: str, host: str) -> list[Holder]:
        """Free every slot of ``group`` held by ``host`` (``selfheal fleet release GROUP HOST``).

        Revokes the holders' leases rather than deleting keys: a slot that changed
        hands since the read keeps its new holder. Returns the slots freed.
        """
        Budget(group, 1)
        holders = self._parse(self._range(f"{self._group_prefix(group)}slots/", self._deadline()))
        freed = []
        for holder in holders:
            if holder.host == host and holder.lease and self._revoke(holder.lease, self._deadline()):
                freed.append(holder)
        return freed

    def operator_reset(self, group: str) -> int:
        """Clear the breaker of ``group``: forget the heals in its window. Returns how many."""
        Budget(group, 1)
        prefix = f"{self._group_prefix(group)}heals/"
        reply = self._post(
            "/kv/deleterange", {"key": _b64(prefix), "range_end": _b64(_range_end(prefix))}, self._deadline()
        )
        return int(reply.get("deleted", 0))


def _absent(key: str) -> dict[str, Any]:
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}


def _put(key: str, value: str, lease: int) -> dict[str, Any]:
    return {"request_put": {"key": _b64(key), "value": _b64(value), "lease": lease}}


def _range_kvs(reply: dict[str, Any]) -> list[dict[str, Any]]:
    for response in reply.get("responses", ()):
        if "response_range" in response:
            return list(response["response_range"].get("kvs", ()))
    return []


def _range_kvs_of_puts(puts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [put["request_put"] for put in puts]


def _granted(grant: Grant, slot: int, lease: int, ttl: int, ticket: int | None) -> Grant:
    return Grant(GRANTED, grant.budget, grant.slots, grant.heals, slot, lease, ttl, ticket)


def _lease_id(lease: object) -> int:
    if isinstance(lease, bool) or not isinstance(lease, int) or lease <= 0:
        raise FleetConfigError(f"a lease id is a positive whole number, not {lease!r}")
    return lease


def _message(detail: object) -> str:
    try:
        parsed = json.loads(str(detail))
        return str(parsed.get("message") or parsed.get("error") or detail)
    except (ValueError, AttributeError):
        return str(detail)[:200]


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
        # etcd with --client-cert-auth hangs up on a client without a certificate it trusts.
        (
            "EOF occurred in violation of protocol",
            "etcd closed the TLS handshake (no client certificate, or one it does not trust: "
            "fleet.etcd.cert and key)",
        ),
        ("SSLError", "TLS handshake failed"),
    ):
        if marker in text:
            return said
    return text[:200] or type(exc).__name__

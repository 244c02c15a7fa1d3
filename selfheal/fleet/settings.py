"""The fleet's settings and a check's budget: value objects, validated where they are made.

``FleetSettings`` is the config's ``fleet:`` section (endpoints, TLS,
authentication, this host's name, what to do when etcd is unreachable),
``Budget`` a check's ``budget:``. Both check every value when built and
raise ``FleetConfigError``; ``FleetSettings.problems`` checks the files
they name, without the network. Durations are float seconds; the caller
parses ``2s``/``1h``. Standard library only.
"""

from __future__ import annotations

import math
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from selfheal.fleet.errors import FleetConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: Where the keys of every group live unless the settings say otherwise.
DEFAULT_PREFIX = "/selfheal/fleet/"

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


def ttl_seconds(seconds: float, what: str) -> int:
    """Float seconds to etcd's whole seconds, rounded up: a lease never shorter than asked."""
    value = _number(seconds, what)
    if not 0 < value <= MAX_TTL:
        raise FleetConfigError(f"{what} must be more than 0 and at most {MAX_TTL} seconds, not {seconds!r}")
    return max(1, math.ceil(value))


def label(value: object, what: str) -> str:
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

    @classmethod
    def from_plain(cls, plain: Mapping[str, object]) -> FleetSettings:
        """From the config's plain ``fleet:`` (as the config cache keeps it); each value checked."""
        return cls(**plain)  # type: ignore[arg-type]  # __post_init__ checks each value's type and range

    def __post_init__(self) -> None:
        given: object = self.endpoints  # callers (and YAML) may give one URL as a string, or a list
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

    @classmethod
    def from_plain(cls, plain: Mapping[str, object]) -> Budget:
        """From a check's plain ``budget:`` (as the config cache keeps it); each value checked."""
        return cls(**plain)  # type: ignore[arg-type]  # __post_init__ checks each value's type and range

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

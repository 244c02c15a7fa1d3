"""Icinga 2's REST API: a heal's result reported at once, and a comment naming the heal.

``send()`` posts a passive check result (``/v1/actions/process-check-result``)
and, when given, a comment (``/v1/actions/add-comment``) for one service, so
Icinga Web shows the recovery (or the failed heal) now rather than after the
next active check. It runs only after a heal, never on a healthy check, so
callers import this module lazily.

What a report must never do is hold up or break the heal runner: ``send()``
never raises and returns within ``timeout`` seconds *in total* (name
lookup, connect, TLS handshake, both requests), with ``None`` or one line
saying what went wrong. Each step gets what is left of one deadline; the
socket module's own timeouts cover connect, the handshake and each read,
and the name lookup, which has no timeout of its own, runs in a daemon
thread that is abandoned when the deadline passes.

TLS is always verified: the chain against ``ca_file`` (Icinga's own CA,
``/var/lib/icinga2/certs/ca.crt`` on its hosts) or the system store, and
the host name of the URL against the certificate. There is no insecure
switch: an Icinga CA file is what the operator copies once.
"""

from __future__ import annotations

import math
import time

from selfheal.core.output import parse
from selfheal.core.states import StateError
from selfheal.edges.files import read_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

DEFAULT_PORT = 5665
DEFAULT_TIMEOUT = 5.0
#: A report is one or two small requests; more than this is a hung peer, not a slow one.
MAX_TIMEOUT = 60.0
PREFIX = "report_to.icinga"
KEYS = ("url", "host", "service", "user", "password_file", "ca_file", "timeout")
REQUIRED = ("url", "host", "service", "user", "password_file")
#: An answer larger than this is not Icinga's: the actions answer with a few hundred bytes.
MAX_ANSWER = 1 << 20
MAX_PASSWORD_FILE = 4096
#: A CA bundle: the system's is about 200 KiB.
MAX_CA_FILE = 4 << 20
MAX_NAME = 1024
MAX_ERROR = 400
#: Icinga writes a result's code as a JSON number, 200.0.
_SUCCESS = (200, 201, 202, 204)


class IcingaTarget:
    """Where and as whom to report: the config's ``report_to: {icinga: {...}}``, checked when made.

    A plain class importing nothing heavy (no dataclasses, urllib, ssl or
    socket), so that a config naming it can be loaded on a healthy check.
    """

    __slots__ = ("ca_file", "host", "hostname", "password_file", "port", "service", "timeout", "url", "user")

    def __init__(
        self,
        url: str,
        host: str,
        service: str,
        user: str,
        password_file: str,
        ca_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.hostname, self.port = _address(url)
        for key, value in (("host", host), ("service", service)):
            _name(key, value, "!")
        _name("user", user, ":")
        _path("password_file", password_file)
        if ca_file is not None:
            _path("ca_file", ca_file)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ValueError(f"{PREFIX}.timeout: must be a number of seconds, not {timeout!r:.200}")
        if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            raise ValueError(f"{PREFIX}.timeout: must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
        self.url = url
        self.host = host
        self.service = service
        self.user = user
        self.password_file = password_file
        self.ca_file = ca_file
        self.timeout = float(timeout)

    @classmethod
    def from_json(cls, data: object) -> IcingaTarget:
        """From the plain mapping of the config (or the config cache): every key checked, none unknown."""
        if not isinstance(data, dict):
            raise ValueError(f"{PREFIX}: must be a mapping of {', '.join(KEYS)}, not {type(data).__name__}")
        unknown = [key for key in data if key not in KEYS]
        if unknown:
            key = unknown[0]
            where = (
                f"{PREFIX}.{key}" if isinstance(key, str) and key.isidentifier() else f"{PREFIX}: {key!r:.80}"
            )
            raise ValueError(f"{where}: unknown key (known: {', '.join(KEYS)})")
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise ValueError(f"{PREFIX}.{missing[0]}: missing (required: {', '.join(REQUIRED)})")
        timeout = data.get("timeout")
        if isinstance(timeout, str):  # "5s", as every duration in the config may be written
            from selfheal.core.durations import parse_duration

            try:
                data = {**data, "timeout": parse_duration(timeout)}
            except ValueError as exc:
                raise ValueError(f"{PREFIX}.timeout: {exc}") from None
        return cls(**data)

    def to_json(self) -> dict[str, object]:
        """The plain mapping ``from_json`` reads back to an equal target."""
        plain: dict[str, object] = {key: getattr(self, key) for key in KEYS}
        if self.ca_file is None:
            del plain["ca_file"]
        return plain

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IcingaTarget) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, key) for key in KEYS))

    def __repr__(self) -> str:
        return f"IcingaTarget({', '.join(f'{key}={getattr(self, key)!r}' for key in KEYS)})"

    @property
    def object_name(self) -> str:
        """Icinga's full name of the service, ``HOST!SERVICE``."""
        return f"{self.host}!{self.service}"


def _address(url: object) -> tuple[str, int]:
    """``https://HOST[:PORT][/]``: the host (a name, IPv4, or IPv6 in brackets) and the port."""
    problem = f"{PREFIX}.url: must be https://HOST[:PORT], not {url!r:.200}"
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError(problem)
    netloc = url[len("https://") :]
    netloc = netloc[:-1] if netloc.endswith("/") else netloc
    port_text = ""
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(problem)
        port_text = rest[1:] if rest else ""
        ip_v6 = ":" in host and all(c in "0123456789abcdefABCDEF:." for c in host)
        if not ip_v6:
            raise ValueError(problem)
        port = _port(port_text, rest != "", problem)
        return host.lower(), port
    host, colon, port_text = netloc.partition(":")
    port = _port(port_text, colon != "", problem)
    labels = host.rstrip(".").split(".")
    if (
        not host
        or len(host) > 253
        or not all(
            label and len(label) <= 63 and label.isascii() and label.replace("-", "").isalnum()
            for label in labels
        )
    ):
        raise ValueError(problem)
    if all(label.isdigit() for label in labels) and (len(labels) != 4 or any(int(x) > 255 for x in labels)):
        raise ValueError(problem)
    return host.lower(), port


def _port(text: str, given: bool, problem: str) -> int:
    if not given:
        return DEFAULT_PORT
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise ValueError(problem)
    return int(text)


def _name(key: str, value: object, forbidden: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{PREFIX}.{key}: must be a non-empty string, not {value!r:.200}")
    if len(value) > MAX_NAME or not value.isprintable() or forbidden in value:
        raise ValueError(
            f"{PREFIX}.{key}: {value!r:.200} is not a name (printable, no {forbidden!r}, at most {MAX_NAME} characters)"
        )


def _path(key: str, value: object) -> None:
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise ValueError(f"{PREFIX}.{key}: must be an absolute path, not {value!r:.200}")


# -- sending ------------------------------------------------------------------


class _Failed(Exception):
    """One line for the caller: what went wrong, without the password."""


def send(target: IcingaTarget, state: int, output: str, comment: str | None = None) -> str | None:
    """Report ``state`` and ``output`` for the target's service, and add ``comment`` if given.

    None on success; otherwise one line naming the service and the problem.
    Never raises, and returns within ``target.timeout`` seconds.
    """
    deadline = time.monotonic() + target.timeout
    where = f"icinga {target.object_name} at {target.hostname}:{target.port}"
    step = "process-check-result"
    try:
        import socket

        from selfheal.edges.https_post import PostFailed

        try:
            if isinstance(state, bool) or state not in (0, 1, 2, 3):
                raise _Failed(f"the state must be 0, 1, 2 or 3, not {state!r}")
            headers = {
                "Authorization": _authorization(target),
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
            context = _context(target.ca_file)
            result = parse(output)
            check_result: dict[str, object] = {
                "type": "Service",
                "service": target.object_name,
                "exit_status": state,
                "plugin_output": "\n".join([result.text, *result.long]),
                "performance_data": result.perfdata,
                "check_source": socket.gethostname(),
            }
            _action(target, context, headers, deadline, step, check_result)
            if comment is not None:
                step = "add-comment"
                note: dict[str, object] = {
                    "type": "Service",
                    "service": target.object_name,
                    "author": "selfheal",
                    "comment": comment,
                }
                _action(target, context, headers, deadline, step, note)
        except (_Failed, PostFailed) as exc:
            return _line(f"{where}: {step}: {exc}")
    except Exception as exc:  # a report must never break the heal runner that sends it
        return _line(f"{where}: {step}: {type(exc).__name__}: {exc}")
    return None


def _action(
    target: IcingaTarget,
    context: ssl.SSLContext,
    headers: dict[str, str],
    deadline: float,
    name: str,
    payload: dict[str, object],
) -> None:
    import json

    from selfheal.edges.https_post import post

    body = json.dumps(payload).encode("utf-8")
    status, reason, answer = post(
        target.hostname, target.port, context, f"/v1/actions/{name}", headers, body, deadline
    )
    try:
        document: object = json.loads(answer) if answer.strip() else None
    except ValueError:
        document = answer[:200].decode("utf-8", "replace")
    _judge(status, reason, document)


def _line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_ERROR else flat[: MAX_ERROR - 3] + "..."


def _authorization(target: IcingaTarget) -> str:
    """The Basic credentials, from the password file as it is now (so a rotated password works at once)."""
    path = target.password_file
    try:
        data, st = read_regular(path, MAX_PASSWORD_FILE)
    except FileNotFoundError:
        raise _Failed(f"password file {path} is missing") from None
    except StateError as exc:
        raise _Failed(f"password file unreadable: {exc}") from None
    # Group-readable is how the nagios user is given a root-owned secret (root:nagios 0640); readable
    # by everyone, the password that can post any check result is everyone's: refuse, as ssh does.
    if st.st_mode & 0o004:
        raise _Failed(
            f"password file {path} is readable by everyone (mode {st.st_mode & 0o777:04o}); "
            f"refusing to use it: chmod o-rwx {path}"
        )
    try:
        password = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failed(f"password file {path} is not UTF-8 text") from None
    if password.endswith("\n"):
        password = password[:-2] if password.endswith("\r\n") else password[:-1]
    if not password:
        raise _Failed(f"password file {path} is empty")
    import base64

    token = base64.b64encode(f"{target.user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _context(ca_file: str | None) -> ssl.SSLContext:
    import ssl

    cadata = None
    if ca_file is not None:
        # Read here, not by OpenSSL: its open blocks on a FIFO, and /dev/zero never ends.
        try:
            cadata = read_regular(ca_file, MAX_CA_FILE)[0].decode("ascii", "replace")
        except FileNotFoundError:
            raise _Failed(f"TLS: ca_file {ca_file} is missing") from None
        except StateError as exc:
            raise _Failed(f"TLS: ca_file unreadable: {exc}") from None
    try:
        context = ssl.create_default_context(cadata=cadata)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise _Failed(f"TLS: cannot load ca_file {ca_file}: {exc}") from None
    # The certificates Icinga's own PKI issues (icinga2 pki, 2.13) carry no key identifiers, which
    # Python 3.13's strict X.509 mode requires; the chain and the host name are still verified.
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    return context


def _judge(status: int, reason: str, document: object) -> None:
    """Icinga's answer to an action: an HTTP error, or a failed result for the one object."""
    if isinstance(document, dict):
        said = document.get("status")
        if status >= 300:
            raise _Failed(f"HTTP {status} {reason}: {said if said is not None else document}")
        results = document.get("results")
        if isinstance(results, list) and results:
            failed = [r for r in results if not (isinstance(r, dict) and r.get("code") in _SUCCESS)]
            if failed:
                first = failed[0] if isinstance(failed[0], dict) else {"status": failed[0]}
                code = first.get("code")
                code = int(code) if isinstance(code, float) and code.is_integer() else code
                raise _Failed(f"Icinga answered {code}: {first.get('status')}")
            return
    if status >= 300:
        raise _Failed(f"HTTP {status} {reason}: {document}")
    raise _Failed(f"HTTP {status} {reason}, but no result in the answer: {document!r:.200}")


__all__ = ["IcingaTarget", "send"]

"""The rules for ``fleet:`` (top level) and a check's ``budget:``, every problem at FILE:LINE.

The values are checked by ``selfheal.fleet.settings`` (``FleetSettings``
and ``Budget``), the very classes the heal path builds from them, and kept
in their plain form (``schema.plain_fleet``, ``schema.plain_budget``) for
the config cache. ``selfheal validate`` also reads the TLS and password
files and says whether the etcd client is installed; nothing here touches
the network (``selfheal doctor`` does).
"""

from __future__ import annotations

from selfheal.config.schema import BUDGET_KEYS, ETCD_KEYS, FLEET_KEYS
from selfheal.core.durations import parse_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # selfheal.config.reader.Reader, which imports this module: no type import back.
    Reader = Any

Fields = dict[str, tuple[object, object]]  # key -> (key node, value node), as Reader.mapping returns


def read_fleet(reader: Reader, top: Fields) -> dict[str, object] | None:
    """The ``fleet:`` section's plain form, or None when there is none."""
    if "fleet" not in top:
        return None
    from selfheal.fleet.errors import FleetConfigError
    from selfheal.fleet.settings import FleetSettings, client_available

    key_node, node = top["fleet"]
    fields = reader.mapping(node, "fleet")
    reader.known_keys(fields, FLEET_KEYS, "fleet")
    if "etcd" not in fields:
        raise reader.error("fleet: needs an 'etcd:' section with its endpoints", key_node)
    etcd_node = fields["etcd"][1]
    etcd = reader.mapping(etcd_node, "fleet.etcd")
    reader.known_keys(etcd, ETCD_KEYS, "fleet.etcd")
    if "endpoints" not in etcd:
        raise reader.error("fleet.etcd needs 'endpoints:' (e.g. [https://etcd1:2379])", etcd_node)
    plain: dict[str, object] = {key: None for key in (*ETCD_KEYS, "host")}
    plain.update(timeout=2.0, on_unreachable="heal")
    where = dict(etcd)
    where.update((key, fields[key]) for key in ("host", "on_unreachable") if key in fields)
    for key, (_, value_node) in where.items():
        if key in plain:
            plain[key] = reader.value(value_node)
    endpoints = plain["endpoints"]
    plain["endpoints"] = [endpoints] if isinstance(endpoints, str) else endpoints
    if "timeout" in etcd:
        try:
            plain["timeout"] = parse_duration(plain["timeout"])
        except ValueError as exc:
            raise reader.error(f"fleet.etcd.timeout: {exc}", etcd["timeout"][1]) from None
    try:
        settings = FleetSettings.from_plain(plain)
    except FleetConfigError as exc:
        raise reader.error(str(exc), _node_of(str(exc), where, node)) from None
    if reader.problems is not None:
        # validate: the files too (a deploy that forgot the key), and the client.
        for problem in settings.problems():
            reader.report(reader.error(problem, _node_of(problem, where, etcd_node)))
        if not client_available():
            reader.report(
                reader.error(
                    "fleet: the etcd client (etcd3gw) is not installed: pip install 'selfheal[fleet]' "
                    "(on Debian: apt-get install python3-etcd3gw)",
                    key_node,
                )
            )
    plain["timeout"] = float(settings.timeout)
    plain["endpoints"] = list(settings.endpoints)
    return plain


def read_budget(reader: Reader, key_node: object, node: object, where: str, fleet: bool) -> dict[str, object]:
    """A check's ``budget:`` in its plain form."""
    from selfheal.fleet.errors import FleetConfigError
    from selfheal.fleet.settings import Budget

    what = f"{where}: budget"
    if not fleet:
        raise reader.error(f"{what} needs a top-level 'fleet:' section (its etcd endpoints)", key_node)
    fields = reader.mapping(node, what)
    reader.known_keys(fields, BUDGET_KEYS, what)
    for key in ("group", "max_concurrent"):
        if key not in fields:
            raise reader.error(f"{what} needs '{key}:'", node)
    plain = {key: reader.value(fields[key][1]) if key in fields else None for key in BUDGET_KEYS}
    if plain["window"] is not None:
        try:
            plain["window"] = float(parse_duration(plain["window"]))
        except ValueError as exc:
            raise reader.error(f"{what}: window: {exc}", fields["window"][1]) from None
    # Each bad value at its own line: the one Budget names is replaced by a
    # harmless stand-in and the rest checked again (validate lists them all).
    stand_in = {"group": "g", "max_concurrent": 1, "max_per_window": None, "window": None}
    # Without a problems list the first report raises; with one, the check
    # is left out since problems were added (Reader.check).
    trial = dict(plain)
    for _ in BUDGET_KEYS:
        try:
            Budget.from_plain(trial)
            break
        except FleetConfigError as exc:
            key = next((k for k in BUDGET_KEYS if str(exc).startswith(f"budget.{k}")), "window")
            reader.report(reader.error(f"{where}: {exc}", _node_of(str(exc), fields, node)))
            trial.update({key: stand_in[key]} if key in ("group", "max_concurrent") else stand_in)
    return plain


def _node_of(message: str, fields: Fields, default: object) -> object:
    """The value node the message is about (``budget.window ...``, ``fleet.etcd.cert/key: ...``)."""
    words = message.split(":", 1)[0].replace("/", " ").split()
    for word in words:
        for key in fields:
            if word == key or word.endswith(f".{key}"):
                return fields[key][1]
    return default

"""``selfheal fleet status`` and ``selfheal fleet release``: the fleet budget in etcd, for people.

- ``fleet status [GROUP] [--json]``: each group, its slots held (host,
  check, since, lease left) and its heals in the window;
- ``fleet release GROUP HOST``: free the slots ``HOST`` holds in
  ``GROUP`` (a host that will not come back before its TTL), journaled
  with who did it.

Both read ``fleet:`` from the config; ``$SELFHEAL_HOST`` does not matter
here. Every failure (no ``fleet:``, the client missing, etcd unreachable
or refusing) is the one-line UNKNOWN.
"""

from __future__ import annotations

import time

from selfheal.commands import common as ops
from selfheal.core.argv import HELP_OPTIONS
from selfheal.core.states import SelfhealError, Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from selfheal.fleet.budget import Fleet

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE

OPTIONS = [ops.CONFIG_OPTION, ops.STATE_DIR_OPTION, ops.JOURNAL_OPTION, ops.JSON_OPTION, *HELP_OPTIONS]


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, positional = ops.parse(command, args, OPTIONS, out)
    if not positional or positional[0] not in ("status", "release"):
        raise Usage(f"fleet needs status or release: {USAGE['fleet']}")
    site = ops.Site(values, env, need_config=True)
    assert site.config is not None
    if site.config.fleet is None:
        raise SelfhealError(f"{site.config_path} has no 'fleet:' section (docs/fleet.md)")
    from selfheal.budget_gate import connect
    from selfheal.fleet.budget import FleetError

    try:
        fleet = connect(site.config.fleet)
        if positional[0] == "status":
            if len(positional) > 2:
                raise Usage("fleet status takes at most one GROUP")
            return status(fleet, positional[1] if len(positional) == 2 else None, bool(values["json"]), out)
        if len(positional) != 3:
            raise Usage("fleet release needs GROUP and HOST: selfheal fleet release GROUP HOST")
        return release(fleet, site, positional[1], positional[2], bool(values["json"]), out)
    except (FleetError, ValueError) as exc:
        raise SelfhealError(str(exc)) from None


def status(fleet: Fleet, group: str | None, as_json: bool, out: TextIO) -> int:
    groups = fleet.status(group)
    if as_json:
        ops.dump_json(
            {
                "endpoints": list(fleet.settings.endpoints),
                "host": fleet.settings.host,
                "groups": [g.as_dict() for g in groups],
            },
            out,
        )
        return 0
    if not groups:
        out.write(f"no slot held and no heal in any window{f' in group {group}' if group else ''}\n")
        return 0
    now = time.time()
    for entry in groups:
        out.write(
            f"group {entry.group}: {len(entry.slots)} slot(s) held, {len(entry.heals)} heal(s) in the window\n"
        )
        rows = [["SLOT", "HOST", "CHECK", "SINCE", "LEASE LEFT"]]
        for slot in entry.slots:
            left = "gone" if slot.ttl_left is None else f"{slot.ttl_left:.0f}s"
            rows.append([str(slot.index), slot.host, slot.check, ops.local(slot.since, now), left])
        if entry.slots:
            out.write(ops.table(rows))
    return 0


def release(fleet: Fleet, site: ops.Site, group: str, host: str, as_json: bool, out: TextIO) -> int:
    from selfheal.commands.control import operator
    from selfheal.edges.journal import Journal

    journal = Journal(site.journal, outputs=site.outputs())
    try:
        journal.open()  # nothing is released unless it can be journaled
        freed = fleet.operator_release(group, host)
        now = time.time()
        for holder in freed:
            event = {
                "event": "fleet_released",
                "check": holder.check,
                "group": group,
                "slot": holder.index,
                "lease": holder.lease,
                "holder": host,  # "host" is the journal's own: this host
                "released": True,
                "by": operator(),
                "reason": "released by an operator (selfheal fleet release)",
            }
            journal.write(event, now)
    finally:
        journal.close()
    if as_json:
        ops.dump_json({"group": group, "host": host, "released": [h.as_dict() for h in freed]}, out)
    elif freed:
        slots = ", ".join(f"slot {h.index} (check {h.check})" for h in freed)
        out.write(f"released {len(freed)} slot(s) of group {group} held by {host}: {slots}\n")
    else:
        out.write(f"no slot of group {group} is held by {host}\n")
    return 0 if freed else 1


def doctor_items(fleet: dict[str, object]) -> list[tuple[str, bool, str, str | None]]:
    """``selfheal doctor``'s lines for ``fleet:``: (item, ok, detail, fix), reaching each endpoint."""
    from selfheal.budget_gate import connect
    from selfheal.fleet.budget import FleetError, FleetSettings, client_available, resolve_host

    items: list[tuple[str, bool, str, str | None]] = []
    if not client_available():
        fix = "pip install 'selfheal[fleet]' (on Debian: apt-get install python3-etcd3gw)"
        return [
            ("fleet: etcd client", False, "etcd3gw is not installed: no heal of a check with a budget", fix)
        ]
    items.append(("fleet: etcd client", True, "etcd3gw is installed", None))
    configured = fleet.get("host")
    host = resolve_host(configured if isinstance(configured, str) else None)
    items.append(
        ("fleet: this host", True, f"{host} ($SELFHEAL_HOST, else fleet.host, else the host name)", None)
    )
    try:
        problems = FleetSettings.from_plain(fleet).problems()
    except FleetError as exc:
        problems = [str(exc)]
    if problems:
        fix = "fix the files fleet.etcd names (readable by this user, PEM)"
        return [*items, ("fleet: TLS and password files", False, "; ".join(problems), fix)]
    items.append(
        (
            "fleet: TLS and password files",
            True,
            "readable" if fleet.get("ca") or fleet.get("user") else "none",
            None,
        )
    )
    endpoints = fleet["endpoints"]
    for endpoint in endpoints if isinstance(endpoints, (list, tuple)) else [endpoints]:
        began = time.monotonic()
        try:
            connect({**fleet, "endpoints": [endpoint]}).status()
        except FleetError as exc:
            fix = "check the endpoint, the network and etcd's health (etcdctl endpoint health)"
            items.append((f"fleet: etcd {endpoint}", False, " ".join(str(exc).split())[:300], fix))
            continue
        took = (time.monotonic() - began) * 1000
        items.append((f"fleet: etcd {endpoint}", True, f"answered in {took:.0f} ms", None))
    return items

"""The fleet heal budget and the fleet-wide breaker, kept in etcd.

When a shared dependency fails, every host's check goes CRITICAL at once
and each would restart its service on its own. A *budget* bounds that
across hosts: at most ``max_concurrent`` heals of one *group* run at
once, and after ``max_per_window`` heals started within ``window`` the
group is *held* fleet-wide until the window has passed (or an operator
resets it). The state lives in etcd v3 and is reached through the
HTTP/JSON gateway with the ``etcd3gw`` client (the ``selfheal[fleet]``
extra), which is imported only when a :class:`Fleet` is made.

The fleet package imports nothing from the rest of selfheal. Durations
are float seconds; the caller parses ``2s``/``1h``. This module holds the
protocol (``Fleet``); its parts are ``settings`` (``FleetSettings`` and
``Budget``, validated), ``client`` (the etcd connection: endpoints,
deadlines, TLS, authentication), ``holders`` (a group's keys read back,
and the verdict) and ``errors``. Every public name is importable from
here.

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
quorum) to the next, within one deadline (``client.Gateway``): :meth:`acquire` and
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

import json
import time
from typing import Any

from selfheal.fleet.client import Gateway, absent, b64, put, range_end, range_kvs
from selfheal.fleet.errors import (
    FleetClientMissing,
    FleetConfigError,
    FleetError,
    FleetRefused,
    FleetUnreachable,
)
from selfheal.fleet.holders import (
    AVAILABLE,
    DEFERRED,
    GRANTED,
    HELD,
    Grant,
    GroupStatus,
    Holder,
    decide,
    parse_holders,
)
from selfheal.fleet.settings import (
    DEFAULT_PREFIX,
    MAX_CONCURRENT,
    MAX_PER_WINDOW,
    MAX_TIMEOUT,
    MAX_TTL,
    ON_UNREACHABLE,
    Budget,
    Endpoint,
    FleetSettings,
    client_available,
    format_seconds,
    label,
    parse_endpoint,
    resolve_host,
    ttl_seconds,
)

#: The budget's whole API, importable from here as before the split.
__all__ = [
    "AVAILABLE",
    "DEFAULT_PREFIX",
    "DEFERRED",
    "GRANTED",
    "HELD",
    "MAX_CONCURRENT",
    "MAX_PER_WINDOW",
    "MAX_TIMEOUT",
    "MAX_TTL",
    "ON_UNREACHABLE",
    "Budget",
    "Endpoint",
    "Fleet",
    "FleetClientMissing",
    "FleetConfigError",
    "FleetError",
    "FleetRefused",
    "FleetSettings",
    "FleetUnreachable",
    "Grant",
    "GroupStatus",
    "Holder",
    "client_available",
    "format_seconds",
    "parse_endpoint",
    "resolve_host",
]


class Fleet:
    """The budget in one etcd cluster. One instance per thread: it keeps per-endpoint sessions."""

    def __init__(self, settings: FleetSettings) -> None:
        problems = settings.problems()
        if problems:
            raise FleetConfigError("; ".join(problems))
        self.settings = settings
        self._etcd = Gateway(settings)

    # -- reading -----------------------------------------------------------

    def _group_prefix(self, group: str) -> str:
        return f"{self.settings.prefix}{group}/"

    def _holders(self, kvs: list[dict[str, Any]]) -> list[Holder]:
        return parse_holders(kvs, self.settings.prefix)

    def peek(self, budget: Budget) -> Grant:
        """What acquire() would decide now, for a dry run: one read, nothing taken."""
        kvs = self._etcd.range(self._group_prefix(budget.group), self._etcd.deadline())
        grant, _, _ = decide(budget, self._holders(kvs), AVAILABLE)
        return grant

    # -- taking and giving back ----------------------------------------------

    def acquire(self, budget: Budget, check: str, ttl: float) -> Grant:
        """Take a slot (and a heal ticket) for one heal, or say why not.

        ``ttl`` is the runner's lifetime limit in seconds. Returns a GRANTED,
        DEFERRED or HELD :class:`Grant`; raises :class:`FleetUnreachable`
        within about ``timeout`` when etcd cannot be reached.
        """
        check = label(check, "check name")
        slot_ttl = ttl_seconds(ttl, "slot ttl")
        deadline = self._etcd.deadline()
        prefix = self._group_prefix(budget.group)
        holders = self._holders(self._etcd.range(prefix, deadline))
        verdict, slot, ticket = decide(budget, holders, GRANTED)
        if not verdict.granted:
            return verdict
        slot_lease, slot_granted = self._etcd.grant_lease(slot_ttl, deadline)
        window_lease = window_granted = 0
        try:
            if budget.window is not None:
                window_lease, window_granted = self._etcd.grant_lease(
                    ttl_seconds(budget.window, "window"), deadline
                )
            while True:
                assert slot is not None
                since = time.time()
                slot_key = f"{prefix}slots/{slot}"
                compare = [absent(slot_key)]
                success = [put(slot_key, self._value(check, since, slot_granted, budget), slot_lease)]
                if ticket is not None:
                    heal_key = f"{prefix}heals/{ticket}"
                    compare.append(absent(heal_key))
                    success.append(
                        put(heal_key, self._value(check, since, window_granted, budget), window_lease)
                    )
                failure = [{"request_range": {"key": b64(prefix), "range_end": b64(range_end(prefix))}}]
                reply = self._etcd.post(
                    "/kv/txn", {"compare": compare, "success": success, "failure": failure}, deadline
                )
                if reply.get("succeeded"):
                    holders = [
                        h for h in holders if (h.kind, h.index) not in {("slot", slot), ("heal", ticket)}
                    ]
                    mine = self._holders(_range_kvs_of_puts(success))
                    holders = sorted([*holders, *mine], key=lambda h: (h.kind, h.index))
                    grant, _, _ = decide(budget, holders, GRANTED)
                    return _granted(grant, slot, slot_lease, slot_granted, ticket)
                holders = self._holders(range_kvs(reply))
                ours = next((h for h in holders if h.kind == "slot" and h.lease == slot_lease), None)
                if ours is not None:
                    # An earlier try of this same transaction was applied, and its answer lost.
                    grant, _, _ = decide(budget, holders, GRANTED)
                    ours_ticket = next(
                        (h.index for h in holders if h.kind == "heal" and h.lease == window_lease), None
                    )
                    return _granted(grant, ours.index, slot_lease, slot_granted, ours_ticket)
                verdict, slot, ticket = decide(budget, holders, GRANTED)
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
        deadline = self._etcd.deadline()
        for lease in leases:
            if lease:
                try:
                    self._etcd.revoke(lease, deadline)
                except FleetError:
                    pass

    def release(self, lease: int) -> bool:
        """Give a slot back: revoke its lease. False when it was already gone (expired or released by an operator)."""
        return self._etcd.revoke(_lease_id(lease), self._etcd.deadline())

    def lease_left(self, lease: int) -> float | None:
        """Seconds left on a lease, None when it is gone: the runner asks before it starts the action."""
        return self._etcd.time_to_live(_lease_id(lease), self._etcd.deadline())

    # -- operators -------------------------------------------------------------

    def status(self, group: str | None = None) -> list[GroupStatus]:
        """Every group (or one), its slots and its heals in the window, with each lease's time left."""
        if group is not None:
            Budget(group, 1)
        prefix = self.settings.prefix if group is None else self._group_prefix(group)
        holders = self._holders(self._etcd.range(prefix, self._etcd.deadline()))
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
        holders = self._holders(self._etcd.range(f"{self._group_prefix(group)}slots/", self._etcd.deadline()))
        freed = []
        for holder in holders:
            if (
                holder.host == host
                and holder.lease
                and self._etcd.revoke(holder.lease, self._etcd.deadline())
            ):
                freed.append(holder)
        return freed

    def operator_reset(self, group: str) -> int:
        """Clear the breaker of ``group``: forget the heals in its window. Returns how many."""
        Budget(group, 1)
        return self._etcd.delete_range(f"{self._group_prefix(group)}heals/", self._etcd.deadline())


def _range_kvs_of_puts(puts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [request["request_put"] for request in puts]


def _granted(grant: Grant, slot: int, lease: int, ttl: int, ticket: int | None) -> Grant:
    return Grant(GRANTED, grant.budget, grant.slots, grant.heals, slot, lease, ttl, ticket)


def _lease_id(lease: object) -> int:
    if isinstance(lease, bool) or not isinstance(lease, int) or lease <= 0:
        raise FleetConfigError(f"a lease id is a positive whole number, not {lease!r}")
    return lease

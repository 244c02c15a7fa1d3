"""The fleet budget at the heal's door: the engine's and the runner's side of ``selfheal.fleet``.

A check with ``budget:`` gets a :class:`BudgetGate`, injected into the
``Healer`` as the spawner is. Only a heal about to start (decision row 9)
reaches it: the healthy path never builds one, so it never imports
``selfheal.fleet`` nor the etcd client. The gate turns the fleet's
``Grant`` (or its failure) into a plain ``FleetAnswer`` for the pure rows
in ``selfheal.core.fleet_rows``; the engine carries out the result:

- granted: record the attempt (holding its slot), spawn the runner with
  what it needs to release the slot, journal ``fleet_acquired``; if the
  record or the spawn fails, the slot is given back at once;
- the runner releases the slot when the action ends (``release_after``);
  a runner killed mid-heal leaves it to expire at its TTL, which is the
  runner's lifetime limit (``Policy.running_limit``).

Every etcd call is bounded by ``fleet.etcd.timeout`` (one deadline per
acquire, peek or release), so a CRITICAL check with etcd down returns
within about that, well inside twice it.
"""

from __future__ import annotations

from selfheal.core.fleet_rows import UNREACHABLE, FleetAnswer
from selfheal.core.states import SelfhealError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from selfheal.core.decision import Decision, Outcome
    from selfheal.fleet.budget import Budget, Fleet, Grant


class BudgetGate:
    """One check's budget in the fleet the config describes (both plain, as the config cache keeps them)."""

    def __init__(self, fleet: dict[str, object], budget: dict[str, object]) -> None:
        self.settings = dict(fleet)
        self.plain_budget = dict(budget)
        self.group = str(budget["group"])
        self.on_unreachable = str(fleet.get("on_unreachable") or "heal")
        timeout = fleet.get("timeout")
        self.timeout = float(timeout) if isinstance(timeout, (int, float)) else 2.0
        self._fleet: Fleet | None = None

    def fleet(self) -> Fleet:
        """The etcd connection; a missing client is the one-line UNKNOWN that names the extra."""
        if self._fleet is None:
            self._fleet = connect(self.settings)
        return self._fleet

    def _ask(self, call: Callable[[Fleet], Grant]) -> FleetAnswer:
        from selfheal.fleet.budget import FleetClientMissing, FleetError

        try:
            return self.answer(call(self.fleet()))
        except FleetClientMissing as exc:
            raise SelfhealError(str(exc)) from None
        except FleetError as exc:
            # Unreachable, refused (authentication, permission) or a file that
            # went missing since validate: the fleet cannot vouch for the heal.
            return FleetAnswer(UNREACHABLE, self.group, _short(exc), on_unreachable=self.on_unreachable)

    def peek(self, check: str) -> FleetAnswer:
        """A dry run's look: what acquire would answer now, nothing taken."""
        return self._ask(lambda fleet: fleet.peek(self.budget()))

    def acquire(self, check: str, ttl: float) -> FleetAnswer:
        """Take a slot for a heal whose runner lives at most ``ttl`` seconds."""
        return self._ask(lambda fleet: fleet.acquire(self.budget(), check, ttl))

    def release(self, lease: int) -> bool:
        """Give a slot back (the heal did not start after all); best effort, within the timeout."""
        from selfheal.fleet.budget import FleetError

        try:
            return self.fleet().release(lease)
        except (FleetError, SelfhealError):
            return False

    def budget(self) -> Budget:
        from selfheal.fleet.budget import Budget

        return Budget.from_plain(self.plain_budget)

    def answer(self, grant: Grant) -> FleetAnswer:
        # The fleet's outcomes are the rows' own words: granted, available, deferred, held.
        return FleetAnswer(
            grant.outcome,
            self.group,
            grant.note(),
            limit=grant.budget.max_concurrent,
            in_use=len(grant.in_use),
            heals=len(grant.heals),
            slot=grant.slot,
            lease=grant.lease,
            ticket=grant.ticket,
            ttl=grant.ttl,
            on_unreachable=self.on_unreachable,
        )

    def consult(
        self, check: str, decision: Decision, check_state: int, ttl: float, dry_run: bool
    ) -> Decision:
        """Rows 8a/8b: a row-9 decision once the fleet has answered (a dry run only peeks)."""
        from selfheal.core.fleet_rows import apply

        answer = self.peek(check) if dry_run else self.acquire(check, ttl)
        return apply(decision, answer, check_state, check)

    def started(self, decision: Decision, start: Callable[[], Outcome]) -> Outcome:
        """``start()`` the granted heal; if it raised or started no runner, give the slot back now."""
        attempt = decision.heal
        assert attempt is not None and attempt.fleet is not None
        lease = attempt.fleet.get("lease")
        started = False
        try:
            outcome = start()
            started = attempt.pid is not None
            if not started and isinstance(lease, int):
                given = "given back" if self.release(lease) else "not given back (it expires at its TTL)"
                outcome.details.append(f"fleet budget {self.group} slot {attempt.fleet.get('slot')} {given}")
                started = True  # released just now
            return outcome
        finally:
            if not started and isinstance(lease, int):
                self.release(lease)

    def runner_spec(self, attempt_fleet: dict[str, object]) -> dict[str, object]:
        """What the runner needs to release the slot: the settings and the slot's lease."""
        return {"settings": self.settings, **attempt_fleet}


def connect(settings: dict[str, object]) -> Fleet:
    """A ``Fleet`` for the config's plain ``fleet:``; ``$SELFHEAL_HOST`` overrides its host."""
    from selfheal.fleet.budget import Fleet, FleetSettings, resolve_host

    host = settings.get("host")
    return Fleet(
        FleetSettings.from_plain({**settings, "host": resolve_host(host if isinstance(host, str) else None)})
    )


def release_after(spec: dict[str, object], check: str) -> dict[str, object]:
    """The runner's side: revoke the slot's lease once the action has ended; the journal event.

    Best effort within the timeout: a slot that cannot be given back
    expires at its TTL anyway.
    """
    event: dict[str, object] = {"event": "fleet_released", "check": check}
    event.update({key: spec.get(key) for key in ("group", "slot", "lease", "ticket")})
    try:
        from selfheal.fleet.budget import FleetError

        try:
            settings, lease = spec["settings"], spec["lease"]
            if not isinstance(settings, dict) or not isinstance(lease, int):
                raise FleetError("the runner's spec holds no lease")  # the engine always writes both
            released = connect(settings).release(lease)
        except FleetError as exc:
            event.update(released=False, reason=f"{_short(exc)}; the slot expires at its TTL")
            return event
    except ImportError as exc:
        event.update(released=False, reason=f"{exc}; the slot expires at its TTL")
        return event
    event["released"] = released
    if not released:
        event["reason"] = "the lease was already gone (expired, or released by an operator)"
    return event


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__

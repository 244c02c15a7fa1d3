"""Self-healing at the edges: state, journal and spawning around ``decide``.

``Healer.handle`` is what every caller (``selfheal run``, ``selfheal
wrap``, ``selfheal.Check``) does with a check's result. The order of side
effects is the safety contract:

1. lock the check's record (a few seconds at most, then row 5 or 4);
2. read it (moving a corrupt one aside, journaled);
3. decide (pure); a heal, for a check with a budget, then asks the fleet (rows 8a/8b);
4. for a heal: open the journal and the attempt's log, *write the record
   with the attempt*, and only then spawn the runner;
5. record the runner's pid and create time, and journal the attempt.

A healthy result only peeks at the record; it writes only what changed.
"""

from __future__ import annotations

import os
import time

from selfheal.core import states
from selfheal.core.decision import Decision, Outcome, count_attempts, decide, start_failed
from selfheal.core.policy import KILL_GRACE
from selfheal.core.record import CorruptRecord, Record
from selfheal.core.states import StateError
from selfheal.edges.store import LOCK_TIMEOUT, Locked, StateDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from selfheal.budget_gate import BudgetGate
    from selfheal.core.actions import Action
    from selfheal.core.decision import Facts as _Facts
    from selfheal.core.policy import Policy
    from selfheal.edges.journal import Journal
    from selfheal.edges.spawner import Spawner


#: How long a CRITICAL run holds out for the lock before it reads the
#: record again (the run ahead may have recorded its heal meanwhile).
LOCK_TURN = 0.05


class Healer:
    """Self-healing for one named check."""

    def __init__(
        self,
        name: str,
        heal: Action | Callable[[], Action],
        policy: Policy,
        state_dir: str,
        journal: str | None = None,
        *,
        spawner: Spawner | None = None,
        clock: Callable[[], float] = time.time,
        outputs: dict[str, object] | Callable[[], dict[str, object]] | None = None,
        budget: BudgetGate | Callable[[], BudgetGate] | None = None,
        verify: dict[str, object] | Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.name = name
        self._heal = heal
        self.policy = policy
        self.state_dir = state_dir
        self.journal_path = journal or os.path.join(state_dir, "journal.jsonl")
        self._spawner = spawner
        self.clock = clock
        # syslog:, metrics:, on_event: from the config (selfheal.hooks), or
        # a function that reads them only when an event is journaled.
        self._outputs = outputs or {}
        self._budget = budget  # the fleet budget (selfheal.budget_gate), or a function that makes it
        self.verify = verify  # the runner's re-check after the action (selfheal.verify), or what makes it

    @property
    def spawner(self) -> Spawner:
        if self._spawner is None:
            from selfheal.edges.spawner import Spawner

            self._spawner = Spawner()
        return self._spawner

    @property
    def outputs(self) -> dict[str, object]:
        if callable(self._outputs):
            self._outputs = self._outputs()
        return self._outputs

    @property
    def action(self) -> Action:
        # Built on first use: a healthy run never parses the heal command.
        if callable(self._heal):
            self._heal = self._heal()
        return self._heal

    def handle(self, check_state: int, *, dry_run: bool = False, downtime: float = 0) -> Outcome:
        now = self.clock()
        if check_state not in self.policy.heal_on:
            return self._healthy(check_state, now, dry_run)
        return self._unhealthy(check_state, now, dry_run, downtime > 0)

    # -- OK, WARNING, UNKNOWN: rows 1 and 2 -------------------------------

    def _healthy(self, check_state: int, now: float, dry_run: bool) -> Outcome:
        unchanged = Decision(2 if check_state == states.UNKNOWN else 1, check_state)
        if not os.path.lexists(self.state_dir):
            return Outcome(unchanged)
        recorded = None  # what the record says, for the perfdata even if it cannot be updated
        try:
            with StateDir.open(self.state_dir, create=False) as state_dir:
                record = recorded = state_dir.peek(self.name)
                if record is None:
                    return Outcome(unchanged)
                decision = decide(check_state, record, self.policy, now)
                if decision.record is None or dry_run:
                    return self._outcome(decision, record, now)
                with state_dir.lock(self.name):
                    record, moved = state_dir.read(self.name)
                    recorded = record
                    decision = decide(check_state, record, self.policy, now)
                    if decision.record is not None:
                        state_dir.write(self.name, decision.record)
                        recorded = decision.record
                self._journal(self._moved_event(moved) + decision.events, now)
                return self._outcome(decision, decision.record or record, now)
        except (StateError, CorruptRecord) as exc:
            # The check is healthy: its result stands, the bookkeeping waits.
            # The counters still say what is recorded: a perfdata counter
            # that drops to 0 reads as a reset to graphers.
            details = [f"self-healing state not updated: {exc}"]
            if recorded is None:
                return Outcome(unchanged, details=details)
            return self._outcome(unchanged, recorded, now, details)

    # -- CRITICAL (or whatever heal_on says): rows 3 to 9 -----------------

    def _unhealthy(self, check_state: int, now: float, dry_run: bool, downtime: bool) -> Outcome:
        action = self.action
        facts: _Facts = {
            "action": action.describe(),
            "argv": action.argv,
            "downtime": downtime,
            "dry_run": dry_run,
        }
        if dry_run and not os.path.lexists(self.state_dir):
            # Nothing recorded yet, and a dry run must not create anything.
            record = Record(check=self.name)
            decision = self._decide(check_state, record, now, facts)
            return self._outcome(self._fleet(decision, check_state, True), record, now)
        try:
            state_dir = StateDir.open(self.state_dir, create=not dry_run)
        except StateError as exc:
            # A refused dir (a symlink, writable by others) gets nothing
            # written into it, not even the journal line about the refusal.
            inside = os.path.dirname(os.path.abspath(self.journal_path)) == os.path.abspath(self.state_dir)
            return self._refused(
                check_state, Record(check=self.name), now, str(exc), facts, dry_run, journal=not inside
            )
        with state_dir:
            if dry_run:
                details: list[str] = []
                try:
                    record = state_dir.peek(self.name) or Record(check=self.name)
                except CorruptRecord as exc:
                    record = Record(check=self.name)
                    details.append(f"state record is corrupt ({exc}); a real run would move it aside")
                except StateError as exc:
                    return self._refused(check_state, Record(check=self.name), now, str(exc), facts, True)
                decision = self._fleet(self._decide(check_state, record, now, facts), check_state, True)
                # The note describes the would-be attempt; the perfdata counts
                # what is recorded, and a dry run recorded nothing.
                return self._outcome(decision, record, now, details)
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                unlocked = self._without_lock(state_dir, check_state, now, facts)
                if unlocked is not None:
                    return unlocked
                # Short turns at the lock, reading the record between them:
                # once the run ahead has recorded its heal, the answer ("in
                # progress") needs no lock, so a burst of runs does not
                # queue one by one behind it.
                turn = min(LOCK_TURN, max(deadline - time.monotonic(), 0.0))
                journal = self._new_journal()
                try:
                    with state_dir.lock(self.name, turn):
                        return self._locked(state_dir, journal, check_state, now, facts)
                except Locked:
                    if time.monotonic() < deadline:
                        continue
                    why = f"state is locked by another selfheal run for more than {LOCK_TIMEOUT:g}s"
                    return self._not_locked(state_dir, check_state, now, facts, Locked(why))
                except StateError as exc:
                    return self._not_locked(state_dir, check_state, now, facts, exc)
                finally:
                    # Only once the lock is released: closing the journal rebuilds the metrics
                    # textfile, which reads every check's record; the check's other runs wait on it.
                    journal.close()

    def _not_locked(
        self, state_dir: StateDir, check_state: int, now: float, facts: _Facts, exc: StateError
    ) -> Outcome:
        # Locked by another run (or unreadable): what it recorded decides
        # between "in progress" (row 5) and row 4.
        try:
            record = state_dir.peek(self.name) or Record(check=self.name)
        except (StateError, CorruptRecord):
            record = Record(check=self.name)
        if isinstance(exc, Locked):
            contended = self._contended(check_state, record, now, facts)
            if contended is not None:
                return contended
        return self._refused(check_state, record, now, str(exc), facts, False)

    def _locked(
        self, state_dir: StateDir, journal: Journal, check_state: int, now: float, facts: _Facts
    ) -> Outcome:
        """Read, decide, record, start: under the lock. The caller closes the journal after it."""
        record, moved = state_dir.read(self.name)
        if moved:
            journal.write(self._moved_event(moved)[0], now)
        decision = self._fleet(self._decide(check_state, record, now, facts), check_state, False)
        if decision.heal is None:
            if decision.record is not None:
                state_dir.write(self.name, decision.record)
            for event in decision.events:
                journal.write(event, now)
            return self._outcome(decision, decision.record or record, now)
        gate = self.budget
        if decision.heal.fleet is not None and gate is not None:  # given back unless the runner starts
            return gate.started(decision, lambda: self._start(state_dir, journal, decision, now))
        return self._start(state_dir, journal, decision, now)

    def _start(self, state_dir: StateDir, journal: Journal, decision: Decision, now: float) -> Outcome:
        """Row 9: record the attempt, then spawn the runner, then journal."""
        attempt = decision.heal
        record = decision.record
        assert attempt is not None and record is not None
        journal.open()  # refuse the heal (row 4) if it could not be journaled
        log_name = f"{self.name}.heal-{attempt.id}.log"
        attempt.log = os.path.join(state_dir.path, log_name)
        log_fd = state_dir.open_append(log_name)
        try:
            state_dir.write(self.name, record)  # recorded before anything runs
            spec = {
                "check": self.name,
                "attempt": attempt.id,
                "argv": attempt.argv,
                "action": attempt.action,
                "state_dir": state_dir.path,
                "journal": self.journal_path,
                "log": attempt.log,  # its last line is the journal's reason when the action fails
                "timeout": self.policy.action_timeout,
                "kill_grace": KILL_GRACE,
                "splay": self.policy.splay,
                "outputs": self.outputs,
                "verify": self.verify() if callable(self.verify) else self.verify,
            }
            start_limit = self.action.start_limit()
            if start_limit is not None:
                spec["start_limit"] = start_limit
            if attempt.fleet is not None and self.budget is not None:  # given back when the action ends
                spec["fleet"] = self.budget.runner_spec(attempt.fleet)
            try:
                started = self.spawner.spawn_runner(spec, log_fd)
                attempt.pid, attempt.create_time = started.pid, started.create_time
                attempt.unit = started.unit
                # How it was started (a transient unit, or a new session and why).
                runner = started.journal_fields()
            except OSError as exc:
                return self._spawn_failed(state_dir, journal, decision, now, exc)
        finally:
            os.close(log_fd)
        details = []
        try:
            # Not durable: the attempt itself is on disk already (above), and
            # a crash that loses this write kills the runner it names anyway.
            # One fsync of the dir less while Nagios waits (docs/performance.md).
            state_dir.write(self.name, record, durable=False)
        except StateError as exc:
            # The runner records its own pid too; the heal is under way.
            details.append(f"runner pid not recorded: {exc}")
        for event in decision.events:
            if event["event"] == "attempt":
                event["pid"] = attempt.pid
                event.update(runner)
            try:
                journal.write(event, now)
            except StateError as exc:
                details.append(str(exc))
        return self._outcome(decision, record, now, details)

    def _spawn_failed(
        self, state_dir: StateDir, journal: Journal, decision: Decision, now: float, exc: OSError
    ) -> Outcome:
        failed = start_failed(decision, f"could not start the heal runner: {exc.strerror or exc}", now)
        assert failed.record is not None  # start_failed keeps the record with the attempt
        details = []
        try:
            state_dir.write(self.name, failed.record)
            for event in failed.events:
                journal.write(event, now)
        except StateError as err:
            details.append(str(err))
        return self._outcome(failed, failed.record, now, details)

    # -- helpers ----------------------------------------------------------

    def _refused(
        self,
        check_state: int,
        record: Record,
        now: float,
        why: str,
        facts: _Facts,
        dry_run: bool,
        journal: bool = True,
    ) -> Outcome:
        decision = self._decide(check_state, record, now, facts, state_error=why)
        details = []
        if decision.row == 4 and not dry_run and journal:
            try:
                self._journal([{"event": "state_error", "check": self.name, "reason": why}], now)
            except StateError as exc:
                details.append(str(exc))
        return self._outcome(decision, record, now, details)

    def _fleet(self, decision: Decision, check_state: int, dry_run: bool) -> Decision:
        """Rows 8a/8b: a heal about to start asks the fleet, when the check has a budget."""
        gate = self.budget if decision.heal is not None else None
        if gate is None:
            return decision
        return gate.consult(self.name, decision, check_state, self.policy.running_limit(), dry_run)

    @property
    def budget(self) -> BudgetGate | None:
        """The fleet budget, made on first use: the healthy path never makes it."""
        if callable(self._budget):
            self._budget = self._budget()
        return self._budget

    def _new_journal(self) -> Journal:
        from selfheal.edges.journal import Journal

        outputs = None
        if self.outputs:
            from selfheal.hooks import Outputs

            outputs = Outputs(self.outputs, self.state_dir)
        return Journal(self.journal_path, outputs=outputs)

    def _outcome(
        self, decision: Decision, record: Record, now: float, details: list[str] | None = None
    ) -> Outcome:
        attempts = count_attempts(record, self.policy, now)
        return Outcome(decision, attempts, details, record.heals_total, record.last_attempt)

    def _without_lock(
        self, state_dir: StateDir, check_state: int, now: float, facts: _Facts
    ) -> Outcome | None:
        """The answer from an unlocked read, when it would change nothing (``Decision.needs_no_lock``)."""
        try:
            record = state_dir.peek(self.name)
        except (StateError, CorruptRecord):
            return None
        if record is None:
            return None
        decision = self._decide(check_state, record, now, facts)
        return self._outcome(decision, record, now) if decision.needs_no_lock() else None

    def _contended(self, check_state: int, record: Record, now: float, facts: _Facts) -> Outcome | None:
        """The record's own answer while another run holds its lock (``Decision.behind_the_lock``)."""
        answer = self._decide(check_state, record, now, facts).behind_the_lock()
        return None if answer is None else self._outcome(answer, record, now)

    def _decide(
        self, check_state: int, record: Record, now: float, facts: _Facts, state_error: str | None = None
    ) -> Decision:
        from selfheal.facts import ask

        return ask(check_state, record, self.policy, now, facts, lambda: self.spawner, state_error)

    def _moved_event(self, moved: str | None) -> list[dict[str, object]]:
        if moved is None:
            return []
        return [{"event": "state_error", "check": self.name, "reason": f"corrupt state record: {moved}"}]

    def _journal(self, events: list[dict[str, object]], now: float) -> None:
        if not events:
            return
        journal = self._new_journal()
        try:
            for event in events:
                journal.write(event, now)
        finally:
            journal.close()

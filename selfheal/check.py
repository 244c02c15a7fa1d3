"""``selfheal.Check``: a nagiosplugin Check that heals itself.

Change one constructor call and an existing nagiosplugin plugin becomes
self-healing::

    check = selfheal.Check(
        Nginx(), nagiosplugin.ScalarContext("up", "1:", "1:"),
        name="nginx",
        heal=selfheal.Systemd("nginx"),
        policy=selfheal.Policy(cooldown="15m", max_attempts=3, window="6h"),
    )
    check.main(timeout=10)

After nagiosplugin has evaluated the resources, the state goes through the
same decision table as ``selfheal run``; the summary gets the self-healing
note and the perfdata gets ``selfheal_attempts``.
"""

from __future__ import annotations

import os

import nagiosplugin

from selfheal.core import output
from selfheal.core.actions import Action, Command
from selfheal.core.decision import Outcome
from selfheal.core.policy import Policy
from selfheal.edges.store import check_name, resolve_state_dir
from selfheal.engine import Healer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.budget_gate import BudgetGate

_STATES = {0: nagiosplugin.Ok, 1: nagiosplugin.Warn, 2: nagiosplugin.Critical, 3: nagiosplugin.Unknown}


class Check(nagiosplugin.Check):
    """A ``nagiosplugin.Check`` with a heal action and a healing policy."""

    def __init__(
        self,
        *objects: object,
        name: str,
        heal: Action | str | list[str],
        policy: Policy | None = None,
        state_dir: str | None = None,
        journal: str | None = None,
        dry_run: bool = False,
        downtime: float = 0,
        outputs: dict[str, object] | None = None,
        budget: BudgetGate | None = None,
        verify: dict[str, object] | None = None,
    ) -> None:
        # No name= keyword: nagiosplugin 1.3.2 (Debian 11 and 12) lacks it.
        # A name set before add() is kept; add() only fills an empty one.
        super().__init__()
        self.name = name
        self.add(*objects)
        check_name(name)
        self.healer = Healer(
            name,
            heal if isinstance(heal, Action) else Command(heal),
            policy or Policy(),
            resolve_state_dir(state_dir, os.environ),
            journal,
            outputs=outputs,
            budget=budget,
            verify=verify,  # the runner's re-check (selfheal.verify.verify_spec): the built-in checks' --verify
        )
        self.dry_run = dry_run
        self.downtime = downtime
        self.outcome: Outcome | None = None

    def __call__(self) -> None:
        super().__call__()
        original = int(super().state)
        self.outcome = self.healer.handle(original, dry_run=self.dry_run, downtime=self.downtime)
        self.perfdata.append(output.attempts_perfdata(self.outcome.attempts))
        self.perfdata.append(output.heals_perfdata(self.outcome.heals_total))

    @property
    def state(self) -> nagiosplugin.state.ServiceState:
        if self.outcome is None:
            return super().state
        return _STATES[self.outcome.state]

    @property
    def exitcode(self) -> int:
        return int(self.state)

    @property
    def summary_str(self) -> str:
        summary: str = super().summary_str
        if self.outcome is None or not self.outcome.note:
            return summary
        note = self.outcome.note.replace("|", "/")
        return f"{summary}; {note}" if summary else note

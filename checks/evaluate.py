"""Evaluating a built-in check: probes bounded by -t, nagiosplugin's output.

A plain ``nagiosplugin.Check``, or a ``selfheal.Check`` when there is a
heal; a probe that outlasts the deadline becomes the timeout state.
"""

from __future__ import annotations

from selfheal.core import states

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    import nagiosplugin

    from selfheal.budget_gate import BudgetGate
    from selfheal.core.actions import Action
    from selfheal.core.policy import Policy


class _Expired(Exception):
    """The -t deadline passed during a probe (raised by SIGALRM)."""


def evaluate(
    name: str,
    objects: list[object],
    timeout: float,
    timeout_state: int,
    healing: Healing | None,
    verbose: int,
    out: TextIO,
    preview: Callable[[Action], list[str]] | None = None,
) -> int:
    """Probe, evaluate, heal if configured, print; the exit code."""
    import io
    import logging
    import time

    import nagiosplugin
    from nagiosplugin.output import Output

    from selfheal.checks.verdict import STATES, Summary, Verdict

    deadline = time.monotonic() + timeout
    state = STATES[states.name(timeout_state).lower()]
    for resource in objects:
        if isinstance(resource, nagiosplugin.Resource):
            bound_probe(resource, deadline, timeout, state)
    if healing is not None:
        from selfheal.check import Check

        check: nagiosplugin.Check = Check(
            name=name,
            heal=healing.heal,
            policy=healing.policy,
            state_dir=healing.state_dir,
            journal=healing.journal,
            dry_run=healing.dry_run,
            downtime=healing.downtime,
            outputs=healing.outputs,
            budget=healing.budget,
            verify=healing.verify,
        )
    else:
        check = nagiosplugin.Check()  # no name= keyword in nagiosplugin 1.3.2
        check.name = name
    check.add(Summary(), *objects)
    if "verdict" not in check.contexts:
        check.add(Verdict())

    # nagiosplugin's log messages belong in the long output (-vv, -vvv).
    channel = logging.StreamHandler(io.StringIO())
    channel.setFormatter(logging.Formatter("%(message)s"))
    channel.setLevel({0: logging.WARNING, 1: logging.WARNING, 2: logging.INFO}.get(verbose, logging.DEBUG))
    logger = logging.getLogger("nagiosplugin")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(channel)
    try:
        check()
        output = Output(channel, verbose)
        output.add(check)
        outcome = getattr(check, "outcome", None)
        if healing is not None and healing.dry_run:
            if outcome is not None and outcome.decision.row == 9 and preview is not None:
                output.add_longoutput(preview(healing.heal))
            output.add_longoutput("selfheal: dry run, nothing was started or recorded")
        out.write(str(output))
    finally:
        logger.removeHandler(channel)
    return int(check.exitcode)


def bound_probe(resource: nagiosplugin.Resource, deadline: float, timeout: float, state: object) -> None:
    """Make ``resource.probe`` stop at the deadline with a timeout verdict.

    Only the probes are bounded, not the healing step after them: a
    SIGALRM in the middle of recording an attempt would do more harm
    than a slow plugin.
    """
    import signal
    import time

    from selfheal.checks.verdict import verdict

    original = resource.probe

    def expire(signum: int, frame: object) -> None:
        raise _Expired

    def probe() -> list[object]:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise _Expired
            previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, remaining)
            try:
                return list(original() or [])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        except _Expired:
            return [verdict("timeout", state, f"timed out after {timeout:g}s")]

    resource.probe = probe


class Healing:
    """What ``selfheal.Check`` needs to heal; None of it when there is no heal."""

    def __init__(
        self,
        heal: Action,
        policy: Policy,
        state_dir: str,
        journal: str | None,
        dry_run: bool,
        downtime: float,
        outputs: dict[str, object] | None = None,
        budget: BudgetGate | None = None,
        verify: dict[str, object] | None = None,
    ) -> None:
        self.budget = budget  # the fleet budget (selfheal.budget_gate)
        self.verify = verify  # the runner's re-check after the heal (selfheal.verify.verify_spec)
        self.outputs = outputs  # syslog:, metrics:, on_event: from the config
        self.heal = heal
        self.policy = policy
        self.state_dir = state_dir
        self.journal = journal
        self.dry_run = dry_run
        self.downtime = downtime

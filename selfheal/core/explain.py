"""Why the decision table chose its row, in words: ``selfheal run NAME --dry-run -v``.

Asked only with ``-v``, so the plugin's ordinary runs never load it.
"""

from __future__ import annotations

from selfheal.core import states
from selfheal.core.durations import format_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.core.decision import Decision
    from selfheal.core.policy import Policy
    from selfheal.core.record import Attempt


def explain(
    decision: Decision, check_state: int, name: str, policy: Policy, last: Attempt | None, now: float
) -> str:
    """One sentence: what the check said, what the record said, and so what this run does.

    ``last`` is the record's last attempt as the decision left it.
    """
    row = decision.row
    ago = f" {format_duration(max(0.0, now - last.ended))} ago" if last and last.ended is not None else ""
    reset = f"'selfheal reset {name}'"
    if row == 1:
        if decision.note:
            return (
                f"healthy, but self-healing is off (gave up); it stays off until {reset} or the window passes"
            )
        return "healthy: nothing to do"
    if row == 2:
        return f"{states.name(check_state)} does not heal (heal_on: {_heal_on(policy)})"
    if row == 3:
        return "paused: " + decision.note.replace("self-healing paused", "no healing").strip()
    if row == 4:
        return f"the state cannot be used, so no healing without recording it first: {decision.note}"
    if row == 5:
        if decision.state == states.CRITICAL and "stuck" in decision.note:
            return "the heal outlived action_timeout: a second heal never starts beside it"
        return f"attempt {last.number if last else '?'} is still running"
    if row == 6:
        return (
            f"the last attempt exited 0{ago}, within grace ({format_duration(policy.grace)}): "
            "waiting for the service to come back"
        )
    if row == 7:
        return (
            f"gave up: {policy.max_attempts} attempts within {format_duration(policy.window)}; "
            f"healing is off until {reset}"
        )
    if row == 8 and last is not None:
        after = decision.note.rpartition("; ")[2]
        if not last.failed():
            return f"the last attempt exited 0 but the check is still {_state(check_state)} after grace: did not help; {after}"
        within = last.ended is not None and now - last.ended < policy.grace
        return f"the last attempt {last.outcome()}{' within grace' if within else ''}: did not help; {after}"
    if row == 9:
        retry = " (a retry: 'did not help' was shown for this incident)" if "retry" in decision.note else ""
        return f"{_state(check_state)} and healing is allowed{retry}"
    return f"fleet budget: {decision.note}"  # 8a, 8b


def _state(check_state: int) -> str:
    return states.name(check_state)


def _heal_on(policy: Policy) -> str:
    return ", ".join(sorted(states.name(s).lower() for s in policy.heal_on))

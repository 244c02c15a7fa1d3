"""What ``decide`` is told on a CRITICAL run that only the edges know.

Is the last attempt's runner alive (pid and create time both match), and
why did the last heal fail (the last line it printed, from its log, until
the record holds it). Both are asked only when the check is unhealthy.
"""

from __future__ import annotations

from selfheal.core.decision import decide

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from selfheal.core.decision import Decision
    from selfheal.core.decision import Facts as _Facts
    from selfheal.core.policy import Policy
    from selfheal.core.record import Record
    from selfheal.edges.spawner import Spawner


def ask(
    check_state: int,
    record: Record,
    policy: Policy,
    now: float,
    facts: _Facts,
    spawner: Callable[[], Spawner],
    state_error: str | None = None,
) -> Decision:
    """``decide``, with the runner's life and the failed heal's reason read first."""
    return decide(
        check_state,
        record,
        policy,
        now,
        state_error=state_error,
        runner_alive=runner_alive(record, spawner),
        reason=heal_reason(record),
        **facts,
    )


def runner_alive(record: Record, spawner: Callable[[], Spawner]) -> bool | None:
    """Whether the last attempt's runner still lives; None when there is none to ask about."""
    last = record.last_attempt
    if last is None or last.ended is not None or last.pid is None:
        return None
    return spawner().runner_alive(last.pid, last.create_time)


def heal_reason(record: Record) -> str | None:
    """The last line a failed heal printed, when the record does not hold it.

    The runner records it with the attempt's end; an attempt ended by an
    older runner (before an upgrade) has only its log.
    """
    last = record.last_attempt
    # Only an exit that failed has a reason in its output: a heal that exited 0
    # (and did not bring the check back) printed what it does when it works.
    if (
        last is None
        or last.exit_code in (0, None)
        or last.reason
        or last.timed_out
        or last.error
        or not last.log
    ):
        return None
    from selfheal.edges.files import last_line

    return last_line(last.log)

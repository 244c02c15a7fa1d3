"""The runner's re-check after the action (``verify``): did the heal work?

After the action ends, the runner runs the check again (the plugin argv,
timeout and environment of the run that started the heal) at once and
then every ``INTERVAL`` seconds, until it is healthy or the grace period
after the action ends. A failed action (non-zero exit, timed out, not
started) gets one re-check only: it has already not helped, unless the
service came back by itself. The result goes into the attempt in the
record, under the record's lock (``verified``, ``recovered_in``), so the
next check's decision uses it, and into the journal: ``verified`` with
the time to recover (from the record's ``open_since``, the episode's first
heal) or ``not_recovered`` with the check's last line.
"""

from __future__ import annotations

import os
import time

from selfheal.core import output, states
from selfheal.core.states import SelfhealError
from selfheal.edges.store import StateDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from selfheal.edges.spawner import Spawner

#: Seconds between re-checks: often enough to see a recovery within a
#: few seconds, rarely enough not to load the service that just restarted.
INTERVAL = 2.0
#: How long the runner may wait for the record's lock (as for the action's end).
LOCK_TIMEOUT = 30.0


class Recheck:
    """What the re-checks saw: healthy or not, the last state and output, when, how many."""

    __slots__ = ("checks", "healthy", "perfdata", "state", "text", "when")

    def __init__(self, healthy: bool, state: int, text: str, perfdata: list[str], when: float, checks: int):
        self.healthy = healthy
        self.state = state
        self.text = text
        self.perfdata = perfdata
        self.when = when
        self.checks = checks


def verify_spec(
    argv: list[str],
    timeout: float,
    timeout_state: int,
    grace: float,
    heal_on: Iterable[int],
    report_to: dict[str, object] | None = None,
) -> dict[str, object]:
    """The runner's re-check (``selfheal.verify``), as plain JSON for the heal's spec.

    The plugin ran with this process's environment; the runner's differs
    only in PYTHONPATH (the spawner adds selfheal's own), which is put back.
    """
    return {
        "argv": list(argv),
        "timeout": float(timeout),
        "timeout_state": timeout_state,
        "grace": float(grace),
        "heal_on": sorted(heal_on),
        "pythonpath": os.environ.get("PYTHONPATH"),
        "report_to": dict(report_to or {}),
    }


def healthy(state: int, heal_on: list[int]) -> bool:
    """OK, or a state the check does not heal on (WARNING, by default): what row 1 calls healthy."""
    return state == states.OK or (state == states.WARNING and state not in heal_on)


def recheck(
    verify: dict[str, object],
    spawner: Spawner,
    action_ended: float,
    action_failed: bool,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Recheck:
    """Run the check until it is healthy or the grace after ``action_ended`` is over."""
    argv = [str(word) for word in verify["argv"]] if isinstance(verify["argv"], list) else []
    timeout, grace = _number(verify["timeout"], 30.0), _number(verify["grace"], 0.0)
    timeout_state = int(_number(verify["timeout_state"], states.UNKNOWN))
    heal_on = [int(s) for s in verify["heal_on"]] if isinstance(verify["heal_on"], list) else [2]
    if action_failed:
        grace = 0.0
    env = dict(os.environ)
    pythonpath = verify.get("pythonpath")
    if isinstance(pythonpath, str):
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    deadline = time.monotonic() + max(0.0, action_ended + grace - time.time())
    checks = 0
    while True:
        state, result = output.interpret(
            spawner.run_plugin(argv, timeout, env=env), argv, timeout, timeout_state
        )
        checks += 1
        seen = time.time()
        if healthy(state, heal_on):
            log(f"re-check {checks}: {states.name(state)} ({result.text[:200]})")
            return Recheck(True, state, result.text, list(result.perfdata), seen, checks)
        left = deadline - time.monotonic()
        if left <= 0:
            log(f"re-check {checks}: {states.name(state)}, grace over ({result.text[:200]})")
            return Recheck(False, state, result.text, list(result.perfdata), seen, checks)
        sleep(min(INTERVAL, left))


def _number(value: object, default: float) -> float:
    """A number from the spec (the plugin command wrote it), else ``default``."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def record(
    spec_: dict[str, object], seen: Recheck, log: Callable[[str], None]
) -> tuple[dict[str, object], dict[str, object] | None]:
    """Write the re-check's verdict into the attempt, under the record's lock; its event, and the attempt.

    The attempt (its number, action, exit code) comes back for the report,
    or None when it is no longer in the record (a reset meanwhile).
    """
    name = str(spec_["check"])
    event: dict[str, object] = {"event": "verified" if seen.healthy else "not_recovered", "check": name}
    event["checks"] = seen.checks
    if not seen.healthy:
        event["reason"] = f"the check still says {states.name(seen.state)}: {seen.text[:300]}"
    attempt_json = None
    try:
        with (
            StateDir.open(str(spec_["state_dir"]), create=False) as state_dir,
            state_dir.lock(name, LOCK_TIMEOUT),
        ):
            rec, _ = state_dir.read(name)
            attempt = rec.find_attempt(str(spec_["attempt"]))
            if attempt is not None:
                attempt.verified = seen.healthy
                settings = spec_.get("verify")
                if not seen.healthy and isinstance(settings, dict) and settings.get("report_to"):
                    # The report says "did not help" now: it pages, so a retry stays CRITICAL.
                    rec.did_not_help_shown = True
                if seen.healthy and rec.open_since is not None:
                    attempt.recovered_in = round(max(0.0, seen.when - rec.open_since), 3)
                    event["time_to_recover"] = attempt.recovered_in
                event["attempt"] = attempt.number
                state_dir.write(name, rec)
                attempt_json = attempt.to_json()
            else:
                log("attempt no longer in the record (reset?); journaling the re-check only")
    except (SelfhealError, ValueError) as exc:
        log(f"could not record the re-check: {exc}")
        event["error"] = f"not recorded: {exc}"
    return event, attempt_json

"""``selfheal reset``, ``pause`` and ``resume``: the operator's hands.

Each changes a check's record under its lock, exactly as a check run
would, and journals what it did and who did it, so history and report
show the manual interventions beside the automatic ones.

- ``reset NAME``: the attempt count and cooldown start over (a check
  that gave up heals again on its next CRITICAL).
- ``pause NAME --for 2h [--reason TEXT]`` (or ``--all``): no heal until
  then (decision table row 3); the check stays CRITICAL and pages.
- ``resume NAME`` (or ``--all``): healing is allowed again at once.
- ``forget NAME``: the record and the heal logs go (a check renamed or
  retired), so ``status`` no longer lists it; journaled like the rest.

A NAME that is neither configured nor recorded is most likely a typo:
``pause`` refuses it (exit 1) with the closest known names, unless
``--force`` (a ``wrap`` check that was never unhealthy has no record yet,
and may need pausing before a deploy).
"""

from __future__ import annotations

import os
import time

from selfheal.commands import common as ops
from selfheal.commands.common import Refused
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.states import SelfhealError, Usage

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

    from selfheal.core.record import Record

    #: Changes the record under the lock; returns the journal event.
    Change = Callable[[Record, float], dict[str, object]]

ALL_OPTION = Option(("--all",), "all", "flag", "", "every configured or recorded check")
OPTIONS = {
    "reset": [*ops.SITE_OPTIONS, *HELP_OPTIONS],
    "pause": [
        Option(("--for",), "duration", "value", "DURATION", "how long, e.g. 2h (required)"),
        Option(("--reason",), "reason", "value", "TEXT", "why, shown in the check's output and in status"),
        ALL_OPTION,
        Option(("--force",), "force", "flag", "", "pause a NAME that is neither configured nor recorded"),
        *ops.SITE_OPTIONS,
        *HELP_OPTIONS,
    ],
    "resume": [ALL_OPTION, *ops.SITE_OPTIONS, *HELP_OPTIONS],
    "forget": [*ops.SITE_OPTIONS, *HELP_OPTIONS],
}


def operator() -> str:
    """Who did it, for the journal: the login name behind sudo if any."""
    name = os.environ.get("SUDO_USER")
    if not name:
        try:
            import pwd

            name = pwd.getpwuid(os.geteuid()).pw_name
        except (KeyError, ImportError):
            name = str(os.geteuid())
    return name


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    options = OPTIONS[command]
    values, positional = ops.parse(command, args, options, out)
    now = time.time()
    change = pause(now + pause_length(values), values) if command == "pause" else None
    site = ops.Site(values, env)
    unknown = None
    if values.get("all"):
        if positional:
            raise Usage(f"{command} takes either NAME or --all, not both")
        names = site.names()
        if not names:
            raise SelfhealError(f"no checks configured or recorded (state dir {site.state_dir})")
    elif len(positional) != 1:
        one = command in ("reset", "forget")
        raise Usage(f"{command} needs exactly one check NAME" + ("" if one else " or --all"))
    elif command == "pause" and positional[0] not in site.names():
        from selfheal.edges.store import check_name

        try:
            names = [check_name(positional[0])]
        except ValueError as exc:
            raise Usage(str(exc)) from None
        if not values.get("force"):
            raise Refused(not_known(names[0], site.names()) + " (--force pauses it anyway)")
        unknown = names[0]
    else:
        names = site.names(positional[0])
    if command == "forget":
        out.write(f"{names[0]}: {forget(site, names[0], now)}\n")
        return 0
    if change is None:
        change = reset if command == "reset" else resume
    if unknown:
        out.write(f"{unknown}: note: not configured and no record yet; paused as asked (--force)\n")
    for name in names:
        event = apply(site, name, change, now)
        out.write(f"{name}: {summary(command, event, now)}\n")
    return 0


def not_known(name: str, known: list[str]) -> str:
    """Why a NAME is refused, with the closest known names (a typo, most likely)."""
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"no check named {name!r} is configured or recorded{hint}"


def forget(site: ops.Site, name: str, now: float) -> str:
    """Remove the record and the heal logs under the lock, and journal it.

    The lock file stays: another run of the check may be waiting on it,
    and a lock file deleted under a waiter would let two runs in at once.
    """
    from selfheal.edges.journal import Journal
    from selfheal.edges.store import StateDir

    with StateDir.open(site.state_dir, create=False) as state_dir:
        journal = Journal(site.journal, outputs=site.outputs())
        try:
            journal.open()  # nothing goes unless it can be journaled
            with state_dir.lock(name):
                logs = [e for e in os.listdir(state_dir.path) if e.startswith(f"{name}.heal-")]
                for entry in [f"{name}.json", *logs]:
                    try:
                        os.unlink(os.path.join(state_dir.path, entry))
                    except FileNotFoundError:
                        pass
                event = {"event": "forgotten", "check": name, "by": operator(), "logs": len(logs)}
                journal.write(event, now)
        finally:
            journal.close()
    return f"record and {len(logs)} heal log(s) removed; the journal keeps its history"


def pause_length(values: Mapping[str, object]) -> float:
    """``--for``, checked before anything else: a usage error comes first."""
    from selfheal.core.durations import parse_duration

    if values["duration"] is None:
        raise Usage("--for is required: how long to pause, e.g. --for 2h")
    try:
        length = parse_duration(values["duration"])
    except ValueError as exc:
        raise Usage(f"bad --for: {exc}") from None
    if length <= 0:
        raise Usage("bad --for: must be longer than 0s")
    return length


def pause(until: float, values: Mapping[str, object]) -> Change:
    reason = " ".join(str(values["reason"] or "").split()) or None

    def change(record: Record, now: float) -> dict[str, object]:
        record.paused_until = until
        record.pause_reason = reason
        event: dict[str, object] = {
            "event": "paused",
            "until": ops.iso(until),
            "duration": round(until - now),
        }
        if reason:
            event["reason"] = reason
        return event

    return change


def resume(record: Record, now: float) -> dict[str, object]:
    record.paused_until = None
    record.pause_reason = None
    return {"event": "resumed"}


def reset(record: Record, now: float) -> dict[str, object]:
    # Attempts before reset_at stop counting toward max_attempts and the
    # cooldown; they stay in the record for status and the journal.
    record.streak = 0
    record.reset_at = now
    record.gave_up_at = record.off_since = None
    record.cooldown_noted = None
    record.did_not_help_shown = False  # re-armed by hand: the next heal is a first attempt
    return {"event": "reset", "reason": "selfheal reset"}


def apply(site: ops.Site, name: str, change: Change, now: float) -> dict[str, object]:
    """Lock, read, change, write, journal: the order a check run uses."""
    from selfheal.edges.journal import Journal
    from selfheal.edges.store import StateDir

    with StateDir.open(site.state_dir, create=True) as state_dir:
        journal = Journal(site.journal, outputs=site.outputs())
        try:
            journal.open()  # nothing changes unless it can be journaled
            with state_dir.lock(name):
                record, moved = state_dir.read(name)
                if moved:
                    journal.write(
                        {"event": "state_error", "check": name, "reason": f"corrupt state record: {moved}"},
                        now,
                    )
                event = {**change(record, now), "check": name, "by": operator()}
                event = {"event": event.pop("event"), "check": name, **event}
                state_dir.write(name, record)
                journal.write(event, now)
        finally:
            journal.close()
    return event


def summary(command: str, event: dict[str, object], now: float) -> str:
    if command == "pause":
        duration = event["duration"]
        assert isinstance(duration, (int, float))  # pause() made it
        until = f"paused until {ops.local(now + float(duration), now)}"
        return until + (f" ({event['reason']})" if event.get("reason") else "")
    if command == "resume":
        return "healing resumed"
    return "attempt count and cooldown reset; the next CRITICAL heals again"

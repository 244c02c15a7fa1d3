"""``selfheal status [NAME] [--json]``: where each check stands right now.

One row per configured check and per check found in the state dir. What
"the next attempt" would be is not worked out separately: the decision
table itself is asked, as a dry run of a CRITICAL result, so status can
never disagree with what the next check run will do.
"""

from __future__ import annotations

import time

from selfheal.commands import common as ops
from selfheal.core import states
from selfheal.core.argv import HELP_OPTIONS
from selfheal.core.decision import count_attempts, counted_attempts, decide
from selfheal.core.record import CorruptRecord, Record
from selfheal.core.states import StateError

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from selfheal.core.policy import Policy

OPTIONS = [ops.JSON_OPTION, *ops.SITE_OPTIONS, *HELP_OPTIONS]

#: Decision table rows, as the verdict on "what if the check is CRITICAL now".
VERDICTS: dict[int | str, str] = {
    3: "paused",
    4: "state_error",
    5: "running",
    6: "grace",
    7: "gave_up",
    8: "cooldown",
    9: "heal",
}


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, name = ops.parse_name(command, args, OPTIONS, out)
    site = ops.Site(values, env)
    names = site.names(name)
    now = time.time()
    records = read_records(site, names)
    rows = [check_status(site, name, records[name], now) for name in names]
    if values["json"]:
        strip_private(rows)
        ops.dump_json({"state_dir": site.state_dir, "generated": ops.iso(now), "checks": rows}, out)
        return 0
    if not rows:
        out.write(f"no checks configured or recorded (state dir {site.state_dir})\n")
        return 0
    out.write(render(rows, now, ops.use_colour(out, env)))
    return 0


def read_records(site: ops.Site, names: list[str]) -> dict[str, Record | str | None]:
    """Each check's record, None if it has none, or why it cannot be read."""
    import os

    from selfheal.edges.store import StateDir

    if not os.path.lexists(site.state_dir):
        return dict.fromkeys(names)
    records: dict[str, Record | str | None] = {}
    with StateDir.open(site.state_dir, create=False) as state_dir:
        for name in names:
            try:
                records[name] = state_dir.peek(name)
            except (StateError, CorruptRecord) as exc:
                records[name] = f"record unreadable: {exc}"
    return records


def check_status(site: ops.Site, name: str, found: Record | str | None, now: float) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "configured": name in site.configured}
    record = found if isinstance(found, Record) else Record(check=name)
    row["error"] = found if isinstance(found, str) else None
    policy: Policy = site.policy(name, record)
    row["last_state"] = states.name(record.last_state) if record.last_state is not None else None
    row["last_change"] = ops.iso(record.last_change)
    row["attempts"] = count_attempts(record, policy, now)
    row["max_attempts"] = policy.max_attempts
    row["heals_total"] = record.heals_total
    last = record.last_attempt
    counting = last is not None and (record.reset_at is None or last.started >= record.reset_at)
    # The cooldown that holds back the next attempt (after the last one, the backoff applied), not the configured one.
    row["cooldown"] = policy.cooldown_after(last.number) if counting and last else policy.cooldown
    shared = ops.shared_heal(site, name, found)
    row["shared"] = {"record_heal": shared[0], "other_heal": shared[1]} if shared else None

    from selfheal.edges.spawner import Spawner
    from selfheal.facts import runner_alive

    alive = runner_alive(record, Spawner)  # as a CRITICAL run asks it
    unhealthy = states.CRITICAL if states.CRITICAL in policy.heal_on else min(policy.heal_on)
    verdict = decide(unhealthy, record, policy, now, dry_run=True, runner_alive=alive)
    after = None
    if verdict.row == 8 and last is not None:
        end = last.ended if last.ended is not None else last.started
        after = end + policy.cooldown_after(last.number)
    elif verdict.row == 7:
        after = min(a.started for a in counted_attempts(record, policy, now)) + policy.window
    elif verdict.row == 6 and last is not None and last.ended is not None:
        after = last.ended + policy.grace
    elif verdict.row == 3:
        after = record.paused_until
    row["next_attempt"] = {"verdict": VERDICTS.get(verdict.row, "heal"), "after": ops.iso(after), "_t": after}

    running = None
    if last is not None and last.ended is None and (alive or last.pid is None):
        running = {
            "pid": last.pid,
            # The runner's transient unit (systemd-run), or None: a new session.
            "unit": last.unit,
            "started": ops.iso(last.started),
            "age": round(max(0.0, now - last.started), 1),
            "fleet": last.fleet,  # the fleet budget's slot it holds: group, slot, lease, ticket, ttl
        }
    row["running"] = running
    paused = record.paused_until is not None and record.paused_until > now
    row["paused_until"] = ops.iso(record.paused_until) if paused else None
    row["pause_reason"] = record.pause_reason if paused else None
    row["last_heal"] = None
    if last is not None:
        row["last_heal"] = {
            "attempt": last.number,
            "action": last.action,
            "started": ops.iso(last.started),
            "ended": ops.iso(last.ended),
            "outcome": last.outcome(),
            "exit_code": last.exit_code,
            "timed_out": last.timed_out,
            "duration": last.duration,
            "unit": last.unit,
            "fleet": last.fleet,
            "recovered": record.open_since is None and last.ended is not None,
            "_t": last.started,
        }
    return row


def render(rows: list[dict[str, Any]], now: float, colour: bool) -> str:  # rows: the --json document
    header = ["CHECK", "STATE", "ATTEMPTS", "NEXT COOLDOWN", "NEXT ATTEMPT", "RUNNING", "PAUSED", "LAST HEAL"]
    lines = [header]
    notes = []
    colours: list[str | None] = [None]
    from selfheal.core.durations import format_duration

    for row in rows:
        state = row["last_state"] or "-"
        nxt: dict[str, Any] = row["next_attempt"]
        verdict, after = nxt["verdict"], ops.local(nxt["_t"], now)
        next_text = {
            "heal": "now",
            "cooldown": f"after {after}",
            "gave_up": f"gave up; after {after} or reset",
            "grace": f"waiting for recovery until {after}",
            "running": "in progress",
            "paused": "paused",
        }.get(verdict, verdict)
        running: dict[str, Any] | None = row["running"]
        run_text = "-"
        if running:
            run_text = f"pid {running['pid'] or '?'}, {format_duration(running['age'])}"
            if running.get("unit"):
                run_text += f", unit {running['unit']}"
        paused = "-"
        if row["paused_until"]:
            paused = f"until {ops.local(nxt['_t'] if verdict == 'paused' else None, now)}"
            if row["pause_reason"]:
                paused += f" ({row['pause_reason']})"
        last: dict[str, Any] | None = row["last_heal"]
        last_text = "-"
        if last:
            last_text = f"#{last['attempt']} at {ops.local(last['_t'], now)} {last['outcome']}"
            if last["ended"] is not None:
                last_text += ", recovered" if last["recovered"] else ", not recovered"
        if row["error"]:
            last_text = str(row["error"])
        name = str(row["name"])
        if row["shared"]:
            # Two heals, one record: they share its cooldown and attempt count.
            name += " *"
            shared = row["shared"]
            notes.append(
                f"* {row['name']}: one record, two heals: it last ran '{shared['record_heal']}', "
                f"and '{shared['other_heal']}' uses the same name (wrap --name and the config?)\n"
            )
        lines.append(
            [
                name,
                str(state),
                f"{row['attempts']}/{row['max_attempts']}",
                format_duration(row["cooldown"]),
                next_text,
                run_text,
                paused,
                last_text,
            ]
        )
        colours.append(ops.STATE_COLOURS.get(states.NAMES.index(state)) if state in states.NAMES else None)
    return ops.table(lines, colours, colour) + "".join(notes)


def strip_private(rows: list[dict[str, object]]) -> None:
    """Drop the ``_t`` helper fields before JSON output."""
    for row in rows:
        for key in ("next_attempt", "last_heal"):
            value = row.get(key)
            if isinstance(value, dict):
                value.pop("_t", None)

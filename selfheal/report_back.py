"""Telling the monitoring at once how a verified heal ended (``report_to:``).

Without it, a healed service stays WARNING in Nagios until the next active
check, one ``retry_interval`` later; a heal that did not help pages only
after the retries. With it, the runner sends the re-check's result as a
passive check result as soon as it has one: OK (or WARNING) with the
check's own output and a note naming the heal and the time to recover, or
CRITICAL "self-healing did not help". Each target (``selfheal.edges.targets``)
gets one try, bounded by its own timeout; each try is journaled as a
``reported`` event (``to``, ``state``, and ``reason`` when it failed).
"""

from __future__ import annotations

from selfheal.core import output, states
from selfheal.core.states import Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.verify import Recheck


def message(
    name: str, seen: Recheck, action: str, attempt: dict[str, object] | None, recovered_in: object
) -> tuple[int, str, str]:
    """The state, the plugin output and the comment to report for a re-check's verdict."""
    label = name.upper()
    action = output.clean(action)  # a heal's own "|" must not start the perfdata
    if seen.healthy:
        took = ""
        if isinstance(recovered_in, (int, float)) and not isinstance(recovered_in, bool):
            # Only the runner gets here: a plugin run given --nagios-* loads this module, not this.
            from selfheal.core.durations import format_duration

            took = f", recovered in {format_duration(max(1.0, round(recovered_in)))}"
        note = f"healed by selfheal: {action}{took}"
        text = f"{label} {states.name(seen.state)} - {seen.text} ({note})"
        if seen.perfdata:
            text += " | " + " ".join(seen.perfdata)
        return seen.state, text, note
    number = attempt.get("number") if attempt else None
    which = f" (attempt {number})" if number is not None else ""
    ended = ""
    if attempt and attempt.get("exit_code") not in (None, 0):
        ended = f" exited {attempt['exit_code']}"
    elif attempt and attempt.get("timed_out"):
        ended = " timed out"
    # The check's own state, as the decision table's "did not help" keeps it: a re-check that
    # ended UNKNOWN (a plugin timeout) is not reported as a CRITICAL.
    text = (
        f"{label} {states.name(seen.state)} - self-healing did not help: {action}{which}{ended}; "
        f"the check still says {states.name(seen.state)}: {seen.text}"
    )
    return seen.state, text, f"selfheal: {action}{which} did not help"


def report(
    name: str, report_to: dict[str, object], state: int, text: str, comment: str
) -> list[dict[str, object]]:
    """Send to every configured target, in order; one ``reported`` event each."""
    from selfheal.edges import targets

    events: list[dict[str, object]] = []
    for kind, data in report_to.items():
        why = targets.send(kind, data, state, text, comment)
        event: dict[str, object] = {"event": "reported", "check": name, "to": kind, "state": state}
        if why is not None:
            event["reason"] = why
        events.append(event)
    return events


#: ``--nagios-cmd``, ``--nagios-host``, ``--nagios-service``: the keys of ``report_to: {nagios: ...}``.
NAGIOS_FLAGS = {"nagios_cmd": "command_file", "nagios_host": "host", "nagios_service": "service"}


def report_to_flags(values: dict[str, object]) -> dict[str, object]:
    """``report_to`` from the command line, checked; Usage naming the flag when it does not fit."""
    given = {dest: values[dest] for dest in NAGIOS_FLAGS if values.get(dest) is not None}
    if not given:
        return {}
    flag = next(iter(given)).replace("_", "-")
    if len(given) != len(NAGIOS_FLAGS):
        raise Usage(f"--{flag} goes with --nagios-cmd, --nagios-host and --nagios-service, all three")
    if not values.get("verify"):
        raise Usage("--nagios-cmd reports the re-check's result: it needs --verify")
    from selfheal.edges.targets import target

    plain = {NAGIOS_FLAGS[dest]: value for dest, value in given.items()}
    try:
        target("nagios", plain)
    except ValueError as exc:
        key = str(exc).split(":", 1)[0]
        names = {v: k.replace("_", "-") for k, v in NAGIOS_FLAGS.items()}
        raise Usage(f"bad --{names.get(key, 'nagios-cmd')}: {str(exc).split(': ', 1)[-1]}") from None
    return {"nagios": plain}

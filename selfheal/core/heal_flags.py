"""The healing flags of ``selfheal wrap``, shared with the built-in checks.

``check_selfheal_tcp --heal ...`` takes the same flags as ``selfheal
wrap``, from this one table, and turns them into a ``Policy`` the same way.
"""

from __future__ import annotations

from selfheal.core import states
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.errors import Usage
from selfheal.core.policy import Policy

#: What run, wrap and the built-in checks' heal flags share.
COMMON_OPTIONS = [
    Option(
        ("--dry-run",), "dry_run", "flag", "", "decide and print what would happen; start and write nothing"
    ),
    Option(
        ("--downtime",),
        "downtime",
        "value",
        "N",
        "Nagios downtime depth ($SERVICEDOWNTIME$); N > 0 means no heal",
    ),
    Option(
        ("-t", "--timeout"), "timeout", "value", "SECONDS", "kill the plugin after this long (default 30s)"
    ),
    Option(("-v", "--verbose"), "verbose", "count", "", "more detail; -vvv shows tracebacks"),
    *HELP_OPTIONS,
]
WRAP_OPTIONS = [
    Option(
        ("--name",),
        "name",
        "value",
        "NAME",
        "check name for state and output (default: the plugin's file name)",
    ),
    Option(
        ("--heal",),
        "heal",
        "value",
        "'CMD ARGS'",
        "the heal action, split like a shell would but never run by one",
    ),
    Option(("--sudo",), "sudo", "flag", "", "run the heal as 'sudo -n -- CMD ARGS'"),
    Option(
        ("--shell",), "shell", "flag", "", "run the heal through /bin/sh -c (only if you need shell syntax)"
    ),
    Option(("--cooldown",), "cooldown", "value", "DURATION", "wait after attempt 1 (default 15m)"),
    Option(("--backoff",), "backoff", "value", "FACTOR", "cooldown multiplier per attempt (default 2)"),
    Option(("--max-cooldown",), "max_cooldown", "value", "DURATION", "cooldown ceiling (default 4h)"),
    Option(
        ("--max-attempts",), "max_attempts", "value", "N", "attempts per window before giving up (default 3)"
    ),
    Option(("--window",), "window", "value", "DURATION", "window for --max-attempts (default 6h)"),
    Option(
        ("--reset-after",),
        "reset_after",
        "value",
        "DURATION",
        "healthy this long resets the count (default 1h)",
    ),
    Option(
        ("--action-timeout",),
        "action_timeout",
        "value",
        "DURATION",
        "kill the heal after this long (default 2m)",
    ),
    Option(
        ("--grace",), "grace", "value", "DURATION", "stay WARNING this long after the heal ends (default 30s)"
    ),
    Option(("--splay",), "splay", "value", "DURATION", "random delay before the heal (default 0)"),
    Option(
        ("--heal-on",), "heal_on", "value", "STATES", "states that heal, comma-separated (default critical)"
    ),
    Option(
        ("--timeout-state",),
        "timeout_state",
        "value",
        "STATE",
        "critical or unknown: the result when the plugin times out (default unknown)",
    ),
    Option(("--journal",), "journal", "value", "FILE", "journal file (default: STATE_DIR/journal.jsonl)"),
    Option(
        ("--state-dir",),
        "state_dir",
        "value",
        "DIR",
        "state dir (default: $SELFHEAL_STATE_DIR, else /var/lib/selfheal or ~/.local/state/selfheal)",
    ),
    *COMMON_OPTIONS,
]


def heal_policy(values: dict[str, object]) -> tuple[Policy, int]:
    """The healing policy and timeout state from the ``wrap`` options (shared with the built-in checks)."""
    settings: dict[str, object] = {}
    for dest in ("cooldown", "max_cooldown", "window", "reset_after", "action_timeout", "grace", "splay"):
        if values[dest] is not None:
            settings[dest] = values[dest]
    for dest, convert in (("backoff", float), ("max_attempts", int)):
        if values[dest] is not None:
            try:
                # A "value" option: always a str already.
                settings[dest] = convert(str(values[dest]))
            except ValueError:
                raise Usage(f"bad --{dest.replace('_', '-')}: {values[dest]!r} is not a number") from None
    if values["heal_on"] is not None:
        settings["heal_on"] = [s for s in str(values["heal_on"]).split(",") if s]
    try:
        policy = Policy(**settings)
    except ValueError as exc:
        raise Usage(
            f"bad --{str(exc).split(':')[0].replace('_', '-')}: {str(exc).split(': ', 1)[-1]}"
        ) from None
    timeout_state = states.UNKNOWN
    if values["timeout_state"] is not None:
        try:
            timeout_state = parse_timeout_state(values["timeout_state"])
        except ValueError as exc:
            raise Usage(f"bad --timeout-state: {exc}") from None
    return policy, timeout_state


#: What a plugin that timed out may count as, on the command line and in
#: the config alike. OK or WARNING would hide a hung service (WARNING heals
#: nothing by default and pages nobody): only CRITICAL (heal) or UNKNOWN.
TIMEOUT_STATES = (states.CRITICAL, states.UNKNOWN)


def parse_timeout_state(value: object) -> int:
    """``--timeout-state`` or ``timeout_state:``: critical or unknown; ValueError otherwise."""
    try:
        state = states.parse(value) if isinstance(value, str) else -1
    except ValueError:
        state = -1
    if state not in TIMEOUT_STATES:
        raise ValueError("must be critical or unknown")
    return state

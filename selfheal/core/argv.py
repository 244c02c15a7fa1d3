"""Command-line options: the hand-written parser every command shares, and the healing flags.

The healing flags are ``selfheal wrap``'s; the built-in checks take the
same ones (``check_selfheal_tcp --heal ...``), from the one table here, and
turn them into a ``Policy`` the same way.

Hand-written on purpose: every Nagios check pays Python's start-up, and
``argparse`` (with ``re`` and ``gettext``) would cost a healthy ``selfheal
wrap`` several milliseconds per run. The parsers for plugin commands and
for people's commands are the same; only what they print differs.
"""

from __future__ import annotations

from selfheal.core import states
from selfheal.core.policy import Policy
from selfheal.core.states import Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class Option:
    """One command-line option: its names, where its value goes, and its help.

    ``kind`` is ``flag`` (True when given), ``count`` (how often given),
    ``value`` (the next word, or the text after ``=``) or ``append`` (a
    list of the values, for an option that may be repeated).
    """

    __slots__ = ("dest", "help", "kind", "metavar", "names")

    def __init__(self, names: tuple[str, ...], dest: str, kind: str, metavar: str, help: str) -> None:
        if kind not in ("flag", "count", "value", "append"):
            raise ValueError(f"option kind {kind!r}")
        self.names = names
        self.dest = dest
        self.kind = kind
        self.metavar = metavar
        self.help = help

    @property
    def long(self) -> str:
        """The long name (``--max-attempts``), as messages quote it."""
        return next((n for n in self.names if n.startswith("--")), self.names[0])

    def __repr__(self) -> str:
        return f"Option({self.names!r}, {self.dest!r}, {self.kind!r})"


#: -v, which every command has: an internal error's line offers -vvv for its traceback.
VERBOSE_OPTION = Option(("-v", "--verbose"), "verbose", "count", "", "more detail; -vvv shows tracebacks")

#: -h and -V, which every command has.
HELP_OPTIONS = [
    Option(("-h", "--help"), "help", "flag", "", "show this help"),
    Option(("-V", "--version"), "version", "flag", "", "show the version"),
]


def parse_options(args: list[str], options: Iterable[Option]) -> tuple[dict[str, object], list[str]]:
    """Options and positional arguments; everything after ``--`` is positional."""
    by_name = {name: option for option in options for name in option.names}
    values: dict[str, object] = {o.dest: (0 if o.kind == "count" else None) for o in by_name.values()}
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positional.extend(args[index:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, has_value, inline = arg.partition("=")
        if name not in by_name and not arg.startswith("--") and len(arg) > 2:
            # Clustered short options: -vvv, or -t10.
            if set(arg[1:]) == {"v"} and "-v" in by_name:
                values["verbose"] = count(values, "verbose") + len(arg) - 1
                continue
            name, has_value, inline = arg[:2], "=", arg[2:]
        if name not in by_name:
            raise Usage(f"unknown option {shown(name)}")
        option = by_name[name]
        if option.kind != "value" and has_value:
            # -vx, --verbose=foo, --dry-run=no: a typo, not a flag.
            raise Usage(f"option {name} takes no value")
        if option.kind == "flag":
            values[option.dest] = True
        elif option.kind == "count":
            values[option.dest] = count(values, option.dest) + 1
        else:
            if not has_value:
                if index >= len(args):
                    raise Usage(f"option {name} needs a value")
                inline = args[index]
                index += 1
            if option.kind == "append":
                given = values[option.dest]
                values[option.dest] = [*given, inline] if isinstance(given, list) else [inline]
            else:
                values[option.dest] = inline
    return values, positional


def verbosity(args: list[str]) -> int:
    """How many -v before ``--``, for the traceback of an error met before the options are parsed."""
    given = args[: args.index("--")] if "--" in args else args
    return sum(len(a) - 1 for a in given if a.startswith("-v") and set(a[1:]) == {"v"}) + given.count(
        "--verbose"
    )


def shown(word: str) -> str:
    """An argument as an error message quotes it: bounded, and one line."""
    word = word if len(word) <= 40 else word[:37] + "..."
    return word if word.isprintable() else repr(word)


def count(values: Mapping[str, object], dest: str) -> int:
    """A ``count`` option's value (0 when not given)."""
    value = values.get(dest)
    return value if isinstance(value, int) else 0


def text(values: Mapping[str, object], dest: str) -> str | None:
    """A ``value`` option's text, or None when not given."""
    value = values.get(dest)
    return value if isinstance(value, str) else None


def option_lines(options: Iterable[Option], width: int = 28) -> list[str]:
    """One aligned help line per option."""
    lines = []
    for option in options:
        label = ", ".join(option.names) + (f" {option.metavar}" if option.metavar else "")
        lines.append(f"  {label:<{width}} {option.help}")
    return lines


def number(values: Mapping[str, object], dest: str, option: str) -> float | None:
    """A duration option's value in seconds, or None when not given."""
    given = values.get(dest)
    if given is None:
        return None
    from selfheal.core.durations import parse_duration

    try:
        return parse_duration(given)
    except ValueError as exc:
        raise Usage(f"bad {option}: {exc}") from None


def downtime(values: Mapping[str, object]) -> float:
    """``--downtime``, for wrap, run and the built-in checks alike.

    Nagios passes ``$SERVICEDOWNTIME$``, a bare depth, often "0" or "";
    a duration (``1m``) is read as one too. More than 0 means no heal.
    """
    given = values.get("downtime")
    if given is None or not str(given).strip():
        return 0.0
    return number({"downtime": given}, "downtime", "--downtime") or 0.0


def plugin_timeout(values: Mapping[str, object], default: float) -> float:
    """``-t SECONDS``, for wrap, run and the built-in checks alike: more than 0."""
    seconds = number(values, "timeout", "--timeout")
    if seconds is None:
        return default
    if seconds <= 0:
        raise Usage("bad --timeout: must be longer than 0s")
    return seconds


class Answered(Exception):
    """-h or -V printed its answer: the command is done, with exit code 0."""


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
        ("--retry-state",),
        "retry_state",
        "value",
        "STATE",
        "critical or warning: a retry after 'did not help' (default critical: one page per incident)",
    ),
    Option(
        ("--timeout-state",),
        "timeout_state",
        "value",
        "STATE",
        "critical or unknown: the result when the plugin times out (default unknown)",
    ),
    Option(("--journal",), "journal", "value", "FILE", "journal file (default: STATE_DIR/journal.jsonl)"),
    Option(("--verify",), "verify", "flag", "", "re-check after the heal, every 2s until OK or grace ends"),
    Option(
        ("--nagios-cmd",), "nagios_cmd", "value", "FILE", "with --verify: report at once to this command file"
    ),
    Option(("--nagios-host",), "nagios_host", "value", "HOST", "the host to report for ($HOSTNAME$)"),
    Option(
        ("--nagios-service",), "nagios_service", "value", "SERVICE", "the service to report ($SERVICEDESC$)"
    ),
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
    if values["retry_state"] is not None:
        settings["retry_state"] = values["retry_state"]
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


def retry_policy(policy: Policy, value: object) -> Policy:
    """``selfheal run --retry-state``: the configured policy with that one setting replaced."""
    try:
        return Policy.from_json({**policy.to_json(), "retry_state": value})
    except ValueError as exc:
        raise Usage(f"bad --retry-state: {str(exc).split(': ', 1)[-1]}") from None


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

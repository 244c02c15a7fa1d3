"""What the operating commands share: options, the config, the state dir.

``status``, ``history``, ``report``, ``reset``, ``pause``, ``resume``,
``validate`` and ``doctor`` are for people, not for Nagios: they may
import what they need. Each lives in its own module with a
``main(command, args, env, out)``; ``selfheal.cli`` finds it.

The config is optional for the reading commands: checks run by ``selfheal
wrap`` exist only in the state dir. An explicit ``-c`` or
``$SELFHEAL_CONFIG`` must exist; the default path may be missing.
"""

from __future__ import annotations

import os
import time

from selfheal import __version__
from selfheal.config import config_path
from selfheal.core import states
from selfheal.core.argv import (
    HELP_OPTIONS,
    VERBOSE_OPTION,
    Answered,
    Option,
    option_lines,
    parse_options,
    text,
)
from selfheal.core.states import SelfhealError, Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from selfheal.config.schema import Config
    from selfheal.core.policy import Policy
    from selfheal.hooks import Outputs

#: Each command's usage line, for its -h and for ``selfheal -h``.
USAGE = {
    "status": "selfheal status [NAME] [--json]",
    "history": "selfheal history [NAME] [--since 7d] [--json] [--journal PATH ...] [--jobs N]",
    "report": (
        "selfheal report [--since 30d] [--format text|json|html] [-o FILE] [--journal PATH ...] [--jobs N]"
    ),
    "reset": "selfheal reset NAME",
    "pause": "selfheal pause NAME|--all --for 2h [--reason TEXT]",
    "resume": "selfheal resume NAME|--all",
    "forget": "selfheal forget NAME",
    "validate": "selfheal validate [-c CONFIG]",
    "doctor": "selfheal doctor [NAME]",
    "fleet": "selfheal fleet status [GROUP] [--json] | selfheal fleet release GROUP HOST",
}

CONFIG_OPTION = Option(
    ("-c", "--config"),
    "config",
    "value",
    "CONFIG",
    "config file (default $SELFHEAL_CONFIG, /etc/selfheal/selfheal.yaml)",
)
STATE_DIR_OPTION = Option(
    ("--state-dir",),
    "state_dir",
    "value",
    "DIR",
    "state dir (default: $SELFHEAL_STATE_DIR, the config, /var/lib/selfheal)",
)
JOURNAL_OPTION = Option(
    ("--journal",),
    "journal",
    "value",
    "FILE",
    "journal file (default: STATE_DIR/journal.jsonl)",
)
JSON_OPTION = Option(("--json",), "json", "flag", "", "print JSON (the schema is in docs/commands.md)")
SITE_OPTIONS = [CONFIG_OPTION, STATE_DIR_OPTION, JOURNAL_OPTION]


def parse(
    command: str, args: list[str], options: list[Option], out: TextIO, no_name: str | None = None
) -> tuple[dict[str, object], list[str]]:
    """A command's options and positional arguments; -h and -V answer and end it.

    With ``no_name``, the command takes no positional argument and
    ``no_name`` says what to do instead.
    """
    if not any("-v" in option.names for option in options):
        # Every command takes -v: an internal error's line offers -vvv for its traceback.
        options = [*(o for o in options if o not in HELP_OPTIONS), VERBOSE_OPTION, *HELP_OPTIONS]
    values, positional = parse_options(args, options)
    if values["help"]:
        lines = ["usage: " + USAGE[command], "", "options:", *option_lines(options)]
        out.write("\n".join(lines) + "\n")
        raise Answered
    if values["version"]:
        out.write(f"selfheal {__version__}\n")
        raise Answered
    if no_name is not None and positional:
        raise Usage(f"{command} takes no NAME; {no_name}")
    return values, positional


def parse_name(
    command: str, args: list[str], options: list[Option], out: TextIO
) -> tuple[dict[str, object], str | None]:
    """Options and at most one check NAME; -h and -V answer and end the command."""
    values, positional = parse(command, args, options, out)
    if len(positional) > 1:
        raise Usage(f"{command} takes at most one check NAME")
    return values, (positional[0] if positional else None)


class Site:
    """The config (if any), the state dir and the journal of this host."""

    def __init__(
        self, values: Mapping[str, object], env: Mapping[str, str], need_config: bool = False
    ) -> None:
        from selfheal.config import loader as configuration
        from selfheal.edges.store import resolve_state_dir

        explicit = values.get("config") or env.get("SELFHEAL_CONFIG")
        path = config_path(text(values, "config"), env)
        self.config: Config | None = None
        if explicit or need_config or os.path.exists(path):
            self.config = configuration.load(path)
        self.config_path = path
        configured_dir = self.config.state_dir if self.config else None
        self.state_dir = resolve_state_dir(text(values, "state_dir"), env, configured_dir)
        journal = values.get("journal") or (self.config.journal if self.config else None)
        self.journal = str(journal) if journal else os.path.join(self.state_dir, "journal.jsonl")
        self.env = env

    @property
    def configured(self) -> list[str]:
        return sorted(self.config.checks) if self.config else []

    def recorded(self) -> list[str]:
        """Checks with a record in the state dir."""
        from selfheal.edges.store import check_name

        try:
            entries = os.listdir(self.state_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SelfhealError(f"cannot list state dir {self.state_dir}: {exc.strerror}") from None
        names = []
        for entry in entries:
            if entry.endswith(".json"):
                try:
                    names.append(check_name(entry[: -len(".json")]))
                except ValueError:
                    pass
        return sorted(names)

    def names(self, only: str | None = None) -> list[str]:
        """Configured and recorded checks; ``only`` must be one of them."""
        known = sorted(set(self.configured) | set(self.recorded()))
        if only is None:
            return known
        if only not in known:
            raise SelfhealError(
                f"no check named {only!r} in the config or the state dir {self.state_dir} "
                f"(known: {', '.join(known) or 'none'})"
            )
        return [only]

    def policy(self, name: str, record: object = None) -> Policy:
        """The configured policy, else the one the last attempt recorded."""
        from selfheal.core.policy import Policy

        if self.config and name in self.config.checks:
            return self.config.checks[name].policy
        snapshot = getattr(record, "policy", None)
        if isinstance(snapshot, dict):
            try:
                return Policy(**snapshot)
            except (TypeError, ValueError):
                pass
        return Policy()

    def outputs(self) -> Outputs | None:
        """Where journal events also go (syslog, on_event, metrics), or None."""
        settings = self.config.outputs if self.config else None
        if not settings:
            return None
        from selfheal.hooks import Outputs

        return Outputs(settings, self.state_dir)


def since(values: Mapping[str, object], default: str | None) -> float | None:
    """``--since 7d`` as an epoch timestamp; None for everything."""
    text = values.get("since") or default
    if text is None or text == "all":
        return None
    from selfheal.core.durations import parse_duration

    try:
        return time.time() - parse_duration(text)
    except ValueError as exc:
        raise Usage(f"bad --since: {exc}") from None


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC for JSON output (the journal's own format)."""
    if timestamp is None:
        return None
    from selfheal.edges.journal import iso_utc

    return iso_utc(timestamp)


def local(timestamp: float | None, now: float | None = None) -> str:
    """Wall-clock time as in the check's notes (``decision.when``); "-" for none."""
    if timestamp is None:
        return "-"
    from selfheal.core.decision import when

    return when(timestamp, time.time() if now is None else now)


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), never sent raw.

    What the tables show comes from records and journal lines, which hold
    a heal's output and an operator's reason: a terminal escape sequence
    in them must not reach the operator's terminal.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def table(
    rows: list[list[str]],
    colours: list[str | None] | None = None,
    tty: bool = False,
    widths: list[int] | None = None,
) -> str:
    """Columns aligned with two spaces; a column coloured only on a tty. Cells are made printable.

    ``widths`` fixes the columns' widths (a streamed table: the rows so far set them).
    """
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = widths or [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = []
        for column, cell in enumerate(row):
            padded = cell.ljust(widths[column]) if column < len(row) - 1 else cell
            colour = colours[index] if colours and column == 1 else None
            if tty and colour:
                padded = f"\033[{colour}m{cell}\033[0m" + " " * (widths[column] - len(cell))
            cells.append(padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


#: ANSI colours for the state column, as terminals show Nagios states.
STATE_COLOURS = {states.OK: "32", states.WARNING: "33", states.CRITICAL: "31", states.UNKNOWN: "35"}


def use_colour(out: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in env and env.get("TERM") != "dumb"


def dump_json(data: object, out: TextIO) -> None:
    import json

    out.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


class Refused(SelfhealError):
    """A command for people that will not do what was asked (exit 1), e.g. a likely typo."""

    exit_code = 1


def shared_heal(site: Site, name: str, record: object) -> tuple[str, str] | None:
    """The record's last heal and another heal using the same name, when they differ; else None.

    ``wrap --name nginx`` and a configured ``nginx`` share one record: its
    cooldown and attempt count. The other heal is the config's, or the one
    a CRITICAL run journaled as ``heal_changed`` (``heal_noted``).
    """
    attempts = getattr(record, "attempts", None)
    if not attempts:
        return None
    last = attempts[-1]
    if site.config is not None and name in site.config.checks:
        heal = site.config.checks[name].heal
        if heal.argv != last.argv:
            return last.action, heal.describe()
    noted = getattr(record, "heal_noted", None)
    if isinstance(noted, str) and noted != last.action:
        return last.action, noted
    return None


def user() -> tuple[str, str]:
    """This user's name and primary group name, for the suggested fixes."""
    import grp
    import pwd

    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        name = str(os.geteuid())
    try:
        group = grp.getgrgid(os.getegid()).gr_name
    except KeyError:
        group = str(os.getegid())
    return name, group

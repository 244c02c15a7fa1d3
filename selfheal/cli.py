"""The ``selfheal`` command: a router that loads a command's module by name.

``main`` takes its arguments, environment and streams as parameters and
returns the exit code, so tests call it in-process. It imports nothing of
a command until that command runs (as click's ``LazyGroup`` does): a
healthy ``selfheal wrap`` loads only the heal path, never the commands for
people. Each command module has ``main(command, args, env, out)``.
"""

from __future__ import annotations

import gc
import os
import sys

from selfheal import __version__
from selfheal.core.argv import Answered, verbosity
from selfheal.core.output import internal_error, to_person, unknown
from selfheal.core.states import SelfhealError, Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

#: command: (module, what it does), in the order the help lists them.
COMMANDS = {
    "run": ("selfheal.wrap", "run the check NAME from the config file"),
    "wrap": ("selfheal.wrap", "wrap any Nagios plugin given after --"),
    "status": (
        "selfheal.commands.status",
        "per check: state, attempts, cooldown, running, paused, last heal",
    ),
    "history": ("selfheal.commands.history", "the journal's events, newest last"),
    "report": ("selfheal.commands.report", "per check over a period: heals, recoveries, time to recover"),
    "reset": ("selfheal.commands.control", "clear a check's attempt count and cooldown"),
    "pause": ("selfheal.commands.control", "no healing for a while (--for 2h), e.g. during a deploy"),
    "resume": ("selfheal.commands.control", "end a pause"),
    "forget": (
        "selfheal.commands.control",
        "remove a check's record and heal logs (a renamed or retired check)",
    ),
    "validate": ("selfheal.commands.validate", "check the config file; every problem as FILE:LINE: message"),
    "doctor": ("selfheal.commands.doctor", "can this user keep state, journal, and run each heal?"),
    "fleet": ("selfheal.commands.fleet", "the fleet budget in etcd: status, release a host's slot"),
    "demo": ("selfheal.commands.demo", "a self-contained demonstration on a throwaway service"),
}

#: How the command list names a command that takes an argument.
LABELS = {"run": "run NAME"}

ABOUT = """
Self-healing Nagios checks: when the check says CRITICAL, start the heal
action (detached), say WARNING with a self-healing note, and journal it.
A heal that does not help is retried only after a growing cooldown, at
most --max-attempts times per --window, then the check says "gave up".
"""

FOOTER = """
Run 'selfheal COMMAND -h' for a command's options.
Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for bad input).
"""


def main(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    out = sys.stdout if stdout is None else stdout
    verbose = verbosity(args)
    name = "selfheal"
    speak = unknown  # plugin commands speak Nagios
    try:
        if not args:
            raise Usage("no command given; try 'selfheal -h'")
        if args[0] in ("-h", "--help"):
            out.write(help_text())
            return 0
        if args[0] in ("-V", "--version"):
            out.write(f"selfheal {__version__}\n")
            return 0
        command, rest = args[0], args[1:]
        if command not in COMMANDS:
            raise Usage(f"unknown command {command!r}; try 'selfheal -h'")
        if COMMANDS[command][0].startswith("selfheal.commands."):
            # Commands for people speak to people: "selfheal pause: ...",
            # not a Nagios status line (the exit code stays 3).
            speak = to_person
            name = f"selfheal {command}"
            # A report over a fleet's journals runs for seconds: the cycle
            # collector the plugin commands do without (the script) is back.
            gc.enable()
        # __import__, not importlib: no import of its own on the hot path.
        module = __import__(COMMANDS[command][0], fromlist=["main"])
        try:
            status: int = module.main(command, rest, env, out)
            return status
        except Answered:
            return 0
    except SelfhealError as exc:
        speak(out, name, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        if speak is to_person:
            # On a line of its own: after the ^C a terminal echoes, or after a
            # row the interrupted write cut short.
            out.write("\n")
        return speak(out, name, "interrupted")
    except BrokenPipeError as exc:
        if speak is to_person:
            return reader_left(out)
        return internal_error(out, name, exc, verbose, speak)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        return internal_error(out, name, exc, verbose, speak)


def reader_left(out: TextIO) -> int:
    """A person's reader went away (``selfheal history | head``): stop quietly, not with a traceback."""
    try:
        # What is still buffered goes nowhere when the interpreter flushes it at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's StringIO): nothing is flushed at exit
    return 0


def usage_lines() -> list[str]:
    """Every command's usage line, from the command modules themselves."""
    lines: list[str] = []
    for command, (module_name, _) in COMMANDS.items():
        usage = __import__(module_name, fromlist=["USAGE"]).USAGE[command]
        if usage not in lines:
            lines.append(usage)
    return lines


def help_text() -> str:
    usage = [*usage_lines(), "selfheal -h | -V"]
    text = "usage: " + "\n       ".join(usage) + "\n" + ABOUT + "\ncommands:\n"
    text += "".join(
        f"  {LABELS.get(command, command):<13} {about}\n" for command, (_, about) in COMMANDS.items()
    )
    return text + FOOTER

"""``process``: how many processes match, and how they are doing.

Processes are matched by name (``-C``, the kernel's command name, as
``check_procs -C``), a regular expression over the full command line
(``-a``), a pidfile (``-p``: a missing or stale pidfile means nothing
runs) and a user (``-u``); all given filters must match. The check itself
and its ancestors never match, so ``-a nginx`` does not count the
``selfheal run`` that runs it.

``-w``/``-c`` are ranges on the count; the default ``-c 1:`` is CRITICAL
when nothing runs. Zombies do not count as running; they and processes in
uninterruptible sleep (state D, often a hung NFS or disk) are counted
separately for ``--zombies-*`` and ``--dstate-*``. ``--rss-*`` (MiB) and
``--cpu-*`` (%) judge the largest matched process; CPU% is the average
over the process's life, as ``ps`` and ``check_procs`` compute it.

The kill heal (``--kill``) terminates the matched processes (those over
a ``--rss-critical``/``--cpu-critical`` threshold when one is given)
with their whole process tree: SIGTERM, up to ``--kill-wait`` for them to
exit, then SIGKILL. Anything after ``--`` is then run in its place, for
example ``-- systemctl restart myd``.
"""

from __future__ import annotations

import os
import stat
import time

import nagiosplugin

from selfheal.checks.options import Values, plain
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.core.argv import Option

#: The largest pid Linux hands out (``/proc/sys/kernel/pid_max`` at most).
PID_MAX = 4194304

TYPE_CHECKING = False
if TYPE_CHECKING:
    from re import Pattern
    from typing import TextIO

    import psutil

MIB = 2**20


class Match:
    """Which processes count: every given filter must agree."""

    def __init__(
        self,
        command: str | None = None,
        regex: Pattern[str] | None = None,
        pidfile: str | None = None,
        user: str | None = None,
    ) -> None:
        self.command = command
        self.regex = regex
        self.pidfile = pidfile
        self.user = user
        self.note = ""

    def describe(self) -> str:
        parts = []
        if self.command:
            parts.append(f"named {self.command}")
        if self.regex is not None:
            parts.append(f"matching {self.regex.pattern!r}")
        if self.pidfile:
            parts.append(f"from {self.pidfile}")
        if self.user:
            parts.append(f"of user {self.user}")
        return " ".join(parts) or "at all"

    def candidates(self) -> list[psutil.Process]:
        import psutil

        excluded = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        if self.pidfile:
            pid = self.pid_from_file()
            if pid is None:
                return []
            try:
                processes = [psutil.Process(pid)]
            except psutil.Error:
                self.note = f"stale pidfile {self.pidfile} (no process {pid})"
                return []
        else:
            processes = list(psutil.process_iter())
        found = []
        for process in processes:
            if process.pid in excluded:
                continue
            try:
                if self.matches(process):
                    found.append(process)
                elif self.pidfile:
                    # A reused pid: the pidfile outlived its daemon.
                    self.note = f"stale pidfile {self.pidfile}: pid {process.pid} is {process.name()}"
            except psutil.Error:
                continue  # it exited while we looked: not running
        return found

    def pid_from_file(self) -> int | None:
        try:
            # Non-blocking: a FIFO planted as the pidfile must not hang the check.
            fd = os.open(str(self.pidfile), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                data = os.read(fd, 64) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
            finally:
                os.close(fd)
        except FileNotFoundError:
            self.note = f"pidfile {self.pidfile} is missing"
            return None
        except OSError as exc:
            raise nagiosplugin.CheckError(f"cannot read pidfile {self.pidfile}: {exc.strerror}") from None
        # Bytes, not text: a pidfile of other bytes, or of digits of other
        # scripts ("²" passes str.isdigit()), holds no pid either.
        text = data.strip()
        if not text.isdigit() or len(text) > 7 or not 0 < int(text) <= PID_MAX:
            self.note = f"pidfile {self.pidfile} holds no pid"
            return None
        return int(text)

    def matches(self, process: psutil.Process) -> bool:
        if self.command and self.command not in (process.name(), comm(process)):
            return False
        if self.user and process.username() != self.user:
            return False
        return self.regex is None or bool(self.regex.search(" ".join(process.cmdline())))


def comm(process: psutil.Process) -> str:
    """The kernel's 15-character command name, which ``check_procs -C`` compares."""
    try:
        with open(f"/proc/{process.pid}/comm") as stream:
            return stream.read().strip()
    except OSError:
        return ""


def cpu_percent(process: psutil.Process, now: float) -> float:
    """CPU time over lifetime, in percent (what ``ps -o pcpu`` shows)."""
    times = process.cpu_times()
    life = now - process.create_time()
    return 100 * (times.user + times.system) / life if life > 0 else 0.0


class Processes(nagiosplugin.Resource):
    """Yields ``procs``, ``zombies``, ``dstate`` and the largest ``rss`` and ``cpu``."""

    def __init__(self, match: Match) -> None:
        self.match = match

    @property
    def name(self) -> str:
        return "PROCESS"

    def probe(self) -> list[nagiosplugin.Metric]:
        import psutil

        running, zombies, dstate, rss, cpu = 0, 0, 0, 0.0, 0.0
        now = time.time()
        for process in self.match.candidates():
            try:
                status = process.status()
                if status == psutil.STATUS_ZOMBIE:
                    zombies += 1
                    continue
                if status == psutil.STATUS_DISK_SLEEP:
                    dstate += 1
                rss = max(rss, process.memory_info().rss / MIB)
                cpu = max(cpu, cpu_percent(process, now))
            except psutil.Error:
                continue
            running += 1
        metrics = [
            nagiosplugin.Metric("procs", running, min=0, context="procs"),
            nagiosplugin.Metric("zombies", zombies, min=0, context="zombies"),
            nagiosplugin.Metric("dstate", dstate, min=0, context="dstate"),
            nagiosplugin.Metric("rss_max", round(rss, 2), "MB", min=0, context="rss"),
            nagiosplugin.Metric("cpu_max", round(cpu, 2), "%", min=0, context="cpu"),
        ]
        return metrics


def match_from(values: Values) -> Match:
    match = Match(
        values.text("command"), values.regex("argument_regex"), values.text("pidfile"), values.text("user")
    )
    if match.user:
        import pwd

        try:
            pwd.getpwnam(match.user)
        except KeyError:
            raise values.fail("user", f"no such user {match.user!r}") from None
    return match


def build(values: Values) -> list[object]:
    match = match_from(values)
    what = match.describe()

    def count(label: str, always: bool = False) -> object:
        # Zero zombies is not news: only the process count always speaks.
        def describe(metric: nagiosplugin.Metric, _: object) -> str:
            if not (always or metric.value):
                return ""
            note = f" ({match.note})" if match.note and always else ""
            return f"{metric.value} {label} {what}{note}"

        return describe

    def largest(template: str) -> object:
        return lambda m, _: template.format(plain(m.value)) if m.value else ""

    return [
        Processes(match),
        nagiosplugin.ScalarContext(
            "procs",
            values.range("warning"),
            values.range("critical", "1:"),
            fmt_metric=count("processes", always=True),
        ),
        nagiosplugin.ScalarContext(
            "zombies",
            values.range("zombies_warning"),
            values.range("zombies_critical"),
            fmt_metric=count("zombies"),
        ),
        nagiosplugin.ScalarContext(
            "dstate",
            values.range("dstate_warning"),
            values.range("dstate_critical"),
            fmt_metric=count("in uninterruptible sleep (D)"),
        ),
        nagiosplugin.ScalarContext(
            "rss",
            values.range("rss_warning"),
            values.range("rss_critical"),
            fmt_metric=largest("largest RSS {} MiB"),
        ),
        nagiosplugin.ScalarContext(
            "cpu",
            values.range("cpu_warning"),
            values.range("cpu_critical"),
            fmt_metric=largest("highest CPU {}%"),
        ),
    ]


# -- the kill heal ---------------------------------------------------------------


def kill(values: Values, out: TextIO) -> int:
    """``--kill``: TERM, wait, KILL the matched process trees; then run ``-- CMD``."""
    import psutil

    match = match_from(values)
    if match.describe() == "at all":
        raise values.fail("kill", "needs -C, -a, -p or -u: it will not kill every process")
    wait = values.duration("kill_wait", 10.0)
    rss_limit = values.range("rss_critical")
    cpu_limit = values.range("cpu_critical")
    now = time.time()
    targets = []
    for process in match.candidates():
        try:
            if rss_limit or cpu_limit:
                over_rss = rss_limit and not nagiosplugin.Range(rss_limit).match(
                    process.memory_info().rss / MIB
                )
                over_cpu = cpu_limit and not nagiosplugin.Range(cpu_limit).match(cpu_percent(process, now))
                if not (over_rss or over_cpu):
                    continue
            targets.append(process)
        except psutil.Error:
            continue
    if values.flag("dry_run"):
        from selfheal.edges.proc import tree_of

        for process in targets:
            for member in tree_of(process):
                out.write(f"would terminate {member.pid} {' '.join(cmdline(member))}\n")
        then = f", then run {' '.join(values.positional)}" if values.positional else ""
        out.write(
            f"dry run: {len(targets)} processes {match.describe()} would be terminated with their children{then}\n"
        )
        return 0
    from selfheal.edges.kill import kill_trees

    killed, survivors = kill_trees(targets, float(wait or 0))
    out.write(
        f"terminated {killed} processes {match.describe()}"
        + (f", {len(survivors)} survived SIGKILL" if survivors else "")
        + "\n"
    )
    if values.positional:
        out.flush()
        # Replace this process: the restart's exit code is the heal's.
        os.execvp(values.positional[0], values.positional)
    return 1 if survivors else 0


def cmdline(process: psutil.Process) -> list[str]:
    import psutil

    try:
        return process.cmdline() or [process.name()]
    except psutil.Error:
        return ["(gone)"]


SPEC = Spec(
    "process",
    "Count the processes that match (name, command-line regex, pidfile, user) and judge them; or kill them (--kill).",
    [
        Option(("-C", "--command"), "command", "value", "NAME", "the process name (as check_procs -C)"),
        Option(
            ("-a", "--argument-regex"),
            "argument_regex",
            "value",
            "REGEX",
            "a regular expression over the full command line",
        ),
        Option(("-p", "--pidfile"), "pidfile", "value", "FILE", "only the process whose pid is in FILE"),
        Option(("-u", "--user"), "user", "value", "USER", "only processes of this user"),
        Option(("--rss-warning",), "rss_warning", "value", "RANGE", "largest RSS in MiB that gives WARNING"),
        Option(
            ("--rss-critical",), "rss_critical", "value", "RANGE", "largest RSS in MiB that gives CRITICAL"
        ),
        Option(
            ("--cpu-warning",), "cpu_warning", "value", "RANGE", "highest lifetime CPU% that gives WARNING"
        ),
        Option(
            ("--cpu-critical",), "cpu_critical", "value", "RANGE", "highest lifetime CPU% that gives CRITICAL"
        ),
        Option(
            ("--zombies-warning",),
            "zombies_warning",
            "value",
            "RANGE",
            "zombie count that gives WARNING (e.g. 0)",
        ),
        Option(
            ("--zombies-critical",), "zombies_critical", "value", "RANGE", "zombie count that gives CRITICAL"
        ),
        Option(
            ("--dstate-warning",),
            "dstate_warning",
            "value",
            "RANGE",
            "count in D state that gives WARNING (e.g. 0)",
        ),
        Option(
            ("--dstate-critical",),
            "dstate_critical",
            "value",
            "RANGE",
            "count in D state that gives CRITICAL",
        ),
        Option(
            ("--kill",),
            "kill",
            "flag",
            "",
            "heal mode: kill the matched process trees, then run the command after --",
        ),
        Option(
            ("--kill-wait",),
            "kill_wait",
            "value",
            "SECONDS",
            "with --kill: wait this long after SIGTERM (default 10s)",
        ),
    ],
    build,
    warning="process count that gives WARNING (e.g. 1:5)",
    critical="process count that gives CRITICAL (default 1: = none running)",
    modes={"kill": kill},
    mode_options=("kill_wait",),
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

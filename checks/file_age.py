"""``file_age``: how old and how big a file is (a heartbeat, a stale lock, a pid).

``-w``/``-c`` are the age in seconds (defaults 240 and 600, as with
monitoring-plugins' ``check_file_age``); ``-W``/``-C`` the size in bytes,
as ranges: ``-C 1:`` is CRITICAL when the file is empty. A missing file
is CRITICAL, or OK with ``--ignore-missing``.
"""

from __future__ import annotations

import os
import time

import nagiosplugin

from selfheal.checks.options import Values, plain
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.checks.verdict import verdict
from selfheal.core.argv import Option


class FileAge(nagiosplugin.Resource):
    """Yields ``age`` (seconds since the last modification) and ``size``."""

    def __init__(self, path: str, ignore_missing: bool = False) -> None:
        self.path = path
        self.ignore_missing = ignore_missing

    @property
    def name(self) -> str:
        return "FILE_AGE"

    def probe(self) -> list[nagiosplugin.Metric]:
        try:
            # stat, not lstat: a symlinked pid file is judged by its target.
            info = os.stat(self.path)
        except FileNotFoundError:
            state = nagiosplugin.Ok if self.ignore_missing else nagiosplugin.Critical
            return [verdict("missing", state, f"{self.path} does not exist")]
        except OSError as exc:
            return [verdict("missing", nagiosplugin.Unknown, f"cannot stat {self.path}: {exc.strerror}")]
        # Whole seconds, as check_file_age counts: thresholds are in seconds.
        age = int(time.time() - info.st_mtime)
        return [
            nagiosplugin.Metric("age", age, "s", context="age"),
            nagiosplugin.Metric("size", info.st_size, "B", min=0, context="size"),
        ]


def build(values: Values) -> list[object]:
    path = values.required("file")
    return [
        FileAge(path, values.flag("ignore_missing")),
        nagiosplugin.ScalarContext(
            "age",
            values.range("warning", "240"),
            values.range("critical", "600"),
            fmt_metric=lambda m, _: f"{path} is {plain(m.value)}s old",
        ),
        nagiosplugin.ScalarContext(
            "size",
            values.range("size_warning"),
            values.range("size_critical"),
            fmt_metric=lambda m, _: f"{plain(m.value)} bytes",
        ),
    ]


SPEC = Spec(
    "file_age",
    "Check the age (time since the last modification) and size of a file.",
    [
        Option(("-f", "--file"), "file", "value", "PATH", "the file (required)"),
        Option(
            ("-W", "--size-warning"),
            "size_warning",
            "value",
            "RANGE",
            "size in bytes that gives WARNING (1: = empty)",
        ),
        Option(
            ("-C", "--size-critical"), "size_critical", "value", "RANGE", "size in bytes that gives CRITICAL"
        ),
        Option(
            ("-i", "--ignore-missing"), "ignore_missing", "flag", "", "a missing file is OK, not CRITICAL"
        ),
    ],
    build,
    warning="age in seconds that gives WARNING (default 240)",
    critical="age in seconds that gives CRITICAL (default 600)",
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

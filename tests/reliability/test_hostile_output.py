"""Hostile plugin output (issue 6, item 5).

The wrapped plugin's output is handled, and capped, in every case: what
selfheal prints is valid UTF-8, starts with one well-formed status line,
carries only well-formed perfdata, and is never longer than
``output.MAX_OUTPUT`` bytes (what NRPE 3 and later carry in one
response; see docs/reliability.md). Each case runs the real command
line as a process, with real pipes, as Nagios would.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from conftest import assert_no_traceback, process_gone, run_selfheal, wait_for, write_script
from harness import figure

from selfheal.core.output import MAX_LINE, MAX_OUTPUT

#: A perfdata item as the plugin guidelines define it:
#: 'label'=value[UOM];[warn];[crit];[min];[max]
PERF_ITEM = re.compile(r"^('([^'=]|'')+'|[^'= ]+)=(-?[0-9.]+[a-zA-Z%]*|U)(;[0-9.:~@-]*){0,4}$")


def perf_items(status: str) -> list[str]:
    """The status line's perfdata items; a quoted label may hold spaces."""
    return re.findall(r"'(?:[^']|'')*'=\S*|\S+", status.split("|", 1)[1])


TEN_MB = 10 * 1024 * 1024

# name -> (plugin script body, expected exit code, text the status line must contain)
CASES = {
    "non-utf8": (
        "printf 'CRITICAL: caf\\351 \\377\\376 down | t=1s\\n\\200\\201 long\\n'\nexit 2\n",
        1,
        "caf",
    ),
    "10MB-one-line": (f"head -c {TEN_MB} /dev/zero | tr '\\0' x\nexit 0\n", 0, "xxxx"),
    "10MB-many-lines": (
        f"echo 'OK: many lines'\nyes 'long output line' | head -c {TEN_MB}\nexit 0\n",
        0,
        "OK: many",
    ),
    "10MB-stderr": (f"echo 'OK: quiet'\nhead -c {TEN_MB} /dev/zero >&2\nexit 0\n", 0, "OK: quiet"),
    "no-trailing-newline": ("printf 'CRITICAL: no newline|t=1s'\nexit 2\n", 1, "CRITICAL: no newline"),
    "malformed-perfdata": (
        "echo \"OK: perf | 'good label'=5ms;1;2;0;10 a==2 =3 b=x;;; ok=1 c=1;2;3;4;5;6 d= e=1e3 'unclosed=1\"\n"
        "echo \"long | 'x'y'=1 u=U;;;0 'it''s'=2\"\nexit 0\n",
        0,
        "OK: perf",
    ),
    "pipes-in-text": ("echo 'CRITICAL: a | b=1 | c | d'\necho 'long | e=2 | f'\nexit 2\n", 1, "CRITICAL: a"),
    "exit-7": ("echo 'OK: but exits 7'\nexit 7\n", 3, "exited 7"),
    "exit-255": ("echo 'CRITICAL: exits 255'\nexit 255\n", 3, "exited 255"),
    "killed-by-signal": ("echo 'OK: about to die'\nkill -9 $$\n", 3, "killed by signal 9"),
    "no-output": ("exit 2\n", 1, "no output"),
    "only-pipes": ("echo '||||'\nexit 0\n", 0, "SHOUT OK"),
    "control-chars": ("printf 'CRITICAL: \\033[31mred\\033[0m \\000nul \\r\\n'\nexit 2\n", 1, "CRITICAL: "),
}


def check_output(out: bytes) -> list[str]:
    """What selfheal printed, checked against the Nagios output rules."""
    assert len(out) <= MAX_OUTPUT, f"{len(out)} bytes printed, more than the {MAX_OUTPUT} cap"
    text = out.decode("utf-8")  # strict: never invalid UTF-8
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    status = lines[0]
    assert re.match(r"^SHOUT (OK|WARNING|CRITICAL|UNKNOWN)( - |$)", status), status
    assert status.count("|") <= 1, status
    assert len(status) <= 2 * MAX_LINE
    if "|" in status:
        for item in perf_items(status):
            assert PERF_ITEM.match(item), f"malformed perfdata item {item!r} passed on"
    for line in lines[1:]:
        assert "|" not in line, line  # a | in long output would start perfdata
        assert "\r" not in line and "\0" not in line
    return lines


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_plugin_output_is_handled_and_capped(tmp_path: Path, case: str) -> None:
    body, expected, needle = CASES[case]
    plugin = write_script(tmp_path / "check_shout", body)
    started = time.monotonic()
    result = run_selfheal(
        "wrap", "--name", "shout", "-t", "20", "--heal", "true", "--dry-run",
        "--state-dir", tmp_path / "state", "--", plugin,
        timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    out = result.stdout.encode("utf-8", "surrogateescape")
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == expected, result.stdout[:500]
    lines = check_output(out)
    assert needle in lines[0], lines[0][:300]
    assert took < 20, f"{case}: {took:.1f}s"
    if case == "malformed-perfdata":
        perf = perf_items(lines[0])
        assert perf[:-2] == ["'good label'=5ms;1;2;0;10", "ok=1", "u=U;;;0", "'it''s'=2"], perf
    if case == "pipes-in-text":
        assert lines[0].startswith("SHOUT WARNING - CRITICAL: a; self-healing: would start true"), lines[0]
    figure("hostile plugin output", 1)


def test_plugin_whose_child_keeps_stdout_open_does_not_hang(tmp_path: Path) -> None:
    """NRPE-style trap: the plugin exits, its background child holds the pipe."""
    pid_file = tmp_path / "child.pid"
    plugin = write_script(
        tmp_path / "check_leaky",
        f"sleep 30 &\necho $! > {pid_file}\necho 'CRITICAL: leaky | t=1'\nexit 2\n",
    )
    started = time.monotonic()
    result = run_selfheal(
        "wrap", "--name", "shout", "--heal", "true", "--dry-run", "--state-dir", tmp_path / "state", "--",
        plugin, timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    child = int(pid_file.read_text())
    try:
        assert_no_traceback(result.stdout, result.stderr)
        assert result.returncode == 1, result.stdout
        check_output(result.stdout.encode())
        assert "CRITICAL: leaky" in result.stdout
        # Python's start-up plus the 0.2 s linger, not the child's 30 s.
        assert took < 10, f"took {took:.1f}s: selfheal waited for the child"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: process_gone(child), 5, what="the leaked child to be killed")
    figure("hostile plugin output", 1)


def test_plugin_that_hangs_is_killed_with_its_children_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    plugin = write_script(tmp_path / "check_hang", f"sleep 60 &\necho $! > {pid_file}\nsleep 60\n")
    started = time.monotonic()
    result = run_selfheal(
        "wrap", "--name", "shout", "-t", "1", "--heal", "true", "--dry-run", "--state-dir", tmp_path / "state",
        "--", plugin, timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 3, result.stdout
    assert "timed out after 1s" in result.stdout
    assert took < 10
    wait_for(lambda: process_gone(int(pid_file.read_text())), 5, what="the plugin's child to be killed")
    figure("hostile plugin output", 1)

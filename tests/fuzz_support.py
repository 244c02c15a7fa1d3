"""What the boundary fuzzers share: a json-free selfheal process, and bounds.

``FuzzCli`` drives ``tests/fuzz_child.py``: one ``python -I -S`` process
that runs the real command line request after request, with no ``json``
imported before each one. ``SETTINGS`` bounds every fuzzer so that all of
them together stay within about 30 s in CI; ``SELFHEAL_FUZZ_EXAMPLES``
scales them up for a longer hunt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("SELFHEAL_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    """Bounded, reproducible enough for CI, no example database left behind."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class FuzzCli:
    """A long-lived selfheal command line without json (see fuzz_child.py)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                str(REPO / "tests" / "fuzz_child.py"),
                str(REPO),
                sysconfig.get_paths()["purelib"],
                sysconfig.get_paths()["platlib"],
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd="/",
        )
        self.runs = 0

    def run(self, *args: object) -> tuple[int, str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        fields = [os.environ.get("PATH", "/usr/bin:/bin"), *(str(a) for a in args)]
        assert not any("\x1f" in f or "\n" in f for f in fields)
        self.proc.stdin.write("\x1f".join(fields).encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline()
        assert header, f"the fuzz child died (exit {self.proc.poll()})"
        code, length = (int(word) for word in header.split())
        out, _, err = self.proc.stdout.read(length).decode().partition("\x1e")
        self.runs += 1
        return code, out, err

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()


def assert_clean(code: int, out: str, err: str) -> None:
    """Invariant 1: no exception escaped, no traceback, no internal error."""
    assert code != -1, err
    for text in (out, err):
        assert "Traceback" not in text, text
        assert "internal error" not in text, text

"""Import discipline: a healthy check must not pay for heavy modules.

Not a timing test: it inspects ``sys.modules`` of a real healthy run.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CHECK_DUMMY


@pytest.fixture
def check_dummy():
    # Not a skip: the healthy path is only meaningful around a real plugin.
    assert os.access(CHECK_DUMMY, os.X_OK), "install monitoring-plugins-basic (tests/run.sh does)"
    return CHECK_DUMMY


HEAVY = ("nagiosplugin", "yaml", "psutil", "filelock", "argparse", "subprocess", "json", "shlex")

PROBE = """
import io, sys
from selfheal.cli import main
out = io.StringIO()
code = main({args!r}, env={{"SELFHEAL_STATE_DIR": {state!r}, "PATH": "/usr/bin:/bin"}}, stdout=out)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
import json
sys.stdout.write(json.dumps([code, out.getvalue(), loaded]))
"""


def loaded_by(args, state_dir):
    # json is imported by the probe itself only after main() returned.
    code = PROBE.format(args=args, state=str(state_dir), heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_healthy_wrap_imports_nothing_heavy(tmp_path, check_dummy):
    code, out, loaded = loaded_by(["wrap", "--heal", "true", "--", check_dummy, "0", "fine"], tmp_path / "s")
    assert code == 0, out
    assert out.startswith("CHECK_DUMMY OK - OK: fine")
    assert loaded == [], f"healthy wrap imported {loaded}"


def test_critical_wrap_does_use_the_lock(tmp_path, check_dummy):
    # The counter-check: the probe does see heavy imports when they happen.
    code, out, loaded = loaded_by(
        ["wrap", "--heal", "true", "--dry-run", "--", check_dummy, "2", "down"], tmp_path / "s"
    )
    assert code == 1, out
    assert "shlex" in loaded  # the heal command was parsed

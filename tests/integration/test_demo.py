"""``selfheal demo`` runs end to end and never reaches the host's config.

The demo's checks are real ``selfheal wrap`` processes, and a wrap that
journals an event sends it to the config file's ``syslog:`` and
``on_event:``. On a production host that would page people about the
demo's throwaway service, so the demo must not read the config at all.
"""

from __future__ import annotations

import io
import re
import shlex
import subprocess
from pathlib import Path

from conftest import CHECK_DUMMY, assert_no_traceback, clean_env, selfheal_argv, wait_for, write_script

from selfheal.cli import main


def test_the_demo_never_reads_the_config_file(tmp_path: Path) -> None:
    """A config with an on_event hook, as $SELFHEAL_CONFIG: the demo heals and fails, the hook never runs."""
    got = tmp_path / "got"
    got.mkdir()
    hook = write_script(tmp_path / "hook", f'touch "{got}/$SELFHEAL_CHECK-$SELFHEAL_EVENT"\n')
    path = tmp_path / "selfheal.yaml"
    path.write_text(f"on_event:\n  command: [{hook}]\nchecks: {{}}\n")
    env = clean_env(SELFHEAL_CONFIG=str(path), SELFHEAL_STATE_DIR=str(tmp_path / "state"))

    # The control: this config does reach a wrap check's events.
    control = subprocess.run(
        selfheal_argv("wrap", "--name", "control", "--heal", "true", "--", CHECK_DUMMY, 2),
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "self-healing: started" in control.stdout, control.stdout + control.stderr
    wait_for(lambda: (got / "control-attempt").exists(), 20, what="the control's hook")
    journal = tmp_path / "state" / "journal.jsonl"
    wait_for(lambda: "action_end" in journal.read_text(), 20, what="the control's heal to end")
    before = journal.read_text()

    demo = subprocess.run(
        selfheal_argv("demo"), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert_no_traceback(demo.stdout, demo.stderr)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "gave_up" in demo.stdout
    assert_commands_are_shown_whole(demo.stdout)
    # The demo's first heal started seconds before it ended: its hook would be here by now.
    assert sorted(p.name for p in got.iterdir() if not p.name.startswith("control-")) == []
    # Nor did the demo touch the caller's state dir.
    assert journal.read_text() == before


def test_wrap_help_says_it_reads_the_config_files_outputs() -> None:
    out = io.StringIO()
    assert main(["wrap", "-h"], env={}, stdout=out) == 0
    help_text = " ".join(out.getvalue().split())
    assert "if one exists, for syslog: and on_event:, and for metrics:" in help_text
    assert "--state-dir is never taken from the config" in help_text


def assert_commands_are_shown_whole(output: str) -> None:
    """Issue 15: each step shows the command it ran, whole, and the real state dir; no "OK - OK"."""
    commands = [shlex.split(line.strip()[2:]) for line in output.splitlines() if line.startswith("  $ ")]
    wraps = [argv for argv in commands if argv[2:5] == ["-m", "selfheal", "wrap"]]
    assert len(wraps) == 7, output
    first = wraps[0]
    assert first[0].startswith("SELFHEAL_CONFIG=") and Path(first[1]).is_file(), first
    assert first[first.index("--name") + 1] == "web"
    state_dir = first[first.index("--state-dir") + 1]
    plugin = first[first.index("--") + 1 :]
    assert Path(first[first.index("--heal") + 1]).name == "start-web"
    assert Path(plugin[1]).name == "check.py" and plugin[2].isdigit(), first
    assert "STATE_DIR" not in output
    assert f"The journal of all this is {state_dir}/journal.jsonl:" in output
    history = commands[-1]
    assert history[1:] == ["-m", "selfheal", "history", "--journal", f"{state_dir}/journal.jsonl"], history
    assert re.search(r"^    WEB OK - port \d+ answers \|", output, re.M), output
    assert "OK - OK" not in output and "CRITICAL - CRITICAL" not in output

"""``selfheal demo`` runs end to end and never reaches the host's config.

The demo's checks are real ``selfheal wrap`` processes, and a wrap that
journals an event sends it to the config file's ``syslog:`` and
``on_event:``. On a production host that would page people about the
demo's throwaway service, so the demo must not read the config at all.
"""

from __future__ import annotations

import io
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

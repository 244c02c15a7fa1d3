"""The Python API: selfheal.Check is a nagiosplugin.Check that heals."""

import json
import subprocess
import sys
import textwrap
import time

import nagiosplugin
import pytest

import selfheal


class Up(nagiosplugin.Resource):
    def __init__(self, value):
        self.value = value

    def probe(self):
        return [nagiosplugin.Metric("up", self.value, context="up")]


def make_check(tmp_path, value, **kwargs):
    return selfheal.Check(
        Up(value),
        nagiosplugin.ScalarContext("up", "1:", "1:"),
        name="nginx",
        heal=selfheal.Command(["true"]),
        policy=selfheal.Policy(cooldown="10m", max_attempts=2),
        state_dir=str(tmp_path / "state"),
        **kwargs,
    )


def test_is_a_nagiosplugin_check():
    assert issubclass(selfheal.Check, nagiosplugin.Check)


def test_critical_heals_and_says_so(tmp_path):
    check = make_check(tmp_path, 0)
    check()
    assert check.state == nagiosplugin.Warn and check.exitcode == 1
    assert check.summary_str == "up is 0 (outside range 1:); self-healing: started true (attempt 1/2)"
    assert "selfheal_attempts=1;;;0" in check.perfdata
    assert "selfheal_heals_total=1c;;;0" in check.perfdata
    journal = tmp_path / "state" / "journal.jsonl"
    deadline = time.monotonic() + 10
    while "action_end" not in journal.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events == ["attempt", "action_end"]


def test_healthy_check_is_unchanged(tmp_path):
    check = make_check(tmp_path, 1)
    check()
    assert check.state == nagiosplugin.Ok
    assert check.summary_str == "up is 1"
    assert sorted(check.perfdata) == ["selfheal_attempts=0;;;0", "selfheal_heals_total=0c;;;0", "up=1;1:;1:"]
    assert not (tmp_path / "state").exists()


def test_dry_run_reports_without_healing(tmp_path):
    check = make_check(tmp_path, 0, dry_run=True)
    check()
    assert check.exitcode == 1
    assert "would start true" in check.summary_str
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("bad", [{"name": "../x"}, {"heal": ""}])
def test_bad_arguments_raise(tmp_path, bad):
    kwargs = {"name": "nginx", "heal": selfheal.Command(["true"]), **bad}
    with pytest.raises(ValueError):
        selfheal.Check(Up(0), nagiosplugin.ScalarContext("up", "1:", "1:"), **kwargs)


def test_design_example_runs_as_a_plugin(tmp_path):
    script = tmp_path / "check_nginx.py"
    script.write_text(
        textwrap.dedent(
            """
            import nagiosplugin
            import selfheal

            class Nginx(nagiosplugin.Resource):
                def probe(self):
                    return [nagiosplugin.Metric("up", 0, context="up")]

            @nagiosplugin.guarded(verbose=0)
            def main():
                check = selfheal.Check(
                    Nginx(), nagiosplugin.ScalarContext("up", "1:", "1:"),
                    name="nginx",
                    heal=selfheal.Command(["true"]),
                    policy=selfheal.Policy(cooldown="15m", max_attempts=3, window="6h"),
                )
                check.main(timeout=10)

            main()
            """
        )
    )
    env = {"SELFHEAL_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert first.returncode == 1, first
    assert first.stdout.startswith(
        "NGINX WARNING - up is 0 (outside range 1:); self-healing: started true (attempt 1/3)"
    )
    assert "selfheal_attempts=1;;;0" in first.stdout

"""verify and report_to with real plugins, a real runner, real FIFOs and files.

The runner re-checks after the action until the check is healthy or the
grace period ends, records the verdict in the attempt, journals it, and
reports it to the configured Nagios command file without ever blocking.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import (
    CHECK_DUMMY,
    assert_no_traceback,
    journal_events,
    read_record,
    run_selfheal,
    wait_for,
    write_script,
)

from selfheal.config import loader
from selfheal.config.schema import CheckConfig
from selfheal.edges.nagios_cmd import write_line


def toy(tmp_path: Path) -> tuple[Path, Path]:
    """A plugin that is OK while ``up`` exists, and records each run's argv and environment."""
    up = tmp_path / "up"
    runs = tmp_path / "runs"
    plugin = write_script(
        tmp_path / "check_toy",
        f'echo "$* ${{TOY_SETTING:-unset}} ${{PYTHONPATH:-none}}" >> {runs}\n'
        f'if [ -e {up} ]; then echo "TOY OK - up | up=1"; exit 0; fi\n'
        'echo "TOY CRITICAL - down; no answer"\necho "second line"\nexit 2\n',
    )
    return plugin, up


def wrap(tmp_path: Path, heal: str, plugin: list[str], *extra: str):  # type: ignore[no-untyped-def]
    return run_selfheal(
        "wrap",
        "--name",
        "toy",
        "--heal",
        heal,
        "--state-dir",
        tmp_path / "s",
        "--verify",
        *extra,
        "--",
        *plugin,
    )


def settled(tmp_path: Path, kind: str) -> dict[str, object]:
    """The runner's verdict, once journaled (the runner runs detached)."""
    (event,) = wait_for(
        lambda: journal_events(tmp_path / "s", kind, in_flight=True), 30, what=f"the {kind} event"
    )
    return event  # type: ignore[no-any-return]


def test_a_heal_that_works_is_verified_recorded_and_reported(tmp_path: Path) -> None:
    plugin, up = toy(tmp_path)
    report = tmp_path / "nagios.cmd"
    report.touch()
    result = wrap(
        tmp_path,
        f"sh -c 'sleep 1; touch {up}'",
        [str(plugin), "-H", "example"],
        "--grace", "20s",
        "--nagios-cmd", str(report), "--nagios-host", "web1", "--nagios-service", "HTTP",
    )  # fmt: skip
    assert result.returncode == 1 and "self-healing: started" in result.stdout, result.stdout
    verified = settled(tmp_path, "verified")
    assert verified["attempt"] == 1 and verified["checks"] >= 1
    attempt = read_record(tmp_path / "s", "toy")["attempts"][-1]  # type: ignore[index]
    assert attempt["verified"] is True
    assert attempt["recovered_in"] == verified["time_to_recover"]
    (end,) = journal_events(tmp_path / "s", "action_end")
    # From the episode's first heal, so at least the action's own duration.
    assert verified["time_to_recover"] >= end["duration"]  # type: ignore[operator]
    (reported,) = wait_for(lambda: journal_events(tmp_path / "s", "reported", in_flight=True), 10)
    assert reported == {**reported, "to": "nagios", "state": 0, "attempt": 1} and "reason" not in reported
    (line,) = report.read_text().splitlines()
    head, _, output = line.partition(" PROCESS_SERVICE_CHECK_RESULT;web1;HTTP;0;")
    assert head.startswith("[") and output.startswith("TOY OK - TOY OK - up (healed by selfheal: sh -c ")
    assert ", recovered in " in output and output.endswith("s) | up=1"), output
    # The next check is OK, and closes the episode as before.
    again = wrap(tmp_path, "true", [str(plugin), "-H", "example"])
    assert again.returncode == 0, again.stdout
    assert journal_events(tmp_path / "s", "recovered")


def test_the_re_check_runs_the_same_plugin_argv_in_the_same_environment(tmp_path: Path) -> None:
    plugin, up = toy(tmp_path)
    # The CLI runs with the test's environment: env(1) sets the plugin's own setting, as a wrapper would.
    result = run_selfheal(
        "wrap", "--name", "toy", "--heal", f"touch {up}", "--state-dir", tmp_path / "s", "--verify",
        "--", "/usr/bin/env", "TOY_SETTING=from-nagios", str(plugin), "-H", "a b",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    settled(tmp_path, "verified")
    runs = (tmp_path / "runs").read_text().splitlines()
    assert len(runs) >= 2
    # The plugin run that started the heal, then the runner's re-check: the same words.
    assert set(runs) == {f"-H a b from-nagios {os.environ.get('PYTHONPATH', 'none')}"}, runs


def test_a_heal_that_does_not_help_is_not_recovered_and_the_next_check_says_so(tmp_path: Path) -> None:
    plugin, _ = toy(tmp_path)
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def nagios() -> None:  # a reader, as Nagios 4 keeps one on its FIFO
        with open(fifo, "rb") as reader:
            received.append(reader.read())

    reader = threading.Thread(target=nagios, daemon=True)
    reader.start()
    result = wrap(
        tmp_path, "true", [str(plugin)], "--grace", "3s",
        "--nagios-cmd", str(fifo), "--nagios-host", "web1", "--nagios-service", "HTTP",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    event = settled(tmp_path, "not_recovered")
    assert event["reason"] == "the check still says CRITICAL: TOY CRITICAL - down; no answer"
    assert event["checks"] >= 2  # right after the action, then every 2s until grace ended
    attempt = read_record(tmp_path / "s", "toy")["attempts"][-1]  # type: ignore[index]
    assert attempt["verified"] is False and attempt["recovered_in"] is None
    reader.join(30)
    (line,) = received[0].decode().splitlines()
    assert (
        ";web1;HTTP;2;TOY CRITICAL - self-healing did not help: true (attempt 1); the check still says"
        in line
    )
    nxt = wrap(tmp_path, "true", [str(plugin)], "--grace", "3s")
    assert nxt.returncode == 2, nxt.stdout
    assert "self-healing did not help: attempt 1 at" in nxt.stdout
    assert "had not recovered by the end of its grace" in nxt.stdout


def test_after_a_reported_did_not_help_the_retry_stays_critical(tmp_path: Path) -> None:
    # The runner told Nagios CRITICAL "did not help" (a page): the next attempt is a retry,
    # CRITICAL, not a first attempt in WARNING that would page again when it fails.
    plugin, _ = toy(tmp_path)
    command_file = tmp_path / "nagios.cmd"
    command_file.touch()
    report = ("--nagios-cmd", str(command_file), "--nagios-host", "web1", "--nagios-service", "HTTP")
    first = wrap(tmp_path, "echo restarted", [str(plugin)], "--grace", "2s", "--cooldown", "1s", *report)
    assert first.returncode == 1 and "self-healing: started echo restarted (attempt 1/3)" in first.stdout, (
        first.stdout
    )
    settled(tmp_path, "not_recovered")
    settled(tmp_path, "reported")  # the verdict is journaled first, then reported
    assert ";web1;HTTP;2;TOY CRITICAL - self-healing did not help: " in command_file.read_text()
    assert read_record(tmp_path / "s", "toy")["did_not_help_shown"] is True
    time.sleep(1.1)  # the cooldown after attempt 1
    retry = wrap(tmp_path, "echo restarted", [str(plugin)], "--grace", "2s", "--cooldown", "1s", *report)
    assert retry.returncode == 2, retry.stdout
    assert "self-healing: retrying echo restarted (attempt 2/3)" in retry.stdout, retry.stdout
    # Attempt 1 exited 0: what it printed ("restarted") is not why it did not help.
    first_attempt = read_record(tmp_path / "s", "toy")["attempts"][0]  # type: ignore[index]
    assert first_attempt["number"] == 1 and first_attempt["reason"] is None, first_attempt


def test_a_failed_action_is_checked_once_and_not_recovered_at_once(tmp_path: Path) -> None:
    result = wrap(tmp_path, "false", [CHECK_DUMMY, "2", "still down"], "--grace", "1h")
    assert result.returncode == 1, result.stdout
    # Not a wait of one hour: a failed action has not helped already.
    event = settled(tmp_path, "not_recovered")
    assert event["checks"] == 1
    assert event["reason"] == "the check still says CRITICAL: CRITICAL: still down"


def test_a_fifo_nobody_reads_is_given_up_at_once_and_journaled(tmp_path: Path) -> None:
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    result = wrap(
        tmp_path, "true", [CHECK_DUMMY, "2", "down"], "--grace", "1s",
        "--nagios-cmd", str(fifo), "--nagios-host", "web1", "--nagios-service", "HTTP",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    (reported,) = wait_for(lambda: journal_events(tmp_path / "s", "reported", in_flight=True), 30)
    assert reported["state"] == 2
    assert reported["reason"] == f"command file {fifo}: nobody is reading it (is Nagios running?)"
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # left as it was


def test_a_full_fifo_is_waited_for_only_up_to_the_bound(tmp_path: Path) -> None:
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a Nagios that reads nothing
    try:
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            while True:
                os.write(writer, b"x" * 4096)
        except BlockingIOError:
            pass
        finally:
            os.close(writer)
        why = write_line(str(fifo), b"[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;ok\n", 0.3)
        assert why == f"command file {fifo}: full for 0.3s (is Nagios reading it?)"
    finally:
        os.close(reader)


def test_only_a_fifo_or_a_regular_file_is_written(tmp_path: Path) -> None:
    assert write_line("/dev/null", b"x\n", 1) == "command file /dev/null: not a FIFO or a regular file"
    assert write_line(str(tmp_path), b"x\n", 1) == f"command file {tmp_path}: not a FIFO or a regular file"
    missing = tmp_path / "rw" / "nagios.cmd"
    assert write_line(str(missing), b"x\n", 1) == f"command file {missing}: No such file or directory"
    assert not missing.exists()  # never created: a file Nagios does not read would swallow results


def test_bad_report_flags_are_one_unknown_line(tmp_path: Path) -> None:
    cases = [
        (["--nagios-cmd", "/x", "--nagios-host", "h", "--nagios-service", "s"], "needs --verify"),
        (["--verify", "--nagios-cmd", "/x"], "--nagios-cmd goes with --nagios-cmd, --nagios-host and"),
        (["--verify", "--nagios-cmd", "/x", "--nagios-host", "a;b", "--nagios-service", "s"], "bad --nagios-host"),
        (["--verify", "--nagios-cmd", "x", "--nagios-host", "h", "--nagios-service", "s"], "bad --nagios-cmd"),
    ]  # fmt: skip
    for flags, said in cases:
        result = run_selfheal(
            "wrap", "--heal", "true", "--state-dir", tmp_path / "s", *flags, "--", CHECK_DUMMY, "0", "ok"
        )
        assert result.returncode == 3, result.stdout
        assert len(result.stdout.splitlines()) == 1 and said in result.stdout, (flags, result.stdout)
        assert_no_traceback(result.stdout, result.stderr)


def config(tmp_path: Path, check: str) -> Path:
    path = tmp_path / "selfheal.yaml"
    path.write_text(
        f"state_dir: {tmp_path / 's'}\nchecks:\n  web:\n    plugin: {CHECK_DUMMY} 2 down\n{check}"
    )
    return path


def icinga_check(timeout: str) -> str:
    """The check's heal, verify and an Icinga report_to with this timeout (line 14 of ``config``)."""
    return (
        "    heal: 'true'\n    verify: true\n    report_to:\n      icinga:\n"
        "        url: https://icinga:5665\n        host: web1\n        service: HTTP\n"
        f"        user: selfheal\n        password_file: /etc/selfheal/icinga.pw\n        timeout: {timeout}\n"
    )


def test_bad_verify_and_report_to_values_are_named_at_their_line(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "    heal: 'true'\n"
        "    verify: yes please\n"  # line 6
        "    report_to:\n"  # line 7
        "      nagios: {command_file: /rw/nagios.cmd, host: 'web1;web2', service: HTTP}\n"  # line 8
        "      pager: {to: me}\n",  # line 9
    )
    result = run_selfheal("validate", "-c", path)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert f"{path}:6: check 'web': verify must be true or false" in said, said
    # verify did not read as true: report_to needs it.
    assert f"{path}:7: check 'web': report_to reports the re-check's result: it needs 'verify: true'" in said
    path = config(
        tmp_path,
        "    heal: 'true'\n    verify: true\n    report_to:\n"
        "      nagios: {command_file: /rw/nagios.cmd, host: 'web1;web2', service: HTTP}\n"  # line 8
        "      pager: {to: me}\n"  # line 9
        "  db:\n    plugin: true\n    heal: 'true'\n    verify: true\n    report_to:\n"
        "      nagios:\n        command_file: relative/nagios.cmd\n"  # line 16
        "        host: db1\n        service: DB\n        colour: red\n",  # line 19
    )
    result = run_selfheal("validate", "-c", path)
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{path}:8: check 'web': report_to.nagios.host: must not hold ';'" in said, said
    assert f"{path}:9: check 'web': report_to: unknown target 'pager' (known: icinga, nagios)" in said, said
    assert f"{path}:19: check 'db': report_to.nagios.colour: unknown key" in said, said
    # run stops at the first, as one UNKNOWN line.
    run = run_selfheal("run", "web", "-c", path)
    assert run.returncode == 3 and run.stdout.count("\n") == 1, run.stdout
    assert f"{path}:8:" in run.stdout
    assert_no_traceback(run.stdout, run.stderr)
    # An Icinga target's problem, named once, at its key's own line.
    icinga = config(tmp_path, icinga_check("soon"))  # the timeout on line 14
    said = run_selfheal("validate", "-c", icinga).stdout
    assert f"{icinga}:14: check 'web': report_to.icinga.timeout: " in said, said
    assert said.count("report_to.icinga") == 1, said


def test_a_configured_check_verifies_and_reports(tmp_path: Path) -> None:
    report = tmp_path / "nagios.cmd"
    report.touch()
    path = config(
        tmp_path,
        "    heal: 'true'\n    grace: 1s\n    verify: true\n    report_to:\n"
        f"      nagios: {{command_file: {report}, host: web1, service: HTTP}}\n",
    )
    result = run_selfheal("run", "web", "-c", path)
    assert result.returncode == 1, result.stdout
    event = settled(tmp_path, "not_recovered")
    assert event["reason"] == "the check still says CRITICAL: CRITICAL: down"
    wait_for(lambda: journal_events(tmp_path / "s", "reported", in_flight=True), 10)
    assert ";web1;HTTP;2;WEB CRITICAL - self-healing did not help: true (attempt 1)" in report.read_text()
    # The config cache keeps verify and report_to, and checks them when it reads them back.
    check = loader.load(str(path)).check("web")
    plain = check.to_json()
    back = CheckConfig.from_json(plain)
    assert back.verify is True and back.report_to == check.report_to
    assert back.report_to == {"nagios": {"command_file": str(report), "host": "web1", "service": "HTTP"}}
    with pytest.raises(ValueError, match="report_to needs verify"):
        CheckConfig.from_json({**plain, "verify": False})
    with pytest.raises(ValueError, match="report_to must map"):
        CheckConfig.from_json({**plain, "report_to": {"nagios": "x"}})


def test_a_built_in_check_verifies_with_its_own_arguments(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = Path(sys.executable).parent / "check_selfheal_file_age"
    result = subprocess.run(
        [
            str(script), "--name", "fa", "--heal", f"touch {marker}", "--verify", "--grace", "20s",
            "--state-dir", str(tmp_path / "s"), "-f", str(marker), "-t", "7",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "self-healing: started" in result.stdout, result.stdout
    event = settled(tmp_path, "verified")
    assert event["checks"] == 1 and event["attempt"] == 1


def test_an_icinga_timeout_may_be_written_as_a_duration(tmp_path: Path) -> None:
    path = config(tmp_path, icinga_check("20s"))
    assert run_selfheal("validate", "-c", path).returncode == 0
    # Kept as the target took it: the runner's unit time limit adds these seconds.
    assert loader.load(str(path)).check("web").report_to["icinga"]["timeout"] == 20.0  # type: ignore[index]

"""Metrics, syslog and the on_event hook, from real ``selfheal run`` heals.

- the plugin line carries ``selfheal_heals_total`` as a counter;
- ``metrics:`` writes a Prometheus textfile that ``prometheus_client``'s
  own parser reads, with figures that match the journal;
- ``syslog:`` sends every journal event as a datagram to a Unix socket the
  test binds itself (the address is configurable for this);
- ``on_event:`` runs a real script, detached, with the event on stdin and
  in ``SELFHEAL_*`` variables.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    CHECK_DUMMY,
    assert_no_traceback,
    clean_env,
    journal_events,
    read_record,
    run_selfheal,
    selfheal_argv,
    wait_for,
    write_script,
)
from prometheus_client.parser import text_string_to_metric_families

from selfheal.cli import main


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path: a Unix socket's path must fit in 108 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="sh-out-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def config(directory: Path, checks: dict[str, dict[str, object]], **top: object) -> Path:
    path = directory / "selfheal.yaml"
    body = {"state_dir": str(directory / "state"), **top, "checks": checks}
    path.write_text(json.dumps(body, indent=2))
    return path


def check(code: int, heal: list[str]) -> dict[str, object]:
    return {"plugin": [CHECK_DUMMY, str(code), f"state {code}"], "heal": heal, "grace": 0, "cooldown": "1h"}


def run(path: Path, name: str) -> str:
    result = run_selfheal("run", name, "-c", path)
    assert_no_traceback(result.stdout, result.stderr)
    return result.stdout


def ended(state: Path, name: str) -> None:
    wait_for(
        lambda: [e for e in journal_events(state, "action_end", in_flight=True) if e["check"] == name],
        20,
        what=f"{name}'s heal",
    )


def metrics(path: Path) -> dict[tuple[str, str], float]:
    families = text_string_to_metric_families(path.read_text())
    return {(s.name, s.labels["check"]): s.value for family in families for s in family.samples}


def wait_metric(path: Path, key: tuple[str, str], value: float) -> None:
    wait_for(lambda: path.exists() and metrics(path).get(key) == value, 20, what=f"{key} = {value}")


def test_prometheus_textfile(short_dir: Path) -> None:
    prom_dir = short_dir / "textfile"
    prom_dir.mkdir()
    prom = prom_dir / "selfheal.prom"
    path = config(
        short_dir,
        {"web": check(2, ["true"]), "db": check(2, ["sh", "-c", "exit 3"])},
        metrics=str(prom),
    )
    state = short_dir / "state"
    assert "self-healing: started" in run(path, "web")
    assert run(path, "db").rstrip().endswith("selfheal_heals_total=1c;;;0")
    # Each runner rewrites the file after journaling its heal's end.
    wait_metric(prom, ("selfheal_heals_succeeded_total", "web"), 1)
    wait_metric(prom, ("selfheal_heals_failed_total", "db"), 1)
    values = metrics(prom)
    web, db = read_record(state, "web"), read_record(state, "db")
    assert values[("selfheal_heals_started_total", "web")] == 1
    assert values[("selfheal_heals_succeeded_total", "web")] == 1
    assert values[("selfheal_heals_failed_total", "web")] == 0
    assert values[("selfheal_heals_started_total", "db")] == 1
    assert values[("selfheal_heals_failed_total", "db")] == 1
    assert values[("selfheal_heals_timed_out_total", "db")] == 0
    assert values[("selfheal_gave_up_total", "db")] == 0
    assert values[("selfheal_last_attempt_timestamp_seconds", "web")] == pytest.approx(
        web["attempts"][0]["started"], abs=0.001
    )
    assert values[("selfheal_paused", "db")] == 0
    # A pause is journaled, and the journal's outputs rewrite the file.
    out = io.StringIO()
    assert main(["pause", "db", "--for", "1h", "-c", str(path)], env={}, stdout=out) == 0, out.getvalue()
    values = metrics(prom)
    assert values[("selfheal_paused", "db")] == 1
    assert values[("selfheal_paused_until_timestamp_seconds", "db")] == pytest.approx(
        read_record(state, "db")["paused_until"], abs=0.001
    )
    assert db["heals_failed"] == 1
    # Atomic: only the finished file is left, no temp file beside it.
    assert sorted(p.name for p in prom_dir.iterdir()) == ["selfheal.prom"]
    assert oct(prom.stat().st_mode & 0o777) == "0o644"


def test_perfdata_counts_heals(short_dir: Path) -> None:
    path = config(short_dir, {"web": check(2, ["true"])})
    first = run(path, "web")
    assert first.rstrip().endswith("selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0")
    ended(short_dir / "state", "web")
    out = io.StringIO()
    main(["reset", "web", "-c", str(path)], env={}, stdout=out)
    second = run(path, "web")  # attempt 1 again after the reset, but heal number 2
    assert second.rstrip().endswith("selfheal_attempts=1;;;0 selfheal_heals_total=2c;;;0")


def test_syslog_datagrams(short_dir: Path) -> None:
    address = short_dir / "log.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(20)
    try:
        path = config(
            short_dir,
            {"db": check(2, ["sh", "-c", "echo no luck; exit 3"])},
            syslog={"address": str(address)},
        )
        run(path, "db")
        received = [listener.recv(65536).decode() for _ in range(2)]
    finally:
        listener.close()
    pattern = re.compile(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d selfheal\[(\d+)\]: db (\w+): (.*) (\{.*\})$")
    parsed = [pattern.match(message) for message in received]
    assert all(parsed), received
    kinds = {m.group(3): m for m in parsed}  # type: ignore[union-attr]
    assert set(kinds) == {"attempt", "action_end"}
    # facility daemon (3): info (6) for the attempt, warning (4) for the failed heal.
    assert int(kinds["attempt"].group(1)) == 3 * 8 + 6
    assert int(kinds["action_end"].group(1)) == 3 * 8 + 4
    events = {e["event"]: e for e in journal_events(short_dir / "state")}
    for kind, match in kinds.items():
        assert json.loads(match.group(5)) == events[kind]
    assert "exited 3" in kinds["action_end"].group(4) and "(no luck)" in kinds["action_end"].group(4)


def test_on_event_hook_gets_the_event(short_dir: Path) -> None:
    got = short_dir / "got"
    got.mkdir()
    hook = write_script(
        short_dir / "hook",
        # Written aside, then renamed: the test never reads half a file.
        f'out="{got}/$SELFHEAL_EVENT"\n'
        'cat > "$out.json.part"\n'
        'env | grep ^SELFHEAL_ | sort > "$out.env.part"\n'
        'mv "$out.json.part" "$out.json"\n'
        'mv "$out.env.part" "$out.env"\n',
    )
    path = config(
        short_dir,
        {"web": check(2, ["true"]), "ok": check(0, ["true"])},
        on_event={"command": [str(hook)], "events": ["attempt", "action_end"]},
    )
    assert "self-healing: started" in run(path, "web")
    wait_for(lambda: len(list(got.glob("*.env"))) == 2, 20, what="the hook to run for both events")
    assert sorted(p.name for p in got.iterdir()) == [
        "action_end.env",
        "action_end.json",
        "attempt.env",
        "attempt.json",
    ]
    events = {e["event"]: e for e in journal_events(short_dir / "state")}
    assert set(events) == {"attempt", "action_end"}
    for kind, event in events.items():
        assert json.loads((got / f"{kind}.json").read_text()) == event
    env = dict(line.split("=", 1) for line in (got / "attempt.env").read_text().splitlines())
    assert env["SELFHEAL_EVENT"] == "attempt"
    assert env["SELFHEAL_CHECK"] == "web"
    assert env["SELFHEAL_ATTEMPT"] == "1"
    assert env["SELFHEAL_ARGV"] == "true"
    assert env["SELFHEAL_PID"] == str(events["attempt"]["pid"])
    assert env["SELFHEAL_TS"] == events["attempt"]["ts"]
    end = dict(line.split("=", 1) for line in (got / "action_end.env").read_text().splitlines())
    assert (end["SELFHEAL_EXIT_CODE"], end["SELFHEAL_TIMED_OUT"]) == ("0", "0")


def test_a_broken_hook_does_not_change_the_result(short_dir: Path) -> None:
    path = config(short_dir, {"web": check(2, ["true"])}, on_event={"command": ["/nonexistent/notify"]})
    output = run(path, "web")
    assert output.startswith("WEB WARNING - CRITICAL: state 2; self-healing: started true (attempt 1/3)")


@pytest.mark.parametrize(
    ("top", "message", "located_at"),
    [
        ({"syslog": 5}, "syslog must be true, false or a mapping", '"syslog"'),
        ({"syslog": {"facility": "nope"}}, "syslog: facility must be one of", '"syslog"'),
        ({"metrics": "relative.prom"}, "metrics must be the absolute path of a .prom file", '"metrics"'),
        ({"on_event": {"events": ["attempt"]}}, "on_event needs a command:", '"on_event"'),
        (
            {"on_event": {"command": "notify", "events": ["boom"]}},
            "on_event: events must be a list of",
            '"events"',
        ),
    ],
)
def test_bad_output_settings_are_located(
    short_dir: Path, top: dict[str, object], message: str, located_at: str
) -> None:
    path = config(short_dir, {"web": check(0, ["true"])}, **top)
    result = run_selfheal("validate", "-c", path)
    assert result.returncode == 1
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if located_at in text)
    assert result.stdout.startswith(f"{path}:{line}: {message}"), result.stdout


def test_wrap_uses_the_config_files_outputs(short_dir: Path) -> None:
    """A wrap check has no -c; it uses the config file's outputs when one exists."""
    address = short_dir / "log.sock"
    prom_dir = short_dir / "textfile"
    prom_dir.mkdir()
    path = config(short_dir, {}, syslog={"address": str(address)}, metrics=str(prom_dir / "selfheal.prom"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(20)
    env = clean_env(SELFHEAL_CONFIG=str(path))

    def wrap(name: str, state: Path) -> str:
        argv = selfheal_argv(
            "wrap", "--name", name, "--heal", "true", "--state-dir", state, "--", CHECK_DUMMY, 2
        )
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
        assert_no_traceback(result.stdout, result.stderr)
        return result.stdout

    try:
        assert "self-healing: started" in wrap("web", short_dir / "state")  # the config's state dir
        messages = [listener.recv(65536).decode() for _ in range(2)]
        assert [m.split("]: web ")[1].split(":")[0] for m in messages] == ["attempt", "action_end"]
        wait_metric(prom_dir / "selfheal.prom", ("selfheal_heals_succeeded_total", "web"), 1)
        assert metrics(prom_dir / "selfheal.prom")[("selfheal_heals_started_total", "web")] == 1
        # Another state dir: syslog still, but the metrics file (which lists
        # the config's state dir) is left alone.
        before = (prom_dir / "selfheal.prom").read_text()
        assert "self-healing: started" in wrap("other", short_dir / "elsewhere")
        assert "other attempt:" in listener.recv(65536).decode()
        ended(short_dir / "elsewhere", "other")
        assert (prom_dir / "selfheal.prom").read_text() == before
    finally:
        listener.close()

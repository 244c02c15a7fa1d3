"""verify and ``report_to: {icinga: ...}`` through the whole product, into a real Icinga 2.

``selfheal run NAME -c CONFIG`` runs as a plugin would (the venv's
``selfheal``, a process of its own): the check is CRITICAL, so it starts
the heal detached and says WARNING "self-healing". The heal's runner then
re-checks and posts the result to Icinga 2's API (``e2e.icinga``, on
loopback) with a comment naming the heal. What arrived is read back from
Icinga's API, and the journal says what the runner did.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_no_traceback, clean_env, journal_events, wait_for, write_script

from e2e.icinga import HOST, SERVICE, Icinga, running_icinga

#: Seconds the runner re-checks after the heal before it gives up: short, so a failed heal ends soon.
GRACE = 3
#: How long the runner may take to report (heal, re-checks, grace, the report's own timeout).
ARRIVAL = 20.0


@pytest.fixture(scope="module")
def icinga() -> Iterator[Icinga]:
    with running_icinga("selfheal-e2e-icinga-verify-") as daemon:
        yield daemon


def setup(tmp_path: Path, icinga: Icinga, heal_body: str) -> tuple[Path, Path, Path]:
    """A check that is CRITICAL until a marker file exists, its heal, and the config: (config, heal, state)."""
    marker, state = tmp_path / "up", tmp_path / "state"
    plugin = write_script(
        tmp_path / "check_web",
        f'if [ -e {marker} ]; then echo "HTTP OK - 200 in 0.001s | time=0.001s;;;0"; exit 0; fi\n'
        'echo "connect to 127.0.0.1 port 80 failed: Connection refused"\nexit 2\n',
    )
    # A name of its own, so the comment that names it is this test's.
    heal = write_script(tmp_path / f"restart-web-{secrets.token_hex(3)}", heal_body.format(marker=marker))
    target = icinga.target().to_json()
    del target["timeout"]
    settings = "\n".join(f"        {key}: {value}" for key, value in target.items())
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"state_dir: {state}\n"
        "checks:\n"
        "  web:\n"
        f"    plugin: [{plugin}]\n"
        f"    heal: {{command: [{heal}]}}\n"
        "    cooldown: 5m\n"
        "    action_timeout: 20s\n"
        f"    grace: {GRACE}s\n"
        "    verify: true\n"
        "    report_to:\n"
        "      icinga:\n"
        f"{settings}\n"
    )
    return config, heal, state


def run_as_a_plugin(config: Path) -> subprocess.CompletedProcess[str]:
    """``selfheal run web -c CONFIG`` from the venv, as Nagios or NRPE would run it."""
    selfheal = Path(sys.executable).parent / "selfheal"
    assert selfheal.exists(), f"{selfheal} is missing: pip install -e . in the venv"
    return subprocess.run(
        [str(selfheal), "run", "web", "-c", str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )


def last_result(icinga: Icinga) -> dict[str, object]:
    result = icinga.service()["last_check_result"]
    return result if isinstance(result, dict) else {}


def arrived(icinga: Icinga, state: int, words: str) -> dict[str, object]:
    """Icinga's last check result once it has ``state`` and ``words`` in its output (bounded wait)."""

    def there() -> dict[str, object] | None:
        result = last_result(icinga)
        return result if result.get("state") == state and words in str(result.get("output")) else None

    found: dict[str, object] = wait_for(
        there, ARRIVAL, interval=0.2, what=f"state {state} with {words!r} in Icinga's {HOST}!{SERVICE}"
    )
    return found


def journaled(state_dir: Path, kind: str) -> dict[str, object]:
    """The runner's one event of ``kind``, once it is in the journal (the runner runs detached)."""
    (event,) = wait_for(lambda: journal_events(state_dir, kind, in_flight=True), ARRIVAL, what=kind)
    return event  # type: ignore[no-any-return]


def comments_naming(icinga: Icinga, heal: Path) -> list[dict[str, object]]:
    return [c for c in icinga.comments() if str(heal) in str(c["text"])]


def heal_started(first: subprocess.CompletedProcess[str], heal: Path) -> None:
    """The plugin's answer: WARNING, self-healing started."""
    assert_no_traceback(first.stdout, first.stderr)
    assert first.returncode == 1, first
    assert first.stdout.startswith("WEB WARNING - "), first.stdout
    assert f"; self-healing: started {heal} (attempt 1/3)" in first.stdout.splitlines()[0], first.stdout


def test_a_heal_that_works_shows_ok_and_a_comment_in_icinga(tmp_path: Path, icinga: Icinga) -> None:
    config, heal, state = setup(tmp_path, icinga, "sleep 1\ntouch {marker}\n")
    heal_started(run_as_a_plugin(config), heal)

    # This heal's name in the words waited for: a result left by another test does not count.
    result = arrived(icinga, 0, f"(healed by selfheal: {heal}")
    assert str(result["output"]).startswith(
        f"WEB OK - HTTP OK - 200 in 0.001s (healed by selfheal: {heal}"
    ), result
    assert result["performance_data"] == ["time=0.001s;;;0"], result
    (comment,) = wait_for(lambda: comments_naming(icinga, heal), ARRIVAL, what="the comment naming the heal")
    assert comment["author"] == "selfheal", comment
    assert str(comment["text"]).startswith(f"healed by selfheal: {heal}"), comment
    assert (comment["host_name"], comment["service_name"]) == (HOST, SERVICE), comment

    verified = journaled(state, "verified")
    reported = journaled(state, "reported")
    assert journal_events(state, "not_recovered") == []
    assert verified["check"] == "web" and isinstance(verified["time_to_recover"], float), verified
    assert (reported["to"], reported["state"]) == ("icinga", 0), reported
    assert "reason" not in reported, reported


def test_a_heal_that_does_not_help_shows_critical_in_icinga(tmp_path: Path, icinga: Icinga) -> None:
    # It exits 0 and changes nothing: only the re-checks over the grace period can tell.
    config, heal, state = setup(tmp_path, icinga, "echo restarted\n")
    heal_started(run_as_a_plugin(config), heal)

    result = arrived(icinga, 2, f"self-healing did not help: {heal}")
    assert str(result["output"]).startswith(f"WEB CRITICAL - self-healing did not help: {heal}"), result
    assert "the check still says CRITICAL: connect to 127.0.0.1 port 80 failed" in str(result["output"])
    (comment,) = wait_for(lambda: comments_naming(icinga, heal), ARRIVAL, what="the comment naming the heal")
    assert comment["author"] == "selfheal" and "did not help" in str(comment["text"]), comment

    gone_bad = journaled(state, "not_recovered")
    reported = journaled(state, "reported")
    assert journal_events(state, "verified") == []
    # The action ended well, so the runner re-checked for the whole grace period, more than once.
    assert isinstance(gone_bad["checks"], int) and gone_bad["checks"] > 1, gone_bad
    assert (reported["to"], reported["state"]) == ("icinga", 2), reported
    assert "reason" not in reported, reported

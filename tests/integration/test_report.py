"""``selfheal report``: exact figures on a journal from a known sequence.

The journal is written by the real engine (``Healer.handle``) with real,
detached heal runners; only the clock is injected, so a sequence spread
over several days runs in seconds. The figures are then worked out by
hand from the sequence and compared exactly. The HTML page is rendered in
headless Chromium.
"""

from __future__ import annotations

import calendar
import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import assert_no_traceback, journal_events, read_record, run_selfheal, wait_for

from selfheal.core import states
from selfheal.core.actions import Command
from selfheal.core.policy import Policy
from selfheal.engine import Healer

DAY = 86400
#: Midnight UTC four days ago: day 1 of the sequence, inside --since 30d.
DAY1 = (int(time.time()) // DAY - 4) * DAY


def at(day: int, hhmm: str) -> float:
    hours, minutes = hhmm.split(":")
    return DAY1 + (day - 1) * DAY + int(hours) * 3600 + int(minutes) * 60


def date(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(DAY1 + (day - 1) * DAY))


class Sequence:
    """One check driven through the engine at chosen times."""

    def __init__(self, state: Path, name: str, heal: list[str], **policy: object) -> None:
        self.state = state
        self.name = name
        self.now = 0.0
        self.healer = Healer(name, Command(heal), Policy(**policy), str(state), clock=lambda: self.now)

    def check(self, when: float, state: int) -> int:
        """One check result at ``when``; waits for a heal it starts to end."""
        self.now = when
        ends = len(journal_events(self.state, "action_end"))
        outcome = self.healer.handle(state)
        if outcome.decision.row == 9:
            wait_for(
                lambda: len(journal_events(self.state, "action_end", in_flight=True)) > ends,
                20,
                what="the heal to end",
            )
            pid = read_record(self.state, self.name)["attempts"][-1]["pid"]
            try:
                os.waitpid(pid, 0)  # our child: reap it, or it lingers as a zombie
            except ChildProcessError:
                pass
        return outcome.decision.row


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("report") / "state"
    policy = {"cooldown": "10m", "backoff": 1, "grace": "1m", "window": "6h", "reset_after": "1h"}
    web = Sequence(state, "web", ["true"], max_attempts=3, **policy)
    rows = []
    for day, broken, fixed in [
        (1, "10:00", "10:02"),  # recovers 2m after the heal
        (1, "14:00", "14:05"),  # 5m
        (2, "09:00", "09:30"),  # 30m
        (2, "12:00", "12:01"),  # 1m
        (2, "15:00", "15:10"),  # 10m
    ]:
        rows.append(web.check(at(day, broken), states.CRITICAL))
        rows.append(web.check(at(day, fixed), states.OK))
    assert rows == [9, 1] * 5
    db = Sequence(state, "db", ["sh", "-c", "echo no luck; exit 1"], max_attempts=2, **policy)
    # The runner's end is stamped with the real time, which is in the fake
    # clock's future: the next decision pulls it back to its own "now".
    assert [
        db.check(at(1, "10:00"), states.CRITICAL),  # attempt 1, fails
        db.check(at(1, "10:05"), states.CRITICAL),  # it exited 1: did not help, at once (no grace)
        db.check(at(1, "10:07"), states.CRITICAL),  # did not help: cooldown until 10:15
        db.check(at(1, "10:16"), states.CRITICAL),  # attempt 2, fails
        db.check(at(1, "10:20"), states.CRITICAL),  # gave up at once: attempt 2 of 2 failed
        db.check(at(1, "10:30"), states.CRITICAL),  # still gave up
        db.check(at(3, "09:00"), states.OK),  # fixed by a human: not a heal's success
    ] == [9, 8, 8, 9, 7, 7, 1]
    return state


EXPECTED = {
    "web": {
        "rank": 1,
        "name": "web",
        "heals_started": 5,
        "heals_recovered": 5,
        "success_rate": 1.0,
        "episodes": {"total": 5, "recovered": 5, "gave_up": 0, "open": 0},
        "hosts": 1,
        "recovered_after_gave_up": 0,
        "time_to_recover": {"count": 5, "median": 300.0, "worst": 1800.0},
        "gave_up": 0,
        "actions": {"succeeded": 5, "failed": 0, "timed_out": 0, "lost": 0},
        "per_day": {date(1): 2, date(2): 3},
        "resets": 0,
        "pauses": 0,
    },
    "db": {
        "rank": 2,
        "name": "db",
        "heals_started": 2,
        "heals_recovered": 0,
        "success_rate": 0.0,
        "episodes": {"total": 1, "recovered": 0, "gave_up": 1, "open": 0},
        "hosts": 1,
        "recovered_after_gave_up": 1,
        "time_to_recover": {"count": 0, "median": None, "worst": None},
        "gave_up": 1,
        "actions": {"succeeded": 0, "failed": 2, "timed_out": 0, "lost": 0},
        "per_day": {date(1): 2},
        "resets": 0,
        "pauses": 0,
    },
}


def report(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_selfheal("report", "--state-dir", state, *args)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout
    return result


def test_report_json_figures_are_exact(journal: Path) -> None:
    data = json.loads(report(journal, "--format", "json").stdout)
    checks = {c["name"]: c for c in data["checks"]}
    assert [c["name"] for c in data["checks"]] == ["web", "db"]  # ranked by heals
    for name, expected in EXPECTED.items():
        got = dict(checks[name])
        busiest = got.pop("busiest_day")
        assert got == expected, name
        assert busiest == {"web": {"date": date(2), "heals": 3}, "db": {"date": date(1), "heals": 2}}[name]
    # By episode (issue 15): web's 5 incidents recovered, db's one gave up after
    # 2 heals: 5 of 6 episodes, not 5 recoveries of 7 heals.
    assert data["totals"] == {
        "heals_started": 7,
        "heals_recovered": 5,
        "success_rate": round(5 / 6, 4),
        "episodes": 6,
        "episodes_gave_up": 1,
        "episodes_open": 0,
        "gave_up": 1,
    }
    assert data["rate_basis"] == "episodes recovered by healing / episodes that ended (recovered or gave up)"
    assert data["days"] == [date(1), date(2)]
    assert data["skipped"] == 0
    # The same numbers as the journal and status say.
    assert len(journal_events(journal, "attempt")) == 7
    status = json.loads(run_selfheal("status", "--state-dir", journal, "--json").stdout)
    assert {c["name"]: c["heals_total"] for c in status["checks"]} == {"web": 5, "db": 2}


def test_report_text(journal: Path) -> None:
    lines = report(journal).stdout.splitlines()
    # Issue 15: an EPISODES column, and the rate by episode (83%: 5 of 6), said in words.
    assert lines[1].split() == [
        "RANK", "CHECK", "HEALS", "EPISODES", "RECOVERED", "RATE", "MEDIAN", "TTR", "WORST", "TTR", "GAVE", "UP",
        "BUSIEST", "DAY",
    ]  # fmt: skip
    assert lines[2].split() == ["1", "web", "5", "5", "5", "100%", "5m", "30m", "0", date(2), "(3)"]
    assert lines[3].split() == ["2", "db", "2", "1", "0", "0%", "-", "-", "1", date(1), "(2)"]
    assert lines[4].split() == ["total", "7", "6", "5", "83%", "1"]
    assert lines[5].startswith(
        "Rate: episodes recovered by healing / episodes that ended (recovered or gave up)."
    )
    assert "6 in this period, 0 still open" in lines[5]


def test_report_since_narrows_the_period(journal: Path) -> None:
    # Day 3 onwards holds only db's recovery (and the runners' action_end
    # events, which are stamped with the real time).
    hours = (time.time() - at(3, "00:00")) / 3600
    data = json.loads(report(journal, "--since", f"{hours:.3f}h", "--json").stdout)
    assert [(c["name"], c["heals_started"], c["recovered_after_gave_up"]) for c in data["checks"]] == [
        ("db", 0, 1),
        ("web", 0, 0),
    ]


#: Headless Chromium without any network traffic of its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=5000",
]


def render_in_chromium(page: Path, profile: Path, whole: bool = False) -> str:
    """The page's root element after its scripts ran, e.g. ``<html data-chart="ok">``, and its body
    up to the first script (``whole``: the whole DOM, scripts included)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is needed (tests/run.sh installs it)"
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    root = re.search(r"<html[^>]*>", result.stdout)
    assert root, f"chromium printed no page: {result.stderr[-2000:]}"
    if whole:
        return result.stdout[root.start() :]
    return root.group(0) + result.stdout[root.end() :].split("<script", 1)[0]


def test_report_html_is_self_contained_and_loads_in_chromium(journal: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    report(journal, "--format", "html", "-o", str(page))
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    # Issue 15 added the Episodes column (web: 5 heals, 5 episodes, 5 recovered).
    assert "<td>web</td><td>5</td><td>5</td><td>5</td><td>100%</td><td>5m</td><td>30m</td>" in html
    dom = render_in_chromium(page, tmp_path / "profile")
    root = dom.split(">", 1)[0]
    assert "data-error" not in root, root
    assert 'data-chart="ok"' in root
    # One bar per (check, day) with heals: web on days 1 and 2, db on day 1.
    assert 'data-bars="3"' in root
    assert f'data-check="web" data-day="{date(2)}" data-heals="3"' in dom


def test_report_html_marks_a_script_error(tmp_path: Path) -> None:
    """The counter-check: a broken page is caught by the same markers."""
    from selfheal.commands.report.html import render_html

    broken = render_html(
        {"checks": [], "days": None, "since": None, "until": "x", "journal": "j", "skipped": 0}
    )
    page = tmp_path / "broken.html"
    page.write_text(broken)
    root = render_in_chromium(page, tmp_path / "profile").split(">", 1)[0]
    assert "data-error=" in root and 'data-chart="ok"' not in root


def dom_rows(dom: str, table: str) -> list[list[str]]:
    """The cells of a table's body rows as the browser built them (text, entities as written)."""
    body = dom.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_report_html_shows_episodes_hosts_and_time_to_recover_in_chromium(
    journal: Path, tmp_path: Path
) -> None:
    """What a reader sees (issue 15): each episode, the hosts, the distribution, times to the second."""
    page = tmp_path / "report.html"
    report(journal, "--format", "html", "-o", str(page))
    dom = render_in_chromium(page, tmp_path / "profile")
    assert 'data-chart="ok"' in dom.split(">", 1)[0]
    host = os.uname().nodename
    second = r"\d\d:\d\d:\d\d"

    def started(day: int, hhmm: str) -> str:
        return f"{date(day)} {hhmm}:00"

    episodes = dom_rows(dom, "episodes")
    assert episodes == [  # newest first
        [started(2, "15:00"), host, "web", "1", "0", "-", "10m", "recovered"],
        [started(2, "12:00"), host, "web", "1", "0", "-", "1m", "recovered"],
        [started(2, "09:00"), host, "web", "1", "0", "-", "30m", "recovered"],
        [started(1, "14:00"), host, "web", "1", "0", "-", "5m", "recovered"],
        [started(1, "10:00"), host, "web", "1", "0", "-", "2m", "recovered"],
        [started(1, "10:00"), host, "db", "2", "1, 1", "no luck", "-", "gave up"],
    ]
    assert '<tr class="episode gave_up">' in dom
    assert dom_rows(dom, "hosts") == [[host, "2", "7", "6", "5", "83%", "5m", "30m", "1"]]
    assert re.search(
        r'id="rate">Success rate: <b>83%</b> of episodes \(5 recovered, 1 gave up, 0 open; 7 heals\)', dom
    )
    bars = dict(re.findall(r'class="ttr-bar" data-bucket="([^"]+)" data-episodes="(\d+)"', dom))
    assert bars == {
        "&lt; 1m": "0",
        "1-5m": "2",
        "5-15m": "2",
        "15-30m": "0",
        "30m-1h": "1",
        "1-6h": "0",
        "&gt; 6h": "0",
    }
    # The period, to the second.
    assert re.search(rf"{date(1)[:4]}-\d\d-\d\d {second} to \d{{4}}-\d\d-\d\d {second} UTC", dom)


HOSTILE = {
    "check": "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','check')\">",
    "host": "\"><script>document.documentElement.setAttribute('data-pwned','host')</script>",
    "reason": "</td></tr></table></script><script>document.documentElement.setAttribute('data-pwned','reason')</script>",
}


def test_a_hostile_journal_puts_no_script_on_the_page(tmp_path: Path) -> None:
    """Check names, hosts and heal output are shown as text; no script from a journal runs."""
    from selfheal.edges.journal import Journal

    journal = Journal(str(tmp_path / "journal.jsonl"), host=HOSTILE["host"])
    now = time.time() - 3600
    journal.write({"event": "attempt", "check": HOSTILE["check"], "attempt": 1, "argv": ["x"]}, now)
    journal.write(
        {
            "event": "action_end",
            "check": HOSTILE["check"],
            "attempt": 1,
            "exit_code": 1,
            "reason": HOSTILE["reason"],
        },
        now + 1,
    )
    journal.write({"event": "gave_up", "check": HOSTILE["check"], "attempt": 1}, now + 2)
    journal.close()
    page = tmp_path / "report.html"
    result = run_selfheal("report", "--format", "html", "-o", page, "--journal", tmp_path / "journal.jsonl")
    assert result.returncode == 0, result.stdout
    dom = render_in_chromium(page, tmp_path / "profile", whole=True)
    root = dom.split(">", 1)[0]
    assert "data-pwned" not in root and "data-error" not in root, root
    assert 'data-chart="ok"' in root  # the page's own script ran, its data intact
    assert dom.count("<script") == 2 and "<img" not in dom  # the report's data and its chart, nothing else
    (episode,) = dom_rows(dom, "episodes")
    assert episode[1:3] == [
        html.escape(HOSTILE["host"], quote=False),
        html.escape(HOSTILE["check"], quote=False),
    ]
    assert episode[5] == html.escape(HOSTILE["reason"], quote=False) and episode[7] == "gave up"


def test_report_bad_format() -> None:
    result = run_selfheal("report", "--format", "pdf")
    assert (
        result.returncode == 3
        and result.stdout == "selfheal report: bad --format: 'pdf' (use text, json or html)\n"
    )


def test_utc_days() -> None:
    assert calendar.timegm(time.strptime(date(1), "%Y-%m-%d")) == DAY1

"""``report`` and ``history`` over a fleet's journals (issue 15, point 7).

Three hosts' journals as ``rsync`` collects them (``hosts/HOST/...``),
written by selfheal's own journal writer (``Journal``, with each host's
name), rotated and gzipped as logrotate leaves them; one host's lines carry
no ``host`` (an older writer), so its host comes from its directory. The
figures are worked out by hand from the sequences and compared exactly,
whichever way the journals are named: a directory, a glob, repeated files.
Bad input (missing, empty, corrupt, a FIFO) is one line for a person.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_no_traceback, run_selfheal

from selfheal.cli import main
from selfheal.edges.journal import Journal, iso_utc

T0 = float(int(time.time()) - 5 * 86400)  # inside the default --since 30d; whole seconds
NGINX = ["systemctl", "restart", "nginx"]


def attempt(check: str, n: int, argv: list[str] = NGINX) -> dict[str, object]:
    return {"event": "attempt", "check": check, "attempt": n, "argv": argv, "pid": 4000 + n}


def end(
    check: str, n: int, code: int, reason: str | None = None, timed_out: bool = False
) -> dict[str, object]:
    event: dict[str, object] = {
        "event": "action_end", "check": check, "attempt": n, "argv": NGINX, "exit_code": code,
        "duration": 1.5, "timed_out": timed_out,
    }  # fmt: skip
    if reason:
        event["reason"] = reason
    return event


def recovered(check: str, n: int, ttr: float) -> dict[str, object]:
    return {"event": "recovered", "check": check, "attempt": n, "time_to_recover": ttr}


def write(path: Path, host: str, events: list[tuple[float, dict[str, object]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(str(path), host=host)
    for offset, event in events:
        journal.write(event, T0 + offset)
    journal.close()


def gzip_file(path: Path, to: Path) -> None:
    to.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    web1 = root / "hosts" / "web1"
    # web1: two nginx episodes, both recovered; spread over .2.gz, .1 and the live file.
    write(
        web1 / "old",
        "web1",
        [(0, attempt("nginx", 1)), (2, end("nginx", 1, 0)), (120, recovered("nginx", 1, 120))],
    )
    gzip_file(web1 / "old", web1 / "journal.jsonl.2.gz")
    write(web1 / "journal.jsonl.1", "web1", [
        (3600, attempt("nginx", 1)), (3602, end("nginx", 1, 1, "nginx: [emerg] bind() to 0.0.0.0:80 failed")),
    ])  # fmt: skip
    write(web1 / "journal.jsonl", "web1", [
        (4500, attempt("nginx", 2)), (4502, end("nginx", 2, 0)), (4500 + 30, {"event": "skipped_cooldown",
        "check": "nginx", "attempt": 2}), (4500 + 600, recovered("nginx", 2, 900)),
    ])  # fmt: skip
    # web2: nginx fails three ways and gives up (a human fixes it later); php-fpm's heal still runs.
    write(root / "hosts" / "web2" / "journal.jsonl", "web2", [
        (100, attempt("nginx", 1)), (101, end("nginx", 1, 1, "Job for nginx.service failed")),
        (1100, attempt("nginx", 2)), (1101, end("nginx", 2, 1, "<script>alert(1)</script> still failing")),
        (3100, attempt("nginx", 3)),
        (3220, end("nginx", 3, -9, "timed out after 120s; process tree killed", timed_out=True)),
        (3300, {"event": "gave_up", "check": "nginx", "attempt": 3, "reason": "3 attempts within 6h"}),
        (7200, {"event": "recovered", "check": "nginx", "attempt": 3}),
        (8000, attempt("php-fpm", 1, ["systemctl", "restart", "php-fpm"])),
    ])  # fmt: skip
    # db1: lines without "host", in a logrotate dateext file: the directory names the host.
    db1 = root / "hosts" / "db1"
    db1.mkdir(parents=True)
    lines = [
        {"ts": iso_utc(T0 + 200), **attempt("postgres", 1)},
        {"ts": iso_utc(T0 + 203), **end("postgres", 1, 0)},
        {"ts": iso_utc(T0 + 230), **recovered("postgres", 1, 30)},
    ]
    (db1 / "journal.jsonl-20261128.gz").write_bytes(
        gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode())
    )
    return root


def cli(*args: object, cwd: Path | None = None) -> tuple[int, str]:
    out = io.StringIO()
    saved = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        code = main([str(a) for a in args], env={"SELFHEAL_CONFIG": "/nonexistent/selfheal.yaml"}, stdout=out)
    finally:
        os.chdir(saved)
    assert_no_traceback(out.getvalue())
    return code, out.getvalue()


def report_json(*args: object, cwd: Path | None = None) -> dict[str, object]:
    code, text = cli("report", "--json", "--since", "all", *args, cwd=cwd)
    assert code == 0, text
    return json.loads(text)  # type: ignore[no-any-return]


def brief(rows: object) -> dict[str, tuple[object, ...]]:
    """name: (heals, episodes total/recovered/gave_up/open, rate, members)."""
    assert isinstance(rows, list)
    return {
        r["name"]: (
            r["heals_started"],
            tuple(r["episodes"].values()),
            r["success_rate"],
            r.get("hosts", r.get("checks")),
        )
        for r in rows
    }


EXPECTED_HOSTS = {
    "web2": (4, (2, 0, 1, 1), 0.0, 2),  # nginx gave up, php-fpm open: 0 of 1 ended
    "web1": (3, (2, 2, 0, 0), 1.0, 1),
    "db1": (1, (1, 1, 0, 0), 1.0, 1),
}
EXPECTED_CHECKS = {
    "nginx": (6, (3, 2, 1, 0), round(2 / 3, 4), 2),
    "php-fpm": (1, (1, 0, 0, 1), None, 1),
    "postgres": (1, (1, 1, 0, 0), 1.0, 1),
}


@pytest.mark.parametrize("jobs", ["1", "2", "3"])  # in this process, or in 2 or 3 workers
def test_a_directory_of_hosts_gives_per_host_and_per_check_figures(fleet: Path, jobs: str) -> None:
    data = report_json("--journal", fleet / "hosts", "--jobs", jobs)
    assert brief(data["hosts"]) == EXPECTED_HOSTS
    assert list(brief(data["hosts"])) == ["web2", "web1", "db1"]  # ranked by heals
    assert brief(data["checks"]) == EXPECTED_CHECKS
    assert data["totals"] == {
        "heals_started": 8, "heals_recovered": 3, "success_rate": 0.75, "episodes": 5, "episodes_gave_up": 1,
        "episodes_open": 1, "gave_up": 1,
    }  # fmt: skip
    nginx = next(c for c in data["checks"] if c["name"] == "nginx")  # type: ignore[union-attr]
    assert nginx["recovered_after_gave_up"] == 1 and nginx["time_to_recover"] == {
        "count": 2, "median": 510.0, "worst": 900.0,
    }  # fmt: skip
    assert data["skipped"] == 0 and data["unreadable"] == []


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_the_episodes_say_when_where_how_and_why(fleet: Path, jobs: str) -> None:
    data = report_json("--journal", fleet / "hosts", "--jobs", jobs)
    episodes = [
        (
            e["host"],
            e["check"],
            e["attempts"],
            e["exit_codes"],
            e["reason"],
            e["time_to_recover"],
            e["outcome"],
        )
        for e in data["episodes"]  # type: ignore[union-attr]
    ]
    assert episodes == [  # newest first
        ("web2", "php-fpm", 1, [None], None, None, "open"),
        ("web1", "nginx", 2, [1, 0], "nginx: [emerg] bind() to 0.0.0.0:80 failed", 900.0, "recovered"),
        ("db1", "postgres", 1, [0], None, 30.0, "recovered"),
        ("web2", "nginx", 3, [1, 1, "timeout"], "timed out after 120s; process tree killed", None, "gave_up"),
        ("web1", "nginx", 1, [0], None, 120.0, "recovered"),
    ]
    first = data["episodes"][-1]  # type: ignore[index]
    assert first["start"] == iso_utc(T0) and first["end"] == iso_utc(T0 + 120)
    distribution = {b["label"]: b["episodes"] for b in data["time_to_recover_distribution"]}  # type: ignore[union-attr]
    assert distribution == {"< 1m": 1, "1-5m": 1, "5-15m": 0, "15-30m": 1, "30m-1h": 0, "1-6h": 0, "> 6h": 0}


@pytest.mark.parametrize(
    "journals",
    [
        ["hosts/*/journal.jsonl*"],  # a quoted glob, expanded by selfheal; rotated copies matched too
        ["hosts/*"],
        ["hosts/web1/journal.jsonl", "hosts/web2/journal.jsonl", "hosts/db1"],
        ["hosts", "hosts/web1/journal.jsonl.1", "hosts/web2"],  # reached twice: read once
    ],
)
def test_globs_files_and_directories_give_the_same_figures(fleet: Path, journals: list[str]) -> None:
    args = [word for journal in journals for word in ("--journal", journal)]
    data = report_json(*args, cwd=fleet)
    assert brief(data["hosts"]) == EXPECTED_HOSTS
    assert brief(data["checks"]) == EXPECTED_CHECKS
    assert data["journals"] == journals


def test_repeated_journals_give_only_those_hosts(fleet: Path) -> None:
    data = report_json("--journal", fleet / "hosts/web1/journal.jsonl", "--journal", fleet / "hosts/db1")
    assert brief(data["hosts"]) == {k: v for k, v in EXPECTED_HOSTS.items() if k != "web2"}


def test_report_text_and_html_show_the_hosts(fleet: Path) -> None:
    code, text = cli("report", "--since", "all", "--journal", fleet / "hosts")
    assert code == 0
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["RANK", "CHECK", "HEALS", "EPISODES", "RECOVERED"]
    assert lines[2].split()[:6] == ["1", "nginx", "6", "3", "2", "67%"]
    assert lines[5].split() == ["total", "8", "5", "3", "75%", "1"]
    assert lines[6].startswith("Rate: episodes recovered by healing / episodes that ended")
    host_header = lines.index(next(line for line in lines if line.startswith("HOST")))
    assert [line.split()[:6] for line in lines[host_header + 1 :]] == [
        ["web2", "2", "4", "2", "0", "0%"],
        ["web1", "1", "3", "2", "2", "100%"],
        ["db1", "1", "1", "1", "1", "100%"],
    ]


def test_history_merges_the_hosts_by_time(fleet: Path) -> None:
    code, text = cli("history", "--json", "--journal", fleet / "hosts")
    assert code == 0
    data = json.loads(text)
    events = data["events"]
    assert len(events) == 3 + 2 + 4 + 9 + 3
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert {e["host"] for e in events} == {"web1", "web2", "db1"}
    assert all("_t" not in e for e in events)
    assert {Path(f).name for f in data["files"]} == {
        "journal.jsonl.2.gz", "journal.jsonl.1", "journal.jsonl", "journal.jsonl-20261128.gz",
    }  # fmt: skip
    assert len(data["files"]) == 5
    code, listing = cli("history", "nginx", "--journal", fleet / "hosts")
    lines = listing.splitlines()
    assert lines[0].split() == ["TIME", "HOST", "CHECK", "EVENT", "DETAILS"]
    assert len(lines) == 1 + 9 + 8  # web1 and web2, no php-fpm
    assert lines[1].split()[2:5] == ["web1", "nginx", "attempt"]


def test_a_file_named_for_its_host(tmp_path: Path) -> None:
    line = {"ts": iso_utc(T0), **attempt("nginx", 1)}
    (tmp_path / "web7.jsonl").write_text(json.dumps(line) + "\n")
    data = report_json("--journal", tmp_path / "web7.jsonl")
    assert [h["name"] for h in data["hosts"]] == ["web7"]  # type: ignore[union-attr]


# -- bad input: one line for a person --------------------------------------


def one_line(code: int, text: str, expected: str) -> None:
    assert code == 1, text
    assert text.count("\n") == 1 and text.startswith("selfheal "), text
    assert expected in text, text


@pytest.mark.parametrize("command", ["report", "history"])
def test_nothing_to_read_is_one_line(command: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a journal\n")
    for args, expected in [
        (["--journal", tmp_path / "missing.jsonl"], f"no journal at {tmp_path}/missing.jsonl"),
        (
            ["--journal", tmp_path / "empty"],
            f"no journal files (*.jsonl, rotated or gzipped) in {tmp_path}/empty",
        ),
        (["--journal", tmp_path / "other"], "no journal files"),
        (["--journal", f"{tmp_path}/nowhere/*/journal.jsonl"], "no journal matches"),
        (["--journal", ""], "--journal needs a file, a directory or a pattern"),
    ]:
        one_line(*cli(command, *args), expected)


def test_a_fifo_never_hangs_a_reader(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    (hosts / "web1").mkdir(parents=True)
    write(hosts / "web1" / "journal.jsonl", "web1", [(0, attempt("nginx", 1))])
    (hosts / "web2").mkdir()
    os.mkfifo(hosts / "web2" / "journal.jsonl")
    # Named directly: refused in one line.
    result = run_selfheal("report", "--journal", hosts / "web2" / "journal.jsonl", timeout=30)
    assert result.returncode == 1 and result.stdout.count("\n") == 1, result.stdout
    assert "is not a regular file" in result.stdout
    # Found in a directory, or by a glob: skipped and named; the rest is read.
    for command, where in (("report", hosts), ("history", hosts), ("report", f"{hosts}/*/journal.jsonl*")):
        result = run_selfheal(command, "--since", "all", "--journal", where, timeout=30)
        assert_no_traceback(result.stdout, result.stderr)
        assert result.returncode == 0, result.stdout
        assert f"(skipped journal {hosts}/web2/journal.jsonl is not a regular file)" in result.stdout, (
            result.stdout
        )
        assert "nginx" in result.stdout


def test_a_corrupt_gzip_is_counted_not_fatal(tmp_path: Path) -> None:
    write(tmp_path / "journal.jsonl", "web1", [(0, attempt("nginx", 1))])
    (tmp_path / "journal.jsonl.1.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not deflate data")
    (tmp_path / "journal.jsonl.2.gz").write_bytes(b"plain text, not gzip\n")
    data = report_json("--journal", tmp_path)
    assert data["skipped"] == 2 and data["totals"]["heals_started"] == 1  # type: ignore[index]
    code, text = cli("history", "--journal", tmp_path / "journal.jsonl")
    assert code == 0 and text.splitlines()[-1] == "(2 corrupt journal lines skipped)", text


# -- streaming, by structure (the figures are in benchmarks/report_stream.py) --


def test_the_report_consumes_events_one_at_a_time(fleet: Path) -> None:
    """Each event is counted before the next is read: nothing is gathered first."""
    from selfheal.commands.report.figures import Report
    from selfheal.edges import journals

    report = Report(None)
    counted_before: list[int] = []

    def stream() -> Iterator[dict[str, object]]:
        for source in journals.find([str(fleet / "hosts")]):
            for event in journals.events(source, journals.Reading()):
                counted_before.append(sum(t.figures.events for t in report.trackers.values()))
                yield event

    report.consume(stream())
    assert counted_before == list(range(21))


def test_history_lists_in_time_order_within_a_bounded_window() -> None:
    """Endless journals still yield their first events, in order: each is held only a window deep."""
    import itertools

    from selfheal.edges.journals import ORDER_WINDOW, merged, ordered

    def endless(offset: float) -> Iterator[tuple[float]]:
        return ((float(n % 7 + n) + offset,) for n in itertools.count())

    streams = [ordered(endless(0.0), ORDER_WINDOW), ordered(endless(0.5), ORDER_WINDOW)]
    first = list(itertools.islice(merged(streams), 3 * ORDER_WINDOW))
    times = [item[0] for item in first]
    assert times == sorted(times) and len(times) == 3 * ORDER_WINDOW


def raw_journal(path: Path, host: str, events: list[tuple[float, dict[str, object]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"ts": iso_utc(T0 + offset), "host": host, **event}) for offset, event in events]
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_episode_never_spans_two_journals(tmp_path: Path, jobs: str) -> None:
    """Two journals of one host and check (an archive beside the live one): each has its own episodes.

    Read one after the other, the first journal's open heal would have been
    closed by the second journal's first recovery, whichever came first.
    """
    raw_journal(tmp_path / "a" / "web1.jsonl", "web1", [(500, attempt("nginx", 1))])
    raw_journal(tmp_path / "b" / "web1.jsonl", "web1", [(0, recovered("nginx", 1, 30))])
    data = report_json("--journal", tmp_path / "a", "--journal", tmp_path / "b", "--jobs", jobs)
    assert brief(data["checks"]) == {"nginx": (1, (1, 0, 0, 1), None, 1)}  # one episode, still open
    assert [(e["host"], e["outcome"]) for e in data["episodes"]] == [("web1", "open")]  # type: ignore[union-attr]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_listed_episodes_are_the_newest_of_the_whole_fleet(tmp_path: Path, jobs: str) -> None:
    """The newest episodes are in the first journal read: the list still holds them, not the last journal's."""
    from selfheal.commands.report.figures import MAX_LISTED

    def episodes(start: float, count: int) -> list[tuple[float, dict[str, object]]]:
        events: list[tuple[float, dict[str, object]]] = []
        for n in range(count):
            events += [
                (start + 100 * n, attempt("nginx", 1)),
                (start + 100 * n + 10, recovered("nginx", 1, 10)),
            ]
        return events

    raw_journal(tmp_path / "hosts" / "a-new" / "journal.jsonl", "a-new", episodes(10_000, MAX_LISTED))
    raw_journal(tmp_path / "hosts" / "b-old" / "journal.jsonl", "b-old", episodes(0, 100))
    data = report_json("--journal", tmp_path / "hosts", "--jobs", jobs)
    listed = data["episodes"]
    assert isinstance(listed, list) and len(listed) == MAX_LISTED
    assert {e["host"] for e in listed} == {"a-new"}
    assert listed[0]["start"] == iso_utc(T0 + 10_000 + 100 * (MAX_LISTED - 1))
    assert data["episodes_not_listed"] == 100


def test_without_fork_the_journals_are_read_here(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit on processes or memory refuses the fork: the same figures, read in the command itself."""
    from selfheal.edges import spawner

    def refuse(*_: object) -> tuple[int, int]:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(spawner, "fork_worker", refuse)
    data = report_json("--journal", fleet / "hosts", "--jobs", "3")
    assert brief(data["hosts"]) == EXPECTED_HOSTS and brief(data["checks"]) == EXPECTED_CHECKS
    code, text = cli("history", "--journal", fleet / "hosts", "--jobs", "3")
    assert code == 0 and len(text.splitlines()) == 1 + 21, text

"""``history``'s text table over more rows than set its widths, read either way.

The columns are as wide as the header and the first ``WIDTH_ROWS`` rows
need; a later, longer cell pushes its line along rather than widening the
table. Unfiltered, those first rows are read before the rest and every
line is laid out where it is read (in the workers); with ``--since`` the
rows stream through the command. Both ways give the same table.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from conftest import run_selfheal

from selfheal.cli import main
from selfheal.commands.history import WIDTH_ROWS

NOW = time.time()
LONG = "a-check-name-longer-than-any-before-it"
#: The checks of the last row that sets the widths, and of the first that does not (see ``fleet``).
LAST_WIDE = "check-of-row-1000"
FIRST_NOT = "check-of-row-1001-is-longer"
ESCAPE = "\u001b[31mred"
HOSTS = ("web1", "web2", "db1")
CHECKS = ("nginx", "php-fpm", "db", "disk-tmp")


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three hosts' journals, 2,400 events in all, days ago; the last one's check and reason are odd."""
    root = tmp_path_factory.mktemp("table")
    start = NOW - 20 * 86400
    for number, host in enumerate(HOSTS):
        lines = []
        for index in range(800):
            event: dict[str, object] = {
                "ts": iso(start + index * 600 + number * 7.25),
                "host": host,
                "event": ("attempt", "action_end", "recovered", "skipped_cooldown")[index % 4],
                "check": CHECKS[index % len(CHECKS)],
                "attempt": index % 3 + 1,
                "exit_code": index % 2,
                "duration": 0.5 + index % 5,
            }
            # Rows interleave web1, web2, db1 by time: row 1000 is web1's 334th event, row 1001 web2's.
            if index == 333 and host in ("web1", "web2"):
                event.update(check=LAST_WIDE if host == "web1" else FIRST_NOT)
            if index == 799 and host == "db1":
                event.update(check=LONG, reason=ESCAPE)
            lines.append(json.dumps(event) + "\n")
        (root / host).mkdir()
        (root / host / "journal.jsonl").write_text("".join(lines))
    return root


def table(fleet: Path, *args: str) -> list[str]:
    result = run_selfheal("history", "--journal", fleet, *args, timeout=120)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout.splitlines()


def starts(header: str) -> list[int]:
    return [header.index(name) for name in ("TIME", "HOST", "CHECK", "EVENT", "DETAILS")]


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_laid_out_in_the_workers_or_streamed_the_table_is_the_same(fleet: Path, jobs: str) -> None:
    read_first = table(fleet, "--jobs", jobs)
    streamed = table(fleet, "--jobs", jobs, "--since", "30d")  # older than every event: a filter on
    assert read_first == streamed
    assert len(read_first) == 1 + 3 * 800


def test_the_first_rows_set_the_widths_and_a_later_longer_cell_pushes_its_line_along(fleet: Path) -> None:
    lines = table(fleet)
    offsets = starts(lines[0])
    first = lines[1 : WIDTH_ROWS + 1]
    for line in first:
        for offset in offsets[1:]:
            assert line[offset - 2 : offset] == "  " and line[offset] != " ", (offset, line)
    # As narrow as those rows allow: each column but the last is filled by some row (or the header).
    for column, after in enumerate(offsets[1:]):
        assert any(line[after - 3] != " " for line in [lines[0], *first]), column
    assert offsets[3] - offsets[2] == len(LAST_WIDE) + 2  # row 1000 counts, row 1001 does not
    assert lines[WIDTH_ROWS].split()[3] == LAST_WIDE and lines[WIDTH_ROWS + 1].split()[3] == FIRST_NOT
    late = next(line for line in lines if LONG in line)
    assert lines.index(late) > WIDTH_ROWS
    check_at = offsets[2]
    assert late[check_at:].startswith(f"{LONG}  skipped_cooldown  ")  # no padding left for it, nothing cut
    assert late.endswith("(\\x1b[31mred)")  # a terminal escape is shown, never sent


class LeftAfterTable(io.StringIO):
    """A reader that goes away once the table is written (``| head``), before the counts after it."""

    def write(self, text: str) -> int:
        if text.startswith("("):
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize("command", ["history", "status", "report"])
def test_a_reader_gone_before_the_last_line_ends_a_command_quietly(tmp_path: Path, command: str) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text(
        json.dumps({"ts": iso(NOW - 3600), "event": "attempt", "check": "web", "attempt": 1}) + "\nnot json\n"
    )
    out = LeftAfterTable()
    args = {"history": ["--journal", str(journal)], "report": ["--journal", str(journal), "--since", "all"]}
    status = main([command, *args.get(command, ["--state-dir", str(tmp_path)])], stdout=out)
    assert status == 0
    assert "Traceback" not in out.getvalue() and "Broken pipe" not in out.getvalue()


def test_more_journals_than_may_be_open_at_once_give_the_same_table(tmp_path: Path) -> None:
    """80 journals under a limit of 64 open files: the first rows are not read all at once here."""
    import resource
    import subprocess

    from conftest import clean_env, selfheal_argv

    for number in range(80):
        host = "h" + "x" * number  # each host's name sets the HOST column if its rows count
        lines = [
            json.dumps(
                {"ts": iso(NOW - 20 * 86400 + index * 60 + number), "event": "attempt", "check": "web"}
            )
            for index in range(150)
        ]
        (tmp_path / host).mkdir()
        (tmp_path / host / "journal.jsonl").write_text("\n".join(lines) + "\n")

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    def run(*args: str) -> str:
        result = subprocess.run(
            selfheal_argv("history", "--journal", tmp_path, "--jobs", "3", *args),
            capture_output=True, text=True, env=clean_env(), preexec_fn=limited, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0 and not result.stderr, result.stderr
        return result.stdout

    listed = run()
    assert "Too many open files" not in listed
    assert listed == run("--since", "30d")
    assert len(listed.splitlines()) == 1 + 80 * 150

"""What every built-in check shares: the plugin command line, healing flags, timeouts, packaging.

The command-line tests run the installed console scripts, as Nagios does.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nagiosplugin
import pytest
from checks_support import BIN, check, free_port, script
from conftest import journal_events, wait_for, write_script

import selfheal
from selfheal.checks import NAMES
from selfheal.checks.evaluate import evaluate

#: Enough arguments for each check to run.
MINIMAL = {
    "process": ["-C", "init"],
    "tcp": ["-H", "127.0.0.1", "-p", "1"],
    "http": ["-u", "http://127.0.0.1:1/"],
    "disk": ["-p", "/"],
    "memory": [],
    "load": [],
    "file_age": ["-f", "/"],
    "systemd": ["-u", "x.service"],
}
ROOT = Path(__file__).resolve().parents[3]


def test_every_check_is_tested_here() -> None:
    assert sorted(MINIMAL) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_help(name: str) -> None:
    run = script(name, "-h")
    assert run.code == 0
    assert run.out.startswith(f"usage: check_selfheal_{name} [options] ")
    for option in (
        "-w, --warning RANGE",
        "-c, --critical RANGE",
        "-t, --timeout SECONDS",
        "-v, --verbose",
        "--heal 'CMD ARGS'",
        "--cooldown DURATION",
    ):
        assert option in run.out, option
    assert "@10:20" in run.out


@pytest.mark.parametrize("name", NAMES)
def test_version(name: str) -> None:
    assert script(name, "-V") == (0, f"check_selfheal_{name} (selfheal) {selfheal.__version__}\n")


@pytest.mark.parametrize("name", NAMES)
def test_bad_option_is_one_line_unknown_with_nothing_on_stderr(name: str) -> None:
    result = subprocess.run([str(BIN / f"check_selfheal_{name}"), "--bogus"], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (
        3,
        f"{name.upper()} UNKNOWN - unknown option --bogus\n",
        "",
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-w", "10:5"], "bad --warning: '10:5' is not a range (use e.g. 10, 10:, ~:10, 10:20 or @10:20)"),
        (["-c", "ten"], "bad --critical: 'ten' is not a range (use e.g. 10, 10:, ~:10, 10:20 or @10:20)"),
        (["-t", "soon"], "bad --timeout: not a duration: 'soon' (use e.g. 90, 90s, 15m, 6h or 7d)"),
        (["-t", "0"], "bad --timeout: must be longer than 0s"),
        (["stray"], "unexpected argument 'stray'"),
        (["--cooldown", "5m"], "--cooldown is a healing option; it needs --heal 'CMD ARGS'"),
        (
            ["--heal", "true", "--name", "{name}", "--max-attempts", "many"],
            "bad --max-attempts: 'many' is not a number",
        ),
        (
            ["--heal", "true"],
            "--heal needs --name NAME, the name of this check's heal record (e.g. the service)",
        ),
        (["-w"], "option -w needs a value"),
    ],
)
def test_bad_arguments(name: str, extra: list[str], message: str) -> None:
    run = check(name, *MINIMAL[name], *(e.format(name=name) for e in extra))
    assert run.code == 3, run.out
    assert run.out.startswith(f"{name.upper()} UNKNOWN - {message}")
    assert run.out.count("\n") == 1


@pytest.mark.parametrize("name", ["tcp", "http", "disk", "file_age", "systemd"])
def test_required_option_missing(name: str) -> None:
    run = check(name)
    assert run.code == 3 and run.out.count("\n") == 1 and "is required" in run.out, run.out


def test_verbose_moves_perfdata_to_long_output() -> None:
    run = check("disk", "-p", "/", "-vv")
    lines = run.out.splitlines()
    assert "|" not in lines[0]
    assert lines[-1].startswith("| ") and "used_pct=" in lines[-1]


# -- healing flags, as in selfheal wrap ----------------------------------------------


def test_heal_flags_heal_a_critical_check(tmp_path: Path) -> None:
    marker = tmp_path / "healed"
    heal = write_script(tmp_path / "heal", f'echo healed >> "{marker}"\n')
    state = tmp_path / "state"
    port = free_port()
    args = [
        "-H",
        "127.0.0.1",
        "-p",
        port,
        "--heal",
        str(heal),
        "--state-dir",
        state,
        "--cooldown",
        "1h",
        "--name",
        "web",
    ]
    dry = script("tcp", *args, "--dry-run")
    assert dry.code == 1 and "would start" in dry.line, dry.out
    assert not state.exists() or journal_events(state) == []
    run = script("tcp", *args)
    assert run.code == 1, run.out
    assert run.line == (
        f"WEB WARNING - cannot connect to 127.0.0.1:{port}: Connection refused; "
        f"self-healing: started {heal} (attempt 1/3) | selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0"
    )
    wait_for(marker.exists, timeout=10, what="the heal")
    again = script("tcp", *args)
    assert again.code in (1, 2) and "self-healing" in again.line
    assert len(journal_events(state, "attempt")) == 1
    downtime = script("tcp", *args, "--downtime", "1")
    assert downtime.code == 2 and "paused" in downtime.line


def test_a_healthy_check_with_heal_flags_stays_ok(tmp_path: Path) -> None:
    run = script(
        "disk",
        "-p",
        "/",
        "-w",
        "100",
        "-c",
        "100",
        "--heal",
        "false",
        "--name",
        "root-fs",
        "--state-dir",
        tmp_path / "s",
    )
    assert run.code == 0, run.out
    assert run.perfdata["selfheal_attempts"] == "0;;;0"


LEAN_PROBE = """
import io, sys
from selfheal.checks.plugin import find_spec as spec
from selfheal.checks.plugin import main
out = io.StringIO()
code = main(spec({name!r}), {args!r}, stdout=out)
heavy = ("yaml", "filelock", "psutil", "argparse", "ssl")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
import json
print(json.dumps([code, out.getvalue(), loaded]))
"""


@pytest.mark.parametrize(
    ("name", "args", "allowed"),
    [
        ("tcp", ["-H", "127.0.0.1", "-p", "1", "-c", "100"], []),
        ("disk", ["-p", "/", "-w", "100", "-c", "100"], []),
        ("file_age", ["-f", "/", "-w", "1000000000000", "-c", "1000000000000"], []),
        ("memory", ["-w", "0:", "-c", "0:"], []),
        ("load", [], []),
        ("disk", ["-p", "/", "-w", "100", "-c", "100", "--heal", "false", "--name", "root-fs"], []),
        ("process", ["-C", "init", "-c", "0:"], ["psutil"]),
    ],
)
def test_healthy_checks_import_only_what_they_need(
    tmp_path: Path, name: str, args: list[str], allowed: list[str]
) -> None:
    probe = LEAN_PROBE.format(
        name=name, args=[*args, "--state-dir", str(tmp_path)] if "--heal" in args else args
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    code, output, loaded = json.loads(out)
    assert code == (2 if name == "tcp" else 0), output  # tcp: nothing listens on port 1
    assert {m.split(".")[0] for m in loaded} <= set(allowed), loaded


# -- the -t bound --------------------------------------------------------------------


class Stuck(nagiosplugin.Resource):
    def probe(self) -> list[nagiosplugin.Metric]:
        time.sleep(30)
        return []


def test_a_probe_past_the_timeout_is_unknown_by_default() -> None:
    out = io.StringIO()
    start = time.monotonic()
    code = evaluate("stuck", [Stuck()], 0.5, 3, None, 0, out)
    assert time.monotonic() - start < 10
    assert (code, out.getvalue()) == (3, "STUCK UNKNOWN - timed out after 0.5s\n")


def test_timeout_state_critical_heals(tmp_path: Path) -> None:
    from selfheal.checks.evaluate import Healing
    from selfheal.core.actions import Command
    from selfheal.core.policy import Policy

    out = io.StringIO()
    healing = Healing(Command(["true"]), Policy(), str(tmp_path / "s"), None, True, 0)
    code = evaluate("stuck", [Stuck()], 0.5, 2, healing, 0, out)
    assert code == 1, out.getvalue()
    assert out.getvalue().startswith("STUCK WARNING - timed out after 0.5s; self-healing: would start true")


# -- Python: Resources and Contexts to compose -----------------------------------------


def test_resources_and_contexts_compose_into_a_selfheal_check(tmp_path: Path) -> None:
    from selfheal.checks.file_age import FileAge
    from selfheal.checks.verdict import Summary, Verdict

    heartbeat = tmp_path / "heartbeat"
    heartbeat.write_text("beat")
    stale = time.time() - 3600
    os.utime(heartbeat, (stale, stale))
    check = selfheal.Check(
        FileAge(str(heartbeat)),
        nagiosplugin.ScalarContext("age", "60", "300"),
        nagiosplugin.ScalarContext("size"),
        Verdict(),
        Summary(),
        name="heartbeat",
        heal=["true"],
        state_dir=str(tmp_path / "s"),
        dry_run=True,
    )
    check()
    assert check.exitcode == 1
    assert "age is 3600s (outside range 0:300)" in check.summary_str or "age is 3601s" in check.summary_str
    assert "would start true" in check.summary_str


# -- packaging --------------------------------------------------------------------------


def test_checks_install_as_selfheal_checks_not_as_a_top_level_package(tmp_path: Path) -> None:
    """Build the wheel from a copy of the sources; look inside it."""
    source = tmp_path / "src"
    source.mkdir()
    for item in ("pyproject.toml", "README.md", "selfheal", "checks", "scripts"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, source / item)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("selfheal-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"selfheal/checks/{n}.py" for n in NAMES} <= set(names)
    assert not [n for n in names if n.startswith("checks/")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for name in NAMES:
        assert f"check_selfheal_{name} = selfheal.checks.{name}:main" in text


def test_installed_environment_has_no_top_level_checks(tmp_path: Path) -> None:
    probe = "import importlib.util, json, selfheal.checks; print(json.dumps([importlib.util.find_spec('checks') is None, selfheal.checks.__file__]))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    no_top_level, location = json.loads(out)
    assert no_top_level
    assert Path(location).name == "__init__.py"


def test_resources_compose_into_a_plain_nagiosplugin_check(tmp_path: Path) -> None:
    """Two built-in Resources in one check of someone else's: a port and a disk."""
    from selfheal.checks.disk import Disk
    from selfheal.checks.tcp import Tcp
    from selfheal.checks.verdict import Verdict

    port = free_port()
    check = nagiosplugin.Check(
        Tcp("127.0.0.1", port, timeout=2),
        Disk(str(tmp_path)),
        nagiosplugin.ScalarContext("time", "1", "2"),
        nagiosplugin.ScalarContext("used", "100", "100"),
        nagiosplugin.ScalarContext("free"),
        nagiosplugin.ScalarContext("inodes"),
        Verdict(),
        name="mine",
    )
    check()
    assert check.exitcode == 2
    assert check.summary_str == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert any(p.startswith("used_pct=") for p in check.perfdata)

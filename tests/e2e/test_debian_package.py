"""The Debian package: built from this tree, installed with apt, run, purged.

It is built with dpkg-buildpackage (``tests/deb/build.sh``, in a copy of
the tree) and checked with lintian. apt-get installs it as an admin would.
The ``nagios`` user then runs it on the distribution's /usr/bin/python3:
nothing copied, no PYTHONPATH, no setpriv. Its journal is rotated by the
real logrotate with the rule it ships, and after the purge nothing of it
may remain.

It installs a package system-wide, so it refuses to run (fails under
SELFHEAL_E2E=require) where selfheal is already installed, or where the
directories it would create and remove already exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from e2e.conftest import need
from e2e.daemons import PLUGIN_DIR, RUN_AS, RUNUSER, run_as_ids

ROOT = Path(__file__).resolve().parent.parent.parent
SELFHEAL = "/usr/bin/selfheal"
CONFIG = Path("/etc/selfheal/selfheal.yaml")
STATE_DIR = Path("/var/lib/selfheal")
JOURNAL = STATE_DIR / "journal.jsonl"
LOGROTATE_RULE = "/etc/logrotate.d/selfheal"
#: The distribution's tools, never a pyenv or virtualenv python3.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"]


def run(argv: list[str], timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {"PATH": SYSTEM_PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )  # type: ignore[call-overload,no-any-return]


def as_nagios(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command as the nagios user, from /, with the PATH a daemon gives its plugins."""
    return run([RUNUSER, "-u", RUN_AS, "--", *argv], timeout=timeout, cwd="/")


def plugin_names() -> list[str]:
    """The check_selfheal_* console scripts pyproject.toml declares."""
    names = sorted(e.name for e in entry_points(group="console_scripts") if e.value.startswith("selfheal."))
    assert names, "no selfheal console scripts: is selfheal installed in this venv (pip install -e .)?"
    return names


def installed_status() -> str:
    result = run(["dpkg-query", "-W", "-f=${Status}", "selfheal"])
    return result.stdout if result.returncode == 0 else ""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .changes of a build from this tree (the .deb beside it)."""
    need(os.geteuid() == 0, "building and installing a Debian package needs root")
    for tool, deb in (("dpkg-buildpackage", "dpkg-dev"), ("lintian", "lintian"), ("apt-get", "apt")):
        need(shutil.which(tool, path=SYSTEM_PATH), f"{tool} is missing (apt-get install {deb})")
    # The build itself would stop on these; this says which are missing.
    deps = run(["dpkg-checkbuilddeps"], cwd=ROOT)
    need(deps.returncode == 0, f"{deps.stderr.strip()} (tests/run.sh installs them)")
    out = tmp_path_factory.mktemp("deb")
    build = run(["bash", str(ROOT / "tests" / "deb" / "build.sh"), str(out)], timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (changes,) = out.glob("selfheal_*.changes")
    (deb,) = out.glob("selfheal_*_all.deb")
    assert deb.name == f"selfheal_{version('selfheal')}_all.deb"
    return changes


@pytest.fixture(scope="module")
def installed(package: Path) -> Iterator[list[str]]:
    """The package installed with apt-get; yields ``dpkg -L``. Purged afterwards if still there."""
    need(not installed_status(), f"a selfheal package is already installed ({installed_status()})")
    for path in (CONFIG.parent, STATE_DIR):
        need(not path.exists(), f"{path} exists before the package is installed: it would be purged")
    run_as_ids()  # the nagios user (nagios4-core, in tests/run.sh), as on a Nagios host
    (deb,) = package.parent.glob("selfheal_*_all.deb")
    try:
        result = run([*APT, "install", str(deb)], timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        yield run(["dpkg", "-L", "selfheal"]).stdout.splitlines()
    finally:
        if installed_status():
            run([*APT, "purge", "selfheal"], timeout=300)


def test_lintian_finds_no_error_and_every_warning_is_overridden(package: Path) -> None:
    result = run(["lintian", "--allow-root", "--fail-on", "error,warning", str(package)], timeout=300)
    complaints = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_nagios_user_runs_it_on_the_distribution_python(installed: list[str]) -> None:
    assert Path(SELFHEAL).read_text().splitlines()[0] == "#!/usr/bin/python3"
    ran = as_nagios(SELFHEAL, "--version")
    assert (ran.returncode, ran.stdout.split()) == (0, ["selfheal", version("selfheal")]), ran
    where = as_nagios("/usr/bin/python3", "-c", "import selfheal; print(selfheal.__file__)")
    assert where.stdout.startswith("/usr/lib/python3/dist-packages/selfheal/"), where
    help_ = as_nagios(SELFHEAL, "run", "--help")
    assert help_.returncode == 0 and help_.stdout.startswith("usage: selfheal run"), help_
    # The whole story (kill, heal, give up) as nagios, in the demo's own temp dir.
    demo = as_nagios(SELFHEAL, "demo", timeout=90)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr
    assert re.search(r"\bgave_up\b", demo.stdout), demo.stdout[-3000:]


def test_the_plugins_are_where_debian_puts_nagios_plugins(installed: list[str]) -> None:
    for name in plugin_names():
        assert f"{PLUGIN_DIR}/{name}" in installed, name
        assert f"/usr/bin/{name}" not in installed, name
        assert Path(PLUGIN_DIR, name).read_text().splitlines()[0] == "#!/usr/bin/python3", name
        assert as_nagios(f"{PLUGIN_DIR}/{name}", "-h").returncode == 0, name


def test_a_builtin_check_runs_on_the_distribution_nagiosplugin(installed: list[str], workdir: Path) -> None:
    """check_selfheal_tcp as a plugin, then as ``check: tcp`` in a config, against a real listener."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        plugin = as_nagios(f"{PLUGIN_DIR}/check_selfheal_tcp", "-H", "127.0.0.1", "-p", str(port))
        assert plugin.returncode == 0 and plugin.stdout.startswith("TCP OK"), plugin
        config = workdir / "selfheal.yaml"
        config.write_text(
            f"state_dir: {workdir / 'state'}\nchecks:\n  db:\n    check: tcp\n"
            f"    args: {{host: 127.0.0.1, port: {port}}}\n    heal: {{command: 'true'}}\n"
        )
        run_ = as_nagios(SELFHEAL, "run", "db", "-c", str(config))
        assert run_.returncode == 0 and run_.stdout.startswith("DB OK"), run_


def test_config_state_dir_sudoers_example_and_man_page(installed: list[str], workdir: Path) -> None:
    uid, _gid = run_as_ids()
    st = STATE_DIR.stat()
    assert (st.st_uid, oct(st.st_mode & 0o7777)) == (uid, "0o700")
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "selfheal"]).stdout.split()
    assert str(CONFIG) in conffiles and LOGROTATE_RULE in conffiles, conffiles
    # The default config: valid, with no check enabled.
    valid = as_nagios(SELFHEAL, "validate")
    assert valid.returncode == 0 and "OK, 0 checks" in valid.stdout, valid
    # Its commented examples are valid too, once uncommented as it says.
    head, sep, examples = CONFIG.read_text().partition("checks: {}\n")
    assert sep, "the config has no 'checks: {}'"
    names = re.findall(r"^#  ([\w-]+):$", examples, re.MULTILINE)
    uncommented = workdir / "selfheal.yaml"
    uncommented.write_text(head + "checks:\n" + re.sub(r"(?m)^#(  .*|)$", r"\1", examples))
    valid = as_nagios(SELFHEAL, "validate", "-c", str(uncommented))
    assert valid.returncode == 0 and f"OK, {len(names)} checks" in valid.stdout and names, valid
    sudoers = "/usr/share/doc/selfheal/examples/sudoers.d/selfheal"
    assert sudoers in installed
    if shutil.which("visudo", path=SYSTEM_PATH):
        checked = run(["visudo", "-cf", sudoers])
        assert checked.returncode == 0, checked
    # selfheal(8): a section for each command that --help lists.
    top = as_nagios(SELFHEAL, "--help").stdout
    commands = re.findall(r"^  (\w+)\s", top.partition("\ncommands:\n")[2], re.MULTILINE)
    assert commands, top
    # As a person would read it (man-db's cache included: postinst drops a
    # page cached from an earlier install, which would otherwise be shown).
    page = run(["man", "-P", "cat", "8", "selfheal"], cwd="/")
    assert page.returncode == 0, page
    sections = re.findall(r"^   (\w+)$", page.stdout, re.MULTILINE)
    assert sections == commands, page.stdout


def test_logrotate_rule_loses_no_event_and_history_reads_the_rotated_files(
    installed: list[str], tmp_path: Path
) -> None:
    """Real heals journal; a writer holds the journal open across a rotation; history reads all."""
    need(shutil.which("logrotate", path=SYSTEM_PATH), "logrotate is missing (apt-get install logrotate)")
    check_dummy = f"{PLUGIN_DIR}/check_dummy"
    need(
        os.access(check_dummy, os.X_OK),
        f"{check_dummy} is missing (apt-get install monitoring-plugins-basic)",
    )
    status = tmp_path / "logrotate.status"

    def journaled() -> list[tuple[str, str]]:
        lines = JOURNAL.read_text().splitlines() if JOURNAL.exists() else []
        return [(event["check"], event["event"]) for event in map(json.loads, lines)]

    def heal(name: str) -> None:
        """A real heal as nagios: ``attempt`` now, ``action_end`` from its runner."""
        healed = as_nagios(SELFHEAL, "wrap", "--name", name, "--heal", "true", "--", check_dummy, "2", "down")
        assert healed.returncode == 1 and "self-healing: started" in healed.stdout, healed
        deadline = time.monotonic() + 30
        while (name, "action_end") not in journaled():
            assert time.monotonic() < deadline, f"no action_end for {name}: {journaled()}"
            time.sleep(0.1)

    def rotate() -> None:
        rotated = run(["logrotate", "-f", "-s", str(status), LOGROTATE_RULE])
        assert rotated.returncode == 0, rotated

    heal("first")
    # An appender as selfheal's journal is: its fd opened before the
    # rotation, one write() per event after it.
    writer = subprocess.Popen(
        [
            RUNUSER,
            "-u",
            RUN_AS,
            "--",
            "/usr/bin/python3",
            "-c",
            "import os, sys\n"
            f"fd = os.open({str(JOURNAL)!r}, os.O_WRONLY | os.O_APPEND)\n"
            "print('open', flush=True)\n"
            "line = sys.stdin.readline()\n"
            "os.write(fd, line.encode())\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": SYSTEM_PATH},
        cwd="/",
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        rotate()
        assert not JOURNAL.exists(), "nocreate: selfheal creates the next journal itself"
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        held = {"ts": stamp, "event": "reset", "check": "held"}
        writer.communicate(json.dumps(held) + "\n", timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0
    heal("second")
    rotate()  # first's file and the held event: .2.gz; second's: .1
    files = sorted(p.name for p in STATE_DIR.glob("journal.jsonl*"))
    assert files == ["journal.jsonl.1", "journal.jsonl.2.gz"], files
    history = as_nagios(SELFHEAL, "history", "--json")
    assert history.returncode == 0, history
    reading = json.loads(history.stdout)
    events = [(e["check"], e["event"]) for e in reading["events"]]
    assert events == [
        ("first", "attempt"),
        ("first", "action_end"),
        ("held", "reset"),
        ("second", "attempt"),
        ("second", "action_end"),
    ], reading
    assert reading["skipped"] == 0, reading


def test_purge_leaves_nothing_behind(installed: list[str]) -> None:
    # Made at run time, not by dpkg: purge removes the state dir and all in it.
    (STATE_DIR / "made-at-run-time.json").write_text("{}")
    result = run([*APT, "purge", "selfheal"], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert not installed_status()
    assert run(["dpkg", "-L", "selfheal"]).returncode != 0
    left = [path for path in installed if os.path.lexists(path) and not os.path.isdir(path)]
    left += [path for path in installed if "selfheal" in path and os.path.lexists(path)]
    left += [str(path) for path in (CONFIG.parent, STATE_DIR) if path.exists()]
    assert not left, left

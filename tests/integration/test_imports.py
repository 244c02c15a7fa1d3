"""Import discipline: a check must not pay for modules it does not use.

Not a timing test: each test runs a real check in a fresh interpreter and
lists the modules that appeared in ``sys.modules`` while selfheal ran.
That interpreter is bare (``-I -S``: no ``site``, so no editable install's
import hook, which itself imports ``re``, ``enum``, ``pathlib`` and more):
its baseline is what any Python start-up loads, and selfheal comes from
this source tree, with the dependencies from site-packages put on
``sys.path`` by hand.
"""

import ast
import os
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

from selfheal.core.record import Attempt, Record
from selfheal.edges.store import StateDir
from tests.conftest import CHECK_DUMMY

ROOT = Path(__file__).resolve().parents[2]
#: selfheal from this tree, then the dependencies; no .pth file is processed.
SOURCE_PATH = [str(ROOT), *dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]

#: Never on a healthy run (P1, P2), nor on a heal (P4, P5): each costs
#: milliseconds of import, some tens of them.
HEAVY = (
    "nagiosplugin",
    "yaml",
    "_yaml",
    "psutil",
    "filelock",
    "argparse",
    "subprocess",
    "json",
    "shlex",
    "re",
    "enum",
    "socket",
    "threading",
    "logging",
    "typing",
    "dataclasses",
    "inspect",
    "asyncio",
)

PROBE = """
import sys
sys.path[:0] = {paths!r}
before = set(sys.modules)
import io
{prelude}
out = io.StringIO()
{call}
new = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in {heavy!r})
ours = sorted(m for m in set(sys.modules) - before if m.split(".")[0] == "selfheal")
sys.stdout.write(repr((code, out.getvalue(), new, ours)))
"""


def loaded_by(call, prelude="", env=None):
    """The exit code, the output, and the heavy modules that ``call`` imported."""
    return probe(call, prelude, env)[:3]


def probe(call, prelude="", env=None):
    """As ``loaded_by``, plus every selfheal module that ``call`` imported."""
    code = PROBE.format(
        paths=SOURCE_PATH, prelude=textwrap.dedent(prelude), call=textwrap.dedent(call), heavy=HEAVY
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SELFHEAL_")}
    environ.update(env or {})
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=environ,
        timeout=60,
    )
    return ast.literal_eval(result.stdout)


def cli(args, state_dir):
    call = f"""
    from selfheal.cli import main
    code = main({args!r}, env={{"SELFHEAL_STATE_DIR": {str(state_dir)!r}, "PATH": "/usr/bin:/bin"}}, stdout=out)
    """
    return loaded_by(call)


def healed_before(state_dir, name):
    """The record of a check that healed once and has recovered since."""
    now = time.time()
    attempt = Attempt(
        id="a1", number=1, started=now - 900, action="true", argv=["true"], pid=12345,
        create_time=now - 900, ended=now - 899, exit_code=0, duration=1.0,
    )  # fmt: skip
    record = Record(
        check=name, last_state=0, last_change=now - 600, ok_since=now - 600, streak=1,
        attempts=[attempt], heals_total=1,
    )  # fmt: skip
    with StateDir.open(str(state_dir)) as opened:
        opened.write(name, record)


@pytest.fixture
def check_dummy():
    # Not a skip: the healthy path is only meaningful around a real plugin.
    assert os.access(CHECK_DUMMY, os.X_OK), "install monitoring-plugins-basic (tests/run.sh does)"
    return CHECK_DUMMY


def test_healthy_wrap_imports_nothing_heavy(tmp_path, check_dummy):
    code, out, loaded = cli(["wrap", "--heal", "true", "--", check_dummy, "0", "fine"], tmp_path / "s")
    assert code == 0, out
    assert out.startswith("CHECK_DUMMY OK - OK: fine")
    assert loaded == [], f"healthy wrap imported {loaded}"


def test_healthy_wrap_with_a_record_imports_nothing_heavy(tmp_path, check_dummy):
    # A check that ever healed keeps a record, and a healthy run reads it.
    healed_before(tmp_path / "s", "web")
    args = ["wrap", "--name", "web", "--heal", "true", "--", check_dummy, "0", "fine"]
    code, out, loaded = cli(args, tmp_path / "s")
    assert code == 0, out
    assert "selfheal_attempts=1" in out  # the record was read
    assert loaded == [], f"healthy wrap imported {loaded}"


def test_heal_imports_nothing_heavy(tmp_path, check_dummy):
    heal = f"sh -c 'echo healed > {tmp_path / 'healed'}'"
    args = ["wrap", "--name", "web", "--heal", heal, "--", check_dummy, "2", "down"]
    code, out, loaded = cli(args, tmp_path / "s")
    assert code == 1 and "self-healing: started" in out, out
    assert loaded == [], f"a CRITICAL run that heals imported {loaded}"
    deadline = time.monotonic() + 30
    while not (tmp_path / "healed").exists():  # the heal really ran
        assert time.monotonic() < deadline, "the heal never ran"
        time.sleep(0.05)


#: The healthy path, whole: the router, the plugin command, the probe, the
#: engine, and the core and edges they need. Anything more costs every
#: check run its import; a command for people would be a layering bug.
HEALTHY_WRAP = {
    "selfheal",
    "selfheal.cli",
    "selfheal.wrap",
    "selfheal.engine",
    "selfheal.core",
    "selfheal.core.argv",
    "selfheal.core.decision",
    "selfheal.core.output",
    "selfheal.core.policy",
    "selfheal.core.record",
    "selfheal.core.states",
    "selfheal.edges",
    "selfheal.edges.files",
    "selfheal.edges.spawner",
    "selfheal.edges.store",
}


def cli_modules(args, state_dir):
    call = f"""
    from selfheal.cli import main
    code = main({args!r}, env={{"SELFHEAL_STATE_DIR": {str(state_dir)!r}, "PATH": "/usr/bin:/bin"}}, stdout=out)
    """
    return probe(call)


def test_healthy_wrap_imports_exactly_the_healthy_path(tmp_path, check_dummy):
    code, out, _, ours = cli_modules(
        ["wrap", "--heal", "true", "--", check_dummy, "0", "fine"], tmp_path / "s"
    )
    assert code == 0, out
    assert set(ours) == HEALTHY_WRAP


def test_a_critical_wrap_never_imports_a_command_for_people(tmp_path, check_dummy):
    args = ["wrap", "--name", "web", "--heal", "true", "--", check_dummy, "2", "down"]
    code, out, _, ours = cli_modules(args, tmp_path / "s")
    assert code == 1 and "self-healing: started" in out, out
    assert [m for m in ours if m.startswith("selfheal.commands")] == []
    # Nor the YAML reader: wrap reads the config only for its outputs, and
    # there is none here.
    assert [m for m in ours if m in ("selfheal.config.loader", "selfheal.config.reader")] == []
    assert set(ours) >= HEALTHY_WRAP  # the probe saw the heal path itself


def write_config(tmp_path, check_dummy):
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    healed_before(state, "web")
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"state_dir: {state}\nchecks:\n  web:\n    plugin: {check_dummy} 0 fine\n    heal: {{systemd: nginx}}\n"
    )
    return config, state


def test_healthy_run_from_the_config_cache_imports_nothing_heavy(tmp_path, check_dummy):
    config, state = write_config(tmp_path, check_dummy)
    call = f"""
    from selfheal.cli import main
    code = main(["run", "web", "-c", {str(config)!r}], env={{"PATH": "/usr/bin:/bin"}}, stdout=out)
    """
    # The counter-check: the first run parses the YAML, and the probe sees it.
    code, out, loaded = loaded_by(call)
    assert code == 0, out
    assert "yaml" in loaded
    assert list(state.glob("config.*.cache")), "the first run wrote no cache"
    code, out, loaded, ours = probe(call)
    assert code == 0 and out.startswith("WEB OK - OK: fine"), out
    assert loaded == [], f"a healthy run from the cache imported {loaded}"
    # The healthy wrap's path, the cached config, and reading the record; not the heal's actions
    # (built only when a heal is decided), nor the YAML reader.
    cached_config = {
        "selfheal.config",
        "selfheal.config.cache",
        "selfheal.config.schema",
        "selfheal.config.trust",
        "selfheal.core.durations",  # the cached policy's durations are checked again
    }
    assert set(ours) == HEALTHY_WRAP | cached_config | {"selfheal.core.jsonio"}  # jsonio: it has a record


def test_python_api_adds_nothing_heavy_to_nagiosplugin(tmp_path):
    healed_before(tmp_path / "s", "web")
    prelude = """
    import nagiosplugin
    before = set(sys.modules)
    """
    call = """
    import selfheal

    class Up(nagiosplugin.Resource):
        def probe(self):
            return [nagiosplugin.Metric("up", 1, context="up")]

    check = selfheal.Check(
        Up(), nagiosplugin.ScalarContext("up", "1:", "1:"), name="web", heal=selfheal.Systemd("nginx")
    )
    check()
    code = check.exitcode
    out.write(check.summary_str + " " + " ".join(check.perfdata))
    """
    code, out, loaded = loaded_by(call, prelude, env={"SELFHEAL_STATE_DIR": str(tmp_path / "s")})
    assert code == 0, out
    assert "selfheal_attempts=1" in out  # the record was read
    assert loaded == [], f"selfheal.Check added {loaded} to what nagiosplugin imports"


def imports_of(path):
    tree = ast.parse(Path(path).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    return names


def test_the_selfheal_command_imports_only_the_cli():
    # pip's generated console-script wrapper imports re; ours must not (gc: it turns the collector off).
    assert imports_of(ROOT / "scripts" / "selfheal") == {"gc", "sys", "selfheal.cli"}
    installed = Path(sys.executable).parent / "selfheal"
    assert installed.exists(), "selfheal is not installed beside this interpreter (tests/run.sh does)"
    assert imports_of(installed) == {"gc", "sys", "selfheal.cli"}, (
        "the installed selfheal is not scripts/selfheal"
    )


def test_healthy_run_with_a_fleet_budget_never_imports_the_fleet(tmp_path, check_dummy):
    # fleet: and budget: configured, etcd nowhere: a healthy run must not notice either.
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    healed_before(state, "web")
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"state_dir: {state}\n"
        "fleet:\n  etcd: {endpoints: ['http://127.0.0.1:9'], timeout: 1s}\n  on_unreachable: hold\n"
        f"checks:\n  web:\n    plugin: {check_dummy} 0 fine\n    heal: {{systemd: nginx}}\n"
        "    budget: {group: web, max_concurrent: 2, max_per_window: 10, window: 1h}\n"
    )
    call = f"""
    from selfheal.cli import main
    code = main(["run", "web", "-c", {str(config)!r}], env={{"PATH": "/usr/bin:/bin"}}, stdout=out)
    out.write(" etcd:" + repr(sorted(m for m in sys.modules if m.split(".")[0] in ("etcd3gw", "requests"))))
    """
    # The first run parses the YAML, whose fleet: and budget: are checked by
    # selfheal.fleet.settings (as validate does); never the client.
    code, out, _, ours = probe(call)
    assert code == 0, out
    assert out.endswith(" etcd:[]"), out
    assert not {"selfheal.fleet.budget", "selfheal.fleet.client", "selfheal.budget_gate"} & set(ours), ours
    assert list(state.glob("config.*.cache")), "the first run wrote no cache"
    # Every run after it, from the cache: nothing of the fleet at all.
    code, out, loaded, ours = probe(call)
    assert code == 0 and out.startswith("WEB OK - OK: fine"), out
    assert out.endswith(" etcd:[]"), out
    assert [m for m in ours if m.startswith("selfheal.fleet") or m == "selfheal.budget_gate"] == [], ours
    assert "selfheal.core.fleet_rows" not in ours
    assert loaded == [], f"a healthy run with a budget imported {loaded}"


def test_healthy_wrap_with_verify_imports_only_the_report_flags_check(tmp_path, check_dummy):
    # --verify alone: the re-check's spec is made only when a heal starts.
    args = ["wrap", "--verify", "--heal", "true", "--", check_dummy, "0", "fine"]
    code, out, loaded, ours = cli_modules(args, tmp_path / "s")
    assert code == 0, out
    assert set(ours) == HEALTHY_WRAP and loaded == []
    # --nagios-*: the flags are checked at once (a bad one is UNKNOWN), by the target's own class.
    flags = ["--nagios-cmd", str(tmp_path / "cmd"), "--nagios-host", "h", "--nagios-service", "s"]
    code, out, loaded, ours = cli_modules([*args[:1], *flags, *args[1:]], tmp_path / "s")
    assert code == 0, out
    assert set(ours) - HEALTHY_WRAP == {
        "selfheal.report_back",
        "selfheal.edges.targets",
        "selfheal.edges.nagios_cmd",
    }
    assert loaded == []

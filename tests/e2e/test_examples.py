"""Every shipped example passes the validation of the program that reads it.

- ``examples/nagios.cfg``: ``nagios4 -v`` with Debian's stock object files;
- ``examples/selfheal.yaml``: ``selfheal validate``;
- ``examples/sudoers.d/selfheal``: ``visudo -cf``, and it allows exactly
  the heals the other examples run with sudo;
- ``examples/icinga2/selfheal.conf``: ``icinga2 daemon -C``, laid out as
  on a master with one agent;
- ``examples/nrpe.cfg``: a real NRPE includes it and runs its commands.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from conftest import run_selfheal

from e2e.conftest import need, need_executable
from e2e.daemons import CHECK_NRPE, ICINGA2, NAGIOS4, NRPE, PLUGIN_DIR, RUN_AS, RUNUSER, Deployment, Nrpe
from selfheal.config import loader as config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The object files of Debian's stock Nagios the example builds on, and
#: the command definitions monitoring-plugins ships for them.
STOCK_OBJECTS = Path("/etc/nagios4/objects")
STOCK_COMMANDS = Path("/etc/nagios-plugins/config")


def test_nagios_example_loads_in_nagios4(workdir: Path) -> None:
    need_executable(NAGIOS4, "nagios4-core")
    stock = [
        STOCK_OBJECTS / f"{name}.cfg"
        for name in ("commands", "contacts", "timeperiods", "templates", "localhost")
    ]
    need(
        all(p.exists() for p in [*stock, STOCK_COMMANDS]),
        f"Debian's stock Nagios objects are missing in {STOCK_OBJECTS} or {STOCK_COMMANDS}",
    )
    (workdir / "resource.cfg").write_text(f"$USER1$={PLUGIN_DIR}\n")
    main = workdir / "nagios.cfg"
    main.write_text(
        "".join(f"cfg_file={path}\n" for path in [*stock, EXAMPLES / "nagios.cfg"])
        + f"cfg_dir={STOCK_COMMANDS}\n"
        + f"resource_file={workdir / 'resource.cfg'}\n"
        + f"check_result_path={workdir}\n"
        + "nagios_user=nagios\nnagios_group=nagios\nillegal_macro_output_chars=`~$&|'\"<>\n"
    )
    result = subprocess.run([NAGIOS4, "-v", str(main)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Total Errors:\s+0\b", result.stdout), result.stdout
    # Its own objects were read: 6 services of the example plus localhost's.
    services = int(re.search(r"Checked (\d+) services", result.stdout).group(1))  # type: ignore[union-attr]
    assert services >= 6, result.stdout
    example = (EXAMPLES / "nagios.cfg").read_text()
    assert "$SERVICEDOWNTIME$" in example
    for command in ("selfheal run", "selfheal wrap", "check_selfheal_", "check_nrpe"):
        assert command in example, command


def test_selfheal_yaml_example_is_valid() -> None:
    result = run_selfheal("validate", "-c", EXAMPLES / "selfheal.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{EXAMPLES / 'selfheal.yaml'}: OK, 4 checks"), result.stdout
    cfg = config.load(str(EXAMPLES / "selfheal.yaml"))
    assert set(cfg.checks) == {"nginx", "worker", "disk-root", "postfix"}
    assert cfg.checks["nginx"].heal.argv == ["sudo", "-n", "--", "systemctl", "restart", "nginx"]


def test_sudoers_example_passes_visudo_and_allows_exactly_the_example_heals() -> None:
    visudo = "/usr/sbin/visudo"
    need_executable(visudo, "sudo")
    path = EXAMPLES / "sudoers.d" / "selfheal"
    result = subprocess.run([visudo, "-cf", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    allowed = sudo_commands(path.read_text())
    # Every heal the YAML runs with sudo (resolved as sudo resolves it, by
    # its secure_path) is allowed, and nothing else.
    heals = set()
    for check in config.load(str(EXAMPLES / "selfheal.yaml")).checks.values():
        argv = check.heal.argv
        assert argv[:3] == ["sudo", "-n", "--"], argv
        program = argv[3] if argv[3].startswith("/") else f"/usr/bin/{argv[3]}"
        heals.add(shlex.join([program, *argv[4:]]))
        limit = check.heal.start_limit()  # a systemd heal resets a unit at its start limit first
        if limit is not None:
            reset = [str(word) for word in limit["reset"]]
            assert reset[:3] == ["sudo", "-n", "--"], reset
            heals.add(shlex.join([f"/usr/bin/{reset[3]}", *reset[4:]]))
    for heal in re.findall(r"--heal '([^'$]+)' --sudo", (EXAMPLES / "nagios.cfg").read_text()):
        heals.add(f"/usr/bin/{heal}")
    for line in re.findall(
        r"check_command\s+selfheal_wrap_http!\w+!([^!]+)!", (EXAMPLES / "nagios.cfg").read_text()
    ):
        heals.add(f"/usr/bin/{line}")
    for unit in re.findall(r"check_command\s+selfheal_systemd!(\S+)", (EXAMPLES / "nagios.cfg").read_text()):
        heals.add(f"/usr/local/bin/check_selfheal_systemd --restart --unit {unit}")
    missing = heals - allowed
    assert not missing, f"heals the examples run with sudo that sudoers does not allow: {missing}"
    assert allowed - heals <= {"/usr/bin/systemctl restart app.service"}, allowed - heals
    assert "Defaults:nagios !requiretty" in path.read_text()


def sudo_commands(text: str) -> set[str]:
    """The commands of the Cmnd_Alias lines, joined across continuations."""
    joined = text.replace("\\\n", " ")
    commands = set()
    for match in re.finditer(r"^Cmnd_Alias\s+\w+\s*=\s*(.+)$", joined, re.MULTILINE):
        commands.update(" ".join(c.split()) for c in match.group(1).split(","))
    return commands


def test_icinga2_example_passes_the_config_check(workdir: Path) -> None:
    need_executable(ICINGA2, "icinga2-bin")
    master = workdir / "zones.d" / "master"
    master.mkdir(parents=True)
    (master / "selfheal.conf").write_text((EXAMPLES / "icinga2" / "selfheal.conf").read_text())
    (master / "hosts.conf").write_text(
        """
object Host "web01.example.com" {
  check_command = "hostalive"
  address = "192.0.2.10"
  vars.agent_endpoint = name
  vars.selfheal_checks = [ "nginx", "worker" ]
}
object Host "master.example.com" {
  check_command = "hostalive"
  address = "127.0.0.1"
  vars.selfheal_app_health = true
}
"""
    )
    main = workdir / "icinga2.conf"
    main.write_text(
        f"""
include <itl>
include <plugins>
const PluginDir = "{PLUGIN_DIR}"
const NodeName = "master.example.com"
const ZoneName = "master"
object Endpoint NodeName {{}}
object Zone ZoneName {{ endpoints = [ NodeName ] }}
object Endpoint "web01.example.com" {{}}
object Zone "web01.example.com" {{ endpoints = [ "web01.example.com" ]; parent = ZoneName }}
include_zones "selfheal", "{workdir / "zones.d"}"
"""
    )
    result = subprocess.run(
        [ICINGA2, "daemon", "-C", "-c", str(main), *icinga2_dirs(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Finished validating the configuration" in result.stdout, result.stdout
    # Two services from the for-loop apply rule, one from the wrap rule.
    assert "Instantiated 3 Services" in result.stdout, result.stdout


def icinga2_dirs(root: Path, user: str = "root") -> list[str]:
    """Icinga 2's data, log, cache, spool and run dirs, all inside ``root``."""
    defines = []
    for name in ("DataDir", "LogDir", "CacheDir", "SpoolDir", "InitRunDir"):
        path = root / name.lower()
        path.mkdir(exist_ok=True)
        defines.append(f"-D{name}={path}")
    return [*defines, f"-DRunAsUser={user}", f"-DRunAsGroup={user}"]


def test_nrpe_example_commands_run_under_a_real_nrpe(deployment: Deployment, workdir: Path) -> None:
    need_executable(NRPE, "nagios-nrpe-server")
    need_executable(CHECK_NRPE, "nagios-nrpe-plugin")
    example = (EXAMPLES / "nrpe.cfg").read_text()
    names = re.findall(r"^command\[(\w+)\]=/usr/local/bin/selfheal run ([\w-]+)$", example, re.MULTILINE)
    assert len(names) == len(re.findall(r"^command\[", example, re.MULTILINE)) == 4
    # The example as installed, with selfheal where this test installed it,
    # reading a config that has the same check names (plugins that say OK).
    # NRPE passes no environment to its commands: the config's path is set
    # by a wrapper, as /usr/local/bin/selfheal would find /etc/selfheal.
    test_config = workdir / "selfheal.yaml"
    test_config.write_text(
        f"state_dir: {workdir / 'state'}\nchecks:\n"
        + "".join(
            f"  {check}:\n    plugin: [check_dummy, '0', '{check} fine']\n    heal: {{command: 'true'}}\n"
            for _, check in names
        )
    )
    wrapper = workdir / "selfheal"
    wrapper.write_text(f"#!/bin/sh\nSELFHEAL_CONFIG='{test_config}' exec '{deployment.selfheal}' \"$@\"\n")
    wrapper.chmod(0o755)
    (workdir / "nrpe.d").mkdir()
    (workdir / "nrpe.d" / "selfheal.cfg").write_text(example.replace("/usr/local/bin/selfheal", str(wrapper)))
    nrpe = Nrpe(workdir, {}, include_dir=workdir / "nrpe.d")
    nrpe.start()
    try:
        for command, check in names:
            result, _ = nrpe.check(command)
            assert result.returncode == 0, result
            assert result.stdout.startswith(f"{check.upper()} OK - OK: {check} fine"), result.stdout
    finally:
        nrpe.stop()


def nagios_objects(text: str, kind: str) -> list[dict[str, str]]:
    """The ``define KIND { ... }`` blocks of a Nagios object file."""
    objects = []
    for body in re.findall(rf"^define {kind}\s*{{(.*?)^}}", text, re.MULTILINE | re.DOTALL):
        fields = {}
        for line in body.splitlines():
            line = line.split(";", 1)[0].strip()  # ";" starts a comment, as for Nagios
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                fields[key] = value.strip()
        objects.append(fields)
    return objects


def test_nagios_example_command_lines_run_as_nagios_would_run_them(
    deployment: Deployment, workdir: Path
) -> None:
    """Each local service's command line, macros expanded, run by /bin/sh as nagios, in a dry run."""
    text = (EXAMPLES / "nagios.cfg").read_text()
    commands = {c["command_name"]: c["command_line"] for c in nagios_objects(text, "command")}
    services = [s for s in nagios_objects(text, "service") if s.get("host_name") == "localhost"]
    assert {s["check_command"].split("!")[0] for s in services} == {
        "selfheal_run",
        "selfheal_wrap_http",
        "selfheal_systemd",
    }
    config = workdir / "selfheal.yaml"
    config.write_text((EXAMPLES / "selfheal.yaml").read_text())
    for service in services:
        name, *args = service["check_command"].split("!")
        line = commands[name]
        for number, value in enumerate(args, 1):
            line = line.replace(f"${f'ARG{number}'}$", value)
        line = (
            line.replace("$USER1$", PLUGIN_DIR)
            .replace("$HOSTADDRESS$", "127.0.0.1")
            .replace("$SERVICEDOWNTIME$", "0")
            .replace("/usr/local/bin/", f"{deployment.bin}/")
        )
        assert "$" not in line, line
        # --dry-run right after the program (and its subcommand): decide,
        # start and record nothing.
        words = line.split(" ")
        at = 2 if words[0].endswith("/selfheal") else 1
        line = " ".join([*words[:at], "--dry-run", *words[at:]])
        result = subprocess.run(
            [RUNUSER, "-u", RUN_AS, "--", "/bin/sh", "-c", line],
            env={
                "PATH": os.defpath,
                "SELFHEAL_CONFIG": str(config),
                "SELFHEAL_STATE_DIR": str(workdir / "state"),
            },
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        first = result.stdout.splitlines()[0] if result.stdout else ""
        match = re.match(r"^(\S+) (OK|WARNING|CRITICAL|UNKNOWN) - ", first)
        assert match, f"{name}: {result.stdout!r} {result.stderr!r}"
        assert result.returncode == ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(match.group(2)), result
        assert "option" not in first and "usage" not in first.lower(), f"{name}: {first}"
        if match.group(2) == "UNKNOWN":
            # Only the unit check may be unknown: this machine may have no
            # systemd, or no postfix.service.
            assert name == "selfheal_systemd", f"{name}: {first}"
        print(f"\n{name}: {first}")
    assert not (workdir / "state").exists(), "a dry run wrote state"

"""``selfheal doctor [NAME]``: will healing work when it is needed?

Run it as the user Nagios or NRPE runs checks as (``sudo -u nagios
selfheal doctor``). One line per item, PASS or FAIL, and each FAIL says
how to fix it:

- the state dir can be created or written, with safe permissions;
- the journal can be written;
- how the heal's runner starts: a transient systemd unit, or a new
  session (FAIL where that leaves heals in the cgroup of the agent that
  ran the check, and a restart of the agent would kill them);
- per check: the plugin exists and is executable, the heal's executable
  exists, a ``systemctl`` heal has systemd as PID 1, and with ``sudo:
  true``, ``sudo -n -l <argv>`` allows the heal (and, for a ``systemd:``
  heal, its ``reset-failed``) without a password or a tty.

It changes nothing: a missing state dir is not created (created by root,
it would belong to root and lock the ``nagios`` user out).
"""

from __future__ import annotations

import os
import stat

from selfheal.commands import common as ops
from selfheal.commands.status import read_records
from selfheal.core.argv import HELP_OPTIONS
from selfheal.core.states import SelfhealError, StateError

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from selfheal.config.schema import CheckConfig
    from selfheal.core.actions import Action

OPTIONS = [ops.JSON_OPTION, *ops.SITE_OPTIONS, *HELP_OPTIONS]
#: sudo's usual secure_path: where sudo finds a heal's executable.
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SUDO_TIMEOUT = 10.0


class Item:
    """One PASS or FAIL line, and for a FAIL, the fix."""

    def __init__(
        self,
        what: str,
        ok: bool,
        detail: str,
        fix: str | None = None,
        check: str | None = None,
        warn: bool = False,
    ) -> None:
        self.warn = warn  # passes, but worth a look: WARN
        self.what = what
        self.ok = ok
        self.detail = detail
        self.fix = fix
        self.check = check

    def to_json(self) -> dict[str, object]:
        data = {"check": self.check, "item": self.what, "ok": self.ok, "detail": self.detail, "fix": self.fix}
        return {**data, "warn": self.warn}


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, name = ops.parse_name(command, args, OPTIONS, out)
    site = ops.Site(values, env)
    if name is not None and name not in site.configured:
        raise SelfhealError(
            f"no check named {name!r} in {site.config_path} (configured: {', '.join(site.configured) or 'none'})"
        )
    who, group = ops.user()
    items = [state_dir_item(site.state_dir, who, group), journal_item(site, who), runner_item(env, who)]
    if site.config is not None:
        items.append(config_item(site.config_path))
    items.extend(output_items(site.config.outputs if site.config else {}, env, who))
    if site.config is not None and site.config.fleet is not None:
        from selfheal.commands.fleet import doctor_items

        items.extend(Item(*found) for found in doctor_items(site.config.fleet))
    for check in (
        [site.config.checks[n] for n in ([name] if name else site.configured)] if site.config else []
    ):
        items.extend(check_items(check, env, who))
        try:
            shared = ops.shared_heal(site, check.name, read_records(site, [check.name])[check.name])
        except StateError:
            shared = None  # the state dir's own item says why
        if shared:
            why = f"one record, two heals: it last ran '{shared[0]}', the config heals with '{shared[1]}'"
            items.append(
                Item("shared name", True, why, "give the wrap check its own --name", check.name, True)
            )
    ok = all(item.ok for item in items)
    if values["json"]:
        ops.dump_json(
            {
                "user": who,
                "config": site.config_path if site.config else None,
                "state_dir": site.state_dir,
                "ok": ok,
                "items": [item.to_json() for item in items],
            },
            out,
        )
        return 0 if ok else 1
    if os.geteuid() == 0:
        out.write(
            "note: running as root; run doctor as the user Nagios or NRPE runs checks as "
            "(sudo -u nagios selfheal doctor): root passes checks that user may fail\n"
        )
    if site.config is None:
        out.write(f"note: no config at {site.config_path}; checking the state dir only\n")
    for item in items:
        label = f"{item.check}: {item.what}" if item.check else item.what
        out.write(f"{'WARN' if item.warn else 'PASS' if item.ok else 'FAIL'}  {label}: {item.detail}\n")
        if item.fix:
            out.write(f"      fix: {item.fix}\n")
    failed = sum(not item.ok for item in items)
    out.write(f"{len(items) - failed} passed, {failed} failed\n")
    return 1 if failed else 0


def state_dir_item(path: str, who: str, group: str) -> Item:
    from selfheal.edges.store import StateDir

    create = f"install -d -o {who} -g {group} -m 0700 {path}"
    if not os.path.lexists(path):
        parent = os.path.dirname(path)
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if parent and os.access(parent, os.W_OK | os.X_OK):
            return Item(
                "state dir", True, f"{path} does not exist yet; the first heal creates it (mode 0700)"
            )
        return Item(
            "state dir", False, f"{path} does not exist and {parent} is not writable by {who}", create
        )
    try:
        with StateDir.open(path, create=False) as state_dir:
            mode = stat.S_IMODE(os.fstat(state_dir.fd).st_mode)
    except StateError as exc:
        if "writable by everyone" in str(exc):
            fix = f"chmod o-w {path}"
        elif "symlink" in str(exc):
            fix = f"point the state dir at the real directory, or: rm {path} && {create}"
        else:
            fix = f"chown {who}:{group} {path} && chmod 0700 {path}"
        return Item("state dir", False, str(exc), fix)
    from selfheal.config.trust import state_dir_writers

    findings = state_dir_writers(path)
    if findings:
        return finding_item("state dir", findings[0])
    return Item("state dir", True, f"{path} is writable by {who}, mode {mode:04o}")


def finding_item(what: str, finding: str) -> Item:
    """A FAIL from a selfheal.config.trust finding, ``WHY: run: FIX``."""
    why, _, fix = finding.rpartition(": run: ")
    return Item(what, False, why or finding, fix or None)


def config_item(path: str) -> Item:
    """Whether anyone but root and this user could change what the config runs.

    What ``run`` refuses outright stops doctor earlier, when the config is
    loaded; this reports the milder findings.
    """
    from selfheal.config.trust import config_writers

    warnings = config_writers(path)[1]
    if warnings:
        return finding_item("config", f"{path} is {warnings[0]}")
    return Item("config", True, f"{path} can be changed only by root or its owner")


def journal_item(site: ops.Site, who: str) -> Item:
    path = site.journal
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        directory = os.path.dirname(path)
        if os.access(directory, os.W_OK | os.X_OK) or (
            directory == site.state_dir and not os.path.exists(directory)
        ):
            return Item("journal", True, f"{path} does not exist yet; it will be created")
        return Item(
            "journal",
            False,
            f"{path} cannot be created: {directory} is not writable by {who}",
            f"give {who} write access to {directory}, or set journal: in the config",
        )
    except OSError as exc:
        return Item("journal", False, f"{path}: {exc.strerror}")
    if stat.S_ISLNK(st.st_mode):
        return Item("journal", False, f"{path} is a symlink; selfheal refuses to follow it", f"rm {path}")
    if not stat.S_ISREG(st.st_mode):
        return Item("journal", False, f"{path} is not a regular file")
    if not os.access(path, os.W_OK):
        return Item("journal", False, f"{path} is not writable by {who}", f"chown {who} {path}")
    return Item("journal", True, f"{path} is writable")


def output_items(outputs: Mapping[str, object], env: Mapping[str, str], who: str) -> list[Item]:
    """The metrics dir, the syslog socket and the on_event command, if configured."""
    items = []
    metrics = outputs.get("metrics")
    if metrics:
        directory = os.path.dirname(str(metrics))
        if os.access(directory, os.W_OK | os.X_OK):
            items.append(Item("metrics", True, f"{directory} is writable"))
        else:
            items.append(
                Item(
                    "metrics",
                    False,
                    f"{directory} is missing or not writable by {who}",
                    f"install -d -o {who} -m 0755 {directory}, or let {who} write to it",
                )
            )
    syslog = outputs.get("syslog")
    if isinstance(syslog, dict) and syslog:
        address = syslog["address"]
        if os.path.exists(address) and stat.S_ISSOCK(os.stat(address).st_mode):
            items.append(Item("syslog", True, f"{address} is a socket"))
        else:
            items.append(
                Item(
                    "syslog",
                    False,
                    f"{address} is not a socket: events will not reach syslog",
                    "start rsyslog or systemd-journald, or set syslog: {address: ...}",
                )
            )
    hook = outputs.get("on_event")
    if isinstance(hook, dict) and hook:
        program = hook["argv"][0]
        found = which(program, env.get("PATH") or os.defpath)
        if found:
            items.append(Item("on_event", True, f"{found} exists"))
        else:
            items.append(
                Item(
                    "on_event",
                    False,
                    f"{program} not found or not executable",
                    "install it, or give its full path in on_event: command:",
                )
            )
    return items


def check_items(check: CheckConfig, env: Mapping[str, str], who: str) -> list[Item]:
    from selfheal.config.schema import find_plugin

    items = []
    if check.plugin is not None:
        found = find_plugin(check.plugin[0], env)
        if found:
            items.append(Item("plugin", True, f"{found} is executable", check=check.name))
        else:
            items.append(
                Item(
                    "plugin",
                    False,
                    f"{check.plugin[0]} not found or not executable",
                    f"install it, or fix plugin: at {check.path}:{check.plugin_line}",
                    check.name,
                )
            )
    else:
        items.append(Item("plugin", True, f"built-in check {check.builtin}", check=check.name))
    action: Action = check.heal
    program = "/bin/sh" if action.shell else action.words[0]
    path = SECURE_PATH if action.sudo else (env.get("PATH") or os.defpath)
    executable = which(program, path)
    if executable is None:
        items.append(
            Item(
                "heal",
                False,
                f"{program} not found" + (" in sudo's secure_path" if action.sudo else ""),
                f"install it, or give its full path in heal: at {check.path}:{check.line}",
                check.name,
            )
        )
    else:
        items.append(Item("heal", True, f"{executable} exists", check=check.name))
    if program.rpartition("/")[2] == "systemctl":
        items.append(systemd_item(check))
    if action.sudo:
        items.append(sudo_item(check, action, executable or program, who))
        limit = action.start_limit()
        if limit is not None:
            # The reset-failed before a restart at the start limit runs through sudo too.
            given = limit["reset"]  # the sudo prefix, then systemctl reset-failed UNIT
            reset = (
                [str(word) for word in given][len(action.prefixed([])) :] if isinstance(given, list) else []
            )
            items.append(sudo_item(check, action, executable or program, who, reset[1:]))
    return items


def runner_item(env: Mapping[str, str], who: str) -> Item:
    """How a heal's runner starts for this user: a transient unit, or a new session and why."""
    from selfheal.edges.proc import systemd_booted
    from selfheal.edges.transient import launcher

    systemd_run, why = launcher(env)
    if systemd_run is not None:
        return Item("runner", True, f"heals start as transient systemd units ({systemd_run})")
    if not systemd_booted():
        return Item("runner", True, f"heals start in a new session (setsid): {why}")
    if os.geteuid() != 0:
        return Item(
            "runner",
            False,
            f"heals start in a new session (setsid) as {who}, inside the cgroup of the unit that ran the"
            " check: restarting that unit (NRPE, Nagios) with KillMode=control-group kills heals in flight",
            "let the agent's restart spare its children: 'systemctl edit nagios-nrpe-server' (or nagios4),"
            " add [Service] KillMode=process (docs/design.md, Spawning)",
        )
    return Item(
        "runner",
        False,
        f"heals start in a new session (setsid), not as a unit: {why}",
        "apt-get install systemd (it ships systemd-run), or put systemd-run on the PATH of the checks",
    )


def systemd_item(check: CheckConfig) -> Item:
    """A systemctl heal needs systemd as PID 1, else it fails with 'Failed to connect to bus'."""
    from selfheal.edges.proc import SYSTEMD_BOOTED, systemd_booted

    if systemd_booted():
        return Item("systemd", True, "systemd is PID 1: systemctl can reach it", check=check.name)
    unit = getattr(check.heal, "unit", None) or "NAME"
    return Item(
        "systemd",
        False,
        f"systemd is not PID 1 on this host ({SYSTEMD_BOOTED} does not exist):"
        " the heal's systemctl would fail with 'Failed to connect to bus'",
        f"heal through the init script instead, heal: {{init: {unit.removesuffix('.service')}}}, or"
        f" heal: 'service {unit.removesuffix('.service')} restart' (docs/without-systemd.md),"
        f" at {check.path}:{check.line}",
        check.name,
    )


def which(program: str, path: str) -> str | None:
    from selfheal.edges.files import find_executable

    return find_executable(program, path.split(os.pathsep))


def sudo_item(
    check: CheckConfig, action: Action, executable: str, who: str, arguments: list[str] | None = None
) -> Item:
    """``sudo -n -l ARGV``: allowed without a password (-n) for this user?

    ``arguments`` replace the action's own, for another command the heal
    runs through sudo with the same executable (``systemctl reset-failed``).
    """
    from selfheal.edges.spawner import Spawner

    words = ["/bin/sh", "-c", action.words[0]] if action.shell else [executable, *action.words[1:]]
    if arguments is not None:
        words = [executable, *arguments]
    rule = f"{who} ALL=(root) NOPASSWD: {' '.join(words)}"
    fix = f"add with 'visudo -f /etc/sudoers.d/selfheal': {rule}"
    sudo = which("sudo", SECURE_PATH)
    if sudo is None:
        return Item("sudo", False, "sudo is not installed", "apt-get install sudo", check.name)
    probe = [sudo, "-n", "-l", "--", *words]
    run = Spawner().run_plugin(probe, SUDO_TIMEOUT)
    said = (run.stderr or run.stdout).decode("utf-8", "replace").strip().splitlines()
    if run.error or run.timed_out or run.exit_status != 0:
        why = said[0] if said else ("timed out" if run.timed_out else run.error or f"exit {run.exit_status}")
        return Item("sudo", False, f"sudo -n -l {' '.join(words)}: not allowed ({why})", fix, check.name)
    listing = Spawner().run_plugin([sudo, "-n", "-l"], SUDO_TIMEOUT).stdout.decode("utf-8", "replace")
    if any(word.strip(",") == "requiretty" for word in listing.split()):
        return Item(
            "sudo",
            False,
            "sudoers has 'requiretty': sudo refuses to run without a terminal",
            f"add with 'visudo -f /etc/sudoers.d/selfheal': Defaults:{who} !requiretty",
            check.name,
        )
    return Item("sudo", True, f"{who} may run '{' '.join(words)}' without a password", check=check.name)

"""Where journal events also go: syslog, the ``on_event`` command, metrics.

Configured at the top of ``selfheal.yaml``::

    syslog: true                    # or {address: /dev/log, facility: daemon, tag: selfheal}
    metrics: /var/lib/prometheus/node-exporter/selfheal.prom
    on_event:
      command: [/usr/local/bin/notify-chat, --room, ops]
      events: [attempt, gave_up, recovered]      # default: every event

The settings travel as plain JSON (``outputs``) from the config to the
engine and, in the heal's spec, to the detached runner, so events from
both reach the same places. Each journal write calls ``Outputs.event``;
closing the journal after any event rewrites the metrics file.

None of this may change a check's result or delay it: a failure to send
or to start the hook is ignored (``selfheal doctor`` checks the setup),
the syslog socket is non-blocking, and the hook is started detached,
through the spawner, never waited for.
"""

from __future__ import annotations

import os

from selfheal.config.outputs import FACILITIES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

WARNING, INFO = 4, 6
MAX_DATAGRAM = 4000

# -- sending ----------------------------------------------------------------


class Outputs:
    """The configured outputs, for one journal's events."""

    def __init__(self, settings: Mapping[str, object], state_dir: str) -> None:
        self.settings = settings
        self.state_dir = state_dir

    def event(self, entry: Mapping[str, object]) -> None:
        syslog = self.settings.get("syslog")
        if syslog:
            assert isinstance(syslog, dict)  # read_outputs made it one
            send_syslog(syslog, entry)
        hook = self.settings.get("on_event")
        if hook:
            assert isinstance(hook, dict)  # read_outputs made it one
            if entry.get("event") in hook["events"]:
                run_hook(hook["argv"], entry, self.state_dir)

    def close(self) -> None:
        if self.settings.get("metrics"):
            try:
                write_metrics(str(self.settings["metrics"]), self.state_dir)
            except OSError:
                pass  # doctor reports an unwritable metrics dir


def severity(entry: Mapping[str, object]) -> int:
    kind = entry.get("event")
    failed = kind == "action_end" and (entry.get("exit_code") != 0 or entry.get("timed_out"))
    return WARNING if failed or kind in ("gave_up", "action_lost", "state_error") else INFO


def syslog_message(settings: Mapping[str, str], entry: Mapping[str, object]) -> bytes:
    """RFC 3164 as the local syslog socket expects it (what glibc's syslog() sends)."""
    import json
    import time

    from selfheal.core.events import describe

    priority = FACILITIES[settings["facility"]] * 8 + severity(entry)
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    text = (
        f"{entry.get('check')} {entry.get('event')}: {describe(dict(entry))} {json.dumps(entry, default=str)}"
    )
    message = f"<{priority}>{stamp} {settings['tag']}[{os.getpid()}]: {text}"
    return message.encode("utf-8", "replace")[:MAX_DATAGRAM]


def send_syslog(settings: Mapping[str, str], entry: Mapping[str, object]) -> None:
    import socket

    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except OSError:
        return
    try:
        sock.setblocking(False)  # a stuck syslog daemon must not hold the check
        sock.sendto(syslog_message(settings, entry), settings["address"])
    except OSError:
        pass
    finally:
        sock.close()


def hook_environment(entry: Mapping[str, object]) -> dict[str, str]:
    """The caller's environment, plus the event as ``SELFHEAL_*`` variables."""
    import shlex

    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFHEAL_")}
    for key, value in entry.items():
        if value is None:
            continue
        if isinstance(value, list):
            text = shlex.join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        env[f"SELFHEAL_{key.upper()}"] = text.replace("\0", "")
    return env


def run_hook(argv: list[str], entry: Mapping[str, object], state_dir: str) -> None:
    """Start the on_event command detached, the event as JSON on its stdin."""
    import json

    from selfheal.core.states import StateError
    from selfheal.edges.files import open_regular
    from selfheal.edges.spawner import Spawner

    payload = (json.dumps(entry, default=str) + "\n").encode("utf-8", "replace")
    log = os.path.join(state_dir, "on_event.log")
    try:
        log_fd = open_regular(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, single_link=os.geteuid() == 0)
    except (OSError, StateError):  # the hook still runs; its output goes nowhere
        log_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        Spawner().spawn_hook(argv, payload, hook_environment(entry), log_fd)
    except OSError:
        pass
    finally:
        os.close(log_fd)


# -- metrics ------------------------------------------------------------------

METRICS = [
    ("selfheal_heals_started_total", "counter", "Heals started.", "heals_total"),
    ("selfheal_heals_succeeded_total", "counter", "Heal actions that exited 0.", "heals_succeeded"),
    ("selfheal_heals_failed_total", "counter", "Heal actions that failed or were lost.", "heals_failed"),
    (
        "selfheal_heals_timed_out_total",
        "counter",
        "Heal actions killed at action_timeout.",
        "heals_timed_out",
    ),
    ("selfheal_gave_up_total", "counter", "Times the check gave up healing.", "gave_up_total"),
    ("selfheal_last_attempt_timestamp_seconds", "gauge", "Start of the last heal attempt.", None),
    ("selfheal_paused", "gauge", "1 while healing is paused with selfheal pause.", None),
    ("selfheal_paused_until_timestamp_seconds", "gauge", "End of the pause (0: not paused).", None),
]


def metrics_text(state_dir: str, now: float) -> str:
    """Every check's record in the Prometheus text exposition format."""
    from selfheal.core.record import CorruptRecord
    from selfheal.core.states import StateError
    from selfheal.edges.store import StateDir, check_name

    records = []
    with StateDir.open(state_dir, create=False) as directory:
        for entry in sorted(os.listdir(state_dir)):
            if not entry.endswith(".json"):
                continue
            try:
                record = directory.peek(check_name(entry[: -len(".json")]))
            except (ValueError, CorruptRecord, StateError):  # one bad record must not hide the rest
                continue
            if record is not None:
                records.append(record)
    lines = []
    for metric, kind, text, field in METRICS:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        for record in records:
            if field is not None:
                value: float = getattr(record, field)
            elif metric == "selfheal_last_attempt_timestamp_seconds":
                value = record.last_attempt.started if record.last_attempt else 0
            else:
                paused = record.paused_until is not None and record.paused_until > now
                until = record.paused_until if paused and record.paused_until is not None else 0
                value = (1 if paused else 0) if metric == "selfheal_paused" else until
            number = str(value) if isinstance(value, int) else f"{value:.3f}"
            lines.append(f'{metric}{{check="{record.check}"}} {number}')
    return "\n".join(lines) + "\n"


def write_metrics(path: str, state_dir: str) -> None:
    """Write the textfile atomically: node_exporter never reads half of it."""
    import time

    from selfheal.edges.files import replace_file

    replace_file(path, metrics_text(state_dir, time.time()).encode())

"""The config's outputs: where journal events also go (syslog, metrics, on_event).

Read and checked here, with the config; sent by ``selfheal.hooks``. The
settings travel as plain JSON from the config to the engine and, in the
heal's spec, to the detached runner.
"""

from __future__ import annotations

import os

from selfheal.edges.journal import EVENT_TYPES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from yaml import Node

    from selfheal.config.reader import Reader

#: Syslog facilities by name (RFC 5424 numbers).
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SYSLOG_DEFAULTS = {"address": "/dev/log", "facility": "daemon", "tag": "selfheal"}
TOP_KEYS = ("syslog", "metrics", "on_event")


# -- reading the config -----------------------------------------------------


def read_outputs(reader: Reader, top: Mapping[str, tuple[Node, Node]]) -> dict[str, object]:
    """The ``syslog:``, ``metrics:`` and ``on_event:`` settings, checked."""
    outputs: dict[str, object] = {}
    if "syslog" in top:
        node = top["syslog"][1]
        value = reader.value(node)
        if isinstance(value, bool):
            outputs["syslog"] = dict(SYSLOG_DEFAULTS) if value else None
        elif isinstance(value, dict):
            unknown = set(value) - set(SYSLOG_DEFAULTS)
            if unknown:
                raise reader.error(
                    f"syslog: unknown key {sorted(unknown)[0]!r} (allowed: address, facility, tag)", node
                )
            settings = {**SYSLOG_DEFAULTS, **value}
            if settings["facility"] not in FACILITIES:
                raise reader.error(f"syslog: facility must be one of {', '.join(FACILITIES)}", node)
            if not all(isinstance(settings[k], str) and settings[k] for k in ("address", "tag")):
                raise reader.error("syslog: address and tag must be non-empty strings", node)
            outputs["syslog"] = settings
        else:
            raise reader.error("syslog must be true, false or a mapping (address, facility, tag)", node)
    if "metrics" in top:
        node = top["metrics"][1]
        value = reader.value(node)
        if not isinstance(value, str) or not value.endswith(".prom") or not os.path.isabs(value):
            raise reader.error(
                "metrics must be the absolute path of a .prom file in node_exporter's textfile directory",
                node,
            )
        outputs["metrics"] = value
    if "on_event" in top:
        node = top["on_event"][1]
        fields = reader.mapping(node, "on_event")
        reader.known_keys(fields, ("command", "events"), "on_event")
        if "command" not in fields:
            raise reader.error("on_event needs a command: (an argv list or a command string)", node)
        argv = reader.argv(fields["command"][1], "on_event: command")
        events: object = list(EVENT_TYPES)
        if "events" in fields:
            events_node = fields["events"][1]
            events = reader.value(events_node)
            if not isinstance(events, list) or not events or not all(e in EVENT_TYPES for e in events):
                raise reader.error(
                    f"on_event: events must be a list of: {', '.join(EVENT_TYPES)}", events_node
                )
        outputs["on_event"] = {"argv": argv, "events": events}
    return {key: value for key, value in outputs.items() if value}

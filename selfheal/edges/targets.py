"""Where a heal's result is reported at once, by the key under ``report_to:``.

Each kind is a module with a target class (``from_json(data)``, which
raises ValueError naming the key at fault, and ``to_json()``) and a
``send(target, state, output, comment)`` that returns None when the result
arrived, or why it did not, and never raises nor blocks past its timeout.
A new kind is one loader and one line in ``KINDS``. The modules are
imported only when a config names them or a runner reports.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    #: A kind: its target's ``from_json``, and its ``send``.
    Kind = tuple[Callable[[object], Any], Callable[[Any, int, str, "str | None"], "str | None"]]


def _nagios() -> Kind:
    from selfheal.edges import nagios_cmd

    return nagios_cmd.NagiosTarget.from_json, nagios_cmd.send


def _icinga() -> Kind:
    from selfheal.edges import icinga_api

    return icinga_api.IcingaTarget.from_json, icinga_api.send


#: The kinds, by their key under ``report_to:``; each loader imports its module.
KINDS: dict[str, Callable[[], Kind]] = {
    "icinga": _icinga,
    "nagios": _nagios,
}


def target(kind: str, data: object) -> Any:
    """The target of ``kind`` that ``data`` describes; ValueError (naming the key) if it does not fit."""
    if kind not in KINDS:
        raise ValueError(f"unknown target {kind[:40]!r} (known: {', '.join(sorted(KINDS))})")
    from_json, _ = KINDS[kind]()
    return from_json(data)


def send(kind: str, data: object, state: int, output: str, comment: str | None) -> str | None:
    """Report to the target ``data`` describes; None when it arrived, else why not. Never raises."""
    try:
        from_json, deliver = KINDS[kind]()
        return deliver(from_json(data), state, output, comment)
    except (KeyError, ValueError) as exc:
        return f"bad report_to {kind}: {exc}"

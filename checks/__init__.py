"""The built-in checks, installed as ``selfheal.checks``.

Each check is one module and works three ways:

- as a Nagios plugin, the console script ``check_selfheal_<name>``;
- from ``selfheal.yaml`` as ``check: <name>`` plus ``args: {...}``, run by
  ``selfheal run NAME``;
- from Python, as nagiosplugin Resources and Contexts to compose.

This package is imported by the config loader to validate ``check:``
names, so it imports nothing: each check module (which does import
nagiosplugin) is loaded only when that check runs.
"""

from __future__ import annotations

#: Every built-in check, by the name ``check:`` uses.
NAMES = ("process", "tcp", "http", "disk", "memory", "load", "file_age", "systemd")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.checks.plugin import Spec


def spec(name: str) -> Spec:
    """The command-line description of the built-in check ``name``."""
    if name not in NAMES:
        raise KeyError(name)
    import importlib

    return importlib.import_module(f"selfheal.checks.{name}").SPEC  # type: ignore[no-any-return]

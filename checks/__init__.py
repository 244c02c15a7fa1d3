"""The built-in checks, installed as ``selfheal.checks``.

Each check is one module and works three ways:

- as a Nagios plugin, the console script ``check_selfheal_<name>``;
- from ``selfheal.yaml`` as ``check: <name>`` plus ``args: {...}``, run by
  ``selfheal run NAME``;
- from Python, as nagiosplugin Resources and Contexts to compose.

The config loader knows the names (it validates ``check:``); this
package imports nothing else: each check module (which does import
nagiosplugin) is loaded only when that check runs.
"""

from __future__ import annotations

from selfheal.config.schema import BUILTIN_CHECKS as NAMES

__all__ = ["NAMES"]

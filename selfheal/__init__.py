"""selfheal: self-healing Nagios check plugins.

When a check says CRITICAL, selfheal consults a cooldown record, starts a
heal action fully detached, downgrades the result to WARNING with a note,
and journals the attempt. Repeated heals are bounded by a growing cooldown
and a cap per window, after which the check says "gave up".

The public names are loaded lazily (PEP 562): every plugin run imports this
package, and a healthy ``selfheal wrap`` must not pay for nagiosplugin.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Check", "Command", "InitScript", "Policy", "Systemd", "__version__"]

_LAZY = {
    "Check": "selfheal.check",
    "Command": "selfheal.core.actions",
    "InitScript": "selfheal.core.actions",
    "Policy": "selfheal.core.policy",
    "Systemd": "selfheal.core.actions",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selfheal' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

"""The config file: where it is; loading with FILE:LINE errors, trust, the cache.

Only where the file is lives here: ``selfheal run`` on a healthy check
imports ``selfheal.config.cache``, and a CRITICAL ``selfheal wrap`` checks
whether a config exists for its outputs, and neither may pay for the YAML
loader (``selfheal.config.loader``) until a config is really read.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_CONFIG = "/etc/selfheal/selfheal.yaml"


def config_path(option: str | None, env: Mapping[str, str]) -> str:
    """``-c`` beats ``SELFHEAL_CONFIG`` beats ``/etc/selfheal/selfheal.yaml``."""
    return option or env.get("SELFHEAL_CONFIG") or DEFAULT_CONFIG

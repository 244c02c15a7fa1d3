"""What the fleet budget raises: every failure is a FleetError.

- ``FleetConfigError`` (also a ValueError): bad settings, budget or files;
- ``FleetClientMissing`` (also an ImportError): no etcd3gw;
- ``FleetUnreachable``: no endpoint answered within the deadline;
- ``FleetRefused``: etcd answered no (authentication, permission).
"""

from __future__ import annotations


class FleetError(Exception):
    """etcd answered, but not as expected (permission denied, bad request...)."""


class FleetConfigError(FleetError, ValueError):
    """The fleet settings or a budget are invalid."""


class FleetClientMissing(FleetError, ImportError):
    """The etcd client is not installed."""


class FleetUnreachable(FleetError):
    """No etcd endpoint answered within the deadline."""


class FleetRefused(FleetError):
    """etcd answered with an error: authentication failed, permission denied, a bad request.

    ``code`` is the gRPC status code etcd gave (5: not found, 7: permission
    denied, 16: unauthenticated), None when its answer had none.
    """

    def __init__(self, endpoint: object, code: int | None, message: str) -> None:
        super().__init__(f"etcd at {endpoint}: {message}")
        self.code = code

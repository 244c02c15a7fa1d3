"""Fleet-wide limits on healing, shared by many hosts through etcd.

``selfheal.fleet.budget`` holds the budget (lease-bound slots for heals
running at once) and the fleet-wide breaker (heals started per window),
and re-exports the whole API. Its parts, bottom up: ``errors``,
``settings`` (FleetSettings and Budget, validated), ``holders`` (a
group's keys read back, and the verdict), ``client`` (the etcd
connection: endpoints, deadlines, TLS, authentication).
Nothing here is imported on the healthy path, and the etcd client
(``etcd3gw``, the ``selfheal[fleet]`` extra) only when a budget is used.
"""

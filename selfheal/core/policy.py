"""How often a check may heal: cooldown, backoff, attempts per window.

A ``Policy`` is an immutable value. Durations are accepted in the
operator's form (``"15m"``) and stored as seconds.
"""

from __future__ import annotations

from selfheal.core import states

#: Defaults chosen for a daemon restart: one attempt, then 15 minutes to see
#: whether it helped, doubling up to 4 hours; at most 3 attempts in 6 hours.
#: Durations in seconds: only settings given in the operator's form ("15m")
#: load the parser, so a plugin run with the defaults never does.
DEFAULTS: dict[str, object] = {
    "cooldown": 15 * 60.0,
    "backoff": 2.0,
    "max_cooldown": 4 * 3600.0,
    "max_attempts": 3,
    "window": 6 * 3600.0,
    "reset_after": 3600.0,
    "action_timeout": 2 * 60.0,
    "grace": 30.0,
    "splay": 0.0,
    "heal_on": ("critical",),
    "retry_state": "critical",
}

#: ``retry_state``: what a retry after "did not help" reports. CRITICAL keeps
#: one incident one page; WARNING is the behaviour before it existed.
RETRY_STATES = ("critical", "warning")

_DURATIONS = ("cooldown", "max_cooldown", "window", "reset_after", "action_timeout", "grace", "splay")


class Policy:
    """The limits on healing one check.

    - ``cooldown``: wait after attempt 1 before attempt 2 may start;
      attempt k waits ``min(cooldown * backoff**(k-1), max_cooldown)``.
    - ``max_attempts`` within ``window``: then the check gives up.
    - ``reset_after``: healthy this long, and the attempt count starts over.
    - ``action_timeout``: the action's process group is killed after this.
    - ``grace``: after an action ends, the check stays WARNING this long
      while the service comes back.
    - ``splay``: a random delay up to this before the action, so a fleet
      does not restart in lockstep.
    - ``heal_on``: the states that heal (CRITICAL, optionally UNKNOWN).
    - ``retry_state``: the state of a retry (and its progress and grace)
      once "did not help" was shown: CRITICAL (one page per incident) or
      WARNING.
    """

    __slots__ = (
        "action_timeout",
        "backoff",
        "cooldown",
        "grace",
        "heal_on",
        "max_attempts",
        "max_cooldown",
        "reset_after",
        "retry_state",
        "splay",
        "window",
    )

    cooldown: float
    backoff: float
    max_cooldown: float
    max_attempts: int
    window: float
    reset_after: float
    action_timeout: float
    grace: float
    splay: float
    heal_on: frozenset[int]
    retry_state: int

    def __init__(self, **settings: object) -> None:
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown policy setting {sorted(unknown)[0]!r}")
        merged = {**DEFAULTS, **settings}
        for key in _DURATIONS:
            value = merged[key]
            if key in settings:
                from selfheal.core.durations import parse_duration

                try:
                    value = parse_duration(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
            object.__setattr__(self, key, value)
        backoff = merged["backoff"]
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not 1 <= backoff <= 100:
            raise ValueError(f"backoff: must be a number from 1 to 100, not {backoff!r}")
        object.__setattr__(self, "backoff", float(backoff))
        attempts = merged["max_attempts"]
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"max_attempts: must be a whole number of at least 1, not {attempts!r}")
        object.__setattr__(self, "max_attempts", attempts)
        if self.max_cooldown < self.cooldown:
            raise ValueError("max_cooldown: must not be shorter than cooldown")
        if self.action_timeout <= 0:
            raise ValueError("action_timeout: must be longer than 0s")
        object.__setattr__(self, "heal_on", _parse_heal_on(merged["heal_on"]))
        retry = merged["retry_state"]
        if not isinstance(retry, str) or retry.strip().lower() not in RETRY_STATES:
            raise ValueError(f"retry_state: must be critical or warning, not {str(retry)[:40]!r}")
        object.__setattr__(self, "retry_state", states.parse(str(retry)))

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Policy is immutable")

    def cooldown_after(self, attempt: int) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based)."""
        # Cap the exponent: backoff**k overflows a float long before any
        # sane max_cooldown is reached.
        exponent = min(max(attempt - 1, 0), 64)
        return min(self.cooldown * self.backoff**exponent, self.max_cooldown)

    def snapshot(self) -> dict[str, object]:
        """The limits ``selfheal status`` needs, as plain JSON values."""
        return {
            key: getattr(self, key)
            for key in (
                "cooldown",
                "backoff",
                "max_cooldown",
                "max_attempts",
                "window",
                "reset_after",
                "grace",
            )
        }

    def running_limit(self) -> float:
        """How long a runner may live: splay, action_timeout, then the kill."""
        return self.splay + self.action_timeout + KILL_GRACE + 5.0

    def to_json(self) -> dict[str, object]:
        """Every setting as plain data: seconds, numbers, and state names."""
        data = {key: getattr(self, key) for key in self.__slots__ if key not in ("heal_on", "retry_state")}
        data["heal_on"] = sorted(states.name(state).lower() for state in self.heal_on)
        data["retry_state"] = states.name(self.retry_state).lower()
        return data

    @classmethod
    def from_json(cls, data: object) -> Policy:
        """The Policy ``to_json`` gave, validated again by the constructor (ValueError)."""
        if type(data) is not dict or set(data) != set(DEFAULTS):
            raise ValueError("not the plain form of a policy")
        return cls(**data)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, key) for key in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.__slots__)
        return f"Policy({fields})"


#: Seconds between TERM and KILL when an action overruns its timeout.
KILL_GRACE = 5.0


def _parse_heal_on(value: object) -> frozenset[int]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not items:
        raise ValueError("heal_on: must be a list of states, e.g. [critical, unknown]")
    result = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"heal_on: {item!r} is not a state name")
        try:
            state = states.parse(item)
        except ValueError as exc:
            raise ValueError(f"heal_on: {exc}") from None
        if state == states.OK:
            raise ValueError("heal_on: healing on OK makes no sense")
        result.add(state)
    return frozenset(result)

"""The per-check state record: what the decision table reads and writes.

A record is plain data that round-trips through JSON. ``from_json`` is
the only way a record enters the program, and it checks the shape, the
types and the ranges strictly: a record of the wrong shape or with an
impossible value (a time outside 1970 to 9999, a number that is not
finite, an unknown state, a negative count) must be treated as corrupt
(moved aside), never half-trusted. A ``started`` of NaN would otherwise
keep a check "in progress" for ever, and a ``paused_until`` of 1e300
overflow on every run.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    _P = TypeVar("_P", bound="_Plain")

RECORD_VERSION = 1

#: 9999-12-31T23:59:59Z: the latest time a record may hold; 1970 (0) the earliest.
MAX_TIME = 253402300799.0
#: The longest span (a duration, a policy limit): all of 1970 to 9999.
MAX_SPAN = MAX_TIME
#: A bound on counters and attempt numbers no real record comes near.
MAX_COUNT = 2**53
#: The highest pid Linux hands out (PID_MAX_LIMIT).
MAX_PID = 1 << 22
#: How deep a record's JSON nests: record → attempts → attempt → argv.
#: A document nested deeper is refused before anything walks it.
MAX_DEPTH = 4

_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))


class CorruptRecord(ValueError):
    """The record's JSON does not have the expected shape."""


# The ranges of numeric fields: (lowest, highest), both inclusive.
_TIME = (0.0, MAX_TIME)
_SPAN = (0.0, MAX_SPAN)
_COUNT = (0, MAX_COUNT)
_STATE = (0, 3)  # OK, WARNING, CRITICAL, UNKNOWN
_PID = (1, MAX_PID)
_EXIT = (-255, 255)  # a signal's negative number, or an exit status
_ATTEMPT = (1, MAX_COUNT)

#: The policy snapshot (``Policy.snapshot``): each key and its range.
_POLICY = {
    "cooldown": _SPAN,
    "backoff": (1, 100),
    "max_cooldown": _SPAN,
    "max_attempts": (1, MAX_COUNT),
    "window": _SPAN,
    "reset_after": _SPAN,
    "grace": _SPAN,
}


def _in_range(value: object, bounds: tuple[float, float]) -> bool:
    """A finite number (never a bool) within ``bounds``; NaN fails every comparison."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return bounds[0] <= value <= bounds[1]


def _check_policy(value: object) -> None:
    if value is None:
        return
    assert isinstance(value, dict)
    for key, item in value.items():
        if key not in _POLICY:
            raise CorruptRecord(f"policy has an unknown setting {str(key)[:40]!r}")
        if not _in_range(item, _POLICY[key]) or (key == "max_attempts" and not isinstance(item, int)):
            raise CorruptRecord(f"policy setting {key!r} is out of range")


class _Plain:
    """Slots-based plain data with a checked JSON round trip.

    ``FIELDS`` maps each field to (accepted JSON types, default). Plain
    classes rather than dataclasses: this is read on the plugin's hot path,
    and ``dataclasses`` costs milliseconds to import.
    """

    FIELDS: dict[str, tuple[tuple[type, ...], object]] = {}
    #: The range of each numeric field (None, where the field allows it, passes).
    RANGES: dict[str, tuple[float, float]] = {}
    __slots__ = ()

    def __init__(self, **values: object) -> None:
        for key, (_, default) in self.FIELDS.items():
            value = values.pop(key, default)
            setattr(self, key, list(value) if isinstance(value, list) else value)
        if values:
            raise TypeError(f"unknown field {sorted(values)[0]!r}")

    def to_json(self) -> dict[str, object]:
        return {key: getattr(self, key) for key in self.FIELDS}

    @classmethod
    def check_fields(cls, data: object) -> dict[str, object]:
        if not isinstance(data, dict):
            raise CorruptRecord(f"expected an object, found {type(data).__name__}")
        values = {}
        for key, (types, default) in cls.FIELDS.items():
            value = data.get(key, default)
            # bool is an int in Python, but never a valid number here.
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise CorruptRecord(f"field {key!r} has the wrong type")
            bounds = cls.RANGES.get(key)
            if bounds is not None and value is not None and not _in_range(value, bounds):
                raise CorruptRecord(f"field {key!r} is out of range ({str(value)[:40]})")
            values[key] = value
        return values

    def copy(self: _P) -> _P:
        return type(self)(**self.to_json())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, _Plain) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_json()!r})"


class Attempt(_Plain):
    """One heal attempt: when, what, which runner, and how it ended."""

    FIELDS = {
        "id": ((str,), ""),
        "number": ((int,), 1),
        "started": (_NUMBER, 0.0),
        "action": ((str,), ""),
        "argv": ((list,), []),
        "pid": (_OPT_INT, None),
        "create_time": (_OPT_NUMBER, None),
        "ended": (_OPT_NUMBER, None),
        "exit_code": (_OPT_INT, None),
        "timed_out": ((bool,), False),
        "duration": (_OPT_NUMBER, None),
        "error": (_OPT_STR, None),
        # The last line the heal printed when it exited non-zero: why it failed.
        "reason": (_OPT_STR, None),
        "log": (_OPT_STR, None),
        # The runner's transient systemd unit, when it was started as one.
        "unit": (_OPT_STR, None),
        # The fleet budget's slot this attempt holds (group, slot, lease,
        # ticket, ttl), for status and for the runner's release.
        "fleet": ((dict, type(None)), None),
        # The runner's re-check after the action (verify): True once the
        # check said OK within grace, False when it never did, None unasked.
        "verified": ((bool, type(None)), None),
        # Seconds from the episode's start (open_since) to the OK re-check.
        "recovered_in": (_OPT_NUMBER, None),
    }
    RANGES = {
        "number": _ATTEMPT,
        "started": _TIME,
        "pid": _PID,
        "create_time": _TIME,
        "ended": _TIME,
        "exit_code": _EXIT,
        "duration": _SPAN,
        "recovered_in": _SPAN,
    }
    __slots__ = tuple(FIELDS)

    # FIELDS, for the type checker (annotations only: no class attributes).
    id: str
    number: int
    started: float
    action: str
    argv: list[str]
    pid: int | None
    create_time: float | None
    ended: float | None
    exit_code: int | None
    timed_out: bool
    duration: float | None
    error: str | None
    reason: str | None
    log: str | None
    unit: str | None
    fleet: dict[str, object] | None
    verified: bool | None
    recovered_in: float | None

    @classmethod
    def from_json(cls, data: object) -> Attempt:
        values = cls.check_fields(data)
        argv = values["argv"]
        # check_fields made it a list: isinstance only narrows it for the type checker.
        if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv):
            raise CorruptRecord("attempt argv must be a list of strings")
        return cls(**values)

    def failed(self) -> bool:
        """Ended without helping: a non-zero exit, a timeout, an error (not started, runner lost), or a re-check that never saw OK."""
        if self.ended is None:
            return False
        return bool(self.error) or self.timed_out or self.exit_code != 0 or self.verified is False

    def outcome(self) -> str:
        """``exited 0``, ``exited 1 (why)``, ``timed out after 2m``, ``failed: <why>``, ``still running`` or ``... not recovered``."""
        if self.error:
            return f"failed: {self.error}"
        if self.timed_out:
            if self.duration is None:
                return "timed out"
            from selfheal.core.durations import format_duration

            return f"timed out after {format_duration(self.duration)}"
        if self.ended is None:
            return "still running"
        if self.exit_code != 0 and self.reason:
            return f"exited {self.exit_code} ({self.reason})"
        if self.verified is False:
            return f"exited {self.exit_code}, and the check had not recovered by the end of its grace"
        return f"exited {self.exit_code}"


class Record(_Plain):
    """Everything remembered about one check between plugin runs."""

    FIELDS = {
        "version": ((int,), RECORD_VERSION),
        "check": ((str,), ""),
        "last_state": (_OPT_INT, None),
        "last_change": (_OPT_NUMBER, None),
        # Start of the current healthy stretch, for reset_after.
        "ok_since": (_OPT_NUMBER, None),
        # First attempt of an episode that has not recovered yet, for
        # the time-to-recover in the journal's "recovered" event.
        "open_since": (_OPT_NUMBER, None),
        # Attempts since the last reset: the backoff exponent.
        "streak": ((int,), 0),
        # Attempts that started before this do not count (reset, reset_after).
        "reset_at": (_OPT_NUMBER, None),
        "attempts": ((list,), []),
        "gave_up_at": (_OPT_NUMBER, None),
        # The attempt whose cooldown was already journaled, so a check run
        # every minute journals "skipped_cooldown" once, not every minute.
        "cooldown_noted": (_OPT_STR, None),
        "paused_until": (_OPT_NUMBER, None),
        "pause_reason": (_OPT_STR, None),
        # A CRITICAL "did not help" (or "gave up", or a failed start) was shown
        # for the current incident: a retry then stays CRITICAL, so Nagios
        # sees no WARNING in between and pages once. Cleared when healthy.
        "did_not_help_shown": ((bool,), False),
        # When healing went off ("gave up"); kept while the attempts in the
        # window still hold it off, so a healthy line can say so.
        "off_since": (_OPT_NUMBER, None),
        # The other heal journaled as sharing this record (``heal_changed``):
        # noted once per change, not on every run.
        "heal_noted": (_OPT_STR, None),
        "heals_total": ((int,), 0),
        # Counters for metrics and status; never reset, as Prometheus
        # counters must only go up.
        "heals_succeeded": ((int,), 0),
        "heals_failed": ((int,), 0),
        "heals_timed_out": ((int,), 0),
        "gave_up_total": ((int,), 0),
        # The policy of the last attempt, so ``selfheal status`` shows the
        # limits of a ``wrap`` check, which is configured on its command line.
        "policy": ((dict, type(None)), None),
    }
    RANGES = {
        "last_state": _STATE,
        "last_change": _TIME,
        "ok_since": _TIME,
        "open_since": _TIME,
        "streak": _COUNT,
        "reset_at": _TIME,
        "gave_up_at": _TIME,
        "paused_until": _TIME,
        "off_since": _TIME,
        "heals_total": _COUNT,
        "heals_succeeded": _COUNT,
        "heals_failed": _COUNT,
        "heals_timed_out": _COUNT,
        "gave_up_total": _COUNT,
    }
    __slots__ = tuple(FIELDS)

    # FIELDS, for the type checker (annotations only: no class attributes).
    version: int
    check: str
    last_state: int | None
    last_change: float | None
    ok_since: float | None
    open_since: float | None
    streak: int
    reset_at: float | None
    attempts: list[Attempt]
    gave_up_at: float | None
    cooldown_noted: str | None
    paused_until: float | None
    pause_reason: str | None
    did_not_help_shown: bool
    off_since: float | None
    heal_noted: str | None
    heals_total: int
    heals_succeeded: int
    heals_failed: int
    heals_timed_out: int
    gave_up_total: int
    policy: dict[str, object] | None

    def __init__(self, **values: object) -> None:
        super().__init__(**values)
        # Before this line, attempts may still hold the JSON objects.
        self.attempts = [_attempt(a) for a in self.attempts]

    def to_json(self) -> dict[str, object]:
        data = super().to_json()
        data["attempts"] = [attempt.to_json() for attempt in self.attempts]
        return data

    @classmethod
    def from_json(cls, data: object) -> Record:
        values = cls.check_fields(data)
        if values["version"] != RECORD_VERSION:
            raise CorruptRecord(f"unsupported record version {values['version']!r}")
        _check_policy(values["policy"])
        attempts = values["attempts"]
        # check_fields made it a list: isinstance only narrows it for the type checker.
        if isinstance(attempts, list):
            values["attempts"] = [Attempt.from_json(a) for a in attempts]
        return cls(**values)

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def count_end(self, attempt: Attempt) -> None:
        """Count how an attempt ended, for the metrics counters."""
        if attempt.timed_out:
            self.heals_timed_out += 1
        elif attempt.exit_code == 0 and not attempt.error:
            self.heals_succeeded += 1
        else:
            self.heals_failed += 1

    def find_attempt(self, attempt_id: str) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.id == attempt_id:
                return attempt
        return None


def _attempt(value: Attempt | dict[str, object]) -> Attempt:
    return value if isinstance(value, Attempt) else Attempt(**value)


def load_record(data: bytes | None, name: str) -> Record:
    """The record in ``data`` (None: an empty one); CorruptRecord for anything else.

    Every way the bytes can be wrong (not UTF-8, not JSON, nested deeper
    than a record, impossible values) ends as CorruptRecord: the callers
    move it aside and carry on, and a healthy result stays as it is.
    """
    if data is None:
        return Record(check=name)
    from selfheal.core import jsonio

    try:
        record = Record.from_json(jsonio.loads(data.decode("utf-8"), max_depth=MAX_DEPTH))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, CorruptRecord):
            raise
        raise CorruptRecord(f"record is not valid JSON ({str(exc)[:80]})") from None
    if record.check != name:
        raise CorruptRecord(f"record belongs to check {record.check!r}")
    return record


class ActionRun:
    """How a heal action ended, as ``selfheal.edges.spawner`` saw it (the runner records it)."""

    __slots__ = ("duration", "error", "exit_code", "timed_out")

    def __init__(
        self, exit_code: int | None, duration: float, timed_out: bool = False, error: str | None = None
    ) -> None:
        self.exit_code = exit_code
        self.duration = duration
        self.timed_out = timed_out
        self.error = error

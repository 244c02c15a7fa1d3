"""The per-check state record: what the decision table reads and writes.

A record is plain data that round-trips through JSON. ``from_json``
checks the shape strictly, because a record of the wrong shape must be
treated as corrupt (moved aside), never half-trusted.
"""

from __future__ import annotations

RECORD_VERSION = 1

_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))


class CorruptRecord(ValueError):
    """The record's JSON does not have the expected shape."""


class _Plain:
    """Slots-based plain data with a checked JSON round trip.

    ``FIELDS`` maps each field to (accepted JSON types, default). Plain
    classes rather than dataclasses: this is read on the plugin's hot path,
    and ``dataclasses`` costs milliseconds to import.
    """

    FIELDS: dict[str, tuple[tuple[type, ...], object]] = {}
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
            values[key] = value
        return values

    def copy(self) -> _Plain:
        return type(self)(**self.to_json())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_json() == other.to_json()  # type: ignore[attr-defined]

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
        "log": (_OPT_STR, None),
        # The fleet budget's slot this attempt holds (group, slot, lease,
        # ticket, ttl), for status and for the runner's release.
        "fleet": ((dict, type(None)), None),
    }
    __slots__ = tuple(FIELDS)

    @classmethod
    def from_json(cls, data: object) -> Attempt:
        values = cls.check_fields(data)
        if not all(isinstance(word, str) for word in values["argv"]):  # type: ignore[attr-defined]
            raise CorruptRecord("attempt argv must be a list of strings")
        return cls(**values)

    def outcome(self) -> str:
        """``exited 0``, ``timed out``, ``failed: <why>`` or ``still running``."""
        if self.error:
            return f"failed: {self.error}"
        if self.timed_out:
            return "timed out"
        if self.ended is None:
            return "still running"
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
    __slots__ = tuple(FIELDS)

    attempts: list[Attempt]

    def __init__(self, **values: object) -> None:
        super().__init__(**values)
        self.attempts = [a if isinstance(a, Attempt) else Attempt(**a) for a in self.attempts]  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        data = super().to_json()
        data["attempts"] = [attempt.to_json() for attempt in self.attempts]
        return data

    @classmethod
    def from_json(cls, data: object) -> Record:
        values = cls.check_fields(data)
        if values["version"] != RECORD_VERSION:
            raise CorruptRecord(f"unsupported record version {values['version']!r}")
        values["attempts"] = [Attempt.from_json(a) for a in values["attempts"]]  # type: ignore[attr-defined]
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

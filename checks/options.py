"""A built-in check's parsed options, read through typed getters.

Each getter turns a bad value into one UNKNOWN line naming the option (or,
for ``args:`` from the config, its ``FILE:LINE``).
"""

from __future__ import annotations

import os

from selfheal.config import ConfigError
from selfheal.core.states import SelfhealError, Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from re import Pattern

    from selfheal.config.schema import CheckConfig
    from selfheal.core.argv import Option


_DIGITS = frozenset("0123456789")
_NUMBER = frozenset("0123456789.eE+-")

#: The monitoring-plugins' own default plugin timeout.
DEFAULT_TIMEOUT = 10.0


class Values:
    """Parsed option values, converted on demand; errors name the option.

    From the command line an error reads ``bad --port: ...``; from the
    config it is a ConfigError at the ``FILE:LINE`` of that ``args:`` key.
    """

    def __init__(
        self,
        raw: dict[str, object],
        options: list[Option],
        config: CheckConfig | None = None,
    ) -> None:
        self.raw = raw
        self.config = config
        #: The -t budget, for resources that set their own socket timeouts.
        self.timeout = DEFAULT_TIMEOUT
        #: Words after the options (``-- CMD ARGS``), for the heal modes.
        self.positional: list[str] = []
        #: The environment the check runs in (PATH for the commands it runs).
        self.env: Mapping[str, str] = os.environ
        self.labels = {option.dest: option.long for option in options}

    def fail(self, dest: str, message: str) -> SelfhealError:
        label = self.labels.get(dest, dest)
        if self.config is None:
            return Usage(f"bad {label}: {message}")
        key = label[2:].replace("-", "_")
        line = self.config.arg_lines.get(key, self.config.line)
        return ConfigError(f"check {self.config.name!r}: args: {key}: {message}", self.config.path, line)

    def given(self, dest: str) -> bool:
        return self.raw.get(dest) not in (None, False, 0)

    def flag(self, dest: str) -> bool:
        return bool(self.raw.get(dest))

    def count(self, dest: str) -> int:
        value = self.raw.get(dest) or 0
        # parse_options gives a count an int; any other value is a str.
        return int(value) if isinstance(value, int) else int(str(value))

    def text(self, dest: str, default: str | None = None) -> str | None:
        value = self.raw.get(dest)
        if value is None:
            return default
        if not str(value):
            raise self.fail(dest, "must not be empty")
        return str(value)

    def required(self, dest: str) -> str:
        value = self.text(dest)
        if value is None:
            raise self.fail(dest, "is required")
        return value

    def number(self, dest: str, default: float | None = None, minimum: float | None = None) -> float | None:
        text = self.text(dest)
        if text is None:
            return default
        try:
            # float() also takes "1_0" and other scripts' digits: not a number an operator means.
            if not set(text.strip()) <= _NUMBER:
                raise ValueError
            value = float(text)
        except ValueError:
            raise self.fail(dest, f"{text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(dest, f"{text!r} is not a finite number")
        if minimum is not None and value < minimum:
            raise self.fail(dest, f"must be at least {minimum:g}")
        return value

    def integer(
        self, dest: str, default: int | None = None, low: int = 0, high: int | None = None
    ) -> int | None:
        text = self.text(dest)
        if text is None:
            return default
        try:
            # int() also takes "1_0" (as 10), "²"-like digits of other scripts and 5000-digit numbers.
            digits = text.strip().lstrip("-")
            if not digits or len(digits) > 20 or not set(digits) <= _DIGITS:
                raise ValueError
            value = int(text)
        except ValueError:
            raise self.fail(dest, f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise self.fail(dest, f"{value} is out of range {low}..{high if high is not None else ''}")
        return value

    def duration(self, dest: str, default: float | None = None) -> float | None:
        text = self.text(dest)
        if text is None:
            return default
        from selfheal.core.durations import parse_duration

        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.fail(dest, str(exc)) from None

    def range(self, dest: str, default: str | None = None) -> str | None:
        """A threshold in the Nagios range syntax, checked; None when not set."""
        text = self.text(dest, default)
        if text is None:
            return None
        return check_range(text, lambda message: self.fail(dest, message))

    def ranges(self, dest: str, count: int, default: str | None = None) -> list[str | None]:
        """``R`` or ``R1,R2,...``: one range per item (a single one applies to all)."""
        text = self.text(dest, default)
        if text is None:
            return [None] * count
        parts = text.split(",")
        if len(parts) == 1:
            parts = parts * count
        if len(parts) != count:
            raise self.fail(dest, f"give one range or {count} separated by commas, not {text!r}")
        return [check_range(p, lambda message: self.fail(dest, message)) if p else None for p in parts]

    def regex(self, dest: str) -> Pattern[str] | None:
        text = self.text(dest)
        if text is None:
            return None
        import re

        try:
            return re.compile(text)
        except re.error as exc:
            raise self.fail(dest, f"not a regular expression: {exc}") from None

    def choice(self, dest: str, choices: tuple[str, ...], default: str) -> str:
        text = (self.text(dest) or default).lower()
        if text not in choices:
            raise self.fail(dest, f"{text!r} is not one of {', '.join(choices)}")
        return text


def plain(value: float) -> float:
    """``9`` rather than ``9.0`` in perfdata and text."""
    return int(value) if value == int(value) else value


def check_range(text: str, fail: Callable[[str], Exception]) -> str:
    import nagiosplugin

    try:
        nagiosplugin.Range(text.strip())
    except (ValueError, TypeError):
        raise fail(f"{text!r} is not a range (use e.g. 10, 10:, ~:10, 10:20 or @10:20)") from None
    return text.strip()

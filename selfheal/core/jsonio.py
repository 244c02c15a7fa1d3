"""JSON for state records, the journal and the runner's spec, without ``json``.

The ``json`` package's decoder and encoder import ``re`` (and with it
``enum``, ``functools``, ...): several milliseconds on every plugin run
that reads a state record, which a healthy check does whenever its check
ever healed. The C accelerator ``_json`` that ``json`` itself uses does
the actual work and imports nothing, so these two functions drive it
directly with the same settings as ``json.loads`` and compact
``json.dumps``. Without ``_json`` (another interpreter) they fall back to
the ``json`` package.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_WHITESPACE = " \t\n\r"


class _Settings:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


#: The C scanner; None without the accelerator, and then neither function uses ``_json``.
_scan: Callable[[str, int], tuple[object, int]] | None
try:
    import _json

    # The stub types the context as a scanner itself (a typeshed TODO): it only reads _Settings' attributes.
    _scan = _json.make_scanner(_Settings())  # type: ignore[arg-type]  # the context is duck-typed
except (ImportError, AttributeError):  # pragma: no cover - interpreters without the C accelerator
    _scan = None


def loads(text: str) -> object:
    """``json.loads(text)``; raises ValueError for anything but one JSON value."""
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"expecting a JSON value at offset {exc.value}") from None
    if len(text.rstrip(_WHITESPACE)) != end:
        raise ValueError(f"extra data after the JSON value at offset {end}")
    return value


def dumps(
    value: object, *, sort_keys: bool = False, default: Callable[[object], object] | None = None
) -> str:
    """Compact ``json.dumps(value, separators=(",", ":"))``, ASCII-only."""
    if _scan is None:  # pragma: no cover
        import json

        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, default=default)

    def refuse(item: object) -> object:
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    encode = _json.make_encoder(
        {},  # markers: refuse circular structures, as json.dumps does
        default or refuse,
        _json.encode_basestring_ascii,
        None,
        ":",
        ",",
        sort_keys,
        False,
        True,
    )
    return "".join(encode(value, 0))

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


def loads(text: str, max_depth: int | None = None) -> object:
    """``json.loads(text)``; raises ValueError for anything but one JSON value.

    ``max_depth`` refuses (ValueError) arrays and objects nested deeper
    than that: what a reader expects is shallow, and a deep document
    otherwise reaches the recursion limit in the parser or in whatever
    walks the value afterwards.

    The fast path is trusted only with a healthy document. Whenever it
    fails, in any way, the standard library decides: ``_json`` builds its
    error from ``json.decoder.JSONDecodeError``, which it looks up only if
    ``json.decoder`` is already imported, and raises SystemError otherwise
    (a truncated document, an unterminated string). Importing ``json`` on
    the error path costs the healthy path nothing.
    """
    try:
        if _scan is None:  # pragma: no cover
            raise LookupError("no C accelerator")
        start = len(text) - len(text.lstrip(_WHITESPACE))
        value, end = _scan(text, start)
        if len(text.rstrip(_WHITESPACE)) != end:
            raise ValueError(f"extra data after the JSON value at offset {end}")
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except Exception:
        value = _stdlib_loads(text)
    # Nesting needs an opening bracket per level: a line with few of them
    # (every journal event) is not walked.
    if (
        max_depth is not None
        and text.count("[") + text.count("{") > max_depth
        and deeper_than(value, max_depth)
    ):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value


def loads_line(text: str) -> object:
    """``loads(text)`` for one JSON Lines line, faster for the usual one.

    A line that is one object followed by at most its newline is scanned
    once; anything else (leading space, trailing data, an error) is left
    to ``loads``, which gives the same value or the same ValueError. Its
    nesting is not bounded here: the caller walks what it keeps, and
    measures it then (``deeper_than``), rather than every line paying for
    a count of its brackets.
    """
    if _scan is not None and text[:1] == "{":
        try:
            value, end = _scan(text, 0)
        except Exception:
            return loads(text)
        rest = len(text) - end
        if rest == 0 or (rest == 1 and text[end] == "\n"):
            return value
    return loads(text)


def _stdlib_loads(text: str) -> object:
    """The standard library's answer, and its ValueError, for a document the fast path refused."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError:
        raise
    except Exception as exc:  # pragma: no cover - json.loads raises ValueError for bad text
        raise ValueError(f"not JSON ({type(exc).__name__})") from None


def deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (a scalar is 0).

    Iterative, so the check itself cannot hit the recursion limit.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            depth += 1
            if depth > limit:
                return True
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return False


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

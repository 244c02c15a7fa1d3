"""The compiled config cache: ``selfheal run`` without PyYAML.

Loading PyYAML and parsing ``selfheal.yaml`` costs a healthy ``selfheal
run`` more than Python's own start-up, and grows with every configured
check. So the parsed config is kept, compiled, in the state dir
(``config.<crc>.cache``, a ``marshal`` file), and a run that finds it
current skips YAML entirely.

It never serves a stale config. The cache is used only when the config
file's path, size, mtime, ctime and inode match what it was compiled
from, *and* the file's bytes are identical to the bytes it was compiled
from (stored in the cache; a same-size edit within one mtime tick is
caught), and selfheal's version and modules (their mtimes and sizes) and
this module's format are the same. Anything else is a miss: the YAML is
parsed as before (with its ``FILE:LINE`` errors) and the cache
rewritten. A config that others could change is refused before any of
this (``config.read``), cached or not.

Safety, as for state records: the cache is read and written only in a
vetted state dir (not a symlink, not world-writable), opened with
O_NOFOLLOW, written to a temp file, fsynced and renamed; a cache that
does not decode is moved aside (``.corrupt-<ts>``), never overwritten.
It holds plain data only: decoding builds instances of selfheal's own
classes by setting their attributes, so a cache file cannot run code.

But the cache says which plugin and heal run, so it must be exactly as
trustworthy as the config itself: it is used (and written) only when
the state dir *and* the cache file belong to the running user and the
file is writable by nobody else. Root may keep records in a service
user's state dir (``StateDir.open`` allows it), but a cache there could
be rewritten by that user to have root run anything; root parses the
YAML instead. Each check's blob also carries its name and a CRC in the
header's index, so a blob cannot be moved under another check's name.
(A CRC authenticates nothing: against someone who can write the file,
the ownership rule is the protection.)

It is written only when the state dir already exists and not on a dry
run (which writes nothing).

Only the check being run is read and decoded (each check is a separate
blob at an offset the header gives), so the cost stays flat with the
size of the config.

Where is the state dir before the config is read? ``--state-dir`` or
``SELFHEAL_STATE_DIR`` when given, else the top-level ``state_dir:``
line found by a plain scan, else the default. The guess only says where
to look: a cache is used only if the state dir resolved from the config
it holds is the dir it was found in.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import time
import zlib

from selfheal import __version__
from selfheal.config import loader as configuration
from selfheal.config import schema
from selfheal.core.errors import StateError
from selfheal.core.record import CorruptRecord
from selfheal.edges.store import StateDir, resolve_state_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: Bumped whenever the layout below changes.
FORMAT = 3
#: A cache bigger than this is not ours (a 10000-check config makes ~8 MiB).
MAX_CACHE_BYTES = 64 << 20


class Uncacheable(Exception):
    """The parsed config holds something the cache cannot store."""


def load(
    path: str,
    state_dir_option: str | None,
    env: Mapping[str, str],
    *,
    write: bool = True,
    wanted: tuple[str, ...] = (),
) -> tuple[schema.Config, str]:
    """The config at ``path`` and the state dir to use with it.

    From the cache when it is current (decoding only the ``wanted``
    checks), else parsed from the YAML (and the cache written when
    ``write`` and the state dir exists). Raises ConfigError as
    ``config.load`` does.
    """
    text, st = configuration.read(path)
    path_key = os.path.abspath(path)
    key = cache_key(path_key, st)
    guess = resolve_state_dir(state_dir_option, env, configured_state_dir(text))
    filename = cache_name(path_key)
    cached = read_cache(guess, filename, key, text, path, wanted)
    if cached is not None and resolve_state_dir(state_dir_option, env, cached.state_dir) == guess:
        return cached, guess
    config = configuration.parse(text, path)
    state_dir = resolve_state_dir(state_dir_option, env, config.state_dir)
    if write:
        write_cache(state_dir, filename, key, text, config)
    return config, state_dir


def cache_key(path: str, st: os.stat_result) -> tuple[object, ...]:
    """What must not have changed: format, code, and the config file's identity."""
    return (
        FORMAT,
        __version__,
        sys.version,
        code_identity(),
        path,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_dev,
    )


def code_identity() -> tuple[tuple[str, int, int], ...]:
    """Each selfheal module's name, mtime and size.

    A cache holds instances of selfheal's classes; code that changed
    without a new version number (a checkout, a hand edit) might shape or
    read them differently, so any change to the package is a miss.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    found = []
    with os.scandir(package) as entries:
        for entry in entries:
            if entry.name.endswith(".py"):
                st = entry.stat()
                found.append((entry.name, st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


def cache_name(path: str) -> str:
    return f"config.{zlib.crc32(path.encode('utf-8', 'surrogateescape')):08x}.cache"


def configured_state_dir(text: bytes) -> str | None:
    """The top-level ``state_dir:`` value, read without YAML (a guess only)."""
    if text.startswith(b"state_dir:"):
        start = 0
    else:
        start = text.find(b"\nstate_dir:") + 1
        if start == 0:
            return None
    line = text[start + len(b"state_dir:") :].split(b"\n", 1)[0]
    value = line.split(b" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[:1] in (b"'", b'"'):
        value = value[1:-1]
    return value.decode("utf-8", "replace") or None


# -- the file -----------------------------------------------------------
#
# An 8-byte length, a header (marshal: format, key, the config's bytes,
# its top-level settings, and an index of name -> (offset, length)), then
# one marshal blob per check. A run reads the header and its own check's
# blob, whatever the number of checks.

_LENGTH = 8


def read_cache(
    state_dir_path: str,
    filename: str,
    key: tuple[object, ...],
    text: bytes,
    config_path: str,
    wanted: tuple[str, ...],
) -> schema.Config | None:
    if not os.path.isdir(state_dir_path):
        return None
    try:
        with StateDir.open(state_dir_path, create=False) as state_dir:
            if not ours(state_dir.owner):
                return None
            fd = state_dir.open_file(filename)
            if fd is None:
                return None
            try:
                st = os.fstat(fd)
                if not ours(st.st_uid) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                    return None  # someone else could have written it: parse the YAML
                size = int.from_bytes(_pread(fd, _LENGTH, 0), "big")
                if size > MAX_CACHE_BYTES:
                    raise ValueError("not a selfheal config cache")
                header = marshal.loads(_pread(fd, size, _LENGTH))
                if not isinstance(header, dict):
                    raise ValueError("not a selfheal config cache")
                if header.get("format") != FORMAT or header["key"] != key or header["text"] != text:
                    return None  # out of date: parsed again and rewritten
                checks = {}
                for name in wanted:
                    place = header["index"].get(name)
                    if place is not None:
                        offset, length, crc = place
                        blob = _pread(fd, length, _LENGTH + size + offset)
                        if zlib.crc32(blob) != crc:
                            raise ValueError("a check's blob does not match the index")
                        checks[name] = decode_check(blob, name)
                return CachedConfig(header["config"], checks, text, config_path)
            except (ValueError, EOFError, TypeError, KeyError, AttributeError, Uncacheable):
                move_aside(state_dir, filename)
                return None
            finally:
                os.close(fd)
    except (StateError, CorruptRecord):
        return None


def _pread(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise EOFError("the cache file is cut short")
    return data


def decode_check(blob: bytes, name: str) -> schema.CheckConfig:
    check = decode(marshal.loads(blob))
    if not isinstance(check, schema.CheckConfig) or check.name != name:
        raise Uncacheable(f"not check {name}")
    return check


def ours(uid: int) -> bool:
    """Owned by the running user: what may say what this user runs."""
    return uid == os.geteuid()


def move_aside(state_dir: StateDir, filename: str) -> None:
    aside = f"{filename}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    try:
        os.rename(filename, aside, src_dir_fd=state_dir.fd, dst_dir_fd=state_dir.fd)
    except OSError:
        pass


class CachedConfig(schema.Config):
    """A Config from the cache, holding the checks it was asked for.

    Anything else (another check, the whole ``checks`` mapping) parses the
    config's bytes stored in the cache, which are the file's current bytes.
    """

    def __init__(
        self, attributes: object, decoded: dict[str, schema.CheckConfig], text: bytes, path: str
    ) -> None:
        self._decoded = decoded
        self._text = text
        self._checks: dict[str, schema.CheckConfig] | None = None
        settings = decode(attributes)
        if not isinstance(settings, dict):
            raise Uncacheable("config")
        for name, value in settings.items():
            setattr(self, name, value)
        self.path = path

    @property
    def checks(self) -> dict[str, schema.CheckConfig]:
        if self._checks is None:
            self._checks = configuration.parse(self._text, self.path).checks
        return self._checks

    @checks.setter
    def checks(self, value: dict[str, schema.CheckConfig]) -> None:
        self._checks = value

    def check(self, name: str) -> schema.CheckConfig:
        if self._checks is None and name in self._decoded:
            return self._decoded[name]
        return super().check(name)


# -- writing --------------------------------------------------------------


def write_cache(
    state_dir_path: str, filename: str, key: tuple[object, ...], text: bytes, config: schema.Config
) -> None:
    """Best effort: the cache only saves time, so no failure here is reported."""
    if not os.path.isdir(state_dir_path):
        return
    try:
        blobs, index, offset = [], {}, 0
        for name, check in config.checks.items():
            blob = marshal.dumps(encode(check))  # type: ignore[arg-type]  # encode gives only marshal's types
            index[name] = (offset, len(blob), zlib.crc32(blob))
            blobs.append(blob)
            offset += len(blob)
        settings = {k: v for k, v in vars(config).items() if k != "checks"}
        header = marshal.dumps(
            {"format": FORMAT, "key": key, "text": text, "config": encode(settings), "index": index}
        )
        with StateDir.open(state_dir_path, create=False) as state_dir:
            if not ours(state_dir.owner):
                return  # a cache another user could rewrite would not be read anyway
            state_dir.write_file(filename, len(header).to_bytes(_LENGTH, "big") + header + b"".join(blobs))
    except (Uncacheable, ValueError, StateError):
        pass


# Plain values go through as they are; every container and object becomes
# a (tag, payload) tuple, so decode() knows what to rebuild.
_SCALARS = (str, int, float, bool, bytes, type(None))


def encode(value: object) -> object:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind in (list, tuple, set, frozenset):
        return (kind.__name__, [encode(item) for item in value])  # type: ignore[attr-defined]  # type(value) is a container: mypy narrows on isinstance only
    if kind is dict:
        return ("dict", [(encode(k), encode(v)) for k, v in value.items()])  # type: ignore[attr-defined]  # type(value) is dict: mypy narrows on isinstance only
    module = getattr(kind, "__module__", "")
    if module == "selfheal" or module.startswith("selfheal."):
        return ("object", module, kind.__qualname__, [(k, encode(v)) for k, v in _attributes(value)])
    raise Uncacheable(f"cannot cache a {kind.__name__}")


def _attributes(value: object) -> list[tuple[str, object]]:
    found = dict(getattr(value, "__dict__", {}))
    for cls in type(value).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            if slot not in found and slot != "__dict__" and hasattr(value, slot):
                found[slot] = getattr(value, slot)
    return sorted(found.items())


_CONTAINERS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


def decode(value: object) -> object:
    if type(value) is not tuple:
        if type(value) not in _SCALARS:
            raise Uncacheable(f"unexpected {type(value).__name__}")
        return value
    tag = value[0]
    if tag in _CONTAINERS:
        return _CONTAINERS[tag](decode(item) for item in value[1])
    if tag == "dict":
        return {decode(k): decode(v) for k, v in value[1]}
    if tag == "object":
        _, module, qualname, attributes = value
        if not (module == "selfheal" or module.startswith("selfheal.")) or "." in qualname:
            raise Uncacheable(f"not a selfheal class: {module}.{qualname}")
        __import__(module)
        cls = getattr(sys.modules[module], qualname, None)
        if not isinstance(cls, type):
            raise Uncacheable(f"no class {module}.{qualname}")
        instance = cls.__new__(cls)  # type: ignore[call-overload]  # cls: any selfheal class, not type itself
        for name, item in attributes:
            object.__setattr__(instance, name, decode(item))
        return instance
    raise Uncacheable(f"unknown tag {tag!r}")

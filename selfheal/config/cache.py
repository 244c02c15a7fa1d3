"""The compiled config cache: ``selfheal run`` without PyYAML.

Loading PyYAML and parsing ``selfheal.yaml`` costs a healthy ``selfheal
run`` more than Python's own start-up, and grows with every configured
check. So the parsed config is kept, compiled, in the state dir
(``config.<crc>.cache``, a ``marshal`` file), and a run that finds it
current skips YAML entirely.

It never serves a stale config: it is used only when the config file's
path, size, mtime, ctime, inode *and* bytes (stored in the cache) match,
and selfheal's version, modules (mtimes and sizes) and this format are
the same. Anything else is a miss: the YAML is parsed as before (with its
``FILE:LINE`` errors) and the cache rewritten. A config that others could
change is refused before any of this (``config.read``), cached or not.

Safety, as for state records: read and written only in a vetted state
dir, opened with O_NOFOLLOW, written to a temp file, fsynced and renamed.
It holds plain data only (each check's ``to_json`` form), and decoding
names no class or module: a check comes back through
``CheckConfig.from_json``, whose constructors validate again as the YAML
reader does (the heal when it is first used: a healthy run never builds
it). Anything that does not fit, from the header's offsets to one check's
fields or its heal, is a miss: the cache is moved aside
(``.corrupt-<ts>``, never overwritten) and the YAML says what to run. No
exception from a cache file reaches the run.

But the cache says which plugin and heal run, so it must be exactly as
trustworthy as the config itself: it is used (and written) only when
the state dir *and* the cache file belong to the running user and the
file is writable by nobody else. Root may keep records in a service
user's state dir, but a cache there could be rewritten by that user to
have root run anything; root parses the YAML instead. Each check's blob
carries its name and a CRC in the header's index, so a blob cannot be
moved under another check's name. (A CRC authenticates nothing: against
someone who can write the file, the ownership rule is the protection.)

Written only when the state dir exists, never on a dry run. Only the check
being run is decoded, so the cost stays flat with the size of the config.
The state dir, before the config is read: ``--state-dir`` or
``SELFHEAL_STATE_DIR``, else the top-level ``state_dir:`` line found by a
plain scan, else the default; a cache is used only if the state dir
resolved from the config it holds is the dir it was found in.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import time
import zlib

from selfheal import __version__
from selfheal.config import read as read_config
from selfheal.config import schema
from selfheal.core.record import CorruptRecord
from selfheal.core.states import StateError
from selfheal.edges.store import StateDir, resolve_state_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from selfheal.core.actions import Action

#: Bumped whenever the layout below changes.
FORMAT = 5
#: A cache bigger than this is not ours (a 10000-check config makes ~8 MiB).
MAX_CACHE_BYTES = 64 << 20


class Uncacheable(Exception):
    """The parsed config holds something the cache cannot store, or a cache entry does not fit."""


#: What a cache file may do wrong, short of the state dir's own errors:
#: each means "parse the YAML". OSError: a read at an offset the file
#: forged; MemoryError and OverflowError: a length it forged.
_BAD_CACHE = (
    ValueError, EOFError, TypeError, LookupError, AttributeError, ArithmeticError, MemoryError, RecursionError,
    OSError, Uncacheable,
)  # fmt: skip


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
    text, st = read_config(path)
    path_key = os.path.abspath(path)
    key = cache_key(path_key, st)
    guess = resolve_state_dir(state_dir_option, env, configured_state_dir(text))
    filename = cache_name(path_key)
    cached = read_cache(guess, filename, key, text, path, wanted)
    if cached is not None and resolve_state_dir(state_dir_option, env, cached.state_dir) == guess:
        return cached, guess
    from selfheal.config import loader as configuration  # the YAML: only when the cache misses

    config = configuration.parse(text, path)
    state_dir = resolve_state_dir(state_dir_option, env, config.state_dir)
    if write:
        write_cache(state_dir, filename, key, text, config)
    return config, state_dir


def cache_key(path: str, st: os.stat_result) -> tuple[object, ...]:
    """What must not have changed: format, code, and the config file's identity."""
    code = (FORMAT, __version__, sys.version, code_identity())
    return (*code, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def code_identity() -> tuple[tuple[str, int, int], ...]:
    """The name, mtime and size of each module that builds or reads a cached check.

    The config's modules build a check from the YAML, and core's
    ``CORE_FORMS`` write and read its plain form and hold the defaults it
    was built with; code that changed without a new version number (a
    checkout, a hand edit) might build or read it differently, so any
    change there is a miss.
    """
    config = os.path.dirname(os.path.abspath(__file__))
    found = []
    with os.scandir(config) as entries:
        for entry in entries:
            if entry.name.endswith(".py"):
                st = entry.stat()
                found.append((entry.name, st.st_mtime_ns, st.st_size))
    core = os.path.join(os.path.dirname(config), "core")
    for name in CORE_FORMS:
        st = os.stat(os.path.join(core, name))
        found.append((f"core/{name}", st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


#: The core modules a cached check depends on (a default in policy.py
#: changed: a check built with the old one is stale).
CORE_FORMS = ("actions.py", "policy.py", "durations.py", "states.py", "shellwords.py")


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

    def from_yaml(name: str) -> Callable[[ValueError], Action]:
        def heal(exc: ValueError) -> Action:  # a forged or damaged heal, found when first used
            from selfheal.config import loader as configuration

            with StateDir.open(state_dir_path, create=False) as state_dir:
                move_aside(state_dir, filename)
            return configuration.parse(text, config_path).check(name).heal

        return heal

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
                end = min(st.st_size, MAX_CACHE_BYTES)
                size = int.from_bytes(_pread(fd, _LENGTH, 0, end), "big")
                header = marshal.loads(_pread(fd, size, _LENGTH, end))
                if type(header) is not dict or type(header.get("index")) is not dict:
                    raise ValueError("not a selfheal config cache")
                if header.get("format") != FORMAT or header["key"] != key or header["text"] != text:
                    return None  # out of date: parsed again and rewritten
                checks = {}
                for name in wanted:
                    place = header["index"].get(name)
                    if place is not None:
                        if type(place) is not tuple or len(place) != 3 or {type(n) for n in place} != {int}:
                            raise ValueError("not a selfheal config cache index")
                        offset, length, crc = place
                        blob = _pread(fd, length, _LENGTH + size + offset, end)
                        if zlib.crc32(blob) != crc:
                            raise ValueError("a check's blob does not match the index")
                        checks[name] = decode_check(blob, name, from_yaml(name))
                return CachedConfig(header["config"], checks, text, config_path)
            except _BAD_CACHE:
                move_aside(state_dir, filename)
                return None
            finally:
                os.close(fd)
    except (StateError, CorruptRecord):
        return None


def _pread(fd: int, length: int, offset: int, end: int) -> bytes:
    """``length`` bytes at ``offset``, all inside the file's first ``end`` bytes.

    The header's numbers are checked before they size a buffer or seek:
    a forged one is a miss, not a MemoryError or an OSError.
    """
    if offset < 0 or length < 0 or offset + length > end:
        raise EOFError("the cache file's header points outside it")
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise EOFError("the cache file is cut short")
    return data


def decode_check(
    blob: bytes, name: str, bad_heal: Callable[[ValueError], Action] | None = None
) -> schema.CheckConfig:
    check = decode(marshal.loads(blob), bad_heal)
    if check.name != name:
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
        super().__init__(path, {}, *decode_settings(attributes))
        self._decoded = decoded
        self._text = text
        # After the base class's ``self.checks = {}``: no check parsed yet.
        self._checks: dict[str, schema.CheckConfig] | None = None

    @property
    def checks(self) -> dict[str, schema.CheckConfig]:
        if self._checks is None:
            from selfheal.config import loader as configuration

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
    """Best effort: the cache only saves time, so no failure here is reported.

    A check whose plain form cannot be made (args that are not plain data
    or too big) is left out of the index; a run of that check parses the
    YAML, as a run of a check the cache does not know would.
    """
    if not os.path.isdir(state_dir_path):
        return
    try:
        blobs, index, offset = [], {}, 0
        for name, check in config.checks.items():
            try:
                blob = marshal.dumps(encode(check))
            except Uncacheable:
                continue
            index[name] = (offset, len(blob), zlib.crc32(blob))
            blobs.append(blob)
            offset += len(blob)
        settings = encode_settings(config)
        header = marshal.dumps(
            {"format": FORMAT, "key": key, "text": text, "config": settings, "index": index}
        )
        with StateDir.open(state_dir_path, create=False) as state_dir:
            if not ours(state_dir.owner):
                return  # a cache another user could rewrite would not be read anyway
            state_dir.write_file(filename, len(header).to_bytes(_LENGTH, "big") + header + b"".join(blobs))
    except (Uncacheable, ValueError, StateError):
        pass


# -- the plain forms ------------------------------------------------------
#
# Nothing here names a class: a check is CheckConfig.to_json's dict and
# comes back through CheckConfig.from_json, the config's own settings are
# four plain values (fleet: through schema.plain_fleet).


def encode(check: schema.CheckConfig) -> dict[str, object]:
    """The check's plain form; Uncacheable if it has none."""
    try:
        return check.to_json()
    except ValueError as exc:
        raise Uncacheable(f"check {check.name}: {exc}") from None


def decode(data: object, bad_heal: Callable[[ValueError], Action] | None = None) -> schema.CheckConfig:
    """The check a plain form describes, validated (its heal when used); Uncacheable if it does not fit."""
    try:
        return schema.CheckConfig.from_json(data, bad_heal)
    except (ValueError, TypeError) as exc:
        raise Uncacheable(f"not a check: {exc}") from None


def encode_settings(config: schema.Config) -> dict[str, object]:
    try:
        outputs = schema.plain_copy(config.outputs)
    except ValueError as exc:
        raise Uncacheable(f"outputs: {exc}") from None
    fleet = None if config.fleet is None else schema.plain_copy(config.fleet)
    return {"state_dir": config.state_dir, "journal": config.journal, "outputs": outputs, "fleet": fleet}


def decode_settings(
    data: object,
) -> tuple[str | None, str | None, dict[str, object], dict[str, object] | None]:
    """The config's state_dir, journal, outputs and fleet; Uncacheable if they do not fit."""
    if type(data) is not dict or set(data) != {"state_dir", "journal", "outputs", "fleet"}:
        raise Uncacheable("not the config's settings")
    state_dir, journal, outputs = data["state_dir"], data["journal"], data["outputs"]
    if not all(value is None or (type(value) is str and value) for value in (state_dir, journal)):
        raise Uncacheable("state_dir and journal must be strings")
    try:
        outputs = schema.plain_copy(outputs)
    except ValueError as exc:
        raise Uncacheable(f"outputs: {exc}") from None
    if type(outputs) is not dict or not set(outputs) <= {"syslog", "metrics", "on_event"}:
        raise Uncacheable("not the config's outputs")
    try:
        fleet = schema.plain_fleet(data["fleet"])
    except ValueError as exc:
        raise Uncacheable(f"fleet: {exc}") from None
    return state_dir, journal, outputs, fleet

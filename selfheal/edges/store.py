"""The state dir: one JSON record per check, locked, written atomically.

Safety rules (DESIGN.md section 4), because the records decide whether a
production service is restarted, possibly as root:

- The state dir must be a real directory (not a symlink), owned by the
  running user (root may use a service user's dir), and not writable by
  everyone. Otherwise the state is refused and the check reports row 4.
- Every file in it is opened with O_NOFOLLOW relative to the dir's file
  descriptor, so a planted symlink is never followed.
- The read-decide-write step holds an exclusive ``flock`` on ``NAME.lock``:
  the lock ``filelock.FileLock`` takes on Linux, taken here directly (see
  ``_locked``).
- Records are written to a temp file, fsynced, then renamed over the old
  one: a reader sees the old record or the new one, never half of one.
- A record that does not parse is moved aside (``.corrupt-<ts>``), never
  overwritten, and the caller journals that.
- Lock files are never deleted: deleting a lock file another process holds
  open lets a third process lock a new inode and both "hold" the lock.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from selfheal.core.record import CorruptRecord, Record, load_record
from selfheal.core.states import StateError
from selfheal.edges.files import create_owned, open_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

SYSTEM_STATE_DIR = "/var/lib/selfheal"
MAX_NAME = 100
MAX_RECORD_BYTES = 1 << 20
#: How long a plugin waits for another invocation's read-decide-write.
LOCK_TIMEOUT = 3.0

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_name(name: str) -> str:
    """Refuse names that could escape the state dir or forge output."""
    if not isinstance(name, str) or not name:
        raise ValueError("a check name must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"a check name must be at most {MAX_NAME} characters")
    bad = set(name) - _NAME_CHARS
    if bad:
        raise ValueError(
            f"check name {name[:40]!r} may only use letters, digits, '.', '_' and '-' (found {sorted(bad)[0]!r})"
        )
    if name[0] in ".-":
        raise ValueError(f"check name {name!r} must start with a letter or digit")
    return name


def default_state_dir(env: Mapping[str, str]) -> str:
    """``/var/lib/selfheal`` when usable, else the user's XDG state dir."""
    system = SYSTEM_STATE_DIR
    try:
        st = os.lstat(system)
    except FileNotFoundError:
        if os.access(os.path.dirname(system), os.W_OK):
            return system
    except OSError:
        pass
    else:
        if stat.S_ISDIR(st.st_mode) and os.access(system, os.W_OK | os.X_OK):
            return system
    base = env.get("XDG_STATE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "selfheal")


def resolve_state_dir(option: str | None, env: Mapping[str, str], configured: str | None = None) -> str:
    """``--state-dir`` beats ``SELFHEAL_STATE_DIR`` beats config beats the default."""
    chosen = option or env.get("SELFHEAL_STATE_DIR") or configured
    return os.path.abspath(chosen) if chosen else default_state_dir(env)


class Locked(StateError):
    """Another run held the record's lock for longer than we may wait."""


class StateDir:
    """An opened, checked state dir. Use ``StateDir.open``; close when done."""

    def __init__(self, path: str, fd: int, owner: int) -> None:
        self.path = path
        self.fd = fd
        self.owner = owner

    @classmethod
    def open(cls, path: str, create: bool = True) -> StateDir:
        """Open (creating 0700 if allowed) and vet the state dir."""
        if create:
            try:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StateError(f"cannot create state dir {path}: {exc.strerror}") from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
                raise StateError(f"state dir {path} is a symlink; refusing to follow it") from None
            raise StateError(f"cannot open state dir {path}: {exc.strerror}") from None
        st = os.fstat(fd)
        euid = os.geteuid()
        problem = None
        if st.st_mode & stat.S_IWOTH:
            problem = f"state dir {path} is writable by everyone; run: chmod o-w {path}"
        elif st.st_uid != euid and euid != 0:
            problem = f"state dir {path} is owned by uid {st.st_uid}, not by this user (uid {euid})"
        elif not os.access(path, os.W_OK | os.X_OK):
            problem = f"state dir {path} is not writable by this user"
        if problem:
            os.close(fd)
            raise StateError(problem)
        return cls(path, fd, st.st_uid)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> StateDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records ---------------------------------------------------------

    def read(self, name: str) -> tuple[Record, str | None]:
        """The record for ``name``, and where a corrupt one was moved to.

        A missing record is an empty one. A corrupt one is renamed aside
        and an empty record returned; the caller journals the move.
        """
        try:
            return load_record(self._read_bytes(f"{name}.json"), name), None
        except CorruptRecord as exc:
            aside = f"{name}.json.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
            try:
                os.rename(f"{name}.json", aside, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except OSError as err:
                raise StateError(
                    f"corrupt record {name}.json could not be moved aside: {err.strerror}"
                ) from None
            return Record(check=name), f"{exc}; moved aside to {os.path.join(self.path, aside)}"

    def peek(self, name: str) -> Record | None:
        """Read without locking or repairing (dry run, healthy path).

        None when there is no record. Raises CorruptRecord or StateError.
        """
        data = self._read_bytes(f"{name}.json")
        return None if data is None else load_record(data, name)

    def write(self, name: str, record: Record, durable: bool = True) -> None:
        """Replace the record atomically: temp file, fsync, rename, fsync dir.

        ``durable=False`` skips only the fsync of the dir, for a write whose
        loss in a crash is harmless (the runner's pid: a crash kills the
        runner too). The file itself is still fsynced before the rename, so
        a crash leaves the old record or the new one, never an empty file.

        The caller holds the record's lock, so no other write of it is
        under way: the temp file can have a fixed name, and one already
        there is left over from a run killed mid-write, and goes. No
        listing of the state dir, whose size grows with the checks.
        """
        from selfheal.core import jsonio

        data = jsonio.dumps(record.to_json(), sort_keys=True).encode()
        self.write_file(f"{name}.json", data + b"\n", temp=f".{name}.json.tmp", durable=durable)

    def write_file(self, filename: str, data: bytes, temp: str | None = None, durable: bool = True) -> None:
        """Replace ``filename`` atomically through a temp file.

        Without ``temp``, a name of this process's own (writers that hold
        no lock, such as the config cache). With it, the caller's lock
        makes the name ours, so a file already there is a crash leftover.
        """
        locked = temp is not None
        temp = temp or f".{filename}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            try:
                fd = os.open(temp, flags, 0o600, dir_fd=self.fd)
            except FileExistsError:
                if not locked:
                    raise
                os.unlink(temp, dir_fd=self.fd)  # left by a write killed midway
                fd = os.open(temp, flags, 0o600, dir_fd=self.fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._give_to_owner(fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, filename, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            if durable:
                os.fsync(self.fd)
        except OSError as exc:
            try:
                os.unlink(temp, dir_fd=self.fd)
            except OSError:
                pass
            raise StateError(f"cannot write {os.path.join(self.path, filename)}: {exc.strerror}") from None

    @property
    def foreign(self) -> bool:
        """Root working in a service user's state dir."""
        return os.geteuid() == 0 and self.owner != 0

    def _give_to_owner(self, fd: int) -> None:
        # Root working in a service user's state dir (``selfheal reset`` by
        # hand) must leave files that user can still read and replace.
        if self.foreign:
            os.fchown(fd, self.owner, -1)

    def _read_bytes(self, filename: str) -> bytes | None:
        return self.read_file(filename)

    def read_file(self, filename: str, limit: int = MAX_RECORD_BYTES) -> bytes | None:
        """A regular file's bytes, never via a symlink; None if it is missing.

        Raises StateError, or CorruptRecord when it is over ``limit`` bytes.
        """
        fd = self.open_file(filename)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size > limit:
                raise CorruptRecord(f"{filename} is {st.st_size} bytes, more than any real one")
            chunks = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def open_file(self, filename: str) -> int | None:
        """A read-only descriptor on a regular file, never via a symlink.

        None if the file is missing; StateError if it is not a regular file
        or cannot be opened.
        """
        try:
            return open_regular(
                filename, os.O_RDONLY, dir_fd=self.fd, shown=os.path.join(self.path, filename)
            )
        except FileNotFoundError:
            return None

    # -- locking ---------------------------------------------------------

    def lock(self, name: str, timeout: float = LOCK_TIMEOUT) -> _locked:
        """An exclusive lock on ``NAME.lock``; raises StateError("locked") on timeout."""
        return _locked(self, name, timeout)

    def lock_path(self, name: str) -> str:
        """Make sure ``NAME.lock`` is a regular file of ours, then name it.

        For code that locks the path itself with ``filelock.FileLock``
        (which follows symlinks): the file is created and vetted here first.
        """
        os.close(self.open_lock_file(name))
        return os.path.join(self.path, f"{name}.lock")

    def open_lock_file(self, name: str) -> int:
        """A descriptor on ``NAME.lock``, created if needed, never via a symlink."""
        filename = f"{name}.lock"
        shown = f"lock file {filename}"
        try:
            if self.foreign:
                create_owned(self.fd, filename, self.owner)
            fd = open_regular(
                filename, os.O_RDWR | os.O_CREAT, dir_fd=self.fd, shown=shown, single_link=self.foreign
            )
        except OSError as exc:
            raise StateError(f"cannot create {shown}: {exc.strerror}") from None
        try:
            self._give_to_owner(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_append(self, filename: str) -> int:
        """An O_APPEND descriptor on a regular file in the state dir (logs)."""
        fd = open_regular(
            filename,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            dir_fd=self.fd,
            shown=os.path.join(self.path, filename),
            single_link=self.foreign,
        )
        try:
            self._give_to_owner(fd)
        except OSError as exc:
            os.close(fd)
            raise StateError(
                f"cannot hand {os.path.join(self.path, filename)} over: {exc.strerror}"
            ) from None
        return fd


class _locked:
    """An exclusive ``flock`` on ``NAME.lock``, retried until ``timeout``.

    This is the lock ``filelock.FileLock`` takes on Linux (``flock`` with
    LOCK_EX on the same file, which neither ever deletes), so selfheal runs
    and anything holding a ``filelock.FileLock`` on ``NAME.lock`` exclude
    each other. It is taken here directly because importing filelock costs
    a CRITICAL run 30 to 45 ms (it brings typing, logging, inspect,
    dataclasses, pathlib and re), more than a whole healthy run, and because locking the descriptor that
    was vetted (O_NOFOLLOW, regular file) leaves no window for a symlink
    swap before filelock reopens the path. A file system without ``flock``
    refuses the lock: no heal without it (row 4).
    """

    def __init__(self, state_dir: StateDir, name: str, timeout: float) -> None:
        self.state_dir = state_dir
        self.name = name
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl

        fd = self.state_dir.open_lock_file(self.name)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Locked(
                            f"state is locked by another selfheal run for more than {self.timeout:g}s"
                        ) from None
                    # Short first waits: the holder's read-decide-write takes
                    # about a millisecond, a heal's spawn a few more.
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, 0.025)
        except OSError as exc:
            os.close(fd)
            path = os.path.join(self.state_dir.path, f"{self.name}.lock")
            raise StateError(f"cannot lock {path}: {exc.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        # Closing the descriptor releases the flock; the file stays.
        os.close(self.fd)
        self.fd = -1

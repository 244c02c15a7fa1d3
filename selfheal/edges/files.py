"""Opening and replacing files safely, in the state dir and next to it.

Every file selfheal reads or writes goes through here: regular files
only, never through a symlink, never blocking on a FIFO, and replaced
atomically (temp file, fsync, rename), so a reader never sees half a file.
And which file a program name runs, on a PATH.
"""

from __future__ import annotations

import errno
import os
import stat

from selfheal.core.states import StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def replace_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace a file outside the state dir (metrics textfile, report page)
    through a temp file beside it, so a reader never sees half of it.

    The temp name is a dot file: the textfile collector reads only
    ``*.prom``. Raises OSError.
    """
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)  # whatever the umask
        finally:
            os.close(fd)
        os.rename(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def open_regular(
    path: str,
    flags: int,
    mode: int = 0o600,
    *,
    dir_fd: int | None = None,
    shown: str | None = None,
    single_link: bool = False,
) -> int:
    """A descriptor on a regular file, never via a symlink, never blocking to open.

    Every file selfheal opens goes through here. O_NONBLOCK makes opening
    a planted FIFO (or a device) return at once instead of waiting for a
    peer while the record's lock is held; fstat then refuses anything that
    is not a regular file, and the descriptor is made blocking again.
    ``single_link`` refuses a file with other hard links: root appending
    to (or handing over) a name in another user's dir must not write into
    a file linked from elsewhere. FileNotFoundError passes through (the
    callers that read treat it as "missing"); anything else is a
    StateError naming ``shown`` (default: the path).
    """
    shown = shown or path
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(f"{shown} is a symlink; refusing to follow it") from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, opened for writing
            raise StateError(f"{shown} is not a regular file") from None
        raise StateError(f"cannot open {shown}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StateError(f"{shown} is not a regular file")
        if single_link and st.st_nlink != 1:
            others = other_links(fd, path, dir_fd)
            if others:
                raise StateError(f"{shown} has {others} other hard link(s); refusing to write to it")
        if not flags & os.O_NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str, limit: int) -> tuple[bytes, os.stat_result]:
    """A file's bytes and stat, read from one descriptor: a config, which may be a symlink.

    Unlike state files a config may be reached through a symlink (the trust
    checks judge where it really is), but it must still be a regular file:
    a FIFO would block the open or the read for ever, a device such as
    /dev/zero would never end. More than ``limit`` bytes is refused, not
    cut. FileNotFoundError passes through; anything else is a StateError.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:  # a NUL byte, which no path can hold
        raise StateError(f"cannot read {path}: no path holds a NUL byte") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise StateError(f"{path} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise StateError(f"{path} is not a regular file (a FIFO, a socket or a device)")
        if st.st_size > limit:
            raise StateError(f"{path} is too large ({st.st_size} bytes, at most {limit})")
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew after the fstat
                raise StateError(f"{path} is too large (more than {limit} bytes)")
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks), st


def other_links(fd: int, path: str, dir_fd: int | None = None) -> int:
    """The file's hard links besides ``path``, not counting a ``create_owned`` in flight.

    Root's ``create_owned`` links its temp name (``.NAME.PID.HEX.new``, in
    the same directory) into place and unlinks that name a moment later; on
    a loaded host the moment can last, and a run opening the file then must
    not be refused. Such a name is no link from elsewhere: it is not counted.
    """
    inode = os.fstat(fd)
    if inode.st_nlink == 1:
        return 0
    directory, name = os.path.split(path)
    temps = 0
    try:
        # The directory itself, as ``path`` names it from ``dir_fd``: listed and searched by descriptor.
        where = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            for entry in os.listdir(where):
                if entry.startswith(f".{name}.") and entry.endswith(".new"):
                    found = os.stat(entry, dir_fd=where, follow_symlinks=False)
                    temps += (found.st_dev, found.st_ino) == (inode.st_dev, inode.st_ino)
        finally:
            os.close(where)
    except OSError:
        pass  # gone meanwhile, or the directory cannot be listed: every link counts
    # Counted after the listing: a temp name unlinked meanwhile leaves at most the file itself.
    return max(0, os.fstat(fd).st_nlink - 1 - temps)


def create_owned(dir_fd: int, filename: str, owner: int, mode: int = 0o600) -> None:
    """Create ``filename`` in a dir, already owned by ``owner``, unless it exists.

    Root creating a file in a service user's dir must leave no moment in
    which the file exists but belongs to root: a run by that user opening
    it just then (the lock, the journal) would be refused. So the file is
    made under a temporary name, given away, then linked into place; a
    link never replaces a file that another run created meanwhile.
    """
    try:
        os.stat(filename, dir_fd=dir_fd, follow_symlinks=False)
        return
    except FileNotFoundError:
        pass
    temp = f".{filename}.{os.getpid()}.{os.urandom(4).hex()}.new"
    fd = os.open(
        temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd
    )
    try:
        try:
            os.fchown(fd, owner, -1)
        finally:
            os.close(fd)
        os.link(temp, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        pass
    finally:
        os.unlink(temp, dir_fd=dir_fd)


def keep_fds_from_children() -> None:
    """Mark every descriptor above stderr close-on-exec.

    The caller may have handed us more than stdio: NRPE's command child
    passes its own output pipe on as a descriptor above 2. A runner that
    inherited it would hold that pipe open for the whole heal, and NRPE
    (which reads it until EOF) would wait for it. posix_spawn, unlike
    subprocess, does not close such descriptors by itself. Close-on-exec is
    a flag of our descriptor only, so the caller's copy is unaffected.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: try the usual range
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def find_executable(program: str, directories: Iterable[str]) -> str | None:
    """``program`` itself if it names a path, else the first executable file of
    that name in ``directories``; None when it is not runnable."""
    if "/" in program:
        return program if runnable(program) else None
    for directory in directories:
        candidate = os.path.join(directory or ".", program)
        if runnable(candidate):
            return candidate
    return None


def runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def last_line(path: str, skip: str = "selfheal runner[") -> str | None:
    """The last non-blank line of a heal's log that is not the runner's own, at most 300 characters.

    It says why a heal failed (``start-web: port already in use``); the
    runner journals it as the reason, and a check's "did not help" shows it.
    """
    try:
        fd = open_regular(path, os.O_RDONLY)
    except (OSError, StateError):
        return None
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - 2048), os.SEEK_SET)
        tail = os.read(fd, 2048).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    lines = [line.strip() for line in tail.splitlines() if line.strip() and skip not in line]
    return lines[-1][:300] if lines else None

"""Who else could change what selfheal runs: the config file's permissions.

The config chooses the plugin and the heal, and a heal may run as root
(``sudo: true``, or a check run by root). So a config that a user other
than root or the user running the check can change is a way in: that user
picks what root runs. ``selfheal run`` refuses such a config outright (it
names the plugin too, which runs as this user); ``selfheal validate`` and
``selfheal doctor`` report the same findings, and also the milder ones
(writable by its group) that ``run`` lets pass.
"""

from __future__ import annotations

import os
import stat


def _who(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def config_writers(path: str, st: os.stat_result | None = None) -> tuple[list[str], list[str]]:
    """(refusals, warnings): why someone else could change the config at ``path``.

    ``st`` is the stat of the file actually read (``os.fstat`` of the
    descriptor): that file is judged, and every directory on the way to
    it, its real path (symlinks resolved) as well as the path as given. A
    symlink in a safe directory pointing into another user's directory is
    that user's to swap.

    Refusals: writable by everyone; owned by, or in a directory (at any
    depth) owned or replaceable by, a user who is neither root nor this
    user. Warnings: writable by its group.
    """
    euid = os.geteuid()
    trusted = (0, euid)
    refusals: list[str] = []
    warnings: list[str] = []
    try:
        real = os.path.realpath(path)
        real_st = os.stat(real)
    except (OSError, ValueError):
        return refusals, warnings
    st = real_st if st is None else st
    why = "the config decides what runs, maybe as root"
    if (real_st.st_dev, real_st.st_ino) != (st.st_dev, st.st_ino):
        refusals.append(f"the file read is no longer the one at {real}; it was replaced while read")
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_IWOTH:
        refusals.append(f"writable by everyone (mode {mode:04o}); {why}: run: chmod go-w {path}")
    elif mode & stat.S_IWGRP:
        warnings.append(f"writable by its group (mode {mode:04o}); {why}: run: chmod go-w {path}")
    if st.st_uid not in trusted:
        refusals.append(f"owned by {_who(st.st_uid)}, who can change it; {why}: run: chown root {path}")
    for directory in directories_on_path(path, real):
        try:
            dir_st = os.stat(directory)
        except OSError:
            continue
        name = "its directory" if directory == os.path.dirname(real) else "the directory"
        if dir_st.st_mode & stat.S_IWOTH and not dir_st.st_mode & stat.S_ISVTX:
            refusals.append(f"{name} {directory} is writable by everyone, so the file can be replaced")
        elif dir_st.st_uid not in trusted:
            # Its owner can always make it writable: the mode does not matter.
            refusals.append(f"{name} {directory} is owned by {_who(dir_st.st_uid)}, who can replace the file")
    return refusals, warnings


def directories_on_path(path: str, real: str) -> list[str]:
    """Every directory whose entries lead to the config: nearest first.

    Those of the real path, of the path as given, and of each symlink
    followed on the way (a link to a link); whoever can change any of them
    can make the path lead elsewhere.
    """
    found: list[str] = []
    hops = [real, os.path.abspath(path)]
    current = hops[-1]
    for _ in range(40):  # the kernel's own limit on links followed
        try:
            target = os.readlink(current)
        except (OSError, ValueError):
            break
        current = os.path.join(os.path.dirname(current), target)
        hops.append(current)
    for hop in hops:
        directory = os.path.dirname(os.path.normpath(hop))
        while True:
            if directory not in found:
                found.append(directory)
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    return found


def state_dir_writers(path: str) -> list[str]:
    """Why a user other than root or this one could write the state dir at ``path``.

    The engine refuses a world-writable, symlinked or (for a user other
    than root) foreign state dir outright; a group-writable one it accepts,
    but its group's members could reset the attempt count or fake a heal
    in progress, so validate and doctor say so.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return []
    if stat.S_ISLNK(st.st_mode):
        return [
            f"state dir {path} is a symlink; selfheal refuses it: run: point state_dir at the real directory"
        ]
    mode = stat.S_IMODE(st.st_mode)
    found = []
    if mode & stat.S_IWOTH:
        found.append(
            f"state dir {path} is writable by everyone (mode {mode:04o}); selfheal refuses it: run: chmod o-w {path}"
        )
    elif mode & stat.S_IWGRP:
        found.append(
            f"state dir {path} is writable by its group (mode {mode:04o}); its members could reset the attempt "
            f"count or fake a heal in progress: run: chmod g-w {path}"
        )
    euid = os.geteuid()
    if euid != 0 and st.st_uid not in (0, euid):
        found.append(f"state dir {path} is owned by {_who(st.st_uid)}; selfheal refuses it for this user")
    return found

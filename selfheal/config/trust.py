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

    Refusals: writable by everyone; owned by, or in a directory writable
    by, a user who is neither root nor this user. Warnings: writable by its
    group.
    """
    euid = os.geteuid()
    trusted = (0, euid)
    refusals: list[str] = []
    warnings: list[str] = []
    try:
        st = os.stat(path) if st is None else st
        directory = os.path.dirname(os.path.abspath(path))
        dir_st = os.stat(directory)
    except OSError:
        return refusals, warnings
    mode = stat.S_IMODE(st.st_mode)
    why = "the config decides what runs, maybe as root"
    if mode & stat.S_IWOTH:
        refusals.append(f"writable by everyone (mode {mode:04o}); {why}: run: chmod go-w {path}")
    elif mode & stat.S_IWGRP:
        warnings.append(f"writable by its group (mode {mode:04o}); {why}: run: chmod go-w {path}")
    if st.st_uid not in trusted:
        refusals.append(f"owned by {_who(st.st_uid)}, who can change it; {why}: run: chown root {path}")
    if dir_st.st_mode & stat.S_IWOTH and not dir_st.st_mode & stat.S_ISVTX:
        refusals.append(f"its directory {directory} is writable by everyone, so the file can be replaced")
    elif dir_st.st_uid not in trusted and dir_st.st_mode & stat.S_IWUSR:
        refusals.append(
            f"its directory {directory} is owned by {_who(dir_st.st_uid)}, who can replace the file"
        )
    return refusals, warnings


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

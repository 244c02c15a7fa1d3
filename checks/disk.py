"""``disk``: space and inodes used on the filesystem that holds a path.

``-w``/``-c`` are ranges on the space used in percent (defaults 80 and
90), computed as ``df`` does: used / (used + available to users), so the
root-reserved blocks count as neither. ``--free-warning``/``--free-critical``
are ranges on the free space in MiB (``1024:`` = below 1 GiB) and
``--inodes-warning``/``--inodes-critical`` on the inodes used in percent.

The clean-up heal (``--clean DIR --older-than 7d``) deletes the regular
files under DIR not modified for that long, optionally only those whose
name matches ``--match GLOB``; with ``--dry-run`` it only lists them. It
never follows a symlink (it deletes relative to directory descriptors),
never leaves DIR's filesystem and refuses ``/``.
"""

from __future__ import annotations

import os

import nagiosplugin

from selfheal.checks.options import Values, plain
from selfheal.checks.plugin import Spec
from selfheal.checks.plugin import main as plugin_main
from selfheal.core.argv import Option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO

MIB = 2**20


class Disk(nagiosplugin.Resource):
    """Yields ``used_pct``, ``free`` (MiB) and ``inodes_used_pct``."""

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return "DISK"

    def probe(self) -> list[nagiosplugin.Metric]:
        try:
            fs = os.statvfs(self.path)
        except OSError as exc:
            raise nagiosplugin.CheckError(
                f"cannot read the filesystem of {self.path}: {exc.strerror}"
            ) from None
        used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        available = fs.f_bavail * fs.f_frsize
        size = used + available
        metrics = [
            nagiosplugin.Metric("used_pct", percent(used, size), "%", 0, 100, context="used"),
            nagiosplugin.Metric(
                "free", plain(round(available / MIB, 2)), "MB", 0, plain(round(size / MIB, 2)), context="free"
            ),
        ]
        # Some filesystems (btrfs, vfat) have no inode limit and report 0.
        if fs.f_files:
            inodes_used = fs.f_files - fs.f_ffree
            inodes = inodes_used + fs.f_favail
            metrics.append(
                nagiosplugin.Metric(
                    "inodes_used_pct", percent(inodes_used, inodes), "%", 0, 100, context="inodes"
                )
            )
        return metrics


def percent(part: int, whole: int) -> float:
    return plain(round(100 * part / whole, 2)) if whole else 0


def build(values: Values) -> list[object]:
    path = values.required("path")
    return [
        Disk(path),
        nagiosplugin.ScalarContext(
            "used",
            values.range("warning", "80"),
            values.range("critical", "90"),
            fmt_metric=lambda m, _: f"{path}: {plain(m.value)}% used",
        ),
        nagiosplugin.ScalarContext(
            "free",
            values.range("free_warning"),
            values.range("free_critical"),
            fmt_metric=lambda m, _: f"{plain(m.value)} MiB free",
        ),
        nagiosplugin.ScalarContext(
            "inodes",
            values.range("inodes_warning"),
            values.range("inodes_critical"),
            fmt_metric=lambda m, _: f"{plain(m.value)}% inodes used",
        ),
    ]


# -- the clean-up heal ---------------------------------------------------------


def old_files(
    directory: str, older_than: float, pattern: str | None, now: float
) -> Iterator[tuple[int, str, str, int]]:
    """(dir fd, name, path, size) of each regular file under ``directory`` older than ``older_than`` seconds.

    Walks with directory descriptors (``os.fwalk``) and yields while the
    descriptor is open, so the caller can unlink relative to it: a
    directory swapped for a symlink mid-walk cannot redirect a deletion.
    Never follows a symlink; never leaves the filesystem of ``directory``.
    """
    import fnmatch
    import stat

    device = os.lstat(directory).st_dev
    for root, dirs, files, root_fd in os.fwalk(directory):
        # Stay on this filesystem: a mount below DIR is someone else's.
        dirs[:] = sorted(d for d in dirs if same_device(d, root_fd, device))
        for name in sorted(files):
            if pattern and not fnmatch.fnmatch(name, pattern):
                continue
            try:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_dev == device and now - info.st_mtime > older_than:
                yield root_fd, name, os.path.join(root, name), info.st_size


def same_device(name: str, dir_fd: int, device: int) -> bool:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_dev == device
    except OSError:
        return False  # gone while we looked: nothing to clean there


def clean(values: Values, out: TextIO) -> int:
    """``--clean DIR --older-than AGE [--match GLOB] [--dry-run]``: a heal action."""
    import time

    directory = values.required("clean")
    older_than = values.duration("older_than")
    if older_than is None:
        raise values.fail("older_than", "is required with --clean (e.g. --older-than 7d)")
    if older_than <= 0:
        raise values.fail("older_than", "must be longer than 0s: 0 would delete every file")
    if not os.path.isdir(directory) or os.path.islink(directory):
        raise values.fail("clean", f"{directory} is not a directory")
    if os.path.realpath(directory) == "/":
        raise values.fail("clean", "refusing to clean up /")
    dry_run = values.flag("dry_run")
    count, total, failed = 0, 0, []
    for dir_fd, name, path, size in old_files(directory, older_than, values.text("match"), time.time()):
        if dry_run:
            out.write(f"would delete {path} ({size} bytes)\n")
        else:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError as exc:
                failed.append(f"{path}: {exc.strerror}")
                continue
        count += 1
        total += size
    if dry_run:
        out.write(f"dry run: {count} files ({total} bytes) under {directory} would be deleted\n")
        return 0
    out.write(f"deleted {count} files ({total} bytes) under {directory}\n")
    for line in failed:
        out.write(f"could not delete {line}\n")
    return 1 if failed else 0


SPEC = Spec(
    "disk",
    "Check the space and inodes used on the filesystem that holds PATH; or clean up old files (--clean).",
    [
        Option(
            ("-p", "--path"),
            "path",
            "value",
            "PATH",
            "a mount point, or any path on the filesystem (required)",
        ),
        Option(
            ("--free-warning",),
            "free_warning",
            "value",
            "RANGE",
            "free MiB that gives WARNING (e.g. 1024: = below 1 GiB)",
        ),
        Option(("--free-critical",), "free_critical", "value", "RANGE", "free MiB that gives CRITICAL"),
        Option(("--inodes-warning",), "inodes_warning", "value", "RANGE", "inodes used % that gives WARNING"),
        Option(
            ("--inodes-critical",), "inodes_critical", "value", "RANGE", "inodes used % that gives CRITICAL"
        ),
        Option(
            ("--clean",), "clean", "value", "DIR", "heal mode: delete old files under DIR instead of checking"
        ),
        Option(
            ("--older-than",),
            "older_than",
            "value",
            "AGE",
            "with --clean: files not modified for AGE (e.g. 7d)",
        ),
        Option(
            ("--match",),
            "match",
            "value",
            "GLOB",
            "with --clean: only file names matching GLOB (e.g. '*.log.*')",
        ),
    ],
    build,
    warning="space used % that gives WARNING (default 80)",
    critical="space used % that gives CRITICAL (default 90)",
    modes={"clean": clean},
    mode_options=("older_than", "match"),
)


def main(argv: list[str] | None = None) -> int:
    return plugin_main(SPEC, argv)


if __name__ == "__main__":
    raise SystemExit(main())

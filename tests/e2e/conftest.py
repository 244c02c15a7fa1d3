"""Fixtures for the end-to-end tests: a selfheal install, temp dirs, daemons.

A missing daemon (or not being root, which Nagios needs to run plugins as
``nagios``) skips these tests with the reason, unless
``SELFHEAL_E2E=require`` (CI, ``.ci/run``): then it fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from e2e.daemons import NAGIOS4, Deployment, Nagios, Unavailable, make_workdir, reap, run_as_ids
from e2e.sysns import SystemdNamespace
from e2e.sysns import Unavailable as NoNamespace

REQUIRED = os.environ.get("SELFHEAL_E2E") == "require"


def need(condition: object, reason: str) -> None:
    """Skip (or fail, under SELFHEAL_E2E=require) unless ``condition``."""
    if condition:
        return
    if REQUIRED:
        pytest.fail(f"SELFHEAL_E2E=require, but {reason}", pytrace=False)
    pytest.skip(reason)


def need_executable(path: str, package: str) -> None:
    need(os.access(path, os.X_OK), f"{path} is missing (apt-get install {package})")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@contextmanager
def nagios_owned_dir(prefix: str) -> Iterator[Path]:
    """A temp dir owned by the nagios user; what still runs from it is killed, then it is removed."""
    need(os.geteuid() == 0, "the end-to-end tests run as root (Nagios then runs plugins as nagios)")
    try:
        root = make_workdir(prefix)
    except Unavailable as exc:
        need(False, str(exc))
    try:
        yield root
    finally:
        reap(str(root))
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    """selfheal installed where the nagios user can run it."""
    with nagios_owned_dir("selfheal-e2e-install-") as root:
        try:
            installed = Deployment(root)
        except Unavailable as exc:
            need(False, str(exc))
        yield installed


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temp dir for one test, owned by the nagios user."""
    with nagios_owned_dir("selfheal-e2e-") as root:
        yield root


@pytest.fixture
def nagios_factory(workdir: Path) -> Iterator[object]:
    """Build and start a Nagios on the given objects; stopped afterwards."""
    need_executable(NAGIOS4, "nagios4-core")
    started: list[Nagios] = []

    def start(objects: str, **settings: object) -> Nagios:
        root = workdir / f"nagios{len(started)}"
        root.mkdir()
        os.chown(root, *run_as_ids())
        nagios = Nagios(root, objects, **settings)
        started.append(nagios)
        nagios.start()
        return nagios

    yield start
    for nagios in started:
        nagios.stop()


@pytest.fixture
def systemd_namespace() -> Iterator[Callable[[Mapping[str, str]], SystemdNamespace]]:
    """Boot a real systemd as PID 1 in private namespaces, with the given unit files.

    Each is killed afterwards, its cgroup removed; a process left behind
    fails the test. The tail of its console is printed, which pytest shows
    when a test failed.
    """
    try:
        SystemdNamespace.preflight()
    except NoNamespace as exc:
        need(False, str(exc))
    booted: list[SystemdNamespace] = []

    def boot(units: Mapping[str, str]) -> SystemdNamespace:
        namespace = SystemdNamespace(units)
        booted.append(namespace)
        return namespace.start()

    yield boot
    errors = []
    for namespace in booted:
        print(f"--- console of the namespace (pid {namespace.pid}), last lines:")
        print("\n".join(namespace.console().splitlines()[-40:]))
        try:
            namespace.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, errors

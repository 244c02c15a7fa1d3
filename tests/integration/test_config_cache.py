"""The compiled config cache: used only when current, never stale, kept safely.

Each test loads a config twice through ``config_cache.load`` as ``selfheal
run`` does, and checks where the second result came from and that it is
exactly what parsing the YAML gives.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_selfheal

from selfheal.config import ConfigError
from selfheal.config import cache as config_cache
from selfheal.config import loader as configuration

CONFIG = """\
state_dir: {state}
defaults:
  cooldown: 10m
  max_attempts: 2
checks:
  web:
    plugin: check_dummy 0 "all fine"
    heal: {{systemd: nginx, verb: reload}}
    sudo: true
    timeout: 20s
  db:
    plugin: [/usr/lib/nagios/plugins/check_dummy, "2", down]
    heal: {{command: "pg_ctl restart -D '/var/lib/pg data'"}}
    window: 2h
    timeout_state: critical
  cron:
    plugin: check_dummy 0
    heal: {{init: cron}}
  queue:
    plugin: check_dummy 0
    heal: {{command: "systemctl restart a && systemctl restart b", shell: true}}
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "selfheal.yaml"
    config.write_text(CONFIG.format(state=state))
    return config, state


NAMES = ("web", "db", "cron", "queue")


def load(config: Path, env: dict[str, str] | None = None, **kwargs: object):
    kwargs.setdefault("wanted", NAMES)
    return config_cache.load(str(config), None, env or {"HOME": "/nonexistent"}, **kwargs)  # type: ignore[arg-type]


def same_checks(a: configuration.Config, b: configuration.Config) -> None:
    """``a.check(name)`` equals the parsed check, field by field."""
    assert sorted(NAMES) == sorted(b.checks)
    for name in NAMES:
        left, right = a.check(name), b.check(name)
        assert type(left.heal) is type(right.heal)
        assert left.heal == right.heal and left.heal.describe() == right.heal.describe()
        assert (left.heal.sudo, left.heal.shell) == (right.heal.sudo, right.heal.shell)
        assert left.policy == right.policy
        for field in ("name", "plugin", "builtin", "args", "timeout", "timeout_state", "line", "plugin_line"):
            assert getattr(left, field) == getattr(right, field), field
    assert (a.state_dir, a.journal) == (b.state_dir, b.journal)


def test_second_load_comes_from_the_cache_and_equals_the_yaml(setup):
    config, state = setup
    first, state_dir = load(config)
    assert not isinstance(first, config_cache.CachedConfig)
    assert state_dir == str(state)
    assert len(list(state.glob("config.*.cache"))) == 1
    second, state_dir = load(config)
    assert isinstance(second, config_cache.CachedConfig)
    assert state_dir == str(state)
    same_checks(second, configuration.load(str(config)))
    assert second._checks is None  # every check came from the cache, none from the YAML
    assert second.check("db").heal.argv == ["pg_ctl", "restart", "-D", "/var/lib/pg data"]


def test_only_the_check_asked_for_is_decoded(setup):
    config, _ = setup
    load(config)
    cached, _ = load(config, wanted=("web",))
    assert sorted(cached._decoded) == ["web"]
    assert cached.check("web") is cached._decoded["web"]
    assert cached._checks is None
    # Anything else parses the config's stored bytes, and is still right.
    same_checks(cached, configuration.load(str(config)))
    with pytest.raises(ConfigError, match=r"no check named 'nope' \(configured: cron, db, queue, web\)"):
        cached.check("nope")


def test_a_truncated_cache_is_moved_aside(setup):
    config, state = setup
    load(config)
    (cache,) = state.glob("config.*.cache")
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) - 10])  # the last check's blob is cut short
    reloaded, _ = load(config)
    same_checks(reloaded, configuration.load(str(config)))
    assert len(list(state.glob(cache.name + ".corrupt-*"))) == 1


def test_an_edit_is_never_served_stale_even_with_the_same_size_and_mtime(setup):
    config, _ = setup
    load(config)
    before = os.stat(config)
    text = config.read_text()
    edited = text.replace("cooldown: 10m", "cooldown: 20m")
    assert len(edited) == len(text)
    with open(config, "r+") as stream:  # in place: same inode
        stream.write(edited)
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(config)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    reloaded, _ = load(config)
    assert reloaded.check("web").policy.cooldown == 1200
    again, _ = load(config)  # and the cache now holds the edit
    assert isinstance(again, config_cache.CachedConfig)
    assert again.check("web").policy.cooldown == 1200


def test_the_bytes_decide_even_if_every_stat_field_matched(setup, monkeypatch):
    # ctime catches the edit above; here the key is made blind to the file
    # entirely, and the stored bytes alone must catch the change.
    config, _ = setup
    monkeypatch.setattr(config_cache, "cache_key", lambda path, st: ("same", "key"))
    load(config)
    assert isinstance(load(config)[0], config_cache.CachedConfig)
    config.write_text(config.read_text().replace("cooldown: 10m", "cooldown: 30m"))
    reloaded, _ = load(config)
    assert not isinstance(reloaded, config_cache.CachedConfig)
    assert reloaded.check("web").policy.cooldown == 1800


def test_a_broken_edit_still_reports_file_and_line(setup):
    config, _ = setup
    load(config)
    config.write_text(config.read_text().replace("max_attempts: 2", "max_attempts: two"))
    with pytest.raises(ConfigError, match=r"selfheal\.yaml:4: .*max_attempts"):
        load(config)


def test_a_corrupt_cache_is_moved_aside_and_rebuilt(setup):
    config, state = setup
    load(config)
    (cache,) = state.glob("config.*.cache")
    cache.write_bytes(b"\x00garbage that is not a cache")
    reloaded, _ = load(config)
    same_checks(reloaded, configuration.load(str(config)))
    aside = list(state.glob(cache.name + ".corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"\x00garbage that is not a cache"
    assert isinstance(load(config)[0], config_cache.CachedConfig)


def test_a_cache_naming_a_foreign_class_is_refused():
    encoded = ("object", "os", "system", [])
    with pytest.raises(config_cache.Uncacheable):
        config_cache.decode(encoded)
    with pytest.raises(config_cache.Uncacheable):
        config_cache.decode(("object", "selfheal.core.actions", "shellwords.split", []))


def test_a_symlinked_cache_is_not_followed(setup, tmp_path):
    config, state = setup
    load(config)
    (cache,) = state.glob("config.*.cache")
    target = tmp_path / "elsewhere"
    target.write_bytes(cache.read_bytes())
    cache.unlink()
    cache.symlink_to(target)
    before = target.read_bytes()
    reloaded, _ = load(config)
    assert not isinstance(reloaded, config_cache.CachedConfig)
    assert target.read_bytes() == before  # never written through the link
    assert not cache.is_symlink()  # replaced by a real file, atomically


def test_a_dry_run_writes_no_cache_and_no_state_dir_is_created(setup, tmp_path):
    config, state = setup
    load(config, write=False)
    assert not list(state.glob("config.*.cache"))
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG.format(state=tmp_path / "not-yet"))
    load(other)
    assert not (tmp_path / "not-yet").exists()


def test_a_cache_is_used_only_in_the_state_dir_it_belongs_to(setup, tmp_path):
    config, _ = setup
    load(config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    env = {"SELFHEAL_STATE_DIR": str(elsewhere)}
    first, state_dir = load(config, env)
    assert state_dir == str(elsewhere) and not isinstance(first, config_cache.CachedConfig)
    second, state_dir = load(config, env)
    assert state_dir == str(elsewhere) and isinstance(second, config_cache.CachedConfig)
    # The config's own state dir still serves runs without the override.
    assert isinstance(load(config)[0], config_cache.CachedConfig)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"state_dir: /a/b\nchecks: {}\n", "/a/b"),
        (b"checks: {}\nstate_dir: '/x y'  # quoted\n", "/x y"),
        (b'journal: j\nstate_dir: "/q"\n', "/q"),
        (b"checks:\n  state_dir: /nested\n", None),
        (b"# state_dir: /commented\n", None),
    ],
)
def test_the_state_dir_guess(text, expected):
    assert config_cache.configured_state_dir(text) == expected


def test_a_config_others_can_change_is_refused_even_when_cached(setup):
    config, _ = setup
    load(config)
    assert isinstance(load(config)[0], config_cache.CachedConfig)
    os.chmod(config, 0o666)
    with pytest.raises(ConfigError, match="refusing a config that others can change"):
        load(config)


# -- whose cache: a cache someone else can write must not choose what root runs --

NOBODY = 65534


def forge(config: Path, state: Path) -> Path:
    """A current cache (right key, right config bytes) whose ``web`` runs a planted plugin."""
    text, st = configuration.read(str(config))
    path_key = os.path.abspath(str(config))
    forged = configuration.parse(text, str(config))
    forged.checks["web"].plugin = planted(state)
    filename = config_cache.cache_name(path_key)
    config_cache.write_cache(str(state), filename, config_cache.cache_key(path_key, st), text, forged)
    return state / filename


def planted(state: Path) -> list[str]:
    return ["/bin/sh", "-c", f"touch {state.parent / 'planted'}; echo OK planted"]


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attack is root trusting another uid"
)


@needs_root
def test_root_ignores_a_forged_cache_in_a_state_dir_another_user_owns(setup):
    config, state = setup
    cache = forge(config, state)
    assert load(config)[0].check("web").plugin == planted(state)  # the forgery is current
    os.chown(state, NOBODY, NOBODY)
    os.chown(cache, NOBODY, NOBODY)
    before = cache.read_bytes()
    loaded, _ = load(config)
    assert not isinstance(loaded, config_cache.CachedConfig)
    assert loaded.check("web").plugin != planted(state)
    same_checks(loaded, configuration.load(str(config)))
    # Nor does root write a cache there for that user to find (or keep forging).
    assert cache.read_bytes() == before and cache.stat().st_uid == NOBODY
    # The reviewer's reproduction: the CLI as root runs the config's plugin, not the planted one.
    result = run_selfheal("run", "web", "-c", config, "--dry-run")
    assert result.returncode == 0 and "all fine" in result.stdout, result
    assert not (state.parent / "planted").exists()


@needs_root
def test_a_cache_file_another_user_owns_or_can_write_is_not_trusted(setup):
    config, state = setup
    cache = forge(config, state)
    os.chown(cache, NOBODY, NOBODY)  # our dir, their file
    assert load(config)[0].check("web").plugin != planted(state)
    cache = forge(config, state)
    os.chmod(cache, 0o620)  # our file, writable by the group
    assert load(config)[0].check("web").plugin != planted(state)


def test_a_blob_swapped_between_checks_is_refused(setup):
    config, state = setup
    load(config)
    (cache,) = state.glob("config.*.cache")
    data = cache.read_bytes()
    import marshal

    size = int.from_bytes(data[:8], "big")
    header = marshal.loads(data[8 : 8 + size])
    index = header["index"]
    # Point "web" at "queue"'s blob (a shell heal) without touching the blobs.
    index["web"] = index["queue"][:2] + tuple(index["web"][2:])
    new_header = marshal.dumps(header)
    cache.write_bytes(len(new_header).to_bytes(8, "big") + new_header + data[8 + size :])
    loaded, _ = load(config)
    assert not isinstance(loaded, config_cache.CachedConfig)
    assert loaded.check("web").heal.describe() == configuration.load(str(config)).check("web").heal.describe()

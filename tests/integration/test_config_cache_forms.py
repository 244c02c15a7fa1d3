"""The config cache's plain forms: explicit ``to_json``/``from_json``, nothing reflective.

A cached check is its ``to_json()`` dict and comes back only through the
constructors. These tests generate configs and round-trip them, forge
cache files (a class name, a header pointing outside the file) and feed
an alias bomb to ``selfheal run``: every bad cache means "parse the
YAML", never an exception, and the bomb is a one-line UNKNOWN.
"""

from __future__ import annotations

import marshal
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import (
    CHECK_DUMMY,
    UNKNOWN_LINE,
    assert_no_traceback,
    clean_env,
    run_selfheal,
    selfheal_argv,
    wait_for,
    write_script,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfheal.config import ConfigError, schema
from selfheal.config import cache as config_cache
from selfheal.config import loader as configuration
from selfheal.core.actions import Command, InitScript, Systemd, action_from_json
from selfheal.core.policy import Policy

SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- generated valid configs ------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
words = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=12
)
durations = st.one_of(
    st.integers(0, 10**6),
    st.floats(0, 10**6, allow_nan=False),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 1000), st.sampled_from(["", "s", "m", "h", "d"])),
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, object]:
    settings: dict[str, object] = {}
    cooldown = draw(st.integers(0, 10**5))
    if draw(st.booleans()):
        settings["cooldown"] = f"{cooldown}s"
        settings["max_cooldown"] = cooldown + draw(st.integers(0, 10**5))
    for key in ("window", "reset_after", "grace", "splay"):
        if draw(st.booleans()):
            settings[key] = draw(durations)
    if draw(st.booleans()):
        settings["action_timeout"] = draw(st.integers(1, 10**4))
    if draw(st.booleans()):
        settings["backoff"] = draw(st.one_of(st.integers(1, 100), st.floats(1, 100)))
    if draw(st.booleans()):
        settings["max_attempts"] = draw(st.integers(1, 10**6))
    if draw(st.booleans()):
        settings["heal_on"] = draw(
            st.lists(st.sampled_from(["critical", "unknown", "warning"]), min_size=1, max_size=3, unique=True)
        )
    return settings


heals = st.one_of(
    st.builds(lambda u, v: {"systemd": u, "verb": v}, names, st.sampled_from(["restart", "reload", "start"])),
    st.builds(lambda n: {"init": n}, names),
    st.builds(lambda argv: {"command": argv}, st.lists(words, min_size=1, max_size=4)),
    st.builds(lambda script: {"command": script, "shell": True}, words.filter(str.strip)),
    st.builds(lambda argv: argv, st.lists(words, min_size=1, max_size=4)),
)
plain_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**15), 10**15),
        st.floats(allow_nan=False),
        words,
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def checks(draw: st.DrawFn) -> dict[str, object]:
    check: dict[str, object] = {"heal": draw(heals)}
    if draw(st.booleans()):
        check["check"] = draw(st.sampled_from(schema.BUILTIN_CHECKS))
        if draw(st.booleans()):
            check["args"] = draw(st.dictionaries(names, plain_values, max_size=5))
    else:
        check["plugin"] = [CHECK_DUMMY, *draw(st.lists(words, max_size=3))]
    check.update(draw(policies()))
    if draw(st.booleans()):
        check["sudo"] = draw(st.booleans())
    if draw(st.booleans()):
        check["timeout"] = draw(st.integers(1, 3600))
    if draw(st.booleans()):
        check["timeout_state"] = draw(st.sampled_from(["critical", "unknown"]))
    return check


budgets = st.builds(
    lambda group, most, breaker: {"group": group, "max_concurrent": most, **breaker},
    names,
    st.integers(1, 1000),
    st.one_of(
        st.just({}),
        st.builds(
            lambda count, window: {"max_per_window": count, "window": window},
            st.integers(1, 10_000),
            st.one_of(
                st.integers(1, 10**6),
                st.builds(lambda n, u: f"{n}{u}", st.integers(1, 1000), st.sampled_from("smhd")),
            ),
        ),
    ),
)
fleets = st.builds(
    lambda endpoints, timeout, extra, top: {"etcd": {"endpoints": endpoints, **timeout, **extra}, **top},
    st.one_of(
        st.builds(lambda port: f"http://127.0.0.1:{port}", st.integers(1, 65535)),
        st.lists(st.builds(lambda n: f"https://etcd{n}:2379", st.integers(0, 99)), min_size=1, max_size=3),
    ),
    st.one_of(st.just({}), st.builds(lambda t: {"timeout": t}, st.sampled_from([1, 2.5, "2s", "1m"]))),
    st.one_of(
        st.just({}),
        st.just({"ca": "/etc/selfheal/ca.pem", "cert": "/etc/selfheal/c.pem", "key": "/etc/selfheal/c.key"}),
        st.builds(lambda user: {"user": user, "password_file": "/etc/selfheal/etcd.pw"}, names),
    ),
    st.fixed_dictionaries({}, optional={"host": names, "on_unreachable": st.sampled_from(["heal", "hold"])}),
)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, object]:
    config: dict[str, object] = {"checks": draw(st.dictionaries(names, checks(), min_size=1, max_size=4))}
    for key, value in (("state_dir", "/var/lib/selfheal-test"), ("journal", "/var/log/selfheal-test.jsonl")):
        if draw(st.booleans()):
            config[key] = value
    if draw(st.booleans()):
        # A budget needs fleet:; some checks have one, some not.
        config["fleet"] = draw(fleets)
        for check in config["checks"].values():  # type: ignore[attr-defined]
            if draw(st.booleans()):
                check["budget"] = draw(budgets)
    return config


def same_check(left: schema.CheckConfig, right: schema.CheckConfig) -> None:
    """Equal in every field: the ones the run reads and the ones errors cite."""
    assert type(left.heal) is type(right.heal)
    assert left.heal.argv == right.heal.argv and left.heal.describe() == right.heal.describe()
    assert vars(left.heal) == vars(right.heal)
    assert left.policy == right.policy and left.policy.to_json() == right.policy.to_json()
    assert sorted(vars(left)) == sorted(vars(right))
    for field, value in vars(right).items():
        if field not in ("heal", "policy"):
            assert same_plain(getattr(left, field), value), field


def same_plain(left: object, right: object) -> bool:
    """Equal, and of the same types all the way down (1 is not True, 1.0 is not 1)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_plain(left[k], right[k]) for k in left)  # type: ignore[attr-defined]
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same_plain, left, right))  # type: ignore[arg-type]
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)  # type: ignore[arg-type]
    return left == right


@settings(max_examples=150, **SETTINGS)
@given(configs())
def test_every_generated_check_round_trips_through_its_plain_form(config: dict[str, object]) -> None:
    text = yaml.safe_dump(config, allow_unicode=True)
    parsed = configuration.parse(text, "gen.yaml")
    assert sorted(parsed.checks) == sorted(config["checks"])  # type: ignore[arg-type]
    for name, check in parsed.checks.items():
        plain = config_cache.encode(check)
        # marshal of plain data only: what the cache file holds, and all it needs.
        back = config_cache.decode_check(marshal.dumps(plain), name)
        same_check(back, check)
        assert back.to_json() == plain


@settings(max_examples=25, **SETTINGS)
@given(configs())
def test_a_generated_config_served_from_the_cache_file_equals_the_yaml(
    tmp_path_factory: pytest.TempPathFactory, config: dict[str, object]
) -> None:
    tmp = tmp_path_factory.mktemp("gen")
    state = tmp / "state"
    state.mkdir(mode=0o700)
    config = {**config, "state_dir": str(state)}
    path = tmp / "selfheal.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    wanted = tuple(config["checks"])  # type: ignore[arg-type]
    env = {"HOME": "/nonexistent"}
    first, _ = config_cache.load(str(path), None, env, wanted=wanted)
    cached, _ = config_cache.load(str(path), None, env, wanted=wanted)
    assert isinstance(cached, config_cache.CachedConfig) and not isinstance(first, config_cache.CachedConfig)
    for name in wanted:
        assert name in cached._decoded  # from the blob, not the YAML
        same_check(cached.check(name), first.check(name))
    assert (cached.state_dir, cached.journal, cached.outputs) == (
        first.state_dir,
        first.journal,
        first.outputs,
    )
    assert same_plain(cached.fleet, first.fleet)
    assert cached._checks is None


def test_the_plain_forms_are_plain_data() -> None:
    config = configuration.parse(
        "checks:\n  web:\n    check: tcp\n    args: {host: h, port: 1, x: [1, {a: null}]}\n"
        "    heal: {init: nginx, verb: reload}\n    heal_on: [critical, unknown]\n"
    )
    plain = config.check("web").to_json()

    def kinds(value: object) -> set[type]:
        if isinstance(value, dict):
            return {dict}.union(*(kinds(k) | kinds(v) for k, v in value.items()))
        if isinstance(value, list):
            return {list}.union(*(kinds(v) for v in value))
        return {type(value)}

    assert kinds(plain) <= {dict, list, str, int, float, bool, type(None)}
    assert plain["heal"] == {"init": "nginx", "verb": "reload", "sudo": False}
    assert plain["policy"]["heal_on"] == ["critical", "unknown"]  # type: ignore[index]


@pytest.mark.parametrize(
    "action",
    [
        Command("a 'b c'"),
        Command(["x", "--y=1"], sudo=True),
        Command("a && b", shell=True),
        Systemd("nginx", "reload", sudo=True),
        InitScript("cron"),
    ],
)
def test_each_action_kind_round_trips(action: object) -> None:
    back = action_from_json(action.to_json())  # type: ignore[attr-defined]
    assert type(back) is type(action) and vars(back) == vars(action)


@pytest.mark.parametrize(
    "data",
    [
        {"systemd": "nginx", "verb": "restart", "sudo": False, "class": "os.system"},  # extra key
        {"systemd": "nginx", "verb": "--now", "sudo": False},  # an option, not a verb
        {"systemd": "a b", "verb": "restart", "sudo": False},  # not a unit name
        {"init": "../../bin/sh", "verb": "restart", "sudo": False},
        {"command": "rm -rf /", "shell": False, "sudo": False},  # a string, not a list
        {"command": [], "shell": False, "sudo": False},
        {"command": ["a", "b"], "shell": True, "sudo": False},  # shell takes one script
        {"command": ["a"], "shell": 1, "sudo": False},
        {"command": ["a"], "systemd": "x", "shell": False, "sudo": False},
        {"python": "os.system", "sudo": False},
        ("object", "selfheal.core.actions", "Command", []),
    ],
)
def test_a_forged_action_form_is_refused(data: object) -> None:
    with pytest.raises(ValueError):
        action_from_json(data)


def test_a_policy_form_goes_through_the_constructor() -> None:
    plain = Policy(cooldown="5m", max_cooldown="1h").to_json()
    assert Policy.from_json(plain) == Policy(cooldown=300, max_cooldown=3600)
    for bad in (
        {**plain, "max_cooldown": 1.0},  # shorter than the cooldown
        {**plain, "heal_on": ["ok"]},
        {**plain, "max_attempts": True},
        {**plain, "extra": 1},
        {k: v for k, v in plain.items() if k != "grace"},
    ):
        with pytest.raises(ValueError):
            Policy.from_json(bad)


def test_an_action_of_another_class_is_not_cached_as_its_base() -> None:
    class Special(Systemd):
        pass

    with pytest.raises(ValueError):
        Special("nginx").to_json()


# -- forged and corrupt cache files ---------------------------------------

CONFIG = """\
state_dir: {state}
checks:
  web:
    plugin: {dummy} 0 "all fine"
    heal: {{systemd: nginx}}
  db:
    plugin: {dummy} 0 "db fine"
    heal: {{command: "pg_ctl restart"}}
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "selfheal.yaml"
    config.write_text(CONFIG.format(state=state, dummy=CHECK_DUMMY))
    return config, state


def load(config: Path) -> schema.Config:
    return config_cache.load(str(config), None, {"HOME": "/nonexistent"}, wanted=("web", "db"))[0]


def read_cache(state: Path) -> tuple[Path, dict[str, object], dict[str, bytes]]:
    (cache,) = state.glob("config.*.cache")
    data = cache.read_bytes()
    size = int.from_bytes(data[:8], "big")
    header = marshal.loads(data[8 : 8 + size])
    blobs = {name: data[8 + size + o : 8 + size + o + n] for name, (o, n, _) in header["index"].items()}
    return cache, header, blobs


def write_cache(cache: Path, header: dict[str, object], blobs: dict[str, bytes]) -> None:
    """A cache file with these blobs and a correct index (offsets, lengths, CRCs)."""
    import zlib

    index, offset = {}, 0
    for name, blob in blobs.items():
        index[name] = (offset, len(blob), zlib.crc32(blob))
        offset += len(blob)
    raw = marshal.dumps({**header, "index": index})
    cache.write_bytes(len(raw).to_bytes(8, "big") + raw + b"".join(blobs.values()))


def served_from_yaml(config: Path, state: Path, cache: Path) -> None:
    """This load parsed the YAML, moved the bad cache aside, and the next is cached again."""
    loaded = load(config)
    assert not isinstance(loaded, config_cache.CachedConfig)
    assert loaded.check("web").plugin == [CHECK_DUMMY, "0", "all fine"]
    assert isinstance(loaded.check("web").heal, Systemd)
    assert len(list(state.glob(cache.name + ".corrupt-*"))) == 1
    again = load(config)
    assert isinstance(again, config_cache.CachedConfig) and "web" in again._decoded


FORGED_BLOBS = [
    # The old attack: the reflective format naming any selfheal module and class.
    ("object", "selfheal.fleet.budget", "Budget", []),
    ("object", "selfheal.config.schema", "CheckConfig", [("name", "web"), ("plugin", ["/bin/sh"])]),
    # The plain form, with one more key naming a class.
    "class",
]


@pytest.mark.parametrize("forged", FORGED_BLOBS, ids=["module", "checkconfig", "class-key"])
def test_a_cache_naming_a_module_or_class_is_refused_and_the_yaml_used(setup, forged: object) -> None:
    config, state = setup
    load(config)
    cache, header, blobs = read_cache(state)
    plain = marshal.loads(blobs["web"])
    if forged == "class":
        forged = {**plain, "class": "selfheal.fleet.budget.Budget"}
    blobs["web"] = marshal.dumps(forged)
    write_cache(cache, header, blobs)
    served_from_yaml(config, state, cache)


def test_a_forged_heal_is_refused_when_first_used_and_the_yaml_heal_runs(setup) -> None:
    # The heal is validated when a heal is decided, not on every healthy run:
    # the forged form (a class path) never runs, whenever it is found.
    config, state = setup
    load(config)
    cache, header, blobs = read_cache(state)
    plain = marshal.loads(blobs["web"])
    blobs["web"] = marshal.dumps({**plain, "heal": {"module": "os", "class": "system", "sudo": False}})
    write_cache(cache, header, blobs)
    loaded = load(config)
    assert isinstance(loaded, config_cache.CachedConfig)
    check = loaded.check("web")
    assert check.plugin == [CHECK_DUMMY, "0", "all fine"]
    assert not list(state.glob(cache.name + ".corrupt-*"))
    heal = check.heal
    assert isinstance(heal, Systemd) and heal.argv == Systemd("nginx").argv
    assert len(list(state.glob(cache.name + ".corrupt-*"))) == 1
    assert not isinstance(load(config), config_cache.CachedConfig)  # moved aside: parsed, and rewritten
    again = load(config)
    assert isinstance(again, config_cache.CachedConfig) and isinstance(again.check("web").heal, Systemd)


def test_a_forged_cache_imports_no_module(setup) -> None:
    # In a fresh interpreter: the forged blob must not even import the module it names.
    config, state = setup
    load(config)
    cache, header, blobs = read_cache(state)
    blobs["web"] = marshal.dumps(("object", "selfheal.commands.demo", "Demo", []))
    write_cache(cache, header, blobs)
    probe = (
        "import sys\nfrom selfheal.config import cache\n"
        f"c, _ = cache.load({str(config)!r}, None, {{}}, wanted=('web',))\n"
        "print(type(c).__name__, c.check('web').heal.describe(), 'selfheal.commands.demo' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["Config", "systemctl", "restart", "nginx", "False"], result


@pytest.mark.parametrize(
    "place",
    [
        (-(1 << 40), 40, 0),  # a negative file offset: OSError from pread before
        (-10, 40, 0),  # into the header
        (0, 1 << 62, 0),  # a huge length: MemoryError before
        (0, -1, 0),
        (1 << 62, 8, 0),
        (0, 2**70, 0),  # beyond ssize_t: OverflowError
        (0, True, 0),
        [0, 10, 0],
        (0, 10),
        "web",
    ],
)
def test_a_corrupt_index_entry_means_the_yaml(setup, place: object) -> None:
    config, state = setup
    load(config)
    cache, header, blobs = read_cache(state)
    raw = marshal.dumps({**header, "index": {**header["index"], "web": place}})  # type: ignore[dict-item]
    cache.write_bytes(len(raw).to_bytes(8, "big") + raw + b"".join(blobs.values()))
    served_from_yaml(config, state, cache)


@pytest.mark.parametrize("length", [2**64 - 1, 2**63, 1 << 40, 0, 3])
def test_a_corrupt_header_length_means_the_yaml(setup, length: int) -> None:
    config, state = setup
    load(config)
    (cache,) = state.glob("config.*.cache")
    data = cache.read_bytes()
    cache.write_bytes(length.to_bytes(8, "big") + data[8:])
    served_from_yaml(config, state, cache)


@pytest.mark.parametrize("header", [[], {"index": []}, {"format": 4, "index": {}}, {"index": {}}])
def test_a_header_of_the_wrong_shape_means_the_yaml(setup, header: object) -> None:
    config, state = setup
    load(config)
    (cache,) = state.glob("config.*.cache")
    raw = marshal.dumps(header)
    cache.write_bytes(len(raw).to_bytes(8, "big") + raw)
    loaded = load(config)
    assert not isinstance(loaded, config_cache.CachedConfig)
    assert loaded.check("db").heal.argv == ["pg_ctl", "restart"]


def test_forged_settings_mean_the_yaml(setup) -> None:
    config, state = setup
    load(config)
    cache, header, blobs = read_cache(state)
    for forged in (
        ("object", "selfheal.config.schema", "Config", []),
        {"state_dir": str(state), "journal": 5, "outputs": {}},
        {"state_dir": str(state), "journal": None, "outputs": {"exec": ["sh"]}},
    ):
        write_cache(cache, {**header, "config": forged}, blobs)
        loaded = load(config)
        assert not isinstance(loaded, config_cache.CachedConfig), forged
        assert isinstance(load(config), config_cache.CachedConfig)  # rebuilt
        cache, header, blobs = read_cache(state)


# -- the alias bomb (issue 11, defect 6) ----------------------------------


def alias_bomb(levels: int = 9, width: int = 9, anchor: str = "a") -> str:
    """``args:`` whose last list is ``width**levels`` strings once expanded (387 million)."""
    lines = [f"      l0: &{anchor}0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"      l{i}: &{anchor}{i} [" + ", ".join([f"*{anchor}{i - 1}"] * width) + "]")
    return "\n".join(lines)


def test_selfheal_run_on_an_alias_bomb_is_a_quick_one_line_unknown(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"state_dir: {state}\nchecks:\n  web:\n    check: tcp\n    heal: {{systemd: nginx}}\n"
        f"    args:\n      host: 127.0.0.1\n      port: 1\n{alias_bomb()}\n"
    )
    limit = 512 << 20  # before: 1.3 GB and growing for as long as it was let run

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    for _ in range(2):  # the second run finds whatever the first wrote
        result = subprocess.run(
            selfheal_argv("run", "web", "-c", config),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,  # bounded: a hang fails the test
            preexec_fn=bounded,
        )
        assert result.returncode == 3, result
        assert UNKNOWN_LINE.match(result.stdout) and result.stdout.count("\n") == 1, result
        assert f"{config}:6: check 'web': args: more than" in result.stdout
        assert "Traceback" not in result.stderr
    assert not list(state.glob("config.*.cache.corrupt-*"))


def test_validate_names_the_alias_bomb_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"checks:\n  web:\n    check: disk\n    heal: {{systemd: nginx}}\n    args:\n{alias_bomb(6, 5)}\n"
        f"  ok:\n    check: disk\n    heal: {{systemd: nginx}}\n    args:\n{alias_bomb(5, 5, 'b')}\n"
    )
    problems: list[object] = []
    parsed = configuration.parse(config.read_text(), str(config), problems)  # type: ignore[arg-type]
    # 5**6 = 15625 strings is over the bound; 5**5 = 3125 is not.
    assert [str(p) for p in problems] == [
        f"{config}:5: check 'web': args: more than {schema.MAX_ARG_VALUES} values once its aliases are expanded"
    ]
    assert len(parsed.checks["ok"].args["l4"]) == 5  # type: ignore[arg-type]


def test_a_self_containing_alias_is_refused(tmp_path: Path) -> None:
    text = "checks:\n  web:\n    check: disk\n    heal: {systemd: nginx}\n    args:\n      a: &a [x, *a]\n"
    # Refused as the YAML is composed, before any reader of args: a
    # structure that contains itself is endless, expanded or not.
    with pytest.raises(ConfigError, match=r"loop.yaml:6: an alias inside its own anchor"):
        configuration.parse(text, "loop.yaml", [])


def test_the_encoder_has_its_own_bound(setup) -> None:
    # A check built by code (not the reader) with shared values: the
    # encoder refuses it quickly, and the cache leaves it out.
    config, state = setup
    parsed = configuration.load(str(config))
    shared: object = ["x"] * 9
    for _ in range(8):
        shared = [shared] * 9
    parsed.checks["web"].builtin, parsed.checks["web"].plugin = "disk", None
    parsed.checks["web"].args = {"bomb": shared}
    with pytest.raises(config_cache.Uncacheable, match="more than"):
        config_cache.encode(parsed.checks["web"])
    text, st = configuration.read(str(config))
    key = config_cache.cache_key(os.path.abspath(config), st)
    config_cache.write_cache(str(state), "forms.cache", key, text, parsed)
    size = int.from_bytes((state / "forms.cache").read_bytes()[:8], "big")
    header = marshal.loads((state / "forms.cache").read_bytes()[8 : 8 + size])
    assert sorted(header["index"]) == ["db"]


def test_args_that_are_not_plain_leave_that_check_to_the_yaml(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "selfheal.yaml"
    config.write_text(
        f"state_dir: {state}\nchecks:\n"
        "  dated:\n    check: file_age\n    heal: {systemd: a}\n    args: {since: 2024-01-01}\n"
        "  plain:\n    check: file_age\n    heal: {systemd: b}\n    args: {file: /x}\n"
    )
    env = {"HOME": "/nonexistent"}
    config_cache.load(str(config), None, env, wanted=("dated", "plain"))
    cached, _ = config_cache.load(str(config), None, env, wanted=("dated", "plain"))
    assert isinstance(cached, config_cache.CachedConfig)
    assert sorted(cached._decoded) == ["plain"]
    assert str(cached.check("dated").args["since"]) == "2024-01-01"  # parsed from the YAML


def test_a_critical_run_with_a_forged_heal_runs_the_yaml_heal(tmp_path: Path) -> None:
    # Through the real command: the healthy run is served from the cache,
    # and the CRITICAL one runs what the YAML says, not what the cache was made to say.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    marker = tmp_path / "healed"
    heal = write_script(tmp_path / "heal", f'echo yaml >> "{marker}"\n')
    verdict = tmp_path / "verdict"
    verdict.write_text("0")
    plugin = write_script(tmp_path / "plugin", f'read s < "{verdict}"; echo "state $s"; exit "$s"\n')
    config = tmp_path / "selfheal.yaml"
    config.write_text(f"state_dir: {state}\nchecks:\n  web:\n    plugin: {plugin}\n    heal: {heal}\n")
    assert run_selfheal("run", "web", "-c", config).returncode == 0  # parsed, and cached
    cache, header, blobs = read_cache(state)
    plain = marshal.loads(blobs["web"])
    forged = tmp_path / "forged"  # a string where the plain form has a list: refused when first used
    blobs["web"] = marshal.dumps(
        {**plain, "heal": {"command": f"touch {forged}", "shell": False, "sudo": False}}
    )
    write_cache(cache, header, blobs)
    healthy = run_selfheal("run", "web", "-c", config)
    assert healthy.returncode == 0 and not list(state.glob(cache.name + ".corrupt-*")), healthy
    verdict.write_text("2")
    critical = run_selfheal("run", "web", "-c", config)
    assert_no_traceback(critical.stdout, critical.stderr)
    assert critical.returncode == 1 and f"self-healing: started {heal}" in critical.stdout, critical
    wait_for(marker.exists, 10, what="the YAML's heal")
    assert len(list(state.glob(cache.name + ".corrupt-*"))) == 1 and not forged.exists()

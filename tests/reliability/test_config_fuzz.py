"""Config and argument fuzzing with hypothesis (issue 6, item 7).

Over more than 1000 generated configs and command lines, every run is
either valid or gives a one-line UNKNOWN (``selfheal run``, ``wrap``) or
``FILE:LINE:`` validation errors (``selfheal validate``): never a
traceback, never an "internal error", never a hang.

Everything runs in this process through ``selfheal.cli.main`` with
injected streams, on real config files parsed by the real loader, with
``check_dummy`` as the plugin. A run that would heal is a dry run, so the
fuzzing starts no heal.

Hypothesis is derandomized (its examples are the same on every run) and
keeps no database, so CI and a developer see the same cases.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import CHECK_DUMMY, UNKNOWN_LINE
from harness import figure
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfheal.cli import main

#: Per call; the real bound is the plugin's -t and the lock's few seconds.
HANG = 10.0
SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STATUS = re.compile(r"^\S+ (OK|WARNING|CRITICAL|UNKNOWN)( - |$)")
LOCATED = re.compile(r"^.+:(\d+: |\s*warning: |)")

POLICY_KEYS = [
    "cooldown", "backoff", "max_cooldown", "max_attempts", "window", "reset_after", "action_timeout",
    "grace", "splay", "heal_on", "timeout", "timeout_state", "sudo",
]  # fmt: skip
CHECK_KEYS = ["plugin", "heal", "check", "args", "description", *POLICY_KEYS]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["5m", "90", "90s", "6h", "7d", "0", "-1s", "1e9d", "15 m", "m", "", " ", "critical", "unknown", "ok", "critical,unknown", "restart", "nginx", "true"]),
    st.text(max_size=30),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
good_plugins = st.sampled_from([f"{CHECK_DUMMY} {s} text" for s in ("0", "1", "2", "3", "7", "x")])
plugins = st.one_of(
    good_plugins,
    good_plugins,
    st.sampled_from([f"check_dummy {s}" for s in ("0", "2")]),
    st.lists(st.sampled_from([CHECK_DUMMY, "0", "2", "-t", "x y", ""]), max_size=4),
    values,
)
heals = st.one_of(
    st.sampled_from(["true", "systemctl restart nginx", "a; b"]),
    st.sampled_from(["true", "systemctl restart nginx", "a; b", "'unbalanced", ""]),
    st.fixed_dictionaries(
        {},
        optional={
            "systemd": st.one_of(st.sampled_from(["nginx", "-x", "a b"]), values),
            "init": st.one_of(st.sampled_from(["nginx", "../x", "/abs"]), values),
            "command": st.one_of(st.sampled_from(["true", "echo $(x)"]), values),
            "verb": st.one_of(st.sampled_from(["restart", "-f", ""]), values),
            "shell": values,
        },
    ),
    values,
)
durations = ["5m", "90", 90, "90s", "6h", "1d"]
#: Plausible values per key, so that fuzzing often gets past the first error.
GOOD = {
    **{key: durations for key in ("cooldown", "max_cooldown", "window", "reset_after", "action_timeout", "grace", "splay", "timeout")},
    "backoff": [1, 2, 1.5],
    "max_attempts": [1, 3, 10],
    "heal_on": ["critical", ["critical", "unknown"]],
    "timeout_state": ["critical", "unknown"],
    "sudo": [True, False],
}  # fmt: skip


def plausible(key: str) -> st.SearchStrategy[object]:
    good = st.sampled_from(GOOD[key])
    return st.one_of(good, good, good, values)


#: Check bodies: mostly plausible (plugin and heal present, values that
#: often fit), so that fuzzing reaches past the first error; sometimes wild.
check_bodies = st.one_of(
    st.fixed_dictionaries(
        {"plugin": plugins, "heal": heals},
        optional={key: plausible(key) for key in POLICY_KEYS},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "plugin": plugins,
            "heal": heals,
            **{key: values for key in POLICY_KEYS},
            "check": values,
            "args": values,
            "description": values,
            "bogus": values,
        },
    ),
)
names = st.one_of(
    st.just("web"),
    st.sampled_from(["db", "a/b", "..", "x" * 200, "-rf", "ok.name_1"]),
    st.text(max_size=12),
)
plausible_configs = st.fixed_dictionaries(
    {"checks": st.dictionaries(names, check_bodies, min_size=1, max_size=3)},
    optional={"defaults": st.fixed_dictionaries({}, optional={key: plausible(key) for key in POLICY_KEYS})},
)
configs = st.one_of(
    plausible_configs,
    plausible_configs,
    st.fixed_dictionaries(
        {},
        optional={
            "checks": st.one_of(st.dictionaries(names, check_bodies, max_size=3), values),
            "defaults": st.one_of(
                st.dictionaries(st.sampled_from([*POLICY_KEYS, "bogus"]), values, max_size=4), values
            ),
            "state_dir": values,
            "journal": values,
        },
    ),
)


VALID = f"""\
defaults:
  cooldown: 5m
checks:
  web:
    plugin: {CHECK_DUMMY} 2 down
    heal: {{systemd: nginx}}
    max_attempts: 3
"""


@st.composite
def config_texts(draw: st.DrawFn) -> bytes:
    """A config file's bytes: generated YAML, or a valid file damaged."""
    if draw(st.booleans()):
        document = draw(configs)
        try:
            return yaml.safe_dump(document, allow_unicode=draw(st.booleans())).encode(
                "utf-8", "surrogatepass"
            )
        except (yaml.YAMLError, UnicodeEncodeError):
            return json.dumps(document, default=str).encode("utf-8", "surrogatepass")
    data = bytearray(VALID.encode())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["cut", "insert", "delete"]))
        if kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(
                st.one_of(st.binary(max_size=6), st.sampled_from([b":", b"\t", b"- ", b"{", b"'", b"&a", b"*a", b"!!python/object:os.system", b"\n  ", b"\x00", b"\xff"]))
            )  # fmt: skip
        else:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


options = st.lists(
    st.one_of(
        st.sampled_from(["-v", "-vv", "-h", "-V", "--dry-run", "--downtime", "-t", "--state-dir", "-c", "--json", "--", "-x", "--bogus"]),
        st.sampled_from(["0", "1", "2s", "-1", "abc", "", "99999999999", "nan"]),
        st.text(max_size=8),
    ),
    max_size=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


COUNT = {"run": 0, "validate": 0, "wrap": 0, "valid": 0}


def call(args: list[str], where: Path) -> tuple[int, str]:
    out = io.StringIO()
    env = {"PATH": os.environ.get("PATH", ""), "SELFHEAL_STATE_DIR": str(where / "state"), "HOME": str(where)}
    started = time.monotonic()
    code = main(args, env=env, stdout=out)
    took = time.monotonic() - started
    text = out.getvalue()
    assert took < HANG, f"{args!r} took {took:.1f}s"
    assert "Traceback" not in text, text
    assert "internal error" not in text, (args, text)
    assert code in (0, 1, 2, 3), (args, code, text)
    return code, text


def assert_plugin_answer(code: int, text: str, args: list[str]) -> None:
    """A Nagios answer: one UNKNOWN line, or a status line (and long output)."""
    if "-h" in args or "-V" in args or "--help" in args:
        return  # help and version texts are for people
    assert text.endswith("\n"), repr(text)
    first = text.splitlines()[0]
    if code == 3 and "selfheal_attempts=" not in first:
        # selfheal's own UNKNOWN (bad input): exactly one line.
        assert UNKNOWN_LINE.match(first), (args, text)
        assert text.count("\n") == 1, text
    else:
        assert STATUS.match(first), (args, text)


@settings(max_examples=600, **SETTINGS)  # type: ignore[arg-type]
@given(text=config_texts(), name=st.one_of(st.just("web"), names), extra=st.one_of(st.just([]), options))
def test_fuzzed_configs_run_or_say_unknown(where: Path, text: bytes, name: str, extra: list[str]) -> None:
    config = where / "selfheal.yaml"
    config.write_bytes(text)
    if "\0" in name:
        name = name.replace("\0", "")
    # A real heal is never started here: CRITICAL and UNKNOWN runs are dry.
    args = ["run", "-c", str(config), "--dry-run", *extra, "--", name]
    code, out = call(args, where)
    assert_plugin_answer(code, out, args)
    COUNT["run"] += 1
    COUNT["valid"] += "selfheal_attempts=" in out


@settings(max_examples=300, **SETTINGS)  # type: ignore[arg-type]
@given(text=config_texts())
def test_fuzzed_configs_validate_with_located_errors(where: Path, text: bytes) -> None:
    config = where / "validate.yaml"
    config.write_bytes(text)
    code, out = call(["validate", "-c", str(config)], where)
    assert code in (0, 1), out
    lines = out.splitlines()
    assert lines, "validate printed nothing"
    if code == 0:
        assert lines[-1].startswith(f"{config}: OK"), out
        COUNT["valid"] += 1
    for line in lines if code else lines[:-1]:
        assert line.startswith(f"{config}:"), out  # every problem names the file (and line)
    COUNT["validate"] += 1


@settings(max_examples=300, **SETTINGS)  # type: ignore[arg-type]
@given(
    heal=st.one_of(st.sampled_from(["true", "", " ", "'", "a\0b", "x; y"]), st.text(max_size=20)),
    policy=st.lists(
        st.tuples(
            st.sampled_from(["--cooldown", "--backoff", "--max-cooldown", "--max-attempts", "--window", "--reset-after", "--action-timeout", "--grace", "--splay", "--heal-on", "--timeout-state", "--name", "-t", "--downtime"]),
            st.one_of(st.sampled_from(["0", "1", "-1", "5m", "1e999", "nan", "inf", "critical,unknown", "ok", "", "2.5"]), st.text(max_size=8)),
        ),
        max_size=4,
    ),
    state=st.sampled_from(["0", "1", "2", "3", "9"]),
    extra=st.one_of(st.just([]), options),
)  # fmt: skip
def test_fuzzed_wrap_arguments(
    where: Path, heal: str, policy: list[tuple[str, str]], state: str, extra: list[str]
) -> None:
    args = ["wrap", "--heal", heal, "--dry-run", *[word for pair in policy for word in pair], *extra]
    args += ["--", CHECK_DUMMY, state, "fuzzed"]
    code, out = call(args, where)
    assert_plugin_answer(code, out, args)
    COUNT["wrap"] += 1
    COUNT["valid"] += "selfheal_attempts=" in out


def test_fuzzing_ran_enough_cases() -> None:
    tried = COUNT["run"] + COUNT["validate"] + COUNT["wrap"]
    if tried == 0:
        pytest.skip("run with the fuzz tests above")
    assert tried >= 1000, COUNT
    figure("fuzzed configs and arguments (run, validate, wrap)", tried, **COUNT)


#: YAML a generator would not write: deep nesting (flow, block, through
#: aliases), odd tags and types, anchors inside themselves.
odd_values = st.one_of(
    st.builds(lambda n: "[" * n + "]" * n, st.integers(1, 300)),
    st.builds(lambda n: "{a: " * n + "1" + "}" * n, st.integers(1, 300)),
    st.builds(lambda n: "\n      " + "- " * n + "x", st.integers(1, 300)),
    st.builds(lambda n: "&a [" + "[" * n + "]" * n + "]\n    x: [[[[*a]]]]", st.integers(1, 40)),
    st.sampled_from(["&a [*a]", "&a {k: *a}", "!!binary aGVsbG8=", "!!set {a, b}", "2001-12-14t21:59:43.10-05:00", "!!omap [a: 1]", "!!python/name:os.system", "0x1F", "0o17", ".nan", "-.inf", "1e400", "9" * 400, "!!float 1e999", "~", "!!str", "? [a]\n    : b", "*undefined"]),
)  # fmt: skip
#: File kinds a config path may be: the run must refuse each at once.
KINDS = ["file", "fifo", "directory", "device", "dangling symlink", "symlink loop", "empty", "sparse 64 MiB"]


def make_config(path: Path, kind: str, text: str) -> str:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif path.is_symlink() or path.exists():
        path.unlink()
    if kind == "file":
        path.write_text(text)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        return "/dev/zero"
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "symlink loop":
        path.symlink_to(path)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        with path.open("wb") as stream:
            stream.truncate(64 * 1024 * 1024)
    if path.exists() and not path.is_symlink():
        path.chmod(0o755 if kind == "directory" else 0o644)
    return str(path)


@settings(max_examples=60, **SETTINGS)  # type: ignore[arg-type]
@given(
    value=odd_values,
    key=st.sampled_from(["description", "plugin", "heal", "cooldown", "args", "timeout_state"]),
    kind=st.sampled_from(["file", "file", "file", *KINDS]),
)
def test_fuzzed_nesting_types_and_file_kinds(where: Path, value: str, key: str, kind: str) -> None:
    body = f"checks:\n  web:\n    check: tcp\n    heal: 'true'\n    {key}: {value}\n"
    config = make_config(where / "odd.yaml", kind, body.replace("check: tcp", f"plugin: {CHECK_DUMMY} 0 ok"))
    code, out = call(["run", "-c", config, "--dry-run", "web"], where)
    assert_plugin_answer(code, out, ["run"])
    code, out = call(["validate", "-c", config], where)
    assert code in (0, 1) and all(line.startswith(f"{config}:") for line in out.splitlines()[:-1]), out
    ODD["cases"] += 2


ODD = {"cases": 0}


def test_odd_config_fuzzing_ran() -> None:
    if ODD["cases"] == 0:
        pytest.skip("run with the fuzz test above")
    figure("fuzzed configs: nesting, odd YAML types, file kinds (run, validate)", ODD["cases"])

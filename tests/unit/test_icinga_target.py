"""``IcingaTarget``: the config's ``report_to: {icinga: {...}}`` read, checked and written back.

Pure: nothing here opens a file or a socket. The fuzzers hold the
contract of ``from_json``: any plain data gives a target or a ValueError
naming the key, never another exception, and what ``to_json`` writes reads
back to an equal target.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal.edges.icinga_api import DEFAULT_PORT, KEYS, IcingaTarget
from tests.fuzz_support import fuzz_settings

ROOT = Path(__file__).resolve().parents[2]
VALID = {
    "url": "https://icinga-master.example.com:5665",
    "host": "web1.example.com",
    "service": "nginx",
    "user": "selfheal",
    "password_file": "/etc/selfheal/icinga-api.password",
}


def test_a_minimal_mapping_gets_the_defaults() -> None:
    target = IcingaTarget.from_json({**VALID, "url": "https://icinga"})
    assert (target.hostname, target.port) == ("icinga", DEFAULT_PORT)
    assert (target.ca_file, target.timeout) == (None, 5.0)
    assert target.object_name == "web1.example.com!nginx"
    assert "ca_file" not in target.to_json()


@pytest.mark.parametrize(
    ("url", "hostname", "port"),
    [
        ("https://icinga:5665", "icinga", 5665),
        ("https://Icinga.Example.COM/", "icinga.example.com", 5665),
        ("https://192.0.2.7:8443", "192.0.2.7", 8443),
        ("https://[::1]:5665", "::1", 5665),
        ("https://[2001:db8::7]", "2001:db8::7", 5665),
    ],
)
def test_the_url_gives_the_host_name_and_port(url: str, hostname: str, port: int) -> None:
    target = IcingaTarget.from_json({**VALID, "url": url})
    assert (target.hostname, target.port, target.url) == (hostname, port, url)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "http://icinga:5665"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "icinga:5665"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://icinga:5665/v1"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://root@icinga"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://icinga:0"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://icinga:65536"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://icinga:"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://icinga?x=1"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://300.1.2.3"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://[::1"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": "https://[icinga]:5665"}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"url": 5665}, "report_to.icinga.url: must be https://HOST[:PORT]"),
        ({"host": ""}, "report_to.icinga.host: must be a non-empty string"),
        ({"host": "web1!nginx"}, "report_to.icinga.host: 'web1!nginx' is not a name"),
        ({"service": "ngi\nnx"}, "report_to.icinga.service: 'ngi\\nnx' is not a name"),
        ({"service": ["nginx"]}, "report_to.icinga.service: must be a non-empty string"),
        ({"user": "self:heal"}, "report_to.icinga.user: 'self:heal' is not a name"),
        ({"password_file": "icinga.password"}, "report_to.icinga.password_file: must be an absolute path"),
        ({"ca_file": ""}, "report_to.icinga.ca_file: must be an absolute path"),
        ({"timeout": 0}, "report_to.icinga.timeout: must be more than 0 and at most 60 seconds"),
        ({"timeout": 61}, "report_to.icinga.timeout: must be more than 0 and at most 60 seconds"),
        ({"timeout": math.nan}, "report_to.icinga.timeout: must be more than 0 and at most 60 seconds"),
        ({"timeout": True}, "report_to.icinga.timeout: must be a number of seconds"),
        ({"timeout": "soon"}, "report_to.icinga.timeout: not a duration"),  # "5s" is a duration: taken
        ({"timeout": "2m"}, "report_to.icinga.timeout: must be more than 0 and at most 60 seconds"),
        ({"insecure": True}, "report_to.icinga.insecure: unknown key"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        IcingaTarget.from_json({**VALID, **changes})
    assert str(refused.value).startswith(message), refused.value


@pytest.mark.parametrize("key", ["url", "host", "service", "user", "password_file"])
def test_a_missing_key_is_refused_by_name(key: str) -> None:
    with pytest.raises(ValueError, match=rf"^report_to\.icinga\.{key}: missing"):
        IcingaTarget.from_json({k: v for k, v in VALID.items() if k != key})


@pytest.mark.parametrize("data", [None, "https://icinga", ["url"], 5])
def test_not_a_mapping_is_refused(data: object) -> None:
    with pytest.raises(ValueError, match=r"^report_to\.icinga: must be a mapping"):
        IcingaTarget.from_json(data)


# -- fuzzing ----------------------------------------------------------------

PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
#: Values near the valid ones, so the fuzzer gets past the first key's check.
NEAR = {
    "url": st.one_of(
        st.text(max_size=40).map(lambda tail: "https://" + tail),
        st.text(alphabet="abc019.-[]:/", max_size=20).map(lambda tail: "https://" + tail),
        PLAIN,
    ),
    "host": st.text(max_size=20) | PLAIN,
    "service": st.text(max_size=20) | PLAIN,
    "user": st.text(max_size=20) | PLAIN,
    "password_file": st.text(max_size=20).map(lambda p: "/" + p) | PLAIN,
    "ca_file": st.none() | st.text(max_size=20).map(lambda p: "/" + p) | PLAIN,
    "timeout": st.floats() | st.integers(-5, 100) | PLAIN,
}
MAPPINGS = st.fixed_dictionaries({}, optional={key: NEAR[key] for key in KEYS}) | st.dictionaries(
    st.sampled_from([*KEYS, "insecure"]) | st.text(max_size=8), PLAIN, max_size=8
)
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
LABEL = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LETTERS),
    st.text(alphabet=LETTERS + "0123456789", max_size=8),
)
#: Valid values of every key, to fuzz targets that are made, not only refusals.
GOOD = {
    "url": st.builds(
        lambda host, port, slash: f"https://{host}{port}{slash}",
        st.lists(LABEL, min_size=1, max_size=4).map(".".join)
        | st.ip_addresses(v=4).map(str)
        | st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
        st.none().map(lambda _: "") | st.integers(1, 65535).map(lambda p: f":{p}"),
        st.sampled_from(["", "/"]),
    ),
    "host": st.text(min_size=1, max_size=20).filter(lambda t: t.isprintable() and "!" not in t),
    "service": st.text(min_size=1, max_size=20).filter(lambda t: t.isprintable() and "!" not in t),
    "user": st.text(min_size=1, max_size=20).filter(lambda t: t.isprintable() and ":" not in t),
    "password_file": st.text(max_size=20).filter(lambda t: "\0" not in t).map(lambda p: "/" + p),
    "ca_file": st.none() | st.text(max_size=20).filter(lambda t: "\0" not in t).map(lambda p: "/" + p),
    "timeout": st.floats(0.001, 60) | st.integers(1, 60),
}
#: A valid mapping, then at most one key changed, dropped or added.
MUTANTS = st.builds(
    lambda good, key, value, drop: (
        {k: v for k, v in good.items() if k != key} if drop else {**good, **({key: value} if key else {})}
    ),
    st.fixed_dictionaries(
        {key: GOOD[key] for key in KEYS[:5]}, optional={key: GOOD[key] for key in KEYS[5:]}
    ),
    st.none() | st.sampled_from([*KEYS, "insecure"]),
    PLAIN | st.text(max_size=30),
    st.booleans(),
)


def check(data: object) -> None:
    try:
        target = IcingaTarget.from_json(data)
    except ValueError as exc:
        assert str(exc).startswith("report_to.icinga"), exc
        assert "\n" not in str(exc), exc
        return
    plain = target.to_json()
    assert IcingaTarget.from_json(plain) == target
    assert plain == IcingaTarget.from_json(plain).to_json()
    assert 0 < target.port < 65536 and target.hostname


@given(MAPPINGS)
@fuzz_settings(200)
def test_any_mapping_gives_a_target_or_a_value_error(data: dict[str, object]) -> None:
    check(data)


@given(MUTANTS)
@fuzz_settings(200)
def test_a_valid_mapping_changed_in_one_key_gives_a_target_or_a_value_error(data: dict[str, object]) -> None:
    check(data)


@given(st.fixed_dictionaries({key: GOOD[key] for key in KEYS}))
@fuzz_settings(100)
def test_a_valid_mapping_round_trips(data: dict[str, object]) -> None:
    target = IcingaTarget.from_json(data)
    assert IcingaTarget.from_json(target.to_json()) == target
    assert target.to_json() == {k: v for k, v in data.items() if v is not None}


@given(PLAIN)
@fuzz_settings(200)
def test_any_plain_data_gives_a_target_or_a_value_error(data: object) -> None:
    check(data)


@given(st.fixed_dictionaries({key: NEAR[key] for key in ("url",)}))
@fuzz_settings(300)
def test_any_url_gives_a_target_or_a_value_error(url: dict[str, object]) -> None:
    check({**VALID, **url})


def test_the_module_imports_nothing_heavy() -> None:
    """A config naming a target may be loaded on a healthy check: no ssl, socket, json, re or dataclasses."""
    probe = (
        "import sys; before = set(sys.modules); import selfheal.edges.icinga_api; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {probe}"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.defpath},
    )
    loaded = set(done.stdout.split())
    heavy = {"ssl", "_ssl", "socket", "json", "re", "dataclasses", "threading", "typing", "base64", "enum"}
    assert not loaded & heavy, sorted(loaded & heavy)
    assert "selfheal.edges.https_post" not in loaded

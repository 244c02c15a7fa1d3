"""``selfheal.core.jsonio`` reads and writes exactly what ``json`` does."""

from __future__ import annotations

import json
import random

import pytest

from selfheal.core import jsonio
from selfheal.core.record import Attempt, Record


def random_value(rng: random.Random, depth: int = 0) -> object:
    kinds = ["int", "float", "str", "bool", "none"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-(10**12), 10**12)
    if kind == "float":
        return rng.uniform(-1e9, 1e9)
    if kind == "str":
        return "".join(rng.choice('ab "\\\n\t/é€😀\x00\x1f') for _ in range(rng.randint(0, 8)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        random_value(rng, 3) if False else f"k{i}{rng.random()}": random_value(rng, depth + 1)
        for i in range(4)
    }


def test_round_trips_like_json():
    rng = random.Random(5)
    for _ in range(2000):
        value = random_value(rng)
        for sort_keys in (False, True):
            text = jsonio.dumps(value, sort_keys=sort_keys)
            assert text == json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)
            assert jsonio.loads(text) == json.loads(text)
        pretty = json.dumps(value, indent=2)  # whitespace anywhere json allows it
        assert jsonio.loads("\n " + pretty + " \n") == json.loads(pretty)


def test_a_record_survives_the_round_trip():
    record = Record(check="web", attempts=[Attempt(id="a", argv=["systemctl", "restart", "web"], pid=7)])
    assert Record.from_json(jsonio.loads(jsonio.dumps(record.to_json(), sort_keys=True))) == record


@pytest.mark.parametrize("text", ["", "   ", "{", '{"a":1} x', "[1,]", "nul", '{"a":1}{}', "\x00"])
def test_anything_but_one_json_value_is_a_value_error(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsonio.loads(text)


def test_unencodable_values_raise_like_json_unless_a_default_is_given():
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonio.dumps({"x": object()})
    assert jsonio.dumps({"x": {1, 2}}, default=sorted) == '{"x":[1,2]}'
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        jsonio.dumps(loop)

"""``selfheal.core.shellwords`` splits and quotes exactly as ``shlex`` does.

The heal command is parsed by it, so it is compared with shlex on every
tricky case we know and on thousands of generated strings.
"""

import random
import shlex

import pytest

from selfheal.core import shellwords

CASES = [
    "",
    "   ",
    "systemctl restart nginx",
    "  a\tb\nc\r d  ",
    "systemctl restart nginx; rm -rf /",
    "a && b || c | d > e < f $(g) `h` $i",
    "'single quoted' \"double quoted\"",
    "''",
    '""',
    "a'' b\"\" ''c",
    "it\\'s\\ fine",
    '"a \\" b" "c \\\\ d" "e \\$ f" "g \\n h"',
    "back\\slash \\\\ \\'",
    "'no \\ escape in single'",
    "a'b\"c'\"d'e\"f",
    "ünïcødé 'ş p'",
    "# not a comment",
    "a#b",
]
BROKEN = ["'open", '"open', "trailing\\", '"esc at end\\', "a 'b c"]


@pytest.mark.parametrize("text", CASES)
def test_split_matches_shlex(text):
    assert shellwords.split(text) == shlex.split(text)


@pytest.mark.parametrize("text", BROKEN)
def test_split_refuses_what_shlex_refuses(text):
    with pytest.raises(ValueError) as ours:
        shellwords.split(text)
    with pytest.raises(ValueError) as theirs:
        shlex.split(text)
    assert str(ours.value) == str(theirs.value)


def test_split_matches_shlex_on_generated_strings():
    rng = random.Random(7)
    alphabet = "ab '\"\\\t\n$;é#"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        try:
            expected = shlex.split(text)
        except ValueError:
            with pytest.raises(ValueError):
                shellwords.split(text)
            continue
        assert shellwords.split(text) == expected, repr(text)


def test_quote_and_join_match_shlex():
    rng = random.Random(11)
    alphabet = "aZ09_@%+=:,./- '\"\\$;!*?é\n"
    words = ["", "plain", "with space", "it's", "-rf", "a=b", "ünï"]
    words += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(3000)]
    for word in words:
        assert shellwords.quote(word) == shlex.quote(word), repr(word)
        assert shlex.split(shellwords.quote(word)) == [word]
    assert shellwords.join(words[:50]) == shlex.join(words[:50])

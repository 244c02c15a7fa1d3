"""Shell-like words, split and quoted exactly as ``shlex`` does it.

``split`` is ``shlex.split(text)`` (POSIX mode, no comments) and ``join``
is ``shlex.join(words)``. They exist because ``shlex`` imports ``re``
(with ``enum`` and ``functools``): several milliseconds on every CRITICAL
run, which parses and describes its heal command while Nagios waits.
``tests/test_shellwords.py`` compares both with ``shlex`` on thousands of
generated strings. A heal string is only ever split into an argv, never
given to a shell, unless the config says ``shell: true``.
"""

from __future__ import annotations

_WHITESPACE = " \t\r\n"
_QUOTES = "'\""
_ESCAPE = "\\"
#: Characters shlex.quote leaves unquoted: [\w@%+=:,./-] in ASCII.
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def split(text: str) -> list[str]:
    """``shlex.split(text)``; ValueError for an open quote or a trailing backslash."""
    words: list[str] = []
    word: list[str] = []
    in_word = False  # a quoted empty string ('') is still a word
    quote = ""  # the open quote character, if any
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        index += 1
        if quote:
            if char == quote:
                quote = ""
            elif char == _ESCAPE and quote == '"':
                # Inside double quotes a backslash escapes only " and itself.
                if index == end:
                    raise ValueError("No escaped character")
                following = text[index]
                index += 1
                if following not in (quote, _ESCAPE):
                    word.append(char)
                word.append(following)
            else:
                word.append(char)
        elif char in _WHITESPACE:
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif char == _ESCAPE:
            if index == end:
                raise ValueError("No escaped character")
            word.append(text[index])
            index += 1
            in_word = True
        elif char in _QUOTES:
            quote, in_word = char, True
        else:
            word.append(char)
            in_word = True
    if quote:
        raise ValueError("No closing quotation")
    if in_word:
        words.append("".join(word))
    return words


def quote(word: str) -> str:
    """``shlex.quote(word)``: the word as a shell would read it back."""
    if not word:
        return "''"
    if _SAFE.issuperset(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def join(words: list[str] | tuple[str, ...]) -> str:
    """``shlex.join(words)``."""
    return " ".join(quote(word) for word in words)

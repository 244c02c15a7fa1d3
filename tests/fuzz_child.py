"""A selfheal command line that runs request after request, for the fuzzers.

Started as ``python -I -S tests/fuzz_child.py REPO SITE_PACKAGES``: no site,
no environment, and no ``json`` imported, as a plugin run is. Before each
request every ``json`` module is dropped from ``sys.modules`` again, so each
case meets ``_json`` in the state that made a truncated record a SystemError
(it finds ``json.decoder`` only when it is imported). Starting a process per
case would cost the fuzzers their time budget.

Protocol (no JSON on purpose): a request is one line of ``\\x1f``-separated
fields, ``PATH`` then the arguments; the answer is ``CODE LENGTH\\n`` and
LENGTH bytes of stdout, ``\\x1e``, stderr. CODE is -1 when an exception
escaped ``selfheal.cli.main`` (its traceback is in stderr).
"""

from __future__ import annotations

import sys

sys.path[:0] = sys.argv[1:]

import io  # noqa: E402
import traceback  # noqa: E402

from selfheal.cli import main  # noqa: E402

assert "json" not in sys.modules, "the fuzz child imported json before its first case"


def serve() -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = requests.readline()
        if not line:
            return
        path, *argv = line.rstrip(b"\n").decode().split("\x1f")
        for name in [m for m in sys.modules if m == "json" or m.startswith("json.")]:
            del sys.modules[name]
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stderr
        sys.stderr = err
        try:
            code = main(argv, env={"PATH": path}, stdout=out)
        except BaseException:  # the fuzzers' finding: reported to them, not fatal here
            code = -1
            err.write(traceback.format_exc())
        finally:
            sys.stderr = saved
        data = (out.getvalue() + "\x1e" + err.getvalue()).encode("utf-8", "backslashreplace")
        answers.write(f"{code} {len(data)}\n".encode() + data)
        answers.flush()


serve()

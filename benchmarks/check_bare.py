"""P3 baseline: a minimal healthy check on bare ``nagiosplugin``.

``check_api.py`` is the same check with ``selfheal.Check``; the two differ
only in the constructor call, as DESIGN.md promises a user's plugin would.
"""

import nagiosplugin


class Up(nagiosplugin.Resource):
    def probe(self):
        return [nagiosplugin.Metric("up", 1, context="up")]


@nagiosplugin.guarded(verbose=0)
def main():
    check = nagiosplugin.Check(Up(), nagiosplugin.ScalarContext("up", "1:", "1:"), name="p3")
    check.main(timeout=10)


if __name__ == "__main__":
    main()

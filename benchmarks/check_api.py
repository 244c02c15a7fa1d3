"""P3 candidate: ``check_bare.py`` with ``selfheal.Check`` instead.

The state dir comes from ``SELFHEAL_STATE_DIR``, set by ``run.py``.
"""

import nagiosplugin

import selfheal


class Up(nagiosplugin.Resource):
    def probe(self):
        return [nagiosplugin.Metric("up", 1, context="up")]


@nagiosplugin.guarded(verbose=0)
def main():
    check = selfheal.Check(
        Up(),
        nagiosplugin.ScalarContext("up", "1:", "1:"),
        name="p3",
        heal=selfheal.Command(["true"]),
    )
    check.main(timeout=10)


if __name__ == "__main__":
    main()

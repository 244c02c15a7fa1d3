"""Outcomes that are not numbers, and the status line every built-in check prints.

A refused connection, an unexpected HTTP status or a failed unit has no
threshold to compare against: the resource already knows the state. It
yields a :class:`Metric` whose value is a ``(state, text)`` pair for the
:class:`Verdict` context, which passes the state through and adds no
perfdata.
"""

from __future__ import annotations

import nagiosplugin

#: The context name resources use for their verdicts.
VERDICT = "verdict"

STATES = {
    "ok": nagiosplugin.Ok,
    "warning": nagiosplugin.Warn,
    "critical": nagiosplugin.Critical,
    "unknown": nagiosplugin.Unknown,
}


def verdict(name: str, state: nagiosplugin.state.ServiceState, text: str) -> nagiosplugin.Metric:
    """A metric that carries its own state, for the :class:`Verdict` context."""
    return nagiosplugin.Metric(name, (state, text), context=VERDICT)


class Verdict(nagiosplugin.Context):
    """Passes a resource's own ``(state, text)`` through; no perfdata."""

    def __init__(self, name: str = VERDICT) -> None:
        super().__init__(name)

    def evaluate(self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource) -> nagiosplugin.Result:
        return nagiosplugin.Result(metric.value[0], None, metric)

    def describe(self, metric: nagiosplugin.Metric) -> str:
        return str(metric.value[1])


class Summary(nagiosplugin.Summary):
    """Everything measured when all is well; only what is wrong otherwise.

    nagiosplugin's default shows one result. A Nagios status line should
    lead straight to the problem, so a problem line lists every result in
    a non-OK state, worst first, and leaves the healthy ones out.
    """

    def ok(self, results: nagiosplugin.Results) -> str:
        return ", ".join(text for text in (str(result) for result in results.results) if text)

    def problem(self, results: nagiosplugin.Results) -> str:
        return ", ".join(str(result) for result in results if result.state != nagiosplugin.Ok)

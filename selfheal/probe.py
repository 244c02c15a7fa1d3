"""Run the wrapped plugin and read its state: the check in check → decide → heal.

A plugin that cannot be run, times out, is killed or exits outside 0-3 is
UNKNOWN (or the configured timeout state), with a line that says why;
what it printed is kept for the output.
"""

from __future__ import annotations

import os

from selfheal.core import output, states

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.core.output import PluginOutput
    from selfheal.edges.spawner import PluginRun, Spawner


def probe(
    spawner: Spawner, plugin: list[str], timeout: float, timeout_state: int
) -> tuple[int, PluginOutput]:
    """Run ``plugin`` through the spawner, bounded by ``timeout``; its state and output."""
    return interpret(spawner.run_plugin(plugin, timeout), plugin, timeout, timeout_state)


def interpret(
    run: PluginRun, plugin: list[str], timeout: float, timeout_state: int
) -> tuple[int, PluginOutput]:
    """A plugin's state and parsed output, UNKNOWN when it did not behave."""
    parsed = output.parse(run.stdout.decode("utf-8", "replace"))
    program = os.path.basename(plugin[0])
    if run.error:
        return states.UNKNOWN, output.PluginOutput(f"plugin {run.error}")
    if run.timed_out:
        text = f"plugin {program} timed out after {timeout:g}s"
        return timeout_state, output.PluginOutput(text, parsed.long, parsed.perfdata)
    if run.signal is not None:
        return states.UNKNOWN, output.PluginOutput(f"plugin {program} was killed by signal {run.signal}")
    code = run.exit_status
    if not parsed.text:
        stderr = run.stderr.decode("utf-8", "replace").strip().splitlines()
        parsed.text = f"(no output from {program})" + (f" stderr: {stderr[0]}" if stderr else "")
    if code not in (0, 1, 2, 3):
        parsed.text = f"plugin {program} exited {code}: {parsed.text}"
        return states.UNKNOWN, parsed
    return code, parsed

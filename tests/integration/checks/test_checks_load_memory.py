"""The ``load`` and ``memory`` checks on this machine's live values.

Both values move while the test runs, so every threshold sits far from
the value read just before (a wide margin on either side), never at it.
The exact edges of the range logic are tested with static values in the
file_age and disk tests; here the point is reading the right number.
"""

from __future__ import annotations

import os

import pytest
from checks_support import c_plugin, check, script

from selfheal.checks.memory import meminfo


def loads(per_cpu: bool = False) -> tuple[float, float, float]:
    cpus = (os.cpu_count() or 1) if per_cpu else 1
    return tuple(v / cpus for v in os.getloadavg())  # type: ignore[return-value]


def test_load_reports_three_averages_with_perfdata() -> None:
    run = check("load", "-w", "1000", "-c", "2000")
    assert run.code == 0, run.out
    assert set(run.perfdata) == {"load1", "load5", "load15"}
    for label, value in zip(("load1", "load5", "load15"), loads()):
        measured = float(run.perfdata[label].split(";")[0])
        assert abs(measured - value) < max(2.0, value), (label, measured, value)
        assert run.perfdata[label].endswith(";1000;2000;0")
    assert "1-minute load" in run.line


def test_load_thresholds_per_average() -> None:
    high = max(loads()) * 10 + 100
    # Only the 15-minute critical is impossible to meet: CRITICAL from it alone.
    run = check("load", "-w", f"{high},{high},{high}", "-c", f"{high},{high},@0:{high}")
    assert run.code == 2, run.out
    assert run.line.startswith("LOAD CRITICAL - 15-minute load ")
    assert "1-minute" not in run.line.split("|")[0]


def test_load_percpu_divides_by_the_cpu_count() -> None:
    cpus = os.cpu_count() or 1
    run = check("load", "-r", "-w", "100000", "-c", "200000")
    whole = check("load", "-w", "100000", "-c", "200000")
    per, total = (float(r.perfdata["load15"].split(";")[0]) for r in (run, whole))
    assert abs(per * cpus - total) < 0.5 + total * 0.2, (per, total, cpus)
    assert "per CPU" in run.line


def test_load_wrong_number_of_ranges_is_unknown() -> None:
    run = check("load", "-w", "1,2")
    assert run.code == 3
    assert run.out == "LOAD UNKNOWN - bad --warning: give one range or 3 separated by commas, not '1,2'\n"


@pytest.mark.parametrize(
    ("warning", "critical", "code"),
    [
        ("{hi},{hi},{hi}", "{hi2},{hi2},{hi2}", 0),
        ("0,0,0", "{hi2},{hi2},{hi2}", 1),
        ("0,0,0", "0,0,0", 2),
    ],
)
@pytest.mark.parametrize("percpu", [False, True])
def test_same_state_as_check_load(warning: str, critical: str, code: int, percpu: bool) -> None:
    # "0" alerts on any load above 0.00. An idle machine's load can be 0.00:
    # then both plugins say OK, and they still must agree.
    hi = max(loads()) * 10 + 100
    w, c = warning.format(hi=hi, hi2=hi * 2), critical.format(hi=hi, hi2=hi * 2)
    flag = ["-r"] if percpu else []
    mine = script("load", *flag, "-w", w, "-c", c)
    theirs = c_plugin("check_load", *flag, "-w", w, "-c", c)
    assert mine.code == theirs.code, (mine.out, theirs.out)
    # Agreeing on UNKNOWN is no pass: the state is the row's, or OK when the
    # load is so near 0.00 that "above 0" may not hold.
    assert mine.code == code if max(loads()) > 0.05 else mine.code in (0, code), (mine.out, theirs.out)


# -- memory ---------------------------------------------------------------------


def available_percent() -> float:
    info = meminfo()
    return 100 * info["MemAvailable"] / info["MemTotal"]


def test_memory_reads_memavailable() -> None:
    run = check("memory")
    value = float(run.perfdata["available"].split("%")[0])
    assert abs(value - available_percent()) < 5, (value, available_percent())
    assert run.perfdata["available"].endswith("%;10:;5:;0;100")
    total = meminfo()["MemTotal"]
    assert run.perfdata["available_bytes"].endswith(f"B;;;0;{total}")
    assert "swap_used" in run.perfdata
    assert run.code == (0 if value > 12 else run.code)


def test_memory_thresholds_around_the_live_value() -> None:
    value = available_percent()
    low, high = max(value - 20, 0), min(value + 20, 100)
    assert check("memory", "-w", f"{low:.0f}:", "-c", f"{max(low - 1, 0):.0f}:").code == 0
    assert (
        check("memory", "-w", f"{high:.0f}:", "-c", f"{max(low - 1, 0):.0f}:").code == 1
    )  # less than high% available
    assert check("memory", "-w", f"{high:.0f}:", "-c", f"{high:.0f}:").code == 2
    assert check("memory", "-w", f"@{low:.0f}:{high:.0f}", "-c", "0:").code == 1  # inside the @ range


def test_swap_thresholds() -> None:
    info = meminfo()
    used = 100 * (info["SwapTotal"] - info["SwapFree"]) / info["SwapTotal"] if info["SwapTotal"] else 0
    assert check("memory", "-w", "0:", "-c", "0:", "--swap-warning", f"{used + 20:.0f}").code == 0
    run = check("memory", "-w", "0:", "-c", "0:", "--swap-critical", f"@0:{used + 20:.0f}")
    assert run.code == 2 and "% swap used" in run.line

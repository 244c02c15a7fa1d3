"""Draw docs/performance.png from run.py's results (needs matplotlib).

Usage: ``python benchmarks/chart.py RESULTS.json OUT.png``. Exits non-zero
when matplotlib is missing, and run.py then writes its report without a
chart.
"""

import json
import sys


def main(data_path: str, chart_path: str) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 1
    with open(data_path, encoding="utf-8") as stream:
        data = json.load(stream)
    summary, labels, sizes = data["summary"], data["labels"], data["sizes"]
    keys = [key for key in labels if key in summary and key != "floor"]
    figure, (bars, growth) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [2, 1]})

    walls = [summary[key]["wall_ms"] for key in keys]
    colours = ["#999999" if key in ("python", "nagiosplugin", "check_dummy") else "#3b75af" for key in keys]
    bars.barh(range(len(keys)), walls, color=colours)
    bars.set_yticks(range(len(keys)), [labels[key].replace("`", "") for key in keys], fontsize=8)
    bars.invert_yaxis()
    python = summary["python"]["wall_ms"]
    for limit, style in ((2.0, ":"), (2.5, "--")):
        bars.axvline(python * limit, color="#c44e52", linestyle=style, linewidth=1)
        bars.text(python * limit, len(keys) - 0.5, f" {limit:g}x python", color="#c44e52", fontsize=7)
    bars.set_xlabel("median wall time, ms (grey: baselines)")
    bars.set_title("Wall time per case, one interleaved run")

    runs = [summary["P2" if size == 1 else f"P7-{size}"]["wall_ms"] for size in sizes]
    growth.plot(sizes, runs, marker="o", color="#3b75af", label="selfheal run")
    growth.axhline(runs[0] * 1.2, color="#c44e52", linestyle="--", linewidth=1, label="1.2x one check")
    growth.set_xscale("log")
    growth.set_ylim(0, max([*runs, runs[0] * 1.2]) * 1.3)
    growth.set_xlabel("configured checks (and state records)")
    growth.set_ylabel("median wall time, ms")
    growth.set_title("P7: cost against config size")
    growth.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(chart_path, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

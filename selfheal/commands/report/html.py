"""The report as one self-contained HTML page: tables, episodes, and two charts.

Meant to be opened in a browser or attached to a ticket: no network is
needed to view it (a Content-Security-Policy forbids fetching anything).
The tables (per check, per host, the episodes) and the distribution of
time to recover (SVG) are plain markup, written here; only the per-day
chart is drawn by the page's one inline script, from the report's JSON.
When it is drawn, the script sets ``data-chart="ok"`` on the page's root
element (and ``data-bars`` to the number of bars); a script error sets
``data-error``. The tests read those marks from headless Chromium.

Every journal string (a check's name, a host, a heal's last line) is
escaped, and the policy lets only that one script run (by its hash): a
journal cannot put a script on the page, even past a missed escape.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import time
from html import escape

from selfheal.commands.report.text import HEADERS, HOST_HEADERS, cells, duration_text, host_cells, rate_note

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: right; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
caption { text-align: left; font-weight: bold; }
#episodes th, #episodes td { text-align: left; }
#episodes td:nth-child(1), #episodes td:nth-child(3), #episodes td:nth-child(7) { white-space: nowrap; }
#episodes td:nth-child(4), #episodes td:nth-child(7) { text-align: right; }
td.reason { max-width: 40em; overflow-wrap: anywhere; font-family: monospace; }
tr.gave_up td.outcome { color: #b00; font-weight: bold; }
tr.open td.outcome { color: #a60; }
.note { color: #666; }
.rate { font-size: 1.2em; }
svg text { font-size: 11px; fill: #444; }
"""

# Days from the first to the last day with a heal, every day shown (a quiet
# day is a zero, not a gap); one stacked bar segment per check and day.
SCRIPT = """
window.onerror = function (message) {
  document.documentElement.setAttribute("data-error", String(message));
};
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var chart = document.getElementById("chart");
  var ns = "http://www.w3.org/2000/svg";
  var colours = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
  var days = [];
  if (data.days.length) {
    var day = new Date(data.days[0] + "T00:00:00Z");
    var last = new Date(data.days[data.days.length - 1] + "T00:00:00Z");
    for (; day <= last; day = new Date(day.getTime() + 86400000)) {
      days.push(day.toISOString().slice(0, 10));
    }
  }
  var totals = days.map(function (d) {
    return data.checks.reduce(function (sum, c) { return sum + (c.per_day[d] || 0); }, 0);
  });
  var top = Math.max.apply(null, [1].concat(totals));
  var width = 60 + Math.max(days.length, 1) * 28, height = 220, base = 180;
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width + 160);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  function add(tag, attrs, text) {
    var node = document.createElementNS(ns, tag);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (text !== undefined) { node.textContent = text; }
    svg.appendChild(node);
    return node;
  }
  add("line", {x1: 50, y1: base, x2: width, y2: base, stroke: "#888"});
  add("text", {x: 45, y: base - 150 + 4, "text-anchor": "end"}, String(top));
  add("text", {x: 45, y: base + 4, "text-anchor": "end"}, "0");
  var bars = 0;
  days.forEach(function (d, i) {
    var x = 56 + i * 28, y = base;
    data.checks.forEach(function (c, k) {
      var n = c.per_day[d] || 0;
      if (!n) { return; }
      var h = n / top * 150;
      y -= h;
      var bar = add("rect", {x: x, y: y, width: 20, height: h, fill: colours[k % colours.length],
                             "class": "bar", "data-check": c.name, "data-day": d, "data-heals": n});
      var tip = document.createElementNS(ns, "title");
      tip.textContent = c.name + " " + d + ": " + n + " heal" + (n === 1 ? "" : "s");
      bar.appendChild(tip);
      bars += 1;
    });
    if (days.length <= 14 || i % Math.ceil(days.length / 14) === 0) {
      add("text", {x: x + 10, y: base + 16, "text-anchor": "middle"}, d.slice(5));
    }
  });
  data.checks.forEach(function (c, k) {
    add("rect", {x: width + 20, y: 20 + k * 18, width: 12, height: 12, fill: colours[k % colours.length]});
    add("text", {x: width + 38, y: 30 + k * 18}, c.name);
  });
  chart.appendChild(svg);
  document.documentElement.setAttribute("data-bars", String(bars));
  document.documentElement.setAttribute("data-chart", "ok");
})();
"""


#: The chart draws every day from the first to the last day with a heal; a
#: journal can hold a day in the year 9999 (a clock gone wrong), and three
#: million bars overflow the page's script. At most this many are drawn:
#: the last ones, which are what an operator looks at.
MAX_CHART_DAYS = 400


def chart_days(days: object) -> tuple[object, str]:
    """The days with heals the chart draws, and a note when some are left out.

    Anything but a list of days goes to the page as it is: the page's own
    script then marks the error (the tests break a page this way on purpose).
    """
    if not isinstance(days, list) or not days:
        return days, ""
    last = calendar.timegm(time.strptime(days[-1], "%Y-%m-%d"))
    first = last - (MAX_CHART_DAYS - 1) * 86400
    shown = [d for d in days if calendar.timegm(time.strptime(d, "%Y-%m-%d")) >= first]
    if len(shown) == len(days):
        return days, ""
    note = (
        f"The chart shows the {MAX_CHART_DAYS} days up to {days[-1]}; heals on earlier days are in the table."
    )
    return shown, f"<p class=note>{escape(note)}</p>"


def when(iso: object) -> str:
    """An ISO time from the report's JSON, to the second: ``2026-11-28 03:10:06``."""
    return str(iso)[:19].replace("T", " ") if iso else "-"


def row(values: list[str], attrs: str = "", classes: list[str] | None = None) -> str:
    tds = "".join(
        f"<td class={classes[i]}>{escape(v)}</td>" if classes and classes[i] else f"<td>{escape(v)}</td>"
        for i, v in enumerate(values)
    )
    return f"<tr{attrs}>{tds}</tr>"


OUTCOMES = {"recovered": "recovered", "gave_up": "gave up", "open": "open"}


def exit_codes(codes: list[object]) -> str:
    return ", ".join("running" if code is None else str(code) for code in codes) or "-"


def episode_rows(data: dict[str, object]) -> str:
    episodes = data["episodes"]
    assert isinstance(episodes, list)
    classes = ["", "", "", "", "", "reason", "", "outcome"]
    rows = []
    for episode in episodes:
        values = [
            when(episode["start"]),
            str(episode["host"]),
            str(episode["check"]),
            str(episode["attempts"]),
            exit_codes(episode["exit_codes"]),
            str(episode["reason"] or "-"),
            duration_text(episode["time_to_recover"]),
            OUTCOMES.get(str(episode["outcome"]), str(episode["outcome"])),
        ]
        outcome = escape(str(episode["outcome"]), quote=True)
        rows.append(row(values, f' class="episode {outcome}"', classes))
    return "\n".join(rows) or '<tr><td colspan="8">No episodes in this period.</td></tr>'


def ttr_chart(distribution: object) -> str:
    """The distribution of time to recover as SVG bars, drawn here (no script)."""
    assert isinstance(distribution, list)
    top = max([1, *(int(b["episodes"]) for b in distribution)])
    width, base, height = 64, 150, 120
    parts = [
        f'<svg id="ttr" role="img" aria-label="time to recover" width="{40 + width * len(distribution)}" '
        f'height="{base + 30}">',
        f'<line x1="30" y1="{base}" x2="{30 + width * len(distribution)}" y2="{base}" stroke="#888"/>',
    ]
    for i, bucket in enumerate(distribution):
        count = int(bucket["episodes"])
        h = count / top * height
        x = 36 + i * width
        label = escape(str(bucket["label"]))
        parts.append(
            f'<rect class="ttr-bar" data-bucket="{label}" data-episodes="{count}" x="{x}" y="{base - h:.1f}" '
            f'width="{width - 14}" height="{h:.1f}" fill="#1f77b4"><title>{label}: {count}</title></rect>'
        )
        parts.append(
            f'<text x="{x + (width - 14) / 2}" y="{base - h - 4:.1f}" text-anchor="middle">{count}</text>'
        )
        parts.append(f'<text x="{x + (width - 14) / 2}" y="{base + 16}" text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def script_hash(script: str) -> str:
    """The CSP source that lets exactly this inline script run."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


def render_html(data: dict[str, object]) -> str:
    checks = data["checks"]
    assert isinstance(checks, list)  # figures.build made it
    hosts = data.get("hosts") or []
    assert isinstance(hosts, list)
    days, chart_note = chart_days(data["days"])
    rows = [row(cells(check)) for check in checks]
    host_rows = [row(host_cells(host)) for host in hosts]
    # "<" escaped: the JSON sits inside a <script> element.
    payload = json.dumps({**data, "days": days}).replace("<", "\\u003c")
    skipped = f"<p class=note>{data['skipped']} corrupt journal lines skipped.</p>" if data["skipped"] else ""
    problems = data.get("unreadable")
    unreadable = "".join(
        f"<p class=note>Skipped {escape(str(p))}</p>"
        for p in (problems if isinstance(problems, list) else [])
    )
    period = f"{escape(when(data['since']) if data['since'] else 'the beginning')} to {escape(when(data['until']))} UTC"
    totals = data.get("totals")
    rate = ""
    if isinstance(totals, dict) and "episodes" in totals:
        shown = "-" if totals["success_rate"] is None else f"{totals['success_rate'] * 100:.0f}%"
        rate = (
            f'<p class=rate id="rate">Success rate: <b>{shown}</b> of episodes '
            f"({totals['heals_recovered']} recovered, {totals['episodes_gave_up']} gave up, "
            f"{totals['episodes_open']} open; {totals['heals_started']} heals).</p>\n"
            f"<p class=note>{escape(rate_note(totals))}</p>"
        )
    not_listed = data.get("episodes_not_listed") or 0
    listed = data.get("episodes")
    listed_note = (
        f"<p class=note>The newest {len(listed) if isinstance(listed, list) else 0} episodes are listed; "
        f"{not_listed} more are counted in the figures.</p>"
        if not_listed
        else ""
    )
    journals = data.get("journals") or [data.get("journal")]
    assert isinstance(journals, list)
    script = SCRIPT
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src {script_hash(script)}">
<title>selfheal report</title>
<style>{STYLE}</style>
</head>
<body>
<h1>selfheal report</h1>
<p>{period}. Checks ranked by how often they healed: the more often the automatic fix runs, the worse the
underlying bug.</p>
{rate}
<table id="checks">
<caption>Per check</caption>
<thead><tr>{"".join(f"<th>{h}</th>" for h in HEADERS)}</tr></thead>
<tbody>
{chr(10).join(rows) or '<tr><td colspan="10">No heals in this period.</td></tr>'}
</tbody>
</table>
<table id="hosts">
<caption>Per host</caption>
<thead><tr>{"".join(f"<th>{h}</th>" for h in HOST_HEADERS)}</tr></thead>
<tbody>
{chr(10).join(host_rows) or '<tr><td colspan="9">No hosts in this period.</td></tr>'}
</tbody>
</table>
{skipped}{unreadable}
<h2>Time to recover</h2>
<p class=note>Episodes that healing recovered, by time from the first heal to the first healthy result.</p>
{ttr_chart(data.get("time_to_recover_distribution") or [])}
<h2>Heals per day</h2>
{chart_note}
<div id="chart"></div>
<p class=note>TTR: time to recover, from the first heal of an episode to the first healthy result.
Journals: {escape(", ".join(str(j) for j in journals))}</p>
<h2>Episodes</h2>
<p class=note>An episode runs from the first heal after healthy to recovered or gave up. Times are UTC;
the reason is the last line the heal printed when it failed.</p>
{listed_note}
<table id="episodes">
<thead><tr><th>Started (UTC)</th><th>Host</th><th>Check</th><th>Heals</th><th>Exit codes</th><th>Reason</th>
<th>Time to recover</th><th>Outcome</th></tr></thead>
<tbody>
{episode_rows(data) if "episodes" in data else ""}
</tbody>
</table>
<script type="application/json" id="report-data">{payload}</script>
<script>{script}</script>
</body>
</html>
"""

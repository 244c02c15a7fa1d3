"""The report as one self-contained HTML page, with a per-day chart.

Meant to be opened in a browser or attached to a ticket: no network is
needed to view it (a Content-Security-Policy forbids fetching anything).
The table is plain HTML; the chart is drawn by an inline script from the
report's JSON, as SVG. When the chart is drawn, the script sets
``data-chart="ok"`` on the page's root element (and ``data-bars`` to the
number of bars); a script error sets ``data-error``. The tests read those
marks from headless Chromium.
"""

from __future__ import annotations

import calendar
import json
import time
from html import escape

from selfheal.commands.report.text import HEADERS, cells

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: right; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
caption { text-align: left; font-weight: bold; }
.note { color: #666; }
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


def render_html(data: dict[str, object]) -> str:
    checks = data["checks"]
    assert isinstance(checks, list)  # figures.build made it
    days, chart_note = chart_days(data["days"])
    rows = [
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells(check)) + "</tr>" for check in checks
    ]
    # "<" escaped: the JSON sits inside a <script> element.
    payload = json.dumps({**data, "days": days}).replace("<", "\\u003c")
    skipped = f"<p class=note>{data['skipped']} corrupt journal lines skipped.</p>" if data["skipped"] else ""
    period = f"{escape(str(data['since'] or 'the beginning'))} to {escape(str(data['until']))} (UTC)"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>selfheal report</title>
<style>{STYLE}</style>
</head>
<body>
<h1>selfheal report</h1>
<p>{period}. Checks ranked by how often they healed: the more often the automatic fix runs, the worse the
underlying bug.</p>
<table>
<caption>Per check</caption>
<thead><tr>{"".join(f"<th>{h}</th>" for h in HEADERS)}</tr></thead>
<tbody>
{chr(10).join(rows) or '<tr><td colspan="9">No heals in this period.</td></tr>'}
</tbody>
</table>
{skipped}
<h2>Heals per day</h2>
{chart_note}
<div id="chart"></div>
<p class=note>TTR: time to recover, from the first heal of an episode to the first healthy result.
Journal: {escape(str(data["journal"]))}</p>
<script type="application/json" id="report-data">{payload}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""

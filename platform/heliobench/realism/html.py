"""The report as a static HTML page: the table, then each statistic's figure."""

from __future__ import annotations

import html
import math
from pathlib import Path

from heliobench.realism.table import Row, format_distance, format_value

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; white-space: nowrap; }
tr.close td.d { background: #e3f5e1; } tr.far td.d { background: #fbe4e1; }
section { margin: 2em 0; border-top: 1px solid #ddd; padding-top: 1em; }
img { max-width: 100%; } .note { color: #555; font-size: 13px; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def write_html(out: Path, rows: list[Row], settings: dict, unused: dict[str, str], galleries: list[str]) -> Path:
    """Write ``out/index.html`` for ``rows`` (their figures already in ``out``) and return its path."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>HelioBench: realism of the simulated archive</title>"
             f"<style>{_STYLE}</style></head><body>",
             "<h1>Realism of the simulated archive</h1>",
             "<p>Each statistic of the simulator's output against real data (real files where present, published values "
             "otherwise). Simulated and real images are compared in the same physical units and at the same resolution; "
             "each real file is paired with the simulated image nearest to it in time. Green distances are below their "
             "closeness bound.</p>",
             "<p class='note'>" + ", ".join(f"{_esc(k)} = {_esc(v)}" for k, v in settings.items()) + "</p>",
             "<table><tr><th>statistic</th><th>summary</th><th>simulated</th><th>real</th><th>distance</th>"
             "<th>close below</th><th>source</th></tr>"]
    for r in rows:
        state = "" if not math.isfinite(r.distance) else ("close" if r.close else "far")
        link = f"<a href='#{_esc(r.key)}'>{_esc(r.statistic)}</a>" if r.figure else _esc(r.statistic)
        parts.append(
            f"<tr class='{state}'><td>{link}</td><td>{_esc(r.summary)}</td><td class='num'>{_esc(format_value(r.simulated))}</td>"
            f"<td class='num'>{_esc(format_value(r.real))}</td><td class='num d'>{_esc(format_distance(r))}</td>"
            f"<td class='num'>{r.metric.close_below:g} {_esc(r.metric.unit)}</td><td>{_esc(r.source) or _esc(r.note)}</td></tr>")
    parts.append("</table>")
    for r in rows:
        if not r.figure:
            continue
        parts.append(f"<section id='{_esc(r.key)}'><h2>{_esc(r.statistic)}</h2>"
                     f"<p>Distance: {_esc(r.metric.name)} = <b>{_esc(format_distance(r))}</b> "
                     f"(close below {r.metric.close_below:g} {_esc(r.metric.unit)}: {_esc(r.metric.meaning)}). "
                     f"Simulated {_esc(format_value(r.simulated))}, real {_esc(format_value(r.real))} ({_esc(r.summary)}); "
                     f"n = {r.n_simulated} simulated, {r.n_real} real.</p>"
                     f"<p class='note'>Source: {_esc(r.source)}. {_esc(r.note)}</p>"
                     f"<img src='{_esc(r.figure)}' alt='{_esc(r.statistic)}'></section>")
    if galleries:
        parts.append("<section id='images'><h2>Real and simulated images side by side</h2>")
        parts += [f"<img src='{_esc(g)}' alt='{_esc(g)}'>" for g in galleries]
        parts.append("</section>")
    if unused:
        parts.append("<section id='unused'><h2>Not compared</h2><ul>")
        parts += [f"<li><code>{_esc(name)}</code>: {_esc(why)}</li>" for name, why in sorted(unused.items())]
        parts.append("</ul></section>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

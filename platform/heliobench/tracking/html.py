"""The static leaderboard page: ``index.html`` plus PNG plots, no network resources, no scripts.

Per benchmark: the ranked table, the primary metric against compute (worker-hours, log
axis) and the primary metric per configuration with its 95% interval. All text is escaped;
model names come from users.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from heliobench.specs import BenchmarkSpec
from heliobench.tracking.leaderboard import LeaderboardTable, datasets_ranked, rank

TITLE = "HelioBench leaderboard"
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
nav a{margin-right:1rem} table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right} td.text,th{text-align:left}
th{background:#f0f0f0} .empty{color:#666;font-style:italic} figure{display:inline-block;vertical-align:top;margin:0 1rem 1rem 0}
.scroll{overflow-x:auto}
img{max-width:560px}
"""
_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def _label(position: int, model: str) -> str:
    """A plot label: rank and model, shortened, without mathtext (a user's ``$`` stays a ``$``)."""
    text = model if len(model) <= 28 else model[:27] + "…"
    return f"{position}. {text}".replace("$", r"\$")


class _PlainLogFormatter(LogFormatter):
    """Log-axis labels as plain numbers (0.5, 2, 100) on the ticks ``LogFormatter`` labels."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _compute_plot(df: pl.DataFrame, spec: BenchmarkSpec, path: Path) -> bool:
    """Primary metric against worker-hours (log x); False when no row records compute."""
    timed = df.filter(pl.col("worker_hours") > 0)
    if timed.is_empty():
        return False
    fig = Figure(figsize=(5.6, 3.8))
    ax = fig.add_subplot()
    ax.scatter(timed["worker_hours"], timed[spec.primary_metric], color="#1f77b4")
    for row in timed.iter_rows(named=True):
        ax.annotate(_label(row["rank"], row["model"]), (row["worker_hours"], row[spec.primary_metric]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_PlainLogFormatter())
    ax.xaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))
    ax.margins(x=0.25, y=0.15)
    ax.set(xlabel="compute (worker-hours, log scale)", ylabel=spec.primary_metric, title="metric against compute")
    ax.grid(True, alpha=0.3)
    _save(fig, path)
    return True


def _interval_plot(df: pl.DataFrame, spec: BenchmarkSpec, path: Path) -> None:
    """Horizontal bars of the primary metric with 95% interval whiskers, best on top."""
    p = spec.primary_metric
    mean = df[p].fill_null(float("nan")).to_list()
    low = (df[p] - df[f"{p}_ci_low"]).fill_null(0.0).clip(lower_bound=0.0).to_list()
    high = (df[f"{p}_ci_high"] - df[p]).fill_null(0.0).clip(lower_bound=0.0).to_list()
    labels = [_label(r, m) for r, m in zip(df["rank"], df["model"])]
    fig = Figure(figsize=(5.6, 2.0 + 0.35 * df.height))
    ax = fig.add_subplot()
    pos = list(range(df.height))
    ax.barh(pos, mean, xerr=[low, high], color="#ff7f0e", alpha=0.8, capsize=3)
    ax.set_yticks(pos, labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel=f"{p} (95% interval)", title=f"{p} ({spec.direction})")
    ax.grid(True, axis="x", alpha=0.3)
    _save(fig, path)


def _cell(text: str, left: bool = False) -> str:
    return f'<td class="text">{escape(text)}</td>' if left else f"<td>{escape(text)}</td>"


def _table(df: pl.DataFrame, spec: BenchmarkSpec) -> str:
    p = spec.primary_metric
    others = [m for m in spec.metrics if m != p]
    head = ["rank", "model", f"{p} (mean ± std)", "95% interval", *others, "seeds", "parameters",
            "worker-hours", "dataset", "date (UTC)", "submitter(s)", "kind"]
    rows = []
    for r in df.iter_rows(named=True):
        cells = [
            _cell(str(r["rank"])), _cell(r["model"], left=True), _cell(f"{_num(r[p])} ± {_num(r[f'{p}_std'])}"),
            _cell(f"[{_num(r[f'{p}_ci_low'])}, {_num(r[f'{p}_ci_high'])}]"), *(_cell(_num(r[m])) for m in others),
            _cell(str(r["n_seeds"])), _cell("–" if r["n_parameters"] is None else f"{r['n_parameters']:,}"),
            _cell(_num(r["worker_hours"], 3)), _cell(r["dataset_hash"][:12], left=True),
            _cell(r["date"].strftime("%Y-%m-%d %H:%M")), _cell(r["submitters"], left=True), _cell(r["kind"], left=True),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _section(table: LeaderboardTable, spec: BenchmarkSpec, out_dir: Path, anchor: str) -> str:
    """One benchmark on one dataset card; ``anchor`` names its section and plot files."""
    df = rank(table, spec)
    intro = (f"<h2>{escape(spec.title)}</h2><p>Benchmark <code>{escape(spec.name)}</code>, primary metric "
             f"<code>{escape(spec.primary_metric)}</code> ({escape(spec.direction)}), dataset <code>{escape(spec.dataset)}</code>, split scheme <code>{escape(spec.split_scheme)}</code>.</p>")
    if df.is_empty():
        body = '<p class="empty">No entries yet: evaluate a run or record a submission to appear here.</p>'
        return f'<section id="bench-{escape(anchor)}">{intro}{body}</section>'
    figures, note = [], ""
    if _compute_plot(df, spec, out_dir / f"{anchor}_compute.png"):
        figures.append((f"{anchor}_compute.png", f"{spec.primary_metric} against compute"))
    else:
        note = '<p class="empty">No entry records its compute (worker-hours), so there is no compute plot.</p>'
    _interval_plot(df, spec, out_dir / f"{anchor}_intervals.png")
    figures.append((f"{anchor}_intervals.png", f"{spec.primary_metric} per configuration with 95% intervals"))
    imgs = "".join(f'<figure><img src="{escape(src)}" alt="{escape(alt)}"><figcaption>{escape(alt)}</figcaption></figure>'
                   for src, alt in figures)
    return f'<section id="bench-{escape(anchor)}">{intro}{_table(df, spec)}{note}{imgs}</section>'


def write_leaderboard_html(table: LeaderboardTable, specs: list[BenchmarkSpec], out_dir: Path | str) -> Path:
    """Write ``index.html`` and its plots for all ``specs`` into ``out_dir``; returns the page."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # each benchmark on its own card first, then on every other card it has entries for
    sections = "".join(_section(table, base.on_dataset(card), out, base.name if card == base.dataset else f"{base.name}-{card}")
                       for base in specs for card in datasets_ranked(table, base))
    nav = "".join(f'<a href="#bench-{escape(s.name)}">{escape(s.name)}</a>' for s in specs)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<link rel="icon" href="data:,"><title>{TITLE}</title><style>{_CSS}</style></head>'
            f"<body><h1>{TITLE}</h1><p>Generated {stamp} from the leaderboard table. Rows group the seeds of one "
            f"configuration; intervals are bootstrap bounds for one seed, Student-t over seeds otherwise.</p>"
            f"<nav>{nav}</nav>{sections}</body></html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path

"""The static leaderboard page: ``index.html`` plus PNG plots, no network resources, no scripts.

Per benchmark and dataset card: the dataset card (source, licence, citation), the split
scheme and manifest hash, the ranked table (each row linked to its MLflow runs), the
published results on the paper's data (apart, never ranked), how to take part, and plots of
the primary metric against compute and per configuration with its 95% interval. All text
is escaped; model names come from users.
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
from heliobench.tracking import runs
from heliobench.tracking.leaderboard import PUBLISHED_LABEL, SOURCES, LeaderboardTable, datasets_ranked, published_frame, rank

TITLE = "HelioBench leaderboard"
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
nav a{margin-right:1rem} table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right} td.text,th{text-align:left}
th{background:#f0f0f0} .empty{color:#666;font-style:italic} figure{display:inline-block;vertical-align:top;margin:0 1rem 1rem 0}
.scroll{overflow-x:auto} dl{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;font-size:.9rem}
dt{font-weight:600} dd{margin:0} table.published td{background:#fafaf0} pre{background:#f6f6f6;padding:.5rem;overflow-x:auto}
img{max-width:560px}
"""
#: Where ``mlflow ui`` serves a local tracking store by default.
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"
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


def _run_links(run_ids: str, mlflow_ui: str) -> str:
    ids = run_ids.split(",") if run_ids else []
    links = [f'<a class="run" href="{escape(mlflow_ui)}/#/runs/{escape(i)}">{"run" if len(ids) == 1 else f"run {k + 1}"}</a>'
             for k, i in enumerate(ids)]
    return f'<td class="text">{" · ".join(links)}</td>'


def _table(df: pl.DataFrame, spec: BenchmarkSpec, mlflow_ui: str) -> str:
    p = spec.primary_metric
    others = [m for m in spec.metrics if m != p]
    head = ["rank", "model", "source", f"{p} (mean ± std)", "95% interval", *others, "seeds", "parameters",
            "worker-hours", "manifest", "date (UTC)", "submitter(s)", "MLflow"]
    rows = []
    for r in df.iter_rows(named=True):
        cells = [
            _cell(str(r["rank"])), _cell(r["model"], left=True), _cell(SOURCES.get(r["kind"], r["kind"]), left=True),
            _cell(f"{_num(r[p])} ± {_num(r[f'{p}_std'])}"),
            _cell(f"[{_num(r[f'{p}_ci_low'])}, {_num(r[f'{p}_ci_high'])}]"), *(_cell(_num(r[m])) for m in others),
            _cell(str(r["n_seeds"])), _cell("–" if r["n_parameters"] is None else f"{r['n_parameters']:,}"),
            _cell(_num(r["worker_hours"], 3)), _cell(r["dataset_hash"][:12], left=True),
            _cell(r["date"].strftime("%Y-%m-%d %H:%M")), _cell(r["submitters"], left=True), _run_links(r["runs"], mlflow_ui),
        ]
        rows.append(f'<tr class="entry">{"".join(cells)}</tr>')
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<div class="scroll"><table class="ranked"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _published(spec: BenchmarkSpec) -> str:
    """The paper's own results, on the paper's data: a table apart, never ranked."""
    df = published_frame(spec)
    if df.is_empty():
        return ""
    p = spec.primary_metric
    head = "".join(f"<th>{escape(h)}</th>" for h in ("model", p, "other reported numbers", "data", "source", "note"))
    rows = "".join(
        f'<tr class="published">{_cell(r["model"], left=True)}{_cell(_num(r[p]))}{_cell(r["reported"] or "–", left=True)}'
        f'{_cell(r["data"], left=True)}{_cell(r["citation"], left=True)}{_cell(r["note"] or "–", left=True)}</tr>'
        for r in df.iter_rows(named=True))
    return (f'<h3>{escape(PUBLISHED_LABEL.capitalize())}</h3><p>As the paper reports them: other data, other splits, '
            f'so they are never ranked against the rows above.</p><div class="scroll"><table class="published">'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")


def _about(spec: BenchmarkSpec, df: pl.DataFrame) -> str:
    """The dataset card, the split scheme and the manifest hash(es) of the ranked rows."""
    card = spec.card()
    scheme = card.scheme(spec.split_scheme)
    splits = "; ".join(f"{name} {r.start}..{r.end}" for name, r in (("train", scheme.train), ("val", scheme.val), ("test", scheme.test)))
    if scheme.buffer_days:
        splits += f" ({scheme.buffer_days:g} days dropped before each later split)"
    hashes = ", ".join(df["dataset_hash"].unique(maintain_order=True).to_list()) or "– (no entries yet)"
    items = [("dataset card", f"{card.name}: {' '.join(card.description.split())}"), ("source", " ".join(card.source.split())),
             ("licence", card.license), ("citation", " ".join((card.citation or "–").split())),
             ("split scheme", f"{spec.split_scheme}: {splits}"), ("manifest hash", hashes),
             ("primary metric", f"{spec.primary_metric} ({spec.direction})")]
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f'<dl class="about">{body}</dl>'


def _how_to_submit(spec: BenchmarkSpec, own_card: bool) -> str:
    data = "" if own_card else f" --dataset {spec.dataset}"
    lines = [f"heliobench train {spec.name}{data} --model my_module:build   # your model, trained on Ray Train, tracked",
             f"heliobench evaluate {spec.name}{data} --run RUN_ID           # scored on the frozen test split: a row here"]
    if spec.task == "segmentation":
        lines.append(f"heliobench submit {spec.name}{data} --predictions preds.npz --name NAME   # or your own loop's test masks")
    return (f'<div class="submit"><h3>How to take part</h3><pre>{escape(chr(10).join(lines))}</pre>'
            "<p>Plug-ins and the Python API (<code>heliobench.load_benchmark</code>): see the README.</p></div>")


def _section(table: LeaderboardTable, spec: BenchmarkSpec, out_dir: Path, own_card: bool, mlflow_ui: str) -> str:
    """One benchmark on one dataset card (``own_card``: the spec's own)."""
    anchor = spec.name if own_card else f"{spec.name}-{spec.dataset}"  # names the section and its plot files
    df = rank(table, spec)
    intro = (f"<h2>{escape(spec.title)}</h2><p>Benchmark <code>{escape(spec.name)}</code> on dataset "
             f"<code>{escape(spec.dataset)}</code>.</p>{_about(spec, df)}")
    tail = _published(spec) + _how_to_submit(spec, own_card)
    if df.is_empty():
        body = '<p class="empty">No entries yet: evaluate a run or record a submission to appear here.</p>'
        return f'<section id="bench-{escape(anchor)}">{intro}{body}{tail}</section>'
    figures, note = [], ""
    if _compute_plot(df, spec, out_dir / f"{anchor}_compute.png"):
        figures.append((f"{anchor}_compute.png", f"{spec.primary_metric} against compute"))
    else:
        note = '<p class="empty">No entry records its compute (worker-hours), so there is no compute plot.</p>'
    _interval_plot(df, spec, out_dir / f"{anchor}_intervals.png")
    figures.append((f"{anchor}_intervals.png", f"{spec.primary_metric} per configuration with 95% intervals"))
    imgs = "".join(f'<figure><img src="{escape(src)}" alt="{escape(alt)}"><figcaption>{escape(alt)}</figcaption></figure>'
                   for src, alt in figures)
    return f'<section id="bench-{escape(anchor)}">{intro}{_table(df, spec, mlflow_ui)}{note}{imgs}{tail}</section>'


def _mlflow_ui(tracking_uri: str | None) -> tuple[str, str]:
    """The MLflow UI that run links open, and how to start it for a local store."""
    uri = runs.tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/"), f"Run links open the tracking server {escape(uri)}."
    return LOCAL_MLFLOW_UI, (f"Run links open the MLflow UI of the local store: start it with "
                             f"<code>mlflow ui --backend-store-uri {escape(uri)}</code> ({LOCAL_MLFLOW_UI}).")


def write_leaderboard_html(table: LeaderboardTable, specs: list[BenchmarkSpec], out_dir: Path | str,
                           tracking_uri: str | None = None) -> Path:
    """Write ``index.html`` and its plots for all ``specs`` into ``out_dir``; returns the page.

    Rows link to their runs in the MLflow UI of ``tracking_uri`` (default: the workspace's).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mlflow_ui, ui_note = _mlflow_ui(tracking_uri)
    # each benchmark on its own card first, then on every other card it has entries for
    sections = "".join(_section(table, base.on_dataset(card), out, card == base.dataset, mlflow_ui)
                       for base in specs for card in datasets_ranked(table, base))
    nav = "".join(f'<a href="#bench-{escape(s.name)}">{escape(s.name)}</a>' for s in specs)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<link rel="icon" href="data:,"><title>{TITLE}</title><style>{_CSS}</style></head>'
            f"<body><h1>{TITLE}</h1><p>Generated {stamp} from the leaderboard table. Rows group the seeds of one "
            f"configuration; intervals are bootstrap bounds for one seed, Student-t over seeds otherwise. "
            f"Sources: reference (the benchmark's model), plug-in (a model of a user's own, trained through "
            f"<code>--model</code>), submission (test predictions scored by <code>heliobench submit</code>). {ui_note}</p>"
            f"<nav>{nav}</nav>{sections}</body></html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path

"""The materialised leaderboard: one parquet table, updated when an entry is added.

Leaderboards read this table instead of searching every MLflow run, so they stay fast
with many thousands of runs. MLflow stays the source of truth: runs tagged
``heliobench.leaderboard = "1"`` regenerate the table with :meth:`LeaderboardTable.rebuild_from_mlflow`.

Grouping: entries with the same ``config_key`` (the run's identity tags and params
without ``training.seed``) are seeds of one configuration and make one ranked row.

Kinds of entry: ``run`` (the benchmark's reference model, trained and evaluated), ``plugin``
(a model of the user's own, trained through ``--model``), ``submission`` (test predictions
scored by ``heliobench submit``). The published works' own results are no entries: they come
from the spec (:func:`published_frame`), are shown apart and never ranked.

95% interval of a ranked row: for a single entry, that entry's bootstrap bounds over
test images (``<primary>_ci_low``/``_ci_high``, null when not logged); for several seeds,
the Student-t interval of the mean over seeds, ``mean ± t(0.975, n-1) · std / sqrt(n)``.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import os
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl
from fsspec.implementations.local import LocalFileSystem
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from scipy.special import stdtrit

from heliobench import storage
from heliobench.errors import HelioBenchError
from heliobench.specs import BenchmarkSpec
from heliobench.tracking import runs

TAG_LEADERBOARD = "heliobench.leaderboard"
TAG_MODEL = "heliobench.model"
TAG_MANIFEST = "heliobench.manifest_hash"
TAG_SUBMITTER = "heliobench.submitter"
TAG_PREDICTIONS = "heliobench.predictions_sha256"
TAG_DATASET = "heliobench.dataset"
SEED_PARAM = "training.seed"
#: Tags that, with the params, say which configuration a run is.
IDENTITY_TAGS = (runs.TAG_KIND, TAG_MODEL, TAG_MANIFEST, TAG_PREDICTIONS, runs.TAG_PLUGIN_SHA256)

SCHEMA = pl.Schema({
    "benchmark": pl.String,
    "entry_id": pl.String,
    "kind": pl.String,
    "model": pl.String,
    "config_key": pl.String,
    "seed": pl.Int64,
    "metrics": pl.List(pl.Struct({"name": pl.String, "value": pl.Float64})),
    "n_parameters": pl.Int64,
    "worker_hours": pl.Float64,
    "dataset_hash": pl.String,
    "submitter": pl.String,
    "created": pl.Datetime("us", "UTC"),
    "dataset": pl.String,
})
FORMATS = ("table", "json", "csv")
#: How each kind of row is named on leaderboards.
SOURCES = {"run": "reference", "plugin": "plug-in", "submission": "submission", "published": "published"}
#: What the published rows are, wherever they are shown.
PUBLISHED_LABEL = "published, on the paper's data"
#: Width of the terminal table (``heliobench leaderboard`` without ``--wide``).
TABLE_WIDTH = 120


@dataclass(frozen=True)
class LeaderboardEntry:
    """One scored run or submission on one benchmark (test-split metrics)."""

    benchmark: str
    entry_id: str
    kind: str
    model: str
    config_key: str
    seed: int | None
    metrics: dict[str, float]
    n_parameters: int | None
    worker_hours: float | None
    dataset_hash: str
    submitter: str
    created: datetime
    dataset: str  # the dataset card the model was scored on: rows of different cards are never ranked together

    def row(self) -> dict[str, object]:
        """The entry as a table row."""
        metrics = [{"name": k, "value": float(v)} for k, v in sorted(self.metrics.items())]
        return {**asdict(self), "metrics": metrics}


def config_key(identity: dict[str, str]) -> str:
    """Hash of a run's identity tags and params; the seed must already be left out."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _entry(run: Run, spec: BenchmarkSpec, owner: str | None = None) -> LeaderboardEntry:
    """The entry of a run; ``owner`` is the user of the per-user experiment the run is in
    (on a server with accounts only that user can write there, so it is who submitted)."""
    run_id, tags, params, metrics = run.info.run_id, run.data.tags, run.data.params, run.data.metrics
    if tags.get(runs.TAG_BENCHMARK) != spec.name:
        raise HelioBenchError(f"run {run_id}: benchmark {tags.get(runs.TAG_BENCHMARK)!r}, not {spec.name!r}")
    for tag in (TAG_MODEL, TAG_MANIFEST):
        if not tags.get(tag):
            raise HelioBenchError(f"run {run_id}: no {tag} tag, so it cannot be put on the leaderboard")
    test = {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}
    if spec.primary_metric not in test:
        raise HelioBenchError(f"run {run_id}: no test_{spec.primary_metric} metric (run `heliobench evaluate` first)")
    identity = {k: v for k, v in params.items() if k != SEED_PARAM}
    identity |= {f"tag:{t}": tags[t] for t in IDENTITY_TAGS if t in tags}
    return LeaderboardEntry(
        benchmark=spec.name,
        entry_id=run_id,
        kind=_kind(tags),
        model=tags[TAG_MODEL],
        config_key=config_key(identity),
        seed=int(params[SEED_PARAM]) if SEED_PARAM in params else None,
        metrics=test,
        n_parameters=int(params["n_parameters"]) if "n_parameters" in params else None,
        worker_hours=metrics.get("worker_hours"),
        dataset_hash=tags[TAG_MANIFEST],
        submitter=owner or tags.get(TAG_SUBMITTER) or tags.get("mlflow.user") or "unknown",
        created=datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc),
        dataset=tags.get(TAG_DATASET) or params.get("dataset") or spec.dataset,
    )


def _kind(tags: dict[str, str]) -> str:
    if tags.get(runs.TAG_KIND) == "submission":
        return "submission"
    return "plugin" if tags.get(runs.TAG_PLUGIN) else "run"


def entry_from_run(client: MlflowClient, run_id: str, spec: BenchmarkSpec) -> LeaderboardEntry:
    """The leaderboard entry of an evaluated run or submission, from its tags, params and metrics."""
    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id)
    except Exception:  # noqa: BLE001 - MLflow raises several types for an unknown id
        raise HelioBenchError(f"no run {run_id} on {client.tracking_uri.split('@')[-1]}") from None
    return _entry(run, spec, runs.experiment_owner(experiment.name, spec.name))


def _frame(entries: Iterable[LeaderboardEntry]) -> pl.DataFrame:
    return pl.DataFrame([e.row() for e in entries], schema=SCHEMA)


class LeaderboardTable:
    """The leaderboard parquet file at ``uri`` (local path or ``s3://``; default
    ``$HELIOBENCH_LEADERBOARD``, else ``leaderboard.parquet`` in the workspace).

    Local writers serialise on an ``fcntl`` lock on ``<uri>.lock``; on object storage
    there is no lock, so use one writer there (a rebuild repairs a lost row).
    """

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or os.environ.get("HELIOBENCH_LEADERBOARD") or str(runs.workspace() / "leaderboard.parquet")

    def read(self) -> pl.DataFrame:
        """All entries (an empty frame with the table's columns when there is no file yet)."""
        try:
            data = storage.read_bytes(self.uri)
        except FileNotFoundError:
            return SCHEMA.to_frame()
        try:
            df = pl.read_parquet(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - polars raises several types for a bad file
            raise HelioBenchError(f"{self.uri}: unreadable leaderboard table ({type(exc).__name__}); rebuild it from MLflow") from None
        if df.schema != SCHEMA:
            raise HelioBenchError(f"{self.uri}: not a leaderboard table (columns {df.columns}); rebuild it from MLflow")
        return df

    def add_entry(self, entry: LeaderboardEntry) -> None:
        """Add ``entry``, replacing the row with the same ``entry_id`` if there is one."""
        self.add_entries([entry])

    def add_entries(self, entries: Iterable[LeaderboardEntry]) -> None:
        """Add several entries in one write (rows with the same ``entry_id`` are replaced)."""
        new = _frame(entries).unique("entry_id", keep="last", maintain_order=True)
        with self._locked():
            old = self.read().filter(~pl.col("entry_id").is_in(new["entry_id"].implode()))
            self._write(pl.concat([old, new]))

    def rebuild_from_mlflow(self, client: MlflowClient, benchmarks: list[BenchmarkSpec]) -> int:
        """Replace these benchmarks' rows by the MLflow runs tagged ``heliobench.leaderboard = "1"``.

        Rows of other benchmarks are kept. Returns the number of entries written.
        """
        entries = [_entry(run, spec, owner) for spec in benchmarks for run, owner in _leaderboard_runs(client, spec.name)]
        names = [spec.name for spec in benchmarks]
        with self._locked():
            kept = self.read().filter(~pl.col("benchmark").is_in(names))
            self._write(pl.concat([kept, _frame(entries)]))
        return len(entries)

    def _write(self, df: pl.DataFrame) -> None:
        buf = io.BytesIO()
        df.write_parquet(buf)
        storage.write_bytes_atomic(self.uri, buf.getvalue())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fs, path = storage.filesystem(self.uri)
        if not isinstance(fs, LocalFileSystem):
            yield
            return
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _leaderboard_runs(client: MlflowClient, benchmark: str) -> Iterator[tuple[Run, str | None]]:
    """Every run of a benchmark tagged for the leaderboard, with the owner of its experiment."""
    for exp in runs.benchmark_experiments(client, benchmark):
        owner = runs.experiment_owner(exp.name, benchmark)
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], f"tags.`{TAG_LEADERBOARD}` = '1'", max_results=1000, page_token=token)
            for run in page:
                yield run, owner
            token = page.token
            if not token:
                break


def _metric(name: str) -> pl.Expr:
    element = pl.element()
    value = element.filter(element.struct.field("name") == name).struct.field("value")
    return pl.col("metrics").list.eval(value).list.first().alias(name)


def datasets_ranked(table: LeaderboardTable, spec: BenchmarkSpec) -> list[str]:
    """The dataset cards with entries for ``spec``'s benchmark: its own card first, then by name."""
    present = set(table.read().filter(pl.col("benchmark") == spec.name)["dataset"].to_list())
    return [spec.dataset] + sorted(present - {spec.dataset})


def rank(table: LeaderboardTable, spec: BenchmarkSpec) -> pl.DataFrame:
    """The ranked leaderboard of ``spec`` on its dataset card (``spec.dataset``; see
    :meth:`BenchmarkSpec.on_dataset`): one row per configuration (seeds grouped).

    Columns: ``rank``, ``model``, the primary metric's mean, ``<primary>_std`` (over seeds,
    0 for one), ``<primary>_ci_low``/``_ci_high`` (see the module docstring), the other
    metrics' means, ``n_seeds``, ``n_parameters``, ``worker_hours`` (summed), ``dataset_hash``,
    ``date`` (latest), ``submitters``, ``kind``, ``config_key``, ``runs`` (the MLflow run ids,
    comma-separated).
    """
    p = spec.primary_metric
    low, high = f"{p}_ci_low", f"{p}_ci_high"
    others = [m for m in spec.metrics if m != p]
    entries = table.read().filter((pl.col("benchmark") == spec.name) & (pl.col("dataset") == spec.dataset))
    entries = entries.with_columns(*(_metric(m) for m in (p, low, high, *others)))
    groups = entries.group_by("model", "config_key").agg(
        pl.col(p).mean(),
        pl.col(p).std().fill_null(0.0).alias(f"{p}_std"),
        pl.col(low).mean(),
        pl.col(high).mean(),
        *(pl.col(m).mean() for m in others),
        pl.len().cast(pl.Int64).alias("n_seeds"),
        pl.col("n_parameters").max(),
        pl.col("worker_hours").sum(),
        pl.col("worker_hours").count().alias("_timed"),
        pl.col("dataset_hash").first(),
        pl.col("created").max().alias("date"),
        pl.col("submitter").unique().sort().str.join(", ").alias("submitters"),
        pl.col("kind").first(),
        pl.col("entry_id").sort().str.join(",").alias("runs"),
    )
    t_quantile = pl.Series(stdtrit(np.maximum(groups["n_seeds"].to_numpy() - 1, 1), 0.975))
    t = pl.lit(t_quantile) * pl.col(f"{p}_std") / pl.col("n_seeds").sqrt()
    several = pl.col("n_seeds") > 1
    groups = groups.with_columns(
        pl.when(several).then(pl.col(p) - t).otherwise(pl.col(low)).alias(low),
        pl.when(several).then(pl.col(p) + t).otherwise(pl.col(high)).alias(high),
        pl.when(pl.col("_timed") > 0).then(pl.col("worker_hours")).alias("worker_hours"),
        pl.col(p).rank("min", descending=spec.direction == "maximize").cast(pl.Int64).alias("rank"),
    )
    columns = ["rank", "model", p, f"{p}_std", low, high, *others, "n_seeds", "n_parameters",
               "worker_hours", "dataset_hash", "date", "submitters", "kind", "config_key", "runs"]
    return groups.sort("rank", "model", "config_key", nulls_last=True).select(columns)


def published_frame(spec: BenchmarkSpec) -> pl.DataFrame:
    """The spec's published results as rows (``model``, the primary metric, ``citation``,
    ``data``, ``reported``: the paper's other numbers as text, ``note``); never ranked."""
    p = spec.primary_metric
    return pl.DataFrame([{
        "model": row.model, p: row.metrics.get(p), "citation": " ".join(row.citation.split()), "data": " ".join(row.data.split()),
        "reported": ", ".join(f"{k} {v:.4g}" for k, v in {**{m: v for m, v in row.metrics.items() if m != p}, **row.reported}.items()),
        "note": " ".join((row.note or "").split()),
    } for row in spec.published], schema={"model": pl.String, p: pl.Float64, "citation": pl.String, "data": pl.String,
                                          "reported": pl.String, "note": pl.String})


def format_leaderboard(df: pl.DataFrame, fmt: str, spec: BenchmarkSpec, wide: bool = False) -> str:
    """``df`` (from :func:`rank`) as a text ``table``, ``json`` (a list of rows) or ``csv``.

    The table shows rank, model, source, the primary metric with its 95% interval, seeds,
    compute, date and submitters, then the published results apart, in at most
    :data:`TABLE_WIDTH` columns; ``wide`` shows every column of ``df`` instead.
    """
    if fmt == "json":
        return df.write_json()
    if fmt == "csv":
        return df.write_csv()
    if fmt != "table":
        raise HelioBenchError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not wide:
        return _compact(df, spec)
    short = df.with_columns(pl.col("dataset_hash", "config_key").str.slice(0, 12), pl.col("date").dt.strftime("%Y-%m-%d %H:%M"))
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=1000, float_precision=4, fmt_str_lengths=60,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        return str(short)


#: Columns of the compact table: (header, width, right-aligned).
_COLUMNS = (("rank", 4, True), ("model", 28, False), ("source", 10, False), ("", 24, False), ("seeds", 5, True),
            ("worker-h", 8, True), ("date", 10, False), ("by", 14, False))


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.4g}"


def _line(cells: list[str]) -> str:
    """Cells under the first ``len(cells)`` columns, each cut to its width."""
    out = []
    for (_, width, right), text in zip(_COLUMNS, cells):
        text = _fit(text, width)
        out.append(text.rjust(width) if right else text.ljust(width))
    return "  ".join(out).rstrip()


def _wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, TABLE_WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]


def _compact(df: pl.DataFrame, spec: BenchmarkSpec) -> str:
    p = spec.primary_metric
    better = "higher" if spec.direction == "maximize" else "lower"
    hashes = ", ".join(h[:12] for h in df["dataset_hash"].unique(maintain_order=True).to_list()) or "–"
    lines = [*_wrapped(f"{spec.name} on {spec.dataset}/{spec.split_scheme} — {spec.title}"),
             *_wrapped(f"manifest {hashes}; ranked by {p} ({better} is better) with its 95% interval"),
             _line([h if h else f"{p} [95% CI]" for h, _, _ in _COLUMNS])]
    for r in df.iter_rows(named=True):
        interval = "" if r[f"{p}_ci_low"] is None else f" [{_number(r[f'{p}_ci_low'])}, {_number(r[f'{p}_ci_high'])}]"
        compute = "–" if r["worker_hours"] is None else f"{r['worker_hours']:.3g}"
        lines.append(_line([str(r["rank"]), r["model"], SOURCES.get(r["kind"], r["kind"]), _number(r[p]) + interval,
                            str(r["n_seeds"]), compute, r["date"].strftime("%Y-%m-%d"), r["submitters"]]))
    if df.is_empty():
        lines.append("  (no entries yet: `heliobench evaluate` a trained run, or `heliobench submit` test predictions)")
    published = published_frame(spec)
    if published.height:
        lines.append(f"{PUBLISHED_LABEL} (not ranked against the rows above):")
        for r in published.iter_rows(named=True):
            value = "–" if r[p] is None else f"{r[p]:g}"  # as the paper gives it
            head = _line(["–", r["model"], SOURCES["published"], value]).ljust(sum(w + 2 for _, w, _ in _COLUMNS[:4]))
            lines.append(head + _fit(r["citation"], TABLE_WIDTH - len(head)))
            if r["reported"]:
                lines += _wrapped(f"reported: {r['reported']}", " " * 6)
    return "\n".join(lines)

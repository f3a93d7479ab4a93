"""AIA→AIA channel selection of Lim et al. (2021, ApJL 915 L31): which 1, 2 or 3 channels best translate the rest.

The 170 models of the paper are a greedy forward selection over the nine AIA channels, each model
translating its input channel(s) to one remaining channel:

* 72 single-input models: 9 inputs × 8 outputs;
* 56 double-input models: the best single channel (131 Å) plus one of the other 8, × 7 outputs;
* 42 triple-input models: the best pair (131 + 1600 Å) plus one of the other 7, × 6 outputs.

72 + 56 + 42 = 170. An exhaustive search would be 9·8 + C(9,2)·7 + C(9,3)·6 = 72 + 252 + 504 = 828.
To rerun the selection, pass the winners of the previous stage as ``pair_base`` / ``triple_base``.
Models are ranked by their mean CC over output channels (the paper also reports the minimum CC).

In HelioBench the selection is one Ray Tune grid (``tune_spaces/aia_channel_selection.yaml``, written
from :func:`grid_overrides`): each value sets a trial's ``inputs`` and ``targets`` together.
:func:`channel_selection_report` turns the finished trials into the result table and heat map.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

AIA_CHANNELS = ("94", "131", "171", "193", "211", "304", "335", "1600", "1700")
PAPER_PAIR_BASE = ("131",)
PAPER_TRIPLE_BASE = ("131", "1600")


def _combinations(base: Sequence[str], channels: Sequence[str]) -> list[list[str]]:
    unknown = set(base) - set(channels)
    if unknown:
        raise ValueError(f"base channels {sorted(unknown)} are not among {list(channels)}")
    return [sorted([*base, c], key=channels.index) for c in channels if c not in base]


def channel_selection_grid(channels: Sequence[str] = AIA_CHANNELS, pair_base: Sequence[str] = PAPER_PAIR_BASE,
                           triple_base: Sequence[str] = PAPER_TRIPLE_BASE) -> list[dict[str, object]]:
    """Every model of the selection as ``{"input_channels": [...], "output_channel": ...}``.

    Usable directly as ``tune.grid_search(channel_selection_grid())``; 170 entries with the defaults.
    """
    if len(pair_base) != 1 or len(triple_base) != 2:
        raise ValueError(f"pair_base needs 1 channel and triple_base 2, got {pair_base} and {triple_base}")
    inputs = _combinations([], channels) + _combinations(pair_base, channels) + _combinations(triple_base, channels)
    return [{"input_channels": combo, "output_channel": out} for combo in inputs for out in channels
            if out not in combo]


def grid_overrides(grid: Sequence[Mapping[str, Any]] | None = None, prefix: str = "aia_") -> list[dict[str, list[str]]]:
    """The selection as tune grid values: ``{"inputs": ["aia_131"], "targets": ["aia_94"]}`` per model."""
    return [{"inputs": [prefix + c for c in g["input_channels"]], "targets": [prefix + g["output_channel"]]}
            for g in (channel_selection_grid() if grid is None else grid)]


def _records(overrides: Mapping[str, Any], metrics: Mapping[str, float], labels: Mapping[str, str],
             split: str) -> list[dict[str, object]]:
    """One result per output channel of a finished model that reported ``<split>_cc_<channel>``."""
    from heliobench.engine.tune import flat_overrides

    flat = flat_overrides(dict(overrides))
    inputs = [labels[k] for k in flat["inputs"]]
    return [{"input_channels": inputs, "output_channel": labels[k], "cc": metrics[f"{split}_cc_{labels[k]}"]}
            for k in flat["targets"] if f"{split}_cc_{labels[k]}" in metrics]


def _labels(spec_json: str) -> dict[str, str]:
    """Member key → channel label (``aia_131`` → ``131``) from a benchmark spec's dataset card."""
    from heliobench.specs import BenchmarkSpec

    return {m.key: str(m.channel) for m in BenchmarkSpec.model_validate_json(spec_json).card().members if m.channel}


def trial_results(source: str | Iterable[Any], tracking_uri: str | None = None, split: str = "val") -> list[dict[str, object]]:
    """``input_channels``, ``output_channel`` and ``cc`` of every model a channel-selection search finished.

    ``source``: the MLflow run id of the search (``heliobench tune``'s parent run; its child runs hold each
    trial's overrides as params and its metrics), or Ray Tune results (a ``ResultGrid`` or its ``Result``s).
    ``split="val"`` reads the trials' last validation CC; ``"test"`` the CC logged by ``heliobench evaluate``
    of a child run. Trials without that metric (failed, or not evaluated) are left out.
    """
    if not isinstance(source, str):
        results = [r for r in source if r.metrics]
        return [rec for r in results for rec in _records(r.config["overrides"], r.metrics, _labels(r.config["spec"]), split)]
    from heliobench.specs import load_benchmark
    from heliobench.tracking import runs

    client = runs.connect(tracking_uri)
    parent = client.get_run(source)
    spec = load_benchmark(parent.data.tags[runs.TAG_BENCHMARK])
    labels = _labels(spec.model_dump_json())
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{source}'", max_results=5000)
    return [rec for run in sorted(children, key=lambda r: r.info.start_time)
            for rec in _records({k: json.loads(v) for k, v in run.data.params.items()}, run.data.metrics, labels, split)]


def channel_selection_table(results: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    """One row per (input combination, output channel) with its mean ``cc`` over the given results.

    Each result holds ``input_channels``, ``output_channel`` and the test ``cc`` of that model. Columns:
    ``inputs`` ("131+1600"), ``n_inputs``, ``output``, ``cc``, ``n_results``; in order of first appearance.
    """
    rows = [{"inputs": "+".join(r["input_channels"]), "n_inputs": len(r["input_channels"]),
             "output": r["output_channel"], "cc": float(r["cc"])} for r in results]
    table = pl.DataFrame(rows, schema={"inputs": pl.String, "n_inputs": pl.Int64, "output": pl.String,
                                       "cc": pl.Float64})
    return (table.group_by("inputs", "n_inputs", "output", maintain_order=True)
            .agg(pl.col("cc").mean(), pl.len().alias("n_results")))


def channel_selection_heatmap(results: Sequence[Mapping[str, object]], path: str | Path) -> Path:
    """PNG heat map of mean CC: input combinations (rows, by number of inputs) × output channels (Å), plus the
    row mean."""
    table = channel_selection_table(results)
    outputs = sorted(set(table["output"]), key=float)
    combos = list(dict.fromkeys(table.sort("n_inputs", maintain_order=True)["inputs"]))  # 1, 2, then 3 inputs
    cc = np.full((len(combos), len(outputs) + 1), np.nan)
    for row in table.iter_rows(named=True):
        cc[combos.index(row["inputs"]), outputs.index(row["output"])] = row["cc"]
    cc[:, -1] = np.nanmean(cc[:, :-1], axis=1)

    fig = Figure(figsize=(max(4.5, 1.8 + 0.7 * cc.shape[1]), max(2.5, 1.2 + 0.32 * len(combos))))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(cc), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(cc.shape[1]), [*outputs, "mean"])
    ax.set_yticks(range(len(combos)), combos)
    ax.set_xlabel("output channel (Å)")
    ax.set_ylabel("input channels (Å)")
    for (i, j), value in np.ndenumerate(cc):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="w" if value < 0.6 else "k")
    fig.colorbar(image, ax=ax, label="CC")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def channel_selection_summary(results: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    """Per input combination: mean and minimum CC over its output channels, ranked within 1, 2, 3 inputs.

    Columns ``inputs``, ``n_inputs``, ``mean_cc``, ``min_cc``, ``n_outputs``, ``rank`` (1 = best mean CC).
    """
    return (channel_selection_table(results)
            .group_by("inputs", "n_inputs", maintain_order=True)
            .agg(pl.col("cc").mean().alias("mean_cc"), pl.col("cc").min().alias("min_cc"), pl.len().alias("n_outputs"))
            .with_columns(pl.col("mean_cc").rank("ordinal", descending=True).over("n_inputs").cast(pl.Int64).alias("rank"))
            .sort("n_inputs", "rank"))


def channel_selection_report(source: str | Iterable[Any], out_dir: str | Path, tracking_uri: str | None = None,
                             split: str = "val") -> pl.DataFrame:
    """The selection's result table (see :func:`channel_selection_summary`) from a finished search.

    Writes ``channel_selection.csv`` (every model's CC), ``channel_selection_summary.csv`` and the heat map
    ``channel_selection_cc.png`` into ``out_dir``. ``source`` and ``split`` as in :func:`trial_results`.
    """
    results = trial_results(source, tracking_uri, split)
    if not results:
        raise ValueError(f"channel selection {source if isinstance(source, str) else 'results'}: no trial reported {split}_cc_*")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    channel_selection_table(results).write_csv(out / "channel_selection.csv")
    summary = channel_selection_summary(results)
    summary.write_csv(out / "channel_selection_summary.csv")
    channel_selection_heatmap(results, out / "channel_selection_cc.png")
    return summary

"""AIA→AIA channel selection of Lim et al. (2021, ApJL 915 L31): which 1, 2 or 3 channels best translate the rest.

The 170 models of the paper are a greedy forward selection over the nine AIA channels, each model
translating its input channel(s) to one remaining channel:

* 72 single-input models: 9 inputs × 8 outputs;
* 56 double-input models: the best single channel (131 Å) plus one of the other 8, × 7 outputs;
* 42 triple-input models: the best pair (131 + 1600 Å) plus one of the other 7, × 6 outputs.

72 + 56 + 42 = 170. An exhaustive search would be 9·8 + C(9,2)·7 + C(9,3)·6 = 72 + 252 + 504 = 828.
To rerun the selection, pass the winners of the previous stage as ``pair_base`` / ``triple_base``.
Models are ranked by their mean CC over output channels (the paper also reports the minimum CC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
    """PNG heat map of mean CC: input combinations (rows) × output channels (Å), plus the row mean."""
    table = channel_selection_table(results)
    outputs = sorted(set(table["output"]), key=float)
    combos = list(dict.fromkeys(table["inputs"]))
    cc = np.full((len(combos), len(outputs) + 1), np.nan)
    for row in table.iter_rows(named=True):
        cc[combos.index(row["inputs"]), outputs.index(row["output"])] = row["cc"]
    cc[:, -1] = np.nanmean(cc[:, :-1], axis=1)

    fig = Figure(figsize=(1.0 + 0.6 * cc.shape[1], 1.0 + 0.3 * len(combos)))
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

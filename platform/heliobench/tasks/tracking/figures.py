"""Pictures of tracking: frames with true, starting and predicted boxes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heliobench.tasks.tracking.tracks import BOX, EVENT_NAMES, TYPE, present

#: Box colours: truth, the box the tracker started from, its answer.
COLOURS = {"truth": "lime", "start": "deepskyblue", "prediction": "orangered"}


def _draw(ax, box: np.ndarray, colour: str, style: str = "-") -> None:
    from matplotlib.patches import Rectangle

    if np.isfinite(box).all():
        ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False,
                               edgecolor=colour, linestyle=style, linewidth=1.0))


def _frame(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(image, origin="lower", cmap="gray", extent=(0, image.shape[1], 0, image.shape[0]))
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def pair_figure(curr: np.ndarray, prev_tables: np.ndarray, true_tables: np.ndarray, boxes: np.ndarray,
                channels: Sequence[tuple[int, str]], ids: list[str], path: Path) -> Path:
    """Current frames (B, C, H, W), one column per tracked channel, with each track's boxes.

    ``channels`` gives (event type code, frame name) per channel; a channel's panel shows
    the tracks of its event type: truth (green), start (blue, dashed) and prediction (red).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(ids), 4)
    fig, axes = plt.subplots(n, len(channels), figsize=(3.2 * len(channels), 3.2 * n), squeeze=False)
    for i in range(n):
        for c, (code, name) in enumerate(channels):
            ax = axes[i, c]
            _frame(ax, curr[i, c], f"{ids[i]} {name} ({EVENT_NAMES[code]})")
            for table, colour, style in ((true_tables[i], "truth", "-"), (prev_tables[i], "start", "--")):
                for row in table[present(table) & (table[:, TYPE] == code)]:
                    _draw(ax, row[BOX], COLOURS[colour], style)
            for k in np.flatnonzero(present(prev_tables[i]) & (prev_tables[i][:, TYPE] == code)):
                _draw(ax, boxes[i, k], COLOURS["prediction"])
    fig.suptitle("truth (green), start (blue, dashed), prediction (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def sequence_figure(frames: Sequence[np.ndarray], boxes: np.ndarray, titles: list[str], path: Path) -> Path:
    """Frames of a tracked sequence (up to 16, evenly spaced) with the tracker's box on each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), 16)).round().astype(int))
    cols = min(len(shown), 4)
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax, t in zip(axes.flat, shown):
        _frame(ax, frames[t], titles[t])
        _draw(ax, boxes[t], COLOURS["prediction"])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

"""Detections drawn on a magnetogram, in the style of de Oliveira & Gradvohl (2020), Fig. 11."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike

from heliobench.tasks.detection.targets import as_boxes


def draw_detections(image: ArrayLike, boxes: ArrayLike, labels: Sequence[str], scores: ArrayLike,
                    path: str | Path, limit: float = 1000.0) -> Path:
    """Write ``image`` with its boxes, each captioned "class confidence%", to ``path``.

    The magnetogram is grey, clipped to +/- ``limit`` (gauss for calibrated data), with row
    0 at the bottom as a sunpy map's array; one colour per class. Returns the path.
    """
    array = np.asarray(image, dtype=float)
    boxes, scores = as_boxes(boxes), np.asarray(scores, dtype=float).reshape(-1)
    if array.ndim != 2 or not len(boxes) == len(labels) == len(scores):
        raise ValueError(
            f"expected a 2-D image and as many labels and scores as boxes; got image {array.shape}, "
            f"{len(boxes)} boxes, {len(labels)} labels, {len(scores)} scores")
    fig = Figure(figsize=(7, 7), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.clip(array, -limit, limit), cmap="gray", vmin=-limit, vmax=limit, origin="lower",
              extent=(0, array.shape[1], 0, array.shape[0]))
    colours = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(labels))}
    for (x0, y0, x1, y1), label, score in zip(boxes, labels, scores):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colours[label], linewidth=1.5))
        ax.text(x0, y1, f"{label} {score:.0%}", color=colours[label], fontsize=8, va="bottom")
    ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path

"""Figures of the active-region tasks: detections on a magnetogram in the style of
de Oliveira & Gradvohl (2020), Fig. 11, validation panels, and classifier cut-outs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike

from heliobench.tasks.detection.metrics import confusion_matrix
from heliobench.tasks.detection.regions import finite_rows
from heliobench.tasks.detection.targets import as_boxes

#: Display range of registered magnetograms: the HMI pipeline maps +/-3000 G to +/-1, so
#: +/-1000 G (the paper's grey scale) is +/-1/3.
REGISTERED_LIMIT = 1000.0 / 3000.0


def _show(ax, image: np.ndarray, limit: float) -> None:
    """A magnetogram in grey, clipped to +/- ``limit``, row 0 at the bottom (solar south)."""
    ax.imshow(np.clip(image, -limit, limit), cmap="gray", vmin=-limit, vmax=limit, origin="lower",
              extent=(0, image.shape[1], 0, image.shape[0]))
    ax.set_axis_off()


def _boxes(ax, boxes: np.ndarray, colour: str, captions: Sequence[str] | None = None) -> None:
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.2))
        if captions is not None:
            ax.text(x0, y1, captions[k], color=colour, fontsize=7, va="bottom")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def draw_detections(image: ArrayLike, boxes: ArrayLike, labels: Sequence[str], scores: ArrayLike,
                    path: str | Path, limit: float = REGISTERED_LIMIT, score_format: str = "{:.0%}") -> Path:
    """Write ``image`` with its boxes, each captioned "class score", to ``path``.

    The magnetogram is grey, clipped to +/- ``limit`` (in the image's units), with row 0 at
    the bottom as a sunpy map's array; one colour per class. Returns the path.
    """
    array = np.asarray(image, dtype=float)
    boxes, scores = as_boxes(boxes), np.asarray(scores, dtype=float).reshape(-1)
    if array.ndim != 2 or not len(boxes) == len(labels) == len(scores):
        raise ValueError(
            f"expected a 2-D image and as many labels and scores as boxes; got image {array.shape}, "
            f"{len(boxes)} boxes, {len(labels)} labels, {len(scores)} scores")
    fig = Figure(figsize=(7, 7), layout="constrained")
    ax = fig.subplots()
    _show(ax, array, limit)
    colours = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(labels))}
    for box, label, score in zip(boxes, labels, scores):
        _boxes(ax, box[None], colours[label], [f"{label} {score_format.format(score)}"])
    return _save(fig, path)


def detection_panels(images: np.ndarray, truths: np.ndarray, detections: np.ndarray, ids: Sequence[str],
                     path: str | Path) -> Path:
    """Up to four registered magnetograms with their truth boxes (green) and detections
    (orange, captioned with the DetectNet confidence)."""
    n = min(4, len(ids))
    fig = Figure(figsize=(4 * n, 4.3), layout="constrained")
    for ax, image, truth, found, sample in zip(np.atleast_1d(fig.subplots(1, n)), images, truths, detections, ids):
        _show(ax, image, REGISTERED_LIMIT)
        _boxes(ax, finite_rows(truth), "limegreen")
        found = finite_rows(found)
        _boxes(ax, found[:, :4], "orange", [f"{c:.2f}" for c in found[:, 4]])
        ax.set_title(f"{sample}: truth (green), DetectNet (orange)", fontsize=8)
    return _save(fig, path)


def classification_panels(cutouts: np.ndarray, labels: np.ndarray, logits: np.ndarray, class_names: Sequence[str],
                          path: str | Path) -> Path:
    """Up to eight region cut-outs captioned "true -> predicted", and the confusion matrix of all given."""
    shown = min(8, len(cutouts))
    predicted = np.asarray(logits).argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    grid = fig.add_gridspec(2, 6)
    for k in range(shown):
        ax = fig.add_subplot(grid[k // 4, k % 4])
        _show(ax, cutouts[k], REGISTERED_LIMIT)
        ax.set_title(f"{class_names[labels[k]]} -> {class_names[predicted[k]]}", fontsize=7)
    ax = fig.add_subplot(grid[:, 4:])
    cm = confusion_matrix(labels, predicted, len(class_names))
    ax.imshow(cm, cmap="Blues")
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(ticks, class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{len(labels)} regions", fontsize=8)
    return _save(fig, path)

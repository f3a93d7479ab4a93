"""Figure of input | reconstruction | difference per image; the difference localises degradation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from torch import Tensor


def _images(batch: ArrayLike | Tensor) -> np.ndarray:
    """(N, H, W) float array from (N, H, W) or single-channel (N, 1, H, W) arrays or tensors."""
    if isinstance(batch, Tensor):
        batch = batch.detach().cpu().numpy()
    array = np.asarray(batch, dtype=float)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W) or (N, 1, H, W), got {array.shape}")
    return array


def quality_figure(
    inputs: ArrayLike | Tensor,
    reconstructions: ArrayLike | Tensor,
    captions: list[str],
    path: str | Path,
) -> Path:
    """Write one row per image (its caption over the input) to ``path``; returns the path.

    Images in [-1, 1] are shown in grey; the difference |input - reconstruction| shares one
    colour scale across rows so that rows compare.
    """
    x, y = _images(inputs), _images(reconstructions)
    if not (len(x) == len(y) == len(captions)) or x.shape != y.shape:
        raise ValueError(
            f"inputs {x.shape}, reconstructions {y.shape} and {len(captions)} captions "
            "do not describe the same images"
        )
    difference = np.abs(x - y)
    vmax = max(float(difference.max()), 1e-6)
    fig = Figure(figsize=(9, 3 * len(x)), layout="constrained")
    axes = fig.subplots(len(x), 3, squeeze=False)
    for row, (ax_in, ax_rec, ax_diff) in enumerate(axes):
        ax_in.imshow(x[row], cmap="gray", vmin=-1, vmax=1, origin="lower")
        ax_in.set_title(captions[row], fontsize=9)
        ax_rec.imshow(y[row], cmap="gray", vmin=-1, vmax=1, origin="lower")
        ax_rec.set_title("reconstruction", fontsize=9)
        shown = ax_diff.imshow(difference[row], cmap="inferno", vmin=0, vmax=vmax, origin="lower")
        ax_diff.set_title("|input - reconstruction|", fontsize=9)
        fig.colorbar(shown, ax=ax_diff, fraction=0.046)
        for ax in (ax_in, ax_rec, ax_diff):
            ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path

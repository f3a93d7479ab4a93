"""Figures of translated channels: input | generated (| truth), in the normalised log2 scale."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Display range of a normalised HMI magnetogram: ±0.1 is ±300 G.
HMI_DISPLAY = 0.1


@dataclass(frozen=True)
class Panelset:
    """One sample: its input (H, W) and generated and true channels (C, H, W), all normalised."""

    name: str
    input: np.ndarray
    generated: np.ndarray
    truth: np.ndarray | None = None


def _cmap(channel: str) -> str:
    import sunpy.visualization.colormaps  # noqa: F401 - registers the sdoaia* colour maps

    return f"sdoaia{channel}" if f"sdoaia{channel}" in matplotlib.colormaps else "gray"


def _range(images: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([i.ravel() for i in images])
    low, high = np.percentile(values, [1.0, 99.5])
    return float(low), float(max(high, low + 1e-3))


def translation_figure(samples: list[Panelset], input_label: str, input_channel: str, channels: list[str],
                       path: Path) -> Path:
    """A grid: per sample a row of the input and generated channels, and a row of the truth if given.

    Generated and true images of a channel share one display range (their 1st–99.5th percentile).
    """
    rows = sum(2 if s.truth is not None else 1 for s in samples)
    cols = 1 + len(channels)
    fig = Figure(figsize=(2.0 * cols, 2.1 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    row = 0
    for s in samples:
        ax = axes[row, 0]
        if input_channel == "magnetogram":
            ax.imshow(s.input, origin="lower", cmap="gray", vmin=-HMI_DISPLAY, vmax=HMI_DISPLAY)
        else:
            ax.imshow(s.input, origin="lower", cmap=_cmap(input_channel), vmin=-1.0, vmax=1.0)
        ax.set_title(f"{s.name}\n{input_label}", fontsize=7)
        for j, ch in enumerate(channels):
            shown = [s.generated[j]] + ([s.truth[j]] if s.truth is not None else [])
            vmin, vmax = _range(shown)
            for k, (img, label) in enumerate(zip(shown, ("generated", "truth"))):
                axes[row + k, j + 1].imshow(img, origin="lower", cmap=_cmap(ch), vmin=vmin, vmax=vmax)
                axes[row + k, j + 1].set_title(f"{ch} Å {label}", fontsize=7)
        row += 2 if s.truth is not None else 1
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path

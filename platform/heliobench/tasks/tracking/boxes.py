"""The one box convention of the tracking task, and the few box operations every part needs.

A box is ``(x0, y0, x1, y1)`` in 0-based, continuous pixel coordinates of the frame array: x
runs along columns and y along rows (``frame[y, x]``). Pixel (column i, row j) covers
[i, i+1) x [j, j+1), so its centre is at (i + 0.5, j + 0.5). A box covers [x0, x1) x [y0, y1):
width ``x1 - x0``, height ``y1 - y0``, area their product, centre ``((x0 + x1) / 2,
(y0 + y1) / 2)``. ``(0, 0, W, H)`` is the whole W x H frame. No "+1" appears anywhere.

Astropy and SunPy WCS put pixel *centres* at integers, so a WCS pixel coordinate is the box
coordinate minus 0.5.

A row of NaN among predicted boxes means the tracker gave no box for that frame.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_boxes(boxes: ArrayLike, name: str = "boxes") -> np.ndarray:
    """``boxes`` as a float64 array of shape (N, 4). A single box becomes shape (1, 4)."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name}: expected boxes (x0, y0, x1, y1) shaped (N, 4), "
                         f"got shape {np.shape(boxes)}")
    return array


def centres(boxes: np.ndarray) -> np.ndarray:
    """Box centres, shape (N, 2): (x, y)."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def sizes(boxes: np.ndarray) -> np.ndarray:
    """Box widths and heights, shape (N, 2)."""
    return boxes[:, 2:] - boxes[:, :2]


def from_centres(centre: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Boxes from centres (N, 2) and sizes (N, 2)."""
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def clip_to_frame(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes with their corners clipped to the frame [0, width] x [0, height]."""
    return np.clip(boxes, 0.0, [width, height, width, height])

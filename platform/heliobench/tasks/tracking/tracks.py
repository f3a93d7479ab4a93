"""The HEK box tables of a shard (``prep/labels/hek.py``) as the tracking task reads them.

A table is (K, 7) or (B, K, 7) float64, rows ``[track_key, event_type, x0, y0, x1, y1,
noaa]`` padded with NaN. Two tables of one pair are joined by ``track_key``.

Ground truth follows the event selection of Sarker & Banda's download script: a record
counts only when all four corners of its box lie on the solar disk. Limb events, whose
HEK boxes are squeezed against the limb, are left out, so a track ends where it nears
the limb. The disk is that of the default registration: centred in the frame, radius
``size * DISK_RADIUS_FRACTION`` pixels.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from heliobench.prep.labels.hek import COLUMNS, EVENT_TYPES
from heliobench.prep.pipeline import DISK_RADIUS_FRACTION

KEY, TYPE = COLUMNS.index("track_key"), COLUMNS.index("event_type")
BOX = slice(COLUMNS.index("x0"), COLUMNS.index("y1") + 1)
#: Event type code → name, the inverse of the encoder's ``EVENT_TYPES``.
EVENT_NAMES = {code: name for name, code in EVENT_TYPES.items()}


def present(table: np.ndarray) -> np.ndarray:
    """Rows holding a track with a finite box, shape ``table.shape[:-1]``."""
    return np.isfinite(table[..., KEY]) & np.isfinite(table[..., BOX]).all(axis=-1)


def on_disk(boxes: np.ndarray, size: int) -> np.ndarray:
    """Boxes (..., 4) whose four corners all lie on the registered disk of a ``size``-pixel frame."""
    centre, radius = size / 2, size * DISK_RADIUS_FRACTION
    xs, ys = boxes[..., [0, 2]] - centre, boxes[..., [1, 3]] - centre
    far_x, far_y = np.abs(xs).max(axis=-1), np.abs(ys).max(axis=-1)
    with np.errstate(invalid="ignore"):
        return np.hypot(far_x, far_y) <= radius


def ground_truth(table: np.ndarray, size: int, event_types: Collection[int] | None = None) -> np.ndarray:
    """A copy of ``table`` keeping rows with a positive-size box on the disk (others NaN).

    ``event_types`` (codes) keeps only those event types; None keeps all.
    """
    boxes = table[..., BOX]
    with np.errstate(invalid="ignore"):
        keep = present(table) & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    keep &= on_disk(boxes, size)
    if event_types is not None:
        keep &= np.isin(table[..., TYPE], list(event_types))
    return np.where(keep[..., None], table, np.nan)


def match(prev: np.ndarray, curr: np.ndarray) -> np.ndarray:
    """For each row of ``prev`` (B, K, 7), the row of ``curr`` (B, K, 7) with its track, or -1."""
    prev_keys, curr_keys = prev[..., KEY], curr[..., KEY]
    same = (prev_keys[..., :, None] == curr_keys[..., None, :]) & np.isfinite(prev_keys)[..., :, None]
    return np.where(same.any(axis=-1), same.argmax(axis=-1), -1)

"""Regions of a sample from its encoded SRS table (:mod:`heliobench.prep.labels.srs`).

The paper keeps boxes of more than 36 pixels on 256-pixel magnetograms; at another
benchmark resolution the same physical cut is ``36 * (resolution / 256)**2`` pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from heliobench.specs import BenchmarkSpec
from heliobench.tasks.detection.classes import label_lookup
from heliobench.tasks.detection.targets import MIN_AREA_PX, large_enough

#: The resolution at which the paper's minimum box area is given.
PAPER_RESOLUTION_PX = 256
#: Columns of the encoded SRS table (see :data:`heliobench.prep.labels.srs.COLUMNS`).
CLASS_COLUMN, BOX_COLUMNS = 1, slice(2, 6)


class Regions(NamedTuple):
    """The kept regions of one sample."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 in pixel-edge coordinates
    labels: np.ndarray  # (N,) class labels under the class map (-1 where the map has none)


def min_box_area(spec: BenchmarkSpec) -> float:
    """The minimum box area (exclusive) in pixels at the benchmark's resolution."""
    at_256 = float(spec.evaluation.get("min_box_area_px", MIN_AREA_PX))
    return at_256 * (spec.resolution_px / PAPER_RESOLUTION_PX) ** 2


def sample_regions(table: np.ndarray, min_area_px: float, class_map: str = "full") -> Regions:
    """Regions of one encoded SRS table whose box is on the disk and larger than ``min_area_px``."""
    table = np.asarray(table, dtype=np.float64)
    boxes = table[:, BOX_COLUMNS]
    finite = np.isfinite(boxes).all(axis=1)
    keep = finite.copy()
    keep[finite] = large_enough(boxes[finite], min_area_px)
    index = table[keep, CLASS_COLUMN]
    labels = np.full(len(index), -1, dtype=np.int64)
    known = np.isfinite(index)
    labels[known] = label_lookup(class_map)[index[known].astype(np.int64)]
    return Regions(boxes[keep], labels)


def padded_boxes(tables: np.ndarray, min_area_px: float, rows: int) -> np.ndarray:
    """(B, rows, 4) float32 kept boxes of a batch of encoded tables, NaN padded."""
    out = np.full((len(tables), rows, 4), np.nan, dtype=np.float32)
    for i, table in enumerate(tables):
        boxes = sample_regions(table, min_area_px).boxes
        out[i, :len(boxes)] = boxes
    return out


def finite_rows(padded: np.ndarray) -> np.ndarray:
    """The rows of a NaN-padded (K, C) array that are not padding."""
    return padded[np.isfinite(padded).all(axis=1)]

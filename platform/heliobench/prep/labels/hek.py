"""HEK event files as padded box tables on a sample's registered grid.

One row per event track visible on the grid frame, :data:`K_MAX` rows padded with NaN
(a frame with more visible tracks is an error naming the file, not a silent cut). Columns (:data:`COLUMNS`):

``track_key``
    A stable 31-bit integer (CRC-32 of the reader's ``track_id``, the high bit cleared):
    the feature method's ``frm_specificid`` or, where that is empty (the SWPC and
    SolarSoft sources of real active regions), ``"NOAA <full region number>"``. Records of
    one track share the key across frames and days; it is exact in float64.
``event_type``
    0 for an active region (AR), 1 for a coronal hole (CH). Other event types are left out.
``x0, y0, x1, y1``
    The ``hpc_bbox`` polygon's bounding box in the grid's registered pixels, in the box
    convention of :mod:`heliobench.tasks.tracking.boxes`: continuous coordinates where
    pixel (column i, row j) covers [i, i+1) x [j, j+1). The WCS puts pixel centres at
    integers, so a vertex at WCS pixel x lies at box coordinate x + 0.5.
``noaa``
    The full NOAA region number, NaN where there is none (coronal holes).

An event belongs to the frame when the frame's observation time lies in
[``event_starttime``, ``event_endtime``]. The time is the grid image's own ``obs_time``
(the frame the boxes are drawn on), which can differ from the sample's nominal time by
the pairing tolerance. Where several records of a track are valid, the one that started
last is kept. Events without a bounding box or without a track identifier are left out.
Rows are ordered by event type, then track key.
"""

from __future__ import annotations

import zlib
from datetime import datetime

import numpy as np
import polars as pl

from heliobench.archive.readers import read_hek
from heliobench.errors import ConfigError, ReaderError
from heliobench.prep.image import PrepImage
from heliobench.prep.labels import LabelContext

#: Rows of the table (visible tracks); the rest are NaN. A busy day of real HEK has about 15
#: active regions and as many coronal holes per feature method.
K_MAX = 64
#: Column order of a row.
COLUMNS = ("track_key", "event_type", "x0", "y0", "x1", "y1", "noaa")
#: Event type codes of the ``event_type`` column.
EVENT_TYPES = {"AR": 0, "CH": 1}


def track_key(track_id: str) -> int:
    """The 31-bit integer key of a HEK ``track_id`` (CRC-32 with the high bit cleared)."""
    return zlib.crc32(track_id.encode("utf-8")) & 0x7FFFFFFF


def valid_events(events: pl.DataFrame, time: datetime) -> pl.DataFrame:
    """AR and CH records valid at ``time`` that have a track and a box, one per track."""
    return (
        events.filter(
            pl.col("event_type").is_in(list(EVENT_TYPES))
            & pl.col("track_id").is_not_null()
            & (pl.col("hpc_bbox").list.len() > 0)
            & (pl.col("start_time") <= time)
            & (pl.col("end_time") >= time)
        )
        .sort("start_time")
        .unique("track_id", keep="last", maintain_order=True)
    )


def box_table(events: pl.DataFrame, grid: PrepImage, uri: str) -> np.ndarray:
    """The (K_MAX, 7) float64 table (see :data:`COLUMNS`) of ``events`` on ``grid``; ReaderError
    naming ``uri`` when more than :data:`K_MAX` tracks are visible."""
    if events.height > K_MAX:
        raise ReaderError(uri, f"{events.height} event tracks visible at {grid.obs_time:%Y-%m-%dT%H:%M:%S}, "
                               f"more than the {K_MAX} an encoded table holds")
    rows = []
    for event in events.iter_rows(named=True):
        vertices = np.asarray(event["hpc_bbox"], dtype=float)
        x, y = grid.world_to_pixel(vertices[:, 0], vertices[:, 1])
        noaa = event["ar_noaanum"]
        rows.append([track_key(event["track_id"]), EVENT_TYPES[event["event_type"]],
                     x.min() + 0.5, y.min() + 0.5, x.max() + 0.5, y.max() + 0.5,
                     np.nan if noaa is None else noaa])
    table = np.full((K_MAX, len(COLUMNS)), np.nan)
    if rows:
        found = np.asarray(rows, dtype=np.float64)
        table[: len(found)] = found[np.lexsort((found[:, 0], found[:, 1]))]
    return table


def encode_hek(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The box table of HEK file ``uri`` for the sample's grid frame (see the module docstring)."""
    if ctx.grid is None:
        raise ConfigError(f"member {ctx.member.key}: a hek label needs a grid (the observation member "
                          f"whose registered image the boxes are drawn on); set `grid:` in the card "
                          f"and shard that member too")
    return box_table(valid_events(read_hek(raw, uri), ctx.grid.obs_time), ctx.grid, uri)

"""HEK feature outlines (``hpc_boundcc``) as masks on a sample's registered grid.

A ``hek`` member with a ``filter`` (``{event_type: CH, frm_name: SPoCA}``) is the mask of
the outlines of the HEK records whose fields have those values: coronal holes or active
regions of one feature-recognition method (SPoCA, CHIMERA, ...).

Which records. The frame is the card's ``grid`` image, at its own observation time ``t``.
A record is drawn when ``t`` lies in [``event_starttime``, ``event_endtime``] and it has an
outline; of several records of one track (``frm_specificid``) valid at ``t``, the one that
started last is kept (records without a track are all kept).

Geometry. As HEK and sunpy's HEK client define them, an outline is helioprojective arcsec
seen from Earth at ``event_starttime``. When that differs from ``t`` by more than the card's
pairing tolerance, the outline is rotated to ``t`` by differential rotation and seen
from the image's observer (:func:`sunpy.physics.differential_rotation.solar_rotate_coordinate`;
vertices rotated off the disk are dropped); otherwise it is taken in the image's own Helioprojective frame. The
image's WCS (``world_to_pixel``) places it on the image's native pixels, where it is filled
and then carried through the member pipeline's geometric steps like a FITS mask.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
import polars as pl
from astropy.coordinates import SkyCoord

from heliobench.archive.readers import read_hek
from heliobench.archive.readers.hek import HEK_SCHEMA
from heliobench.archive.readers.scss import fill_polygons
from heliobench.errors import ConfigError
from heliobench.prep.labels import LabelContext, grid_map, registered_mask

if TYPE_CHECKING:
    import sunpy.map


def outline_events(events: pl.DataFrame, selection: dict[str, str], time: datetime) -> pl.DataFrame:
    """The records matching ``selection`` (column → value) valid at ``time`` with an
    outline, one per track (the latest started), ordered by start time."""
    unknown = sorted(set(selection) - set(HEK_SCHEMA))
    if unknown:
        raise ConfigError(f"HEK filter on unknown field(s) {unknown}; known: {', '.join(HEK_SCHEMA)}")
    matching = pl.all_horizontal([pl.col(key).cast(pl.String) == value for key, value in selection.items()])
    valid = events.filter(matching & (pl.col("hpc_boundcc").list.len() >= 3)
                          & (pl.col("start_time") <= time) & (pl.col("end_time") >= time)).sort("start_time")
    tracked = valid.filter(pl.col("track_id").is_not_null()).unique("track_id", keep="last", maintain_order=True)
    return pl.concat([tracked, valid.filter(pl.col("track_id").is_null())]).sort("start_time")


def outline_pixels(vertices: list[list[float]], observed: datetime, native: sunpy.map.GenericMap,
                   tolerance: timedelta) -> np.ndarray:
    """0-based native pixels ``(n, 2)`` of an outline (arcsec, seen from Earth at ``observed``)
    on ``native``, rotated to the map's time when the two differ by more than ``tolerance``."""
    from sunpy.coordinates import Helioprojective, get_earth
    from sunpy.physics.differential_rotation import solar_rotate_coordinate

    xy = np.asarray(vertices, dtype=float).reshape(-1, 2)
    t = native.date.utc.to_datetime(timezone=timezone.utc)
    if abs(t - observed) <= tolerance:
        coord = SkyCoord(xy[:, 0] * u.arcsec, xy[:, 1] * u.arcsec, frame=native.coordinate_frame)
    else:
        frame = Helioprojective(observer=get_earth(observed), obstime=observed)
        coord = solar_rotate_coordinate(SkyCoord(xy[:, 0] * u.arcsec, xy[:, 1] * u.arcsec, frame=frame),
                                        observer=native.observer_coordinate)
    pixels = native.world_to_pixel(coord)
    return np.column_stack([pixels.x.to_value(u.pix), pixels.y.to_value(u.pix)])


def encode_hek_outlines(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The outlines of the member's filtered HEK records as a registered ``uint8`` 0/1 mask."""
    native = grid_map(uri, ctx)
    t = native.date.utc.to_datetime(timezone=timezone.utc)
    tolerance = timedelta(minutes=ctx.tolerance_min or 0)
    events = outline_events(read_hek(raw, uri), ctx.member.filter or {}, t)
    polygons = [outline_pixels(e["hpc_boundcc"], e["start_time"], native, tolerance) for e in events.iter_rows(named=True)]
    return registered_mask(fill_polygons(polygons, native.data.shape), native, ctx)

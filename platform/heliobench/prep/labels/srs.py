"""NOAA SRS region summaries as region boxes on a sample's registered grid.

One row per sunspot region (SRS section I) of the report, :data:`K_MAX` rows padded with
NaN, float64 columns :data:`COLUMNS`:

* ``noaa``: full NOAA region number;
* ``class_index``: the Mount Wilson class as an index into
  :data:`~heliobench.tasks.detection.classes.MT_WILSON_CLASSES` (NaN when the report gives none);
* ``x0, y0, x1, y1``: the region's box in pixel-edge coordinates of the grid member's
  registered image (see :mod:`heliobench.tasks.detection.targets`), NaN when the region has
  rotated behind the limb by the sample time;
* ``area_msh``: the reported sunspot area (millionths of a hemisphere).

Geometry. SRS locations are valid at 00:00 UT of the issue day. Each region is rotated
from then to the sample time by the Howard et al. (1990) synodic differential rotation
(:func:`sunpy.sun.models.differential_rotation`), then a Stonyhurst square centred on it is
projected for the Earth observer at the sample time (SDO's view differs by under 0.03%)
onto the grid through its WCS. The square's side is the region's longitudinal extent
(SRS ``LL``) plus :data:`BORDER_DEG` on each side for the facular field around the spots,
so that a single-spot region keeps a box covering its magnetic footprint. No size filter
is applied here: tasks filter boxes at their own resolution.

Plage regions without spots (section IA) have no class, area or extent and are left out,
as are regions due to return (section II).
"""

from __future__ import annotations

from datetime import datetime, time, timezone

import astropy.units as u
import numpy as np

from heliobench.errors import ConfigError, ReaderError
from heliobench.prep.labels import LabelContext

#: Rows of the encoded table (regions of one report).
K_MAX = 32
#: Columns of the encoded table.
COLUMNS = ("noaa", "class_index", "x0", "y0", "x1", "y1", "area_msh")
#: Border added on each side of a region's longitudinal extent (degrees of heliographic arc).
BORDER_DEG = 2.0


def valid_time(issued: datetime) -> datetime:
    """When an SRS report's locations are valid: 00:00 UT of its issue day."""
    return datetime.combine(issued.date(), time(0), tzinfo=timezone.utc)


def rotated_longitude(lon_deg: np.ndarray, lat_deg: np.ndarray, hours: float) -> np.ndarray:
    """Stonyhurst longitudes after ``hours`` of synodic differential rotation (Howard model)."""
    from sunpy.sun.models import differential_rotation

    shift = differential_rotation(hours * u.h, np.asarray(lat_deg, float) * u.deg, model="howard", frame_time="synodic")
    return np.asarray(lon_deg, float) + shift.to_value(u.deg)


def encode_srs(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The report's regions as a (K_MAX, 7) float64 table on the grid of ``ctx`` (see the module)."""
    from sunpy.coordinates import get_earth

    from heliobench.archive.readers.srs import read_srs
    from heliobench.tasks.detection.classes import MT_WILSON_CLASSES
    from heliobench.tasks.detection.targets import grid_box

    if ctx.grid is None:
        raise ConfigError(f"member {ctx.member.key}: an SRS label needs a grid (the observation its boxes are drawn on)")
    regions = read_srs(raw, uri).filter(section="I")
    if regions.height > K_MAX:
        raise ReaderError(uri, f"{regions.height} sunspot regions, more than the {K_MAX} an encoded table holds")
    table = np.full((K_MAX, len(COLUMNS)), np.nan)
    if regions.height == 0:
        return table
    hours = (ctx.time - valid_time(regions["issued"][0])).total_seconds() / 3600
    lats = regions["latitude_deg"].to_numpy()
    lons = rotated_longitude(regions["longitude_deg"].to_numpy(), lats, hours)
    observer = get_earth(ctx.time)
    for i, row in enumerate(regions.iter_rows(named=True)):
        mag = row["mag_type"]
        extent = row["longitudinal_extent_deg"] or 0
        table[i, 0] = row["noaa_number"]
        table[i, 1] = np.nan if mag is None else MT_WILSON_CLASSES.index(mag)
        table[i, 6] = np.nan if row["area_msh"] is None else row["area_msh"]
        try:
            table[i, 2:6] = grid_box(lats[i], lons[i], extent + 2 * BORDER_DEG, ctx.grid, observer)
        except ValueError:  # rotated behind the limb since the report
            pass
    return table

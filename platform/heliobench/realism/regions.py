"""Sunspot-group statistics: positions, areas, spot counts and Mount Wilson classes from
NOAA SRS reports, and tilts measured on magnetograms the way the Kislovodsk table
measures them (the inclination of the line through a group's spots, no polarity).

Tilts are positive clockwise (north up, west right), as in the Kislovodsk table: Joy's law
(leading spots nearer the equator) makes them positive in the north and negative in the south.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import astropy.units as u
import numpy as np
import polars as pl
from scipy import ndimage
from sunpy.coordinates import frames
from sunpy.sun.models import differential_rotation

from heliobench.archive.readers import read_map
from heliobench.archive.readers.images import quiet_sunpy
from heliobench.prep.image import PrepImage, disk_distance
from heliobench.storage import read_bytes

#: Groups within this central-meridian distance count (the Kislovodsk table's selection).
MAX_CMD_DEG = 60.0
#: Spot pixels: |B_LOS| / mu at least this (the outer penumbral boundary is at 0.7-1 kG).
SPOT_FIELD_G = 800.0
#: Spot pixels belong to the nearest group within max(this, half its extent + 2°).
GROUP_REACH_DEG = 5.0
#: Smallest group area compared (NOAA rounds areas to 10 MSH).
MIN_AREA_MSH = 10.0
#: Years with fewer groups on either side are left out of the Spörer comparison.
MIN_GROUPS_PER_YEAR = 10
#: The declining phase of cycle 24, over which the drift of the mean latitude is fitted.
SPORER_YEARS = (2011, 2018)

TILT_SCHEMA = {"date": pl.Datetime("us", "UTC"), "latitude_deg": pl.Float64, "tilt_deg": pl.Float64, "spots": pl.Int64}


def srs_groups(regions: pl.DataFrame) -> pl.DataFrame:
    """Regions with sunspots (SRS section I) within 60° of the central meridian, with the time
    their positions are valid (00:00 UT of the issue day): ``date``, ``latitude_deg``,
    ``longitude_deg``, ``area_msh``, ``spots``, ``extent_deg``, ``mag_type``."""
    return (
        regions.filter((pl.col("section") == "I") & (pl.col("longitude_deg").abs() <= MAX_CMD_DEG))
        .with_columns(pl.col("issued").dt.truncate("1d").alias("date"))
        .select("date", "latitude_deg", "longitude_deg", "area_msh", pl.col("number_of_spots").alias("spots"),
                pl.col("longitudinal_extent_deg").alias("extent_deg"), "mag_type")
    )


def _unit(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def axis_tilt_deg(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """Clockwise inclination (degrees, in (-90, 90]) of the weighted principal axis of points
    ``x`` (west) and ``y`` (north)."""
    w = weights / weights.sum()
    dx, dy = x - (w * x).sum(), y - (w * y).sum()
    cov = np.array([[(w * dx * dx).sum(), (w * dx * dy).sum()], [(w * dx * dy).sum(), (w * dy * dy).sum()]])
    _, vectors = np.linalg.eigh(cov)
    ax, ay = vectors[:, -1]
    angle = math.degrees(math.atan2(ay, ax))  # counter-clockwise from west
    angle = (angle + 90.0) % 180.0 - 90.0
    tilt = -angle
    return 90.0 if tilt == -90.0 else tilt


def measure_tilts(uri: str, groups: pl.DataFrame) -> pl.DataFrame:
    """Tilts of ``groups`` (rows of :func:`srs_groups` of one day) in the magnetogram ``uri``.

    Spot pixels (``|B_LOS| / mu >= SPOT_FIELD_G``) go to the nearest group, rotated
    differentially from its SRS time to the magnetogram's; a group with spot pixels in two
    or more separate spots gets the tilt of their principal axis (pixels weighted by the
    surface area they cover, 1/mu). Columns: :data:`TILT_SCHEMA` (``spots`` = separate spots seen).
    """
    if groups.is_empty():
        return pl.DataFrame(schema=TILT_SCHEMA)
    smap = read_map(read_bytes(uri), uri)
    with quiet_sunpy():
        image = PrepImage.from_map(smap)
    r = disk_distance(image)
    field = np.asarray(smap.data, dtype=float)
    mu = np.sqrt(np.clip(1.0 - r**2, 0.0, 1.0))
    with np.errstate(invalid="ignore"):
        spot = np.isfinite(field) & (r < 0.95) & (np.abs(field) >= SPOT_FIELD_G * mu)
    labels, _ = ndimage.label(spot)
    ys, xs = np.nonzero(spot)
    if ys.size == 0:
        return pl.DataFrame(schema=TILT_SCHEMA)
    hgs = smap.pixel_to_world(xs * u.pix, ys * u.pix).transform_to(frames.HeliographicStonyhurst(obstime=smap.date))
    lon, lat = hgs.lon.wrap_at(180 * u.deg).to_value(u.deg), hgs.lat.to_value(u.deg)
    when = image.obs_time
    days = np.array([(when - d.replace(tzinfo=timezone.utc)).total_seconds() / 86400.0 for d in groups["date"]])
    g_lat = groups["latitude_deg"].to_numpy().astype(float)
    g_lon = groups["longitude_deg"].to_numpy().astype(float) + np.array(
        [differential_rotation(dt * u.day, la * u.deg, frame_time="synodic").to_value(u.deg) for dt, la in zip(days, g_lat, strict=True)])
    extent = groups["extent_deg"].fill_null(0).to_numpy().astype(float)
    reach = np.maximum(GROUP_REACH_DEG, 0.5 * extent + 2.0)
    cosine = _unit(lon, lat) @ _unit(g_lon, g_lat).T  # (pixels, groups)
    nearest = np.argmax(cosine, axis=1)
    separation = np.degrees(np.arccos(np.clip(cosine[np.arange(len(nearest)), nearest], -1.0, 1.0)))
    rows = []
    for g in range(len(g_lat)):
        mine = (nearest == g) & (separation <= reach[g])
        spots = np.unique(labels[ys[mine], xs[mine]]).size
        if spots < 2:
            continue
        x = (lon[mine] - g_lon[g]) * math.cos(math.radians(g_lat[g]))
        y = lat[mine] - g_lat[g]
        rows.append({"date": when, "latitude_deg": float(g_lat[g]),
                     "tilt_deg": axis_tilt_deg(x, y, 1.0 / np.maximum(mu[ys[mine], xs[mine]], 0.05)), "spots": int(spots)})
    return pl.DataFrame(rows, schema=TILT_SCHEMA)


def joy_fit(latitude_deg: np.ndarray, tilt_deg: np.ndarray) -> tuple[float, float]:
    """Joy's law, tilt = slope x latitude: the least-squares slope through the origin and its
    standard error (NaN with fewer than 3 groups)."""
    lat, tilt = np.asarray(latitude_deg, dtype=float), np.asarray(tilt_deg, dtype=float)
    ok = np.isfinite(lat) & np.isfinite(tilt)
    lat, tilt = lat[ok], tilt[ok]
    if lat.size < 3:
        return float("nan"), float("nan")
    sxx = (lat**2).sum()
    slope = (lat * tilt).sum() / sxx
    return float(slope), float(np.sqrt(((tilt - slope * lat) ** 2).sum() / (lat.size - 1) / sxx))


def folded_tilts(latitude_deg: np.ndarray, tilt_deg: np.ndarray) -> np.ndarray:
    """Tilts with the southern ones' sign flipped (Joy's law makes both hemispheres positive)."""
    return np.sign(np.asarray(latitude_deg, dtype=float)) * np.asarray(tilt_deg, dtype=float)


def decimal_year(dates: pl.Series) -> np.ndarray:
    """Decimal years of datetimes."""
    years = dates.dt.year().to_numpy().astype(float)
    day = dates.dt.ordinal_day().to_numpy().astype(float)
    return years + (day - 0.5) / 365.25


def yearly_mean_abs_latitude(dates: pl.Series, latitude_deg: pl.Series) -> dict[int, tuple[float, int]]:
    """Mean unsigned latitude and number of groups per calendar year."""
    frame = pl.DataFrame({"year": dates.dt.year(), "lat": latitude_deg.abs()})
    out = frame.group_by("year").agg(pl.col("lat").mean().alias("mean"), pl.len().alias("n")).sort("year")
    return {int(y): (float(m), int(n)) for y, m, n in out.iter_rows()}


def sporer_drift(yearly: dict[int, tuple[float, int]]) -> float:
    """Slope (degrees per year) of the yearly mean latitude over :data:`SPORER_YEARS`."""
    years = [y for y, (_, n) in yearly.items() if SPORER_YEARS[0] <= y <= SPORER_YEARS[1] and n >= MIN_GROUPS_PER_YEAR]
    if len(years) < 3:
        return float("nan")
    return float(np.polyfit(np.array(years) + 0.5, [yearly[y][0] for y in years], 1)[0])


def class_shares(mag_types: pl.Series) -> dict[str, float]:
    """Share of each Mount Wilson class among the regions that have one."""
    counts = mag_types.drop_nulls().value_counts()
    total = counts["count"].sum()
    return {str(c): n / total for c, n in counts.iter_rows()} if total else {}


def cycle_days(start: datetime, end: datetime, cadence_days: int) -> list[datetime]:
    """Every ``cadence_days``-th day from ``start`` to ``end`` (the sampling of the cycle)."""
    n = int((end - start).days // cadence_days) + 1
    return [start + timedelta(days=i * cadence_days) for i in range(n)]

"""NOAA/SWPC Solar Region Summaries of the simulated Sun, in the post-2002 text format.

The SRS for day D is issued at 00:30 UT on D with locations valid at 24:00 UT of D-1: Section
I lists the regions with sunspots facing the Earth, IA those left with plage only, II the regions
due to rotate back onto the disk within three days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
from astropy.time import Time

from heliobench.archive.sim.classification import describe
from heliobench.archive.sim.fields import LABEL_MIN_ENVELOPE
from heliobench.archive.sim.geometry import observer_at, unit_vectors, visible
from heliobench.archive.sim.sun import ActiveRegion, Placed, SunModel, synodic_rate_deg_per_day

#: Regions due to return are listed this many days ahead.
_RETURN_WINDOW_DAYS = 3


def _location(lat_deg: float, lon_deg: float) -> str:
    lat, lon = int(round(lat_deg)), int(round(lon_deg))
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'W' if lon >= 0 else 'E'}{abs(lon):02d}"


def _returning(placed: Placed, rate_deg_per_day: float, mjd: float) -> bool:
    """Behind the east limb, seen on the previous passage, back within the window and alive then."""
    region: ActiveRegion = placed.feature  # type: ignore[assignment]
    to_east_limb = -90.0 - placed.lon_deg
    if not 0.0 < to_east_limb <= rate_deg_per_day * _RETURN_WINDOW_DAYS:
        return False
    since_west_limb = ((placed.lon_deg - 90.0) % 360.0) / rate_deg_per_day
    age = mjd - region.emerged_mjd
    return age > since_west_limb and region.lifetime_days - age > to_east_limb / rate_deg_per_day


def srs_text(model: SunModel, day: date) -> str:
    """The SRS issued on ``day``."""
    valid = datetime(day.year, day.month, day.day, tzinfo=UTC)
    mjd = Time(valid).mjd
    state = model.state(mjd)
    observer = observer_at(mjd)
    previous = valid - timedelta(days=1)
    window_end = valid + timedelta(days=_RETURN_WINDOW_DAYS - 1)

    spotted, plage, returning = [], [], []
    placed_regions = sorted(state.active_regions, key=lambda p: p.feature.noaa_at(mjd))  # type: ignore[union-attr]
    rates = synodic_rate_deg_per_day(np.array([p.lat_deg for p in placed_regions]))
    for placed, rate in zip(placed_regions, rates, strict=True):
        region: ActiveRegion = placed.feature  # type: ignore[assignment]
        number = f"{region.noaa_at(mjd) % 10000:04d}"
        lo = int(round(observer.l0_deg + placed.lon_deg)) % 360
        if placed.envelope >= LABEL_MIN_ENVELOPE and visible(
            unit_vectors(placed.lon_deg, placed.lat_deg), observer
        ):
            report = describe(region, placed.envelope)
            location = _location(placed.lat_deg, placed.lon_deg)
            if report is None:
                plage.append(f"{number}  {location}   {lo:03d}")
            else:
                spotted.append(
                    f"{number} {location}   {lo:03d}  {report.area_msh:04d} {report.mcintosh:<3}  "
                    f"{report.extent_deg:02d}   {report.spot_count:02d} {report.mt_wilson}"
                )
        elif _returning(placed, float(rate), mjd):
            lat = int(round(placed.lat_deg))
            returning.append(f"{number} {'N' if lat >= 0 else 'S'}{abs(lat):02d}    {lo:03d}")

    lines = [
        f":Product: {valid:%m%d}SRS.txt",
        f":Issued: {valid:%Y %b %d} 0030 UTC",
        "# Prepared jointly by the U.S. Dept. of Commerce, NOAA,",
        "# Space Weather Prediction Center and the U.S. Air Force.",
        "#",
        "Joint USAF/NOAA Solar Region Summary",
        f"SRS Number {valid.timetuple().tm_yday} Issued at 0030Z on {valid:%d %b %Y}",
        f"Report compiled from data received at SWO on {previous:%d %b}",
        f"I.  Regions with Sunspots.  Locations Valid at {previous:%d}/2400Z ",
        "Nmbr Location  Lo  Area  Z   LL   NN Mag Type",
        *(spotted or ["None"]),
        f"IA. H-alpha Plages without Spots.  Locations Valid at {previous:%d}/2400Z {previous:%b}",
        "Nmbr  Location  Lo",
        *(plage or ["None"]),
        f"II. Regions Due to Return {valid:%d %b} to {window_end:%d %b}",
        "Nmbr Lat    Lo",
        *(returning or ["None"]),
    ]
    return "\n".join(lines) + "\n"

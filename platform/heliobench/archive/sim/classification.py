"""How an observer would classify a simulated active region: McIntosh class, spot count, extent."""

from __future__ import annotations

import math
from dataclasses import dataclass

from heliobench.archive.sim.sun import ActiveRegion, spot_radius_deg


@dataclass(frozen=True)
class RegionReport:
    """A region as NOAA reports it at one time (only regions with sunspots have one)."""

    area_msh: int  # as reported: rounded to 10 MSH
    mcintosh: str  # modified Zurich class + penumbra + compactness, e.g. "Dai"
    mt_wilson: str
    spot_count: int
    extent_deg: int  # longitudinal extent


def _zurich(region: ActiveRegion, area: float, extent: float) -> str:
    if region.mt_wilson == "Alpha":
        return "A" if area < 10.0 else "H"
    if area < 15.0:
        return "B"
    if area < 60.0:
        return "C"
    return "D" if extent <= 10.0 else "E" if extent <= 15.0 else "F"


def describe(region: ActiveRegion, envelope: float) -> RegionReport | None:
    """The report of ``region`` at development ``envelope``; None when it has no sunspots."""
    area = region.spot_area_msh(envelope)
    if area <= 0.0:
        return None
    tilt = math.radians(region.tilt_deg)
    west = [s.x_deg * math.cos(tilt) - s.y_deg * math.sin(tilt) for s in region.spots]
    largest = max(s.share for s in region.spots) * area
    extent = max(west) - min(west) + 2.0 * spot_radius_deg(largest)
    zurich = _zurich(region, area, extent)
    complex_ = "Gamma" in region.mt_wilson or "Delta" in region.mt_wilson
    if zurich in "AB":
        penumbra = "x"
    elif largest < 15.0:
        penumbra = "r"
    elif largest < 100.0:
        penumbra = "a" if complex_ else "s"
    else:
        penumbra = "k" if complex_ else "h"
    spot_count = min(len(region.spots) + int(area / 25.0), 80)
    if zurich in "AH":
        compactness = "x"
    elif complex_ and zurich in "DEF":
        compactness = "c"
    else:
        compactness = "i" if spot_count >= 12 or complex_ else "o"
    reported_area = int(round(area / 10.0) * 10)
    return RegionReport(
        area_msh=reported_area if zurich == "A" else max(10, reported_area),
        mcintosh=zurich + penumbra + compactness,
        mt_wilson=region.mt_wilson,
        spot_count=spot_count,
        extent_deg=max(1, int(round(extent))),
    )

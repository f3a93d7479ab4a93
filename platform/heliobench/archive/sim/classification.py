"""How an observer would classify a simulated active region: McIntosh class, spot count, extent."""

from __future__ import annotations

import math
from dataclasses import dataclass

from heliobench.archive.sim.sun import ActiveRegion, spot_radius_deg

#: Spots a group shows beyond the visible spots of its Mount Wilson layout: about
#: SPOTS_PER_AREA x area^SPOTS_AREA_EXPONENT times the region's fragmentation (fit to the
#: Kislovodsk groups 2010-2020, whose mean count grows from 2 at 15 MSH to 10 at 1000 MSH);
#: unipolar groups break up less (UNIPOLAR_FRAGMENTATION times as many extra spots).
SPOTS_PER_AREA = 0.22
SPOTS_AREA_EXPONENT = 0.45
UNIPOLAR_FRAGMENTATION = 0.3
#: Spots of a region's layout smaller than this (MSH) are lost among the pores. Following
#: spots are the smaller ones and go first, so a decaying bipolar group is reported unipolar
#: (Alpha) once they have shrunk below it, as NOAA reclassifies decaying regions.
VISIBLE_SPOT_MSH = 5.0


@dataclass(frozen=True)
class RegionReport:
    """A region as NOAA reports it at one time (only regions with sunspots have one)."""

    area_msh: int  # as reported: rounded to 10 MSH
    mcintosh: str  # modified Zurich class + penumbra + compactness, e.g. "Dai"
    mt_wilson: str
    spot_count: int
    extent_deg: int  # longitudinal extent


def _zurich(mt_wilson: str, area: float, extent: float) -> str:
    if mt_wilson == "Alpha":
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
    main = max(region.spots, key=lambda s: s.share)
    spots = [s for s in region.spots if s is main or s.share * area >= VISIBLE_SPOT_MSH]
    mt_wilson = "Alpha" if len({s.polarity for s in spots}) == 1 else region.mt_wilson
    tilt = math.radians(region.tilt_deg)
    west = [s.x_deg * math.cos(tilt) - s.y_deg * math.sin(tilt) for s in spots]
    largest = main.share * area
    extent = max(west) - min(west) + 2.0 * spot_radius_deg(largest)
    zurich = _zurich(mt_wilson, area, extent)
    complex_ = "Gamma" in mt_wilson or "Delta" in mt_wilson
    if zurich in "AB":
        penumbra = "x"
    elif largest < 15.0:
        penumbra = "r"
    elif largest < 100.0:
        penumbra = "a" if complex_ else "s"
    else:
        penumbra = "k" if complex_ else "h"
    per_area = SPOTS_PER_AREA * (UNIPOLAR_FRAGMENTATION if mt_wilson == "Alpha" else 1.0)
    spot_count = min(len(spots) + int(region.fragmentation * per_area * area**SPOTS_AREA_EXPONENT), 80)
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
        mt_wilson=mt_wilson,
        spot_count=spot_count,
        extent_deg=max(1, int(round(extent))),
    )

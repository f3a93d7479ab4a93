"""HEK event records of the simulated Sun, as a HEK query returns them.

Active regions come as "NOAA SWPC Observer" events, coronal holes as "SPoCA" events, one
record per feature and observed time step (the way HEK tracks look). Outlines are the mask
boundaries, converted to helioprojective arcsec by sunpy for the Earth observer; the parts
behind the limb are pulled onto the limb, as a detection on the image would outline them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from sunpy.coordinates import frames

from heliobench.archive.sim.classification import describe
from heliobench.archive.sim.config import RSUN_REF_M
from heliobench.archive.sim.fields import LABEL_MIN_ENVELOPE, hole_outline, region_outline
from heliobench.archive.sim.fitsfiles import iso
from heliobench.archive.sim.geometry import Observer, lon_lat_deg, unit_vectors, visible
from heliobench.archive.sim.sun import ActiveRegion, CoronalHole, Placed, SunState

#: Coronal holes are reported when at least this many outline points face the observer.
_MIN_VISIBLE_OUTLINE_POINTS = 3


def _helioprojective(xyz: np.ndarray, observer: Observer) -> np.ndarray:
    """(n, 2) helioprojective (Tx, Ty) arcsec of HGS unit vectors on the photosphere."""
    t = observer.time
    lon, lat = lon_lat_deg(xyz)
    earth = SkyCoord(
        0 * u.deg,
        observer.b0_deg * u.deg,
        observer.dsun_m * u.m,
        frame=frames.HeliographicStonyhurst,
        obstime=t,
    )
    points = SkyCoord(
        lon * u.deg,
        lat * u.deg,
        np.full(len(lon), RSUN_REF_M) * u.m,
        frame=frames.HeliographicStonyhurst,
        obstime=t,
    )
    hpc = points.transform_to(frames.Helioprojective(observer=earth, obstime=t))
    return np.stack([hpc.Tx.to_value(u.arcsec), hpc.Ty.to_value(u.arcsec)], axis=-1)


def _wkt_polygon(points: np.ndarray) -> str:
    closed = np.vstack([points, points[:1]])
    return "POLYGON((" + ",".join(f"{x:.4f} {y:.4f}" for x, y in closed) + "))"


def _bbox(points: np.ndarray) -> str:
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return _wkt_polygon(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))


def _record(
    kind: str, start: datetime, end: datetime, centre: np.ndarray, outline: np.ndarray, placed: Placed
) -> dict:
    """Fields every record has: type, validity, position and outline."""
    x, y = float(centre[0]), float(centre[1])
    return {
        "event_type": kind,
        "event_starttime": iso(start),
        "event_endtime": iso(end),
        "hpc_x": round(x, 4),
        "hpc_y": round(y, 4),
        "hpc_coord": f"POINT({x:.4f} {y:.4f})",
        "hpc_radius": f"{np.hypot(x, y):.6f}",
        "hpc_bbox": _bbox(outline),
        "hpc_boundcc": _wkt_polygon(outline),
        "hgs_x": round(placed.lon_deg, 4),
        "hgs_y": round(placed.lat_deg, 4),
        "frm_daterun": iso(start + timedelta(hours=1)),
        "kb_archivdate": iso(start + timedelta(hours=1, seconds=1)),
        "intensmin": None,
        "intensmax": None,
        "intensmedian": None,
    }


def _active_region_fields(placed: Placed, mjd: float) -> dict:
    region: ActiveRegion = placed.feature  # type: ignore[assignment]
    report = describe(region, placed.envelope)
    noaa = region.noaa_at(mjd)
    return {
        "frm_name": "NOAA SWPC Observer",
        "frm_specificid": f"NOAA_{noaa}",
        "obs_observatory": "various",
        "obs_instrument": "various",
        "obs_channelid": "visible",
        "obs_meanwavel": 5e-05,
        "ar_noaanum": noaa,
        "ar_noaaclass": "",
        "ar_mcintoshcls": report.mcintosh if report else "",
        "ar_mtwilsoncls": report.mt_wilson if report else "",
        "ar_numspots": report.spot_count if report else 0,
    }


def _coronal_hole_fields(placed: Placed, mjd: float) -> dict:
    hole: CoronalHole = placed.feature  # type: ignore[assignment]
    return {
        "frm_name": "SPoCA",
        "frm_specificid": f"SPoCA_v1.0_CH_{hole.track_at(mjd):08d}",
        "obs_observatory": "SDO",
        "obs_instrument": "AIA",
        "obs_channelid": "193",
        "obs_meanwavel": 1.93e-06,
        "ar_noaanum": None,
        "ar_noaaclass": "",
        "ar_mcintoshcls": "",
        "ar_mtwilsoncls": "",
        "ar_numspots": None,
    }


def hek_events(state: SunState, observer: Observer, start: datetime, cadence_s: float) -> list[dict]:
    """HEK records of the active regions and coronal holes visible at ``start`` (UTC)."""
    end = start + timedelta(seconds=max(cadence_s - 1.0, 0.0))
    regions = [
        p
        for p in state.active_regions
        if p.envelope >= LABEL_MIN_ENVELOPE and visible(unit_vectors(p.lon_deg, p.lat_deg), observer)
    ]
    holes = [
        p
        for p in state.coronal_holes
        if p.envelope >= LABEL_MIN_ENVELOPE
        and visible(hole_outline(p, state.mjd), observer).sum() >= _MIN_VISIBLE_OUTLINE_POINTS
    ]
    features = regions + holes
    if not features:
        return []
    outlines = [region_outline(p) for p in regions] + [hole_outline(p, state.mjd) for p in holes]
    centres = unit_vectors(np.array([p.lon_deg for p in features]), np.array([p.lat_deg for p in features]))
    xyz = np.vstack([centres, *outlines])
    hpc = _helioprojective(xyz, observer)
    behind = ~visible(xyz, observer)
    # outline points behind the limb are pulled radially onto the limb
    hpc[behind] *= (observer.rsun_obs_arcsec / np.maximum(np.hypot(*hpc[behind].T), 1e-9))[:, None]
    bounds = np.cumsum([len(features)] + [len(o) for o in outlines])
    events = []
    for i, placed in enumerate(features):
        outline = hpc[bounds[i] : bounds[i + 1]]
        centre = outline.mean(axis=0) if behind[i] else hpc[i]
        record = _record("AR" if i < len(regions) else "CH", start, end, centre, outline, placed)
        fields = _active_region_fields if i < len(regions) else _coronal_hole_fields
        record.update(fields(placed, state.mjd))
        events.append(record)
    return events

"""Physical quantities of the simulated Sun at points of the solar surface.

Every feature is evaluated only on the points within its reach (a spherical cap), with
vectorised numpy. Distances inside a feature use its tangent-plane coordinates (degrees):
``x`` along its axis, ``y`` across. The masks are the very regions the images are drawn from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from heliobench.archive.sim import texture
from heliobench.archive.sim.geometry import lon_lat_deg, unit_vectors
from heliobench.archive.sim.sun import ActiveRegion, CoronalHole, Filament, Placed, SunState, spot_radius_deg

#: Features less developed than this are neither masked nor listed in the event catalogs.
LABEL_MIN_ENVELOPE = 0.05
#: Strength of plage, quiet network, coronal-hole and polar fields (G).
PLAGE_G = 250.0
NETWORK_G = 25.0
CH_UNIPOLAR_G = 6.0
POLAR_G = 8.0
#: Loop strand spacing, relative to a region's across semi-axis.
LOOP_SPACING = 0.25
#: Width of a coronal hole's boundary (degrees).
CH_EDGE_DEG = 0.6


def local_frame(
    lon_deg: float, lat_deg: float, angle_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, axis and across unit vectors of a feature with its axis ``angle_deg`` from west to north."""
    lon, lat, ang = math.radians(lon_deg), math.radians(lat_deg), math.radians(angle_deg)
    centre = unit_vectors(lon_deg, lat_deg)
    west = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)])
    return centre, math.cos(ang) * west + math.sin(ang) * north, -math.sin(ang) * west + math.cos(ang) * north


def _angle_deg(cosine: float) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


class PointSet:
    """Points on the unit sphere (HGS unit vectors, shape (n, 3)) with a bounding cap,
    so that features out of reach (e.g. on the far side) are skipped at once."""

    def __init__(self, xyz: np.ndarray):
        self.xyz = xyz
        mean = xyz.sum(axis=0)
        norm = float(np.linalg.norm(mean))
        self._axis = mean / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0])
        self._spread_deg = _angle_deg(float((xyz @ self._axis).min())) if len(xyz) else 0.0

    def __len__(self) -> int:
        return len(self.xyz)

    def within(self, centre: np.ndarray, radius_deg: float) -> np.ndarray:
        """Indices of the points within ``radius_deg`` of ``centre``."""
        if _angle_deg(float(centre @ self._axis)) > self._spread_deg + radius_deg:
            return np.empty(0, dtype=np.intp)
        return np.flatnonzero(self.xyz @ centre > math.cos(math.radians(min(radius_deg, 179.0))))


def _tangent(xyz: np.ndarray, axis: np.ndarray, across: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.degrees(xyz @ axis), np.degrees(xyz @ across)


def region_ellipse_r2(region: ActiveRegion, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared elliptical radius of tangent-plane points: 1 on the region's boundary."""
    along, across = region.semi_axes_deg
    return (x / along) ** 2 + (y / across) ** 2


def coronal_hole_radius_deg(hole: CoronalHole, envelope: float, theta: np.ndarray) -> np.ndarray:
    """Boundary distance (degrees from the centre) of a hole in directions ``theta`` (radians from west)."""
    wobble = sum(amp * np.cos(order * theta + phase) for order, amp, phase in hole.harmonics)
    return hole.radius_deg * envelope * (1.0 + wobble)


def _outline(
    centre: np.ndarray, east_west: np.ndarray, south_north: np.ndarray, theta: np.ndarray, rho_rad: np.ndarray
) -> np.ndarray:
    direction = np.cos(theta)[:, None] * east_west + np.sin(theta)[:, None] * south_north
    return np.cos(rho_rad)[:, None] * centre + np.sin(rho_rad)[:, None] * direction


def region_outline(placed: Placed, n: int = 36) -> np.ndarray:
    """HGS unit vectors of ``n`` points on an active region's mask boundary (counter-clockwise)."""
    region: ActiveRegion = placed.feature  # type: ignore[assignment]
    along, across = region.semi_axes_deg
    centre, axis, side = local_frame(placed.lon_deg, placed.lat_deg, region.tilt_deg)
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    radius_deg = 1.0 / np.sqrt((np.cos(theta) / along) ** 2 + (np.sin(theta) / across) ** 2)
    # the mask uses tangent-plane distances: sin(arc) = radius
    return _outline(centre, axis, side, theta, np.arcsin(np.minimum(np.radians(radius_deg), 1.0)))


def hole_outline(placed: Placed, n: int = 48) -> np.ndarray:
    """HGS unit vectors of ``n`` points on a coronal hole's mask boundary (counter-clockwise)."""
    hole: CoronalHole = placed.feature  # type: ignore[assignment]
    centre, west, north = local_frame(placed.lon_deg, placed.lat_deg, 0.0)
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return _outline(
        centre, west, north, theta, np.radians(coronal_hole_radius_deg(hole, placed.envelope, theta))
    )


def _placed_regions(state: SunState) -> Iterator[tuple[Placed, ActiveRegion]]:
    for placed in state.active_regions:
        yield placed, placed.feature  # type: ignore[misc]


def active_region_heat(points: PointSet, state: SunState, strands: bool = True) -> np.ndarray:
    """Coronal heating of active regions in [0, 1]: a Gaussian filling each region's ellipse,
    with ``strands``: striated into loops that run along the axis and fan out between the polarities."""
    heat = np.zeros(len(points))
    for placed, region in _placed_regions(state):
        along, across = region.semi_axes_deg
        centre, axis, side = local_frame(placed.lon_deg, placed.lat_deg, region.tilt_deg)
        idx = points.within(centre, 1.5 * max(along, across))
        x, y = _tangent(points.xyz[idx], axis, side)
        glow = math.sqrt(placed.envelope) * np.exp(-2.0 * region_ellipse_r2(region, x, y))
        if strands:
            fan = 0.6 + 0.4 * np.clip(1.0 - (x / along) ** 2, 0.0, 1.0)
            q = y / (fan * LOOP_SPACING * across)
            glow *= 0.55 + 0.15 * sum(
                np.cos(np.pi * q / scale + phase) ** 2
                for scale, phase in zip((1.0, 0.62, 0.38), region.strand_phases, strict=True)
            )
        heat[idx] = np.maximum(heat[idx], glow)
    return heat


@dataclass(frozen=True)
class SurfaceFields:
    """Quantities at surface points (one value per point)."""

    b_r: np.ndarray  # radial magnetic field (G)
    b_ar: np.ndarray  # active-region share of b_r (G)
    heat: np.ndarray  # active-region coronal heating, [0, 1]
    spot: np.ndarray  # sunspot darkness (penumbra ... umbra), [0, 1]
    ch: np.ndarray  # coronal-hole indicator, [0, 1]; 0.5 on the boundary
    filament: np.ndarray  # filament opacity, [0, 1]
    network: np.ndarray  # quiet-Sun network brightness contrast
    ar_mask: np.ndarray  # bool
    ch_mask: np.ndarray  # bool


def _active_regions(points: PointSet, state: SunState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(field, spot darkness, mask) of all active regions."""
    b_ar = np.zeros(len(points))
    spot = np.zeros(len(points))
    mask = np.zeros(len(points), dtype=bool)
    for placed, region in _placed_regions(state):
        along, across = region.semi_axes_deg
        centre, axis, side = local_frame(placed.lon_deg, placed.lat_deg, region.tilt_deg)
        idx = points.within(centre, 1.5 * max(along, across))
        x, y = _tangent(points.xyz[idx], axis, side)
        if placed.envelope >= LABEL_MIN_ENVELOPE:
            mask[idx] |= region_ellipse_r2(region, x, y) <= 1.0
        d, sigma = region.half_separation_deg, region.plage_sigma_deg
        lead = np.exp(-((x - 0.8 * d) ** 2 + y**2) / (2 * sigma**2))
        follow = np.exp(-((x + d) ** 2 + y**2) / (2 * (1.2 * sigma) ** 2))
        field = PLAGE_G * math.sqrt(placed.envelope) * (lead - follow)
        area = region.spot_area_msh(placed.envelope)
        for s in region.spots if area > 0 else ():
            spot_area = s.share * area
            b_peak = 2000.0 + 800.0 * min(1.0, spot_area / 200.0)
            width = spot_radius_deg(spot_area) / math.sqrt(2.0 * math.log(b_peak / 1000.0))
            b_spot = b_peak * np.exp(-((x - s.x_deg) ** 2 + (y - s.y_deg) ** 2) / (2 * width**2))
            field += s.polarity * b_spot
            spot[idx] = np.maximum(spot[idx], np.clip((b_spot - 700.0) / 1300.0, 0.0, 1.0))
        b_ar[idx] += region.leading_polarity * field
    return b_ar, spot, mask


def _coronal_holes(points: PointSet, state: SunState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indicator, polarity, mask) of all coronal holes."""
    ch = np.zeros(len(points))
    polarity = np.zeros(len(points))
    mask = np.zeros(len(points), dtype=bool)
    for placed in state.coronal_holes:
        hole: CoronalHole = placed.feature  # type: ignore[assignment]
        reach = hole.radius_deg * placed.envelope * 1.3 + 3.0
        centre, west, north = local_frame(placed.lon_deg, placed.lat_deg, 0.0)
        idx = points.within(centre, reach)
        pts = points.xyz[idx]
        rho = np.degrees(np.arccos(np.clip(pts @ centre, -1.0, 1.0)))
        boundary = coronal_hole_radius_deg(hole, placed.envelope, np.arctan2(pts @ north, pts @ west))
        s = 1.0 / (1.0 + np.exp(-(boundary - rho) / CH_EDGE_DEG))
        polarity[idx] = np.where(s > ch[idx], hole.polarity, polarity[idx])
        ch[idx] = np.maximum(ch[idx], s)
        if placed.envelope >= LABEL_MIN_ENVELOPE:
            mask[idx] |= rho < boundary
    return ch, polarity, mask


def _filaments(points: PointSet, state: SunState) -> np.ndarray:
    opacity = np.zeros(len(points))
    for placed in state.filaments:
        fil: Filament = placed.feature  # type: ignore[assignment]
        centre, axis, side = local_frame(placed.lon_deg, placed.lat_deg, fil.angle_deg)
        idx = points.within(centre, 0.5 * fil.length_deg + 2.0)
        x, y = _tangent(points.xyz[idx], axis, side)
        bent = y - fil.curvature_per_deg * x**2
        taper = np.clip(1.0 - (2.0 * x / fil.length_deg) ** 4, 0.0, 1.0)
        opacity[idx] = np.maximum(
            opacity[idx], placed.envelope * taper * np.exp(-(bent**2) / (2 * fil.width_deg**2))
        )
    return opacity


def surface_fields(xyz: np.ndarray, state: SunState, seed: int, l0_deg: float) -> SurfaceFields:
    """All quantities at HGS unit vectors ``xyz`` (n, 3); ``l0_deg`` places the Carrington network."""
    lon, lat = lon_lat_deg(xyz)
    bright_map, field_map = texture.network_maps(seed)
    network = texture.sample(bright_map, lon + l0_deg, lat)
    net_field = NETWORK_G * texture.sample(field_map, lon + l0_deg, lat)
    points = PointSet(xyz)
    b_ar, spot, ar_mask = _active_regions(points, state)
    ch, ch_polarity, ch_mask = _coronal_holes(points, state)
    quiet = (1.0 - ch) * net_field + ch * ch_polarity * (CH_UNIPOLAR_G + 0.6 * np.abs(net_field))
    polar_weight = np.clip((np.abs(lat) - 55.0) / 20.0, 0.0, 1.0)
    polar = state.north_pole_polarity * np.sign(lat) * POLAR_G * polar_weight**2 * (3 - 2 * polar_weight)
    return SurfaceFields(
        b_r=b_ar + quiet + polar,
        b_ar=b_ar,
        heat=active_region_heat(points, state),
        spot=spot,
        ch=ch,
        filament=_filaments(points, state),
        network=network,
        ar_mask=ar_mask,
        ch_mask=ch_mask & ~ar_mask,
    )

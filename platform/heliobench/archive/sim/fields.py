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
from heliobench.archive.sim.texture import PATCH_DEG
from heliobench.archive.sim.geometry import lon_lat_deg, unit_vectors
from heliobench.archive.sim.sun import ActiveRegion, CoronalHole, Filament, Placed, SunState, spot_radius_deg

#: Features less developed than this are neither masked nor listed in the event catalogs.
LABEL_MIN_ENVELOPE = 0.05
#: Strength of plage, quiet network, coronal-hole and polar fields (G).
PLAGE_G = 250.0
NETWORK_G = 25.0
CH_UNIPOLAR_G = 6.0
POLAR_G = 8.0
#: Coronal loops: strands per radian of the angle a point subtends between a region's two
#: polarities (the 2-D field lines of a bipole are the arcs of constant angle), at three scales.
LOOP_STRANDS = (5.0, 8.3, 13.7)
#: Coronal-hole outlines: the ragged perturbation of the level set (in units of the radius),
#: the width of the intensity transition across the boundary (same units), and how fast a
#: hole's edges change (degrees of patch texture per day).
CH_RAGGED = 0.32
CH_EDGE = 0.07
CH_PATCH_DRIFT_DEG_PER_DAY = 0.3
#: The EUV darkness does not follow the open-field outline exactly: closed loops and plumes
#: brighten parts of a hole, and dark lanes reach out of it. The darkness follows the level set
#: plus this much of an independent patch of texture (same units).
CH_DARKNESS_VARIATION = 0.2


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
    """Smooth boundary distance (degrees from the centre) of a hole in directions ``theta``
    (radians from west), before the ragged perturbation."""
    wobble = sum(amp * np.cos(order * theta + phase) for order, amp, phase in hole.harmonics)
    return hole.radius_deg * envelope * (1.0 + wobble)


def _patch_at(placed: Placed, mjd: float, rho_deg: np.ndarray, theta: np.ndarray, shift_deg: float = 0.0) -> np.ndarray:
    """A hole's own patch of texture (shifted by ``shift_deg`` for an independent one)."""
    hole: CoronalHole = placed.feature  # type: ignore[assignment]
    drift = CH_PATCH_DRIFT_DEG_PER_DAY * (mjd - hole.emerged_mjd) if not hole.polar else 0.0
    ox, oy = hole.patch_offset_deg
    return texture.sample_patch(texture.patch(), rho_deg * np.cos(theta) + ox + drift + shift_deg,
                                rho_deg * np.sin(theta) + oy + shift_deg)


def coronal_hole_level(placed: Placed, mjd: float, rho_deg: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The level-set function of a hole at polar tangent coordinates (degrees, radians from
    west): positive inside, zero on the outline, about -1 far outside."""
    hole: CoronalHole = placed.feature  # type: ignore[assignment]
    radius = np.maximum(coronal_hole_radius_deg(hole, placed.envelope, theta), 1e-3)
    return 1.0 - rho_deg / radius + CH_RAGGED * _patch_at(placed, mjd, rho_deg, theta)


def coronal_hole_reach_deg(placed: Placed) -> float:
    """Distance from a hole's centre beyond which its level set is negative."""
    hole: CoronalHole = placed.feature  # type: ignore[assignment]
    return hole.radius_deg * placed.envelope * 1.3 * (1.0 + 4.0 * CH_RAGGED) + 1.0


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


def hole_outline(placed: Placed, mjd: float, n: int = 48) -> np.ndarray:
    """HGS unit vectors of ``n`` points on a coronal hole's mask boundary (counter-clockwise):
    in each direction, where the level set first falls to zero going out from the centre."""
    centre, west, north = local_frame(placed.lon_deg, placed.lat_deg, 0.0)
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    rho = np.arange(0.0, coronal_hole_reach_deg(placed), 0.25)
    inside = coronal_hole_level(placed, mjd, rho[None, :], theta[:, None]) > 0.0
    inside[:, 0] = True
    first_out = np.argmin(inside, axis=1)
    edge = np.where(inside.all(axis=1), rho[-1], rho[np.maximum(first_out - 1, 0)])
    return _outline(centre, west, north, theta, np.radians(edge))


def _placed_regions(state: SunState) -> Iterator[tuple[Placed, ActiveRegion]]:
    for placed in state.active_regions:
        yield placed, placed.feature  # type: ignore[misc]


def active_region_heat(points: PointSet, state: SunState, strands: bool = True) -> np.ndarray:
    """Coronal heating of active regions in [0, 1]: a bright core filling each region's ellipse
    and a faint halo around it; with ``strands``, striated into loops that arc from one
    polarity to the other and fan out around them (the field lines of a bipole)."""
    heat = np.zeros(len(points))
    for placed, region in _placed_regions(state):
        along, across = region.semi_axes_deg
        centre, axis, side = local_frame(placed.lon_deg, placed.lat_deg, region.tilt_deg)
        idx = points.within(centre, 3.0 * max(along, across))
        x, y = _tangent(points.xyz[idx], axis, side)
        r2 = region_ellipse_r2(region, x, y)
        glow = math.sqrt(placed.envelope) * (np.exp(-2.0 * r2) + 0.18 * np.exp(-0.25 * r2))
        if strands:
            d = region.half_separation_deg
            subtended = np.arctan2(y, x - 0.8 * d) - np.arctan2(y, x + d)
            glow *= 0.45 + 0.55 * sum(
                np.cos(n * subtended + phase) ** 2 for n, phase in zip(LOOP_STRANDS, region.strand_phases, strict=True)
            ) / len(LOOP_STRANDS)
        heat[idx] = np.maximum(heat[idx], glow)
    return np.clip(heat, 0.0, 1.0)


@dataclass(frozen=True)
class SurfaceFields:
    """Quantities at surface points (one value per point)."""

    b_r: np.ndarray  # radial magnetic field (G)
    b_ar: np.ndarray  # active-region share of b_r (G)
    heat: np.ndarray  # active-region coronal heating, [0, 1]
    spot: np.ndarray  # sunspot darkness: 0 outside, ~0.6 in the penumbra, 1 in the umbra
    ch: np.ndarray  # coronal-hole darkness, [0, depth]; half the hole's depth on the boundary
    filament: np.ndarray  # filament opacity, [0, 1]
    channel: np.ndarray  # filament-channel opacity, [0, 1]
    network: np.ndarray  # quiet-Sun network brightness contrast
    corona: np.ndarray  # quiet-corona log-brightness, zero mean, unit variance
    bright_points: np.ndarray  # coronal bright points, >= 0 (about 1 at a point's peak)
    ar_mask: np.ndarray  # bool
    ch_mask: np.ndarray  # bool


#: Sunspot field strengths (G) at the penumbra's outer edge and at the umbra's edge, and the
#: penumbra's darkness relative to the umbra's.
PENUMBRA_G = 700.0
UMBRA_G = 1800.0
PENUMBRA_DARKNESS = 0.6


def spot_darkness(b_gauss: np.ndarray) -> np.ndarray:
    """Darkness of sunspot pixels from their field: ``PENUMBRA_DARKNESS`` across the penumbra,
    1 in the umbra, with sharp edges."""
    penumbra = 1.0 / (1.0 + np.exp(-(b_gauss - PENUMBRA_G) / 60.0))
    umbra = 1.0 / (1.0 + np.exp(-(b_gauss - UMBRA_G) / 60.0))
    return PENUMBRA_DARKNESS * penumbra + (1.0 - PENUMBRA_DARKNESS) * umbra


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
            spot[idx] = np.maximum(spot[idx], spot_darkness(b_spot))
        b_ar[idx] += region.leading_polarity * field
    return b_ar, spot, mask


def _coronal_holes(points: PointSet, state: SunState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(darkness, openness in [0, 1], polarity, mask) of all coronal holes."""
    ch = np.zeros(len(points))
    openness = np.zeros(len(points))
    polarity = np.zeros(len(points))
    mask = np.zeros(len(points), dtype=bool)
    for placed in state.coronal_holes:
        hole: CoronalHole = placed.feature  # type: ignore[assignment]
        centre, west, north = local_frame(placed.lon_deg, placed.lat_deg, 0.0)
        idx = points.within(centre, coronal_hole_reach_deg(placed))
        pts = points.xyz[idx]
        rho = np.degrees(np.arccos(np.clip(pts @ centre, -1.0, 1.0)))
        theta = np.arctan2(pts @ north, pts @ west)
        level = coronal_hole_level(placed, state.mjd, rho, theta)
        inside = 1.0 / (1.0 + np.exp(-level / CH_EDGE))
        dark_level = level + CH_DARKNESS_VARIATION * _patch_at(placed, state.mjd, rho, theta, PATCH_DEG / 2)
        polarity[idx] = np.where(inside > openness[idx], hole.polarity, polarity[idx])
        openness[idx] = np.maximum(openness[idx], inside)
        ch[idx] = np.maximum(ch[idx], hole.depth / (1.0 + np.exp(-dark_level / CH_EDGE)))
        if placed.envelope >= LABEL_MIN_ENVELOPE:
            mask[idx] |= level > 0.0
    return ch, openness, polarity, mask


def coronal_hole_darkness(points: PointSet, state: SunState) -> np.ndarray:
    """Coronal-hole darkness at ``points`` (as in :class:`SurfaceFields`)."""
    return _coronal_holes(points, state)[0]


def _filaments(points: PointSet, state: SunState) -> tuple[np.ndarray, np.ndarray]:
    """(filament opacity, filament-channel opacity) of all filaments."""
    opacity = np.zeros(len(points))
    channel = np.zeros(len(points))
    for placed in state.filaments:
        fil: Filament = placed.feature  # type: ignore[assignment]
        centre, axis, side = local_frame(placed.lon_deg, placed.lat_deg, fil.angle_deg)
        idx = points.within(centre, 0.5 * fil.length_deg + 2.0 * fil.channel_width_deg + 2.0)
        x, y = _tangent(points.xyz[idx], axis, side)
        bent = y - fil.curvature_per_deg * x**2
        taper = np.clip(1.0 - (2.0 * x / fil.length_deg) ** 4, 0.0, 1.0)
        opacity[idx] = np.maximum(opacity[idx], placed.envelope * taper * np.exp(-(bent**2) / (2 * fil.width_deg**2)))
        lane = np.clip(1.0 - (2.0 * x / (fil.length_deg + 2.0 * fil.channel_width_deg)) ** 2, 0.0, 1.0)
        channel[idx] = np.maximum(channel[idx], placed.envelope * lane * np.exp(-(bent**2) / (2 * fil.channel_width_deg**2)))
    return opacity, channel


def surface_fields(xyz: np.ndarray, state: SunState, seed: int, l0_deg: float, pixel_deg: float = 0.0) -> SurfaceFields:
    """All quantities at HGS unit vectors ``xyz`` (n, 3); ``l0_deg`` places the Carrington
    textures, which are averaged over ``pixel_deg`` (an image pixel's footprint)."""
    lon, lat = lon_lat_deg(xyz)
    carrington_lon = lon + l0_deg
    level = texture.smoothing_level(pixel_deg)
    bright_map, field_map = texture.network_maps(seed, level)
    corona_map, points_map, _ = texture.corona_maps(seed, state.mjd, level)
    network = texture.sample(bright_map, carrington_lon, lat)
    net_field = NETWORK_G * texture.sample(field_map, carrington_lon, lat)
    points = PointSet(xyz)
    b_ar, spot, ar_mask = _active_regions(points, state)
    ch, openness, ch_polarity, ch_mask = _coronal_holes(points, state)
    filament, channel = _filaments(points, state)
    quiet = (1.0 - openness) * net_field + openness * ch_polarity * (CH_UNIPOLAR_G + 0.6 * np.abs(net_field))
    polar_weight = np.clip((np.abs(lat) - 55.0) / 20.0, 0.0, 1.0)
    polar = state.north_pole_polarity * np.sign(lat) * POLAR_G * polar_weight**2 * (3 - 2 * polar_weight)
    return SurfaceFields(
        b_r=b_ar + quiet + polar,
        b_ar=b_ar,
        heat=active_region_heat(points, state),
        spot=spot,
        ch=ch,
        filament=filament,
        channel=channel,
        network=network,
        corona=texture.sample(corona_map, carrington_lon, lat),
        bright_points=texture.sample(points_map, carrington_lon, lat),
        ar_mask=ar_mask,
        ch_mask=ch_mask & ~ar_mask,
    )

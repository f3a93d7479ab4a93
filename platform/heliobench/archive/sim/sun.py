"""The simulated Sun as a pure function of (seed, time).

Active regions, coronal holes and filaments emerge on days; each day's population is drawn
from a stream seeded by (seed, day index), so the Sun at time ``t`` depends only on the seed
and the days within the longest lifetime before ``t`` -- never on where a simulation starts.
Positions are Heliographic Stonyhurst (HGS) degrees; features rotate differentially (Howard
et al. 1990, synodic) at their latitude. Times are MJD (UTC days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy.time import Time
from sunpy.coordinates.sun import carrington_rotation_number
from sunpy.sun.models import differential_rotation

from heliobench.archive.sim import cycle
from heliobench.archive.sim.streams import rng

#: Track numbers of the polar holes start here (far above the low-latitude holes' numbers).
POLAR_TRACK_BASE = 90_000_000
AR_MAX_LIFETIME_DAYS = 27.0  # under one synodic rotation: at most two disk passages
CH_MAX_LIFETIME_DAYS = 100.0
FILAMENT_MAX_LIFETIME_DAYS = 30.0

#: Mount Wilson classes at emergence: share of regions and median sunspot area at maximum
#: (MSH). Complex regions are larger and so live longer (Gnevyshev-Waldmeier rule below): the
#: shares of region-days a report sees are tuned against the real SRS reports and the long-term
#: frequencies (about 20 % Alpha, 65 % Beta, 10 % Beta-Gamma, 4 % Beta-Gamma-Delta; Jaeggli &
#: Norton 2016, ApJL 820, L11).
MT_WILSON = {
    "Alpha": (0.18, 60.0),
    "Beta": (0.68, 140.0),
    "Beta-Gamma": (0.075, 400.0),
    "Beta-Gamma-Delta": (0.02, 700.0),
    "Beta-Delta": (0.005, 500.0),
    "Gamma": (0.003, 200.0),
    "Delta": (0.003, 250.0),
    "Gamma-Delta": (0.003, 450.0),
}
_CLASSES = tuple(MT_WILSON)
_CLASS_SHARES = np.array([MT_WILSON[c][0] for c in _CLASSES]) / sum(v[0] for v in MT_WILSON.values())
#: Spread (natural log) of a region's maximum area about its class median.
AREA_LOG_SPREAD = 0.8

#: Sunspots smaller than this (MSH) are gone: the region is plage only.
MIN_SPOT_AREA_MSH = 3.0
#: Gnevyshev-Waldmeier rule: a group's spots last about its maximum area over this decay rate
#: (Petrovay & van Driel-Gesztelyi 1997, Sol. Phys. 176, 249: A_max = 10.89 MSH/day x lifetime),
#: which varies from group to group (log-normal decay rates: Martinez Pillet et al. 1993).
GW_DECAY_MSH_PER_DAY = 10.0
GW_LOG_SPREAD = 0.35
#: Plage (and the region's mask, loops and HEK record) outlives its spots: lifetime =
#: factor x spot lifetime + days.
PLAGE_LIFETIME = (1.5, 1.5)
#: Joy's law: tilt = slope x latitude (Kislovodsk 2010-2020: 0.37), with a scatter that narrows
#: with the region's size: TILT_SCATTER_DEG at TILT_SCATTER_AREA_MSH, times (area / that)^exponent.
JOY_SLOPE = 0.37
TILT_SCATTER_DEG = 20.0
TILT_SCATTER_AREA_MSH = 150.0
TILT_SCATTER_EXPONENT = -0.2
#: 1 MSH (millionth of a solar hemisphere) in square degrees of heliographic arc.
_MSH_DEG2 = 2.0 * math.pi * math.degrees(1.0) ** 2 * 1e-6
#: Share of regions violating Hale's polarity law.
_ANTI_HALE_SHARE = 0.04
#: Spread (natural log) of the regions' fragmentation: how many spots a group of a given area breaks into.
FRAGMENTATION_LOG_SPREAD = 0.7


def spot_radius_deg(area_msh: float) -> float:
    """Radius of a round spot of ``area_msh`` (degrees of heliographic arc)."""
    return math.sqrt(max(area_msh, 0.0) * _MSH_DEG2 / math.pi)


def synodic_rate_deg_per_day(lat_deg: np.ndarray) -> np.ndarray:
    """Synodic differential rotation rate at each latitude (Howard et al. 1990)."""
    rate = differential_rotation(1 * u.day, np.asarray(lat_deg, dtype=float) * u.deg, frame_time="synodic")
    return rate.to_value(u.deg)


def disk_passage(lon_deg: float, lat_deg: float, emerged_mjd: float, mjd: float) -> int:
    """How many times a feature has crossed the east limb (HGS -90°) since it emerged.

    0 for the passage it emerged in (or, emerging on the far side, the one before its
    first visible passage). Catalogs identify a feature per passage: NOAA numbers a
    returning region anew, and SPoCA's tracks end when a hole rotates off the disk.
    """
    rate = float(synodic_rate_deg_per_day(np.array([lat_deg]))[0])
    start = lon_deg + 90.0
    return math.floor((start + rate * (mjd - emerged_mjd)) / 360.0) - math.floor(start / 360.0)


def _wrap_deg(lon: np.ndarray | float) -> np.ndarray:
    return (np.asarray(lon) + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class Spot:
    """A sunspot of a region, in the region's frame: x along the axis (leading side +), y across."""

    x_deg: float
    y_deg: float
    polarity: int  # +1 = the region's leading polarity
    share: float  # share of the region's sunspot area


@dataclass(frozen=True)
class ActiveRegion:
    """An active region from emergence to decay."""

    noaa: int
    emerged_mjd: float
    lifetime_days: float  # of the region (plage); its spots last ``spot_lifetime_days``
    rise_days: float
    spot_lifetime_days: float
    lat_deg: float
    lon_deg: float  # HGS longitude at emergence
    tilt_deg: float  # axis angle from west towards north (Joy's law)
    leading_polarity: int
    mt_wilson: str
    max_area_msh: float
    half_separation_deg: float
    spots: tuple[Spot, ...]
    strand_phases: tuple[float, float, float]  # where the coronal loop strands lie (radians)
    fragmentation: float  # how many spots the group breaks into, relative to a typical one of its area

    @property
    def plage_sigma_deg(self) -> float:
        """Width of the region's plage (facular field) around its polarities."""
        return 0.5 * self.half_separation_deg + 1.0

    @property
    def semi_axes_deg(self) -> tuple[float, float]:
        """Semi-axes (along, across the axis) of the ellipse the region's mask and events cover."""
        across = max(abs(s.y_deg) for s in self.spots)
        return self.half_separation_deg + 2.0 * self.plage_sigma_deg, across + 2.0 * self.plage_sigma_deg

    def envelope(self, mjd: float) -> float:
        """Development in [0, 1]: smooth emergence over ``rise_days``, then linear decay."""
        age = mjd - self.emerged_mjd
        if age < 0.0 or age >= self.lifetime_days:
            return 0.0
        if age < self.rise_days:
            x = age / self.rise_days
            return x * x * (3.0 - 2.0 * x)
        return 1.0 - (age - self.rise_days) / (self.lifetime_days - self.rise_days)

    def noaa_at(self, mjd: float) -> int:
        """The NOAA number at ``mjd``: a new one for each disk passage (see ``cycle.NOAA_SLOTS``)."""
        return self.noaa + disk_passage(self.lon_deg, self.lat_deg, self.emerged_mjd, mjd)

    @property
    def spot_envelope(self) -> float:
        """Development above which the region has sunspots: they form during emergence and are
        gone ``spot_lifetime_days`` after it starts, while the plage lives on."""
        decay = self.lifetime_days - self.rise_days
        return float(np.clip(1.0 - (self.spot_lifetime_days - self.rise_days) / decay, 0.0, 0.95))

    def spot_area_msh(self, envelope: float) -> float:
        """Sunspot area at a development stage: zero below :attr:`spot_envelope`, the maximum
        area at full development, and spots smaller than ``MIN_SPOT_AREA_MSH`` gone."""
        floor = self.spot_envelope
        if envelope <= floor:
            return 0.0
        area = self.max_area_msh * ((envelope - floor) / (1.0 - floor)) ** 1.5
        return area if area >= MIN_SPOT_AREA_MSH else 0.0


@dataclass(frozen=True)
class CoronalHole:
    """A coronal hole: a patch of open, weak unipolar field, dark in EUV and X-rays.

    Its outline is a level set: the smooth shape of ``radius_deg`` and ``harmonics`` plus a
    ragged, multi-scale perturbation read from the patch texture at ``patch_offset_deg``
    (:mod:`heliobench.archive.sim.texture`), so boundaries are irregular and small islands
    of the hole lie around it. ``depth`` scales how dark it is (1 = the channel's full
    coronal-hole contrast).
    """

    track: int
    emerged_mjd: float
    lifetime_days: float
    lat_deg: float
    lon_deg: float  # HGS longitude at emergence (the harmonics' reference for polar holes)
    radius_deg: float
    harmonics: tuple[tuple[int, float, float], ...]  # (order, relative amplitude, phase rad)
    polarity: int
    polar: bool = False
    depth: float = 1.0
    patch_offset_deg: tuple[float, float] = (0.0, 0.0)

    def track_at(self, mjd: float) -> int:
        """The SPoCA track number at ``mjd``: one per disk passage, one per Carrington
        rotation for the (always visible) polar holes."""
        if self.polar:
            return POLAR_TRACK_BASE + 10 * int(carrington_rotation_number(Time(mjd, format="mjd"))) + self.track
        return 10 * self.track + disk_passage(self.lon_deg, self.lat_deg, self.emerged_mjd, mjd)

    def envelope(self, mjd: float) -> float:
        """Size relative to ``radius_deg``: grows and shrinks over the lifetime."""
        if self.polar:
            return 1.0
        age = mjd - self.emerged_mjd
        if age < 0.0 or age >= self.lifetime_days:
            return 0.0
        return math.sqrt(math.sin(math.pi * age / self.lifetime_days))


@dataclass(frozen=True)
class Filament:
    """A filament (dark in H-alpha and EUV): a thin, slightly curved band along a neutral line,
    lying in a filament channel (a broader, fainter dark lane in EUV: the classic coronal-hole
    confuser)."""

    emerged_mjd: float
    lifetime_days: float
    lat_deg: float
    lon_deg: float
    length_deg: float
    width_deg: float
    angle_deg: float  # orientation from west towards north
    curvature_per_deg: float
    channel_width_deg: float = 0.0

    def envelope(self, mjd: float) -> float:
        """Visibility in [0, 1]: forms and fades over a day."""
        age = mjd - self.emerged_mjd
        if age < 0.0 or age >= self.lifetime_days:
            return 0.0
        return min(1.0, age, self.lifetime_days - age)


@dataclass(frozen=True)
class Placed:
    """A feature where it is at one time: HGS position and development."""

    feature: ActiveRegion | CoronalHole | Filament
    lon_deg: float
    lat_deg: float
    envelope: float


@dataclass(frozen=True)
class SunState:
    """Everything on the Sun at one time."""

    mjd: float
    active_regions: tuple[Placed, ...]
    coronal_holes: tuple[Placed, ...]
    filaments: tuple[Placed, ...]
    north_pole_polarity: int
    activity: float


def _spot_layout(mt_wilson: str, d: float, area: float, rand: np.random.Generator) -> tuple[Spot, ...]:
    """Spots of a region by Mt. Wilson class: delta = opposite umbrae in one penumbra,
    gamma = polarities intermixed so that no single line separates them."""
    side = 1.0 if rand.random() < 0.5 else -1.0
    if mt_wilson.startswith("Gamma"):
        n = int(rand.integers(4, 6))
        xs = rand.uniform(-d, d, n)
        ys = rand.uniform(-0.5 * d, 0.5 * d, n)
        layout = [
            (float(x), float(y), 1 if i % 2 == 0 else -1, 1.0)
            for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        ]
    elif mt_wilson == "Alpha":
        layout = [(0.3 * d, 0.0, 1, 1.0)]
    elif mt_wilson == "Delta":
        layout = [(0.2 * d, 0.0, 1, 0.6)]
    else:
        layout = [(d, 0.0, 1, 0.6), (-d, 0.0, -1, 0.4)]
        if "Gamma" in mt_wilson:
            layout.append((0.3 * d, side * 0.45 * d, -1, 0.15))
        if mt_wilson == "Beta-Gamma-Delta":
            layout.append((-0.2 * d, -side * 0.5 * d, 1, 0.1))
    if "Delta" in mt_wilson:
        x, y, pol, share = layout[0]
        r = spot_radius_deg(share * area)
        layout.append((x + 1.1 * r, y + 0.3 * r, -pol, 0.5 * share))
    total = sum(s[3] for s in layout)
    return tuple(Spot(x, y, p, s / total) for x, y, p, s in layout)


@lru_cache(maxsize=256)
def active_regions_emerging(seed: int, day: int) -> tuple[ActiveRegion, ...]:
    """Active regions that emerge on ``day`` (MJD integer)."""
    rand = rng(seed, "active_regions", day)
    regions = []
    for noaa in cycle.noaa_numbers(day):
        emerged = day + float(rand.random())
        cyc = cycle.choose_cycle(emerged, float(rand.random()))
        hemisphere = 1 if rand.random() < 0.5 else -1
        mean_lat = cyc.mean_latitude_deg(emerged)
        lat = hemisphere * float(np.clip(abs(rand.normal(mean_lat, 0.25 * mean_lat + 2.0)), 2.0, 45.0))
        lon = float(rand.uniform(-180.0, 180.0))
        mt_wilson = _CLASSES[int(rand.choice(len(_CLASSES), p=_CLASS_SHARES))]
        area = float(np.clip(MT_WILSON[mt_wilson][1] * math.exp(AREA_LOG_SPREAD * rand.normal()), 5.0, 3000.0))
        spot_lifetime = max(area / GW_DECAY_MSH_PER_DAY * math.exp(GW_LOG_SPREAD * rand.normal()), 0.5)
        lifetime = min(PLAGE_LIFETIME[0] * spot_lifetime + PLAGE_LIFETIME[1], AR_MAX_LIFETIME_DAYS)
        scatter = TILT_SCATTER_DEG * (area / TILT_SCATTER_AREA_MSH) ** TILT_SCATTER_EXPONENT
        tilt = -hemisphere * float(np.clip(JOY_SLOPE * abs(lat) + scatter * rand.normal(), -89.0, 89.0))
        leading = cyc.north_leading_polarity * hemisphere
        if rand.random() < _ANTI_HALE_SHARE:
            leading = -leading
        half_sep = float(np.clip(1.5 + 2.5 * (area / 100.0) ** 0.45, 1.5, 9.0))
        regions.append(
            ActiveRegion(
                noaa=noaa,
                emerged_mjd=emerged,
                lifetime_days=lifetime,
                rise_days=float(np.clip(0.2 * spot_lifetime, 0.3, 4.0)),
                spot_lifetime_days=min(spot_lifetime, lifetime),
                lat_deg=lat,
                lon_deg=lon,
                tilt_deg=tilt,
                leading_polarity=leading,
                mt_wilson=mt_wilson,
                max_area_msh=area,
                half_separation_deg=half_sep,
                spots=_spot_layout(mt_wilson, half_sep, area, rand),
                strand_phases=tuple(float(p) for p in rand.uniform(0.0, math.pi, 3)),
                fragmentation=math.exp(FRAGMENTATION_LOG_SPREAD * rand.normal()),
            )
        )
    return tuple(regions)


#: Coronal holes are largest and most common in the declining phase of the cycle: their
#: formation rate follows the activity this many days earlier (Harvey & Recely 2002).
CH_ACTIVITY_LAG_DAYS = 730.0
#: Share of low-latitude holes with the polarity of their hemisphere's polar field.
CH_POLAR_LIKE_SHARE = 0.8


def coronal_hole_rate_per_day(mjd: float) -> float:
    """Low-latitude coronal holes forming per day over the whole Sun."""
    return 0.04 + 0.13 * cycle.activity(max(mjd - CH_ACTIVITY_LAG_DAYS, cycle.MJD_MIN))


@lru_cache(maxsize=256)
def coronal_holes_forming(seed: int, day: int) -> tuple[CoronalHole, ...]:
    """Low-latitude coronal holes that form on ``day`` (MJD integer)."""
    rand = rng(seed, "coronal_holes", day)
    holes = []
    for k in range(int(rand.poisson(coronal_hole_rate_per_day(day + 0.5)))):
        hemisphere = 1 if rand.random() < 0.5 else -1
        holes.append(
            CoronalHole(
                track=day * 10 + k,
                emerged_mjd=day + float(rand.random()),
                lifetime_days=float(rand.uniform(15.0, CH_MAX_LIFETIME_DAYS)),
                lat_deg=hemisphere * float(rand.uniform(0.0, 45.0)),
                lon_deg=float(rand.uniform(-180.0, 180.0)),
                radius_deg=float(np.clip(rand.lognormal(math.log(12.0), 0.35), 4.0, 28.0)),
                harmonics=tuple(
                    (
                        order,
                        float(np.clip(rand.normal(0.0, 0.15), -0.3, 0.3)),
                        float(rand.uniform(0, 2 * math.pi)),
                    )
                    for order in (2, 3, 4)
                ),
                # most low-latitude holes extend their hemisphere's polar field (Harvey & Recely 2002)
                polarity=hemisphere * cycle.north_pole_polarity(day) * (1 if rand.random() < CH_POLAR_LIKE_SHARE else -1),
                depth=float(rand.uniform(0.7, 1.0)),
                patch_offset_deg=(float(rand.uniform(0, 64.0)), float(rand.uniform(0, 64.0))),
            )
        )
    return tuple(holes)


@lru_cache(maxsize=8)
def _polar_hole_shapes(seed: int) -> tuple[tuple[tuple[int, float, float], ...], ...]:
    rand = rng(seed, "polar_holes")
    return tuple(
        tuple(
            (order, float(rand.normal(0.0, 0.1)), float(rand.uniform(0, 2 * math.pi)))
            for order in (1, 2, 3, 5)
        )
        for _ in range(2)
    )


#: The polar holes' ragged edges change at this pace (degrees of patch texture per day).
POLAR_PATCH_DRIFT_DEG_PER_DAY = 0.25


def polar_holes(seed: int, mjd: float) -> tuple[CoronalHole, ...]:
    """The polar coronal holes: large near minimum, almost gone near maximum (polar field reversal)."""
    radius = 30.0 - 28.0 * cycle.activity(mjd)
    north = cycle.north_pole_polarity(mjd)
    # the boundary's pattern turns with the polar rotation rate since J2000
    turn = float(synodic_rate_deg_per_day(np.array([75.0]))[0]) * (mjd - 51544.5)
    return tuple(
        CoronalHole(
            track=i + 1,
            emerged_mjd=mjd,
            lifetime_days=1.0,
            lat_deg=90.0 * sign,
            lon_deg=float(_wrap_deg(turn)),
            radius_deg=radius,
            harmonics=shape,
            polarity=north * sign,
            polar=True,
            patch_offset_deg=(32.0 * i, 16.0 + 32.0 * i + POLAR_PATCH_DRIFT_DEG_PER_DAY * (mjd - 51544.5)),
        )
        for i, (sign, shape) in enumerate(zip((1, -1), _polar_hole_shapes(seed), strict=True))
    )


@lru_cache(maxsize=256)
def filaments_forming(seed: int, day: int) -> tuple[Filament, ...]:
    """Filaments that form on ``day`` (MJD integer): quiet-Sun filaments at all latitudes
    up to the polar crown, more and at lower latitudes with activity."""
    rand = rng(seed, "filaments", day)
    filaments = []
    for _ in range(int(rand.poisson(0.35 + 1.0 * cycle.activity(day + 0.5)))):
        width = float(rand.uniform(0.2, 0.5))
        filaments.append(
            Filament(
                emerged_mjd=day + float(rand.random()),
                lifetime_days=float(rand.uniform(3.0, FILAMENT_MAX_LIFETIME_DAYS)),
                lat_deg=(1 if rand.random() < 0.5 else -1) * float(rand.uniform(5.0, 65.0)),
                lon_deg=float(rand.uniform(-180.0, 180.0)),
                length_deg=float(np.clip(rand.lognormal(math.log(12.0), 0.5), 4.0, 45.0)),
                width_deg=width,
                angle_deg=float(rand.uniform(-60.0, 60.0)),
                curvature_per_deg=float(rand.normal(0.0, 0.02)),
                channel_width_deg=width * float(rand.uniform(3.0, 8.0)),
            )
        )
    return tuple(filaments)


def _place(features: list, mjd: float) -> tuple[Placed, ...]:
    """Rotate alive features to ``mjd`` (rigidly at their latitude's synodic rate)."""
    alive = [(f, env) for f in features if (env := f.envelope(mjd)) > 0.0]
    if not alive:
        return ()
    lats = np.array([f.lat_deg for f, _ in alive])
    lons = np.array([f.lon_deg for f, _ in alive])
    ages = np.array([0.0 if getattr(f, "polar", False) else mjd - f.emerged_mjd for f, _ in alive])
    lons = _wrap_deg(lons + synodic_rate_deg_per_day(lats) * ages)
    return tuple(Placed(f, float(lon), f.lat_deg, env) for (f, env), lon in zip(alive, lons, strict=True))


class SunModel:
    """The simulated Sun for one seed: ``state(mjd)`` is a pure function of (seed, time)."""

    def __init__(self, seed: int):
        self.seed = seed

    def _recent(self, source, mjd: float, max_lifetime_days: float) -> list:
        today = math.floor(mjd)
        return [
            f
            for day in range(today - math.ceil(max_lifetime_days), today + 1)
            for f in source(self.seed, day)
        ]

    def state(self, mjd: float) -> SunState:
        """All features present at ``mjd`` (UTC), placed where they are then."""
        cycle.check_supported(mjd, "simulated Sun")
        regions = _place(self._recent(active_regions_emerging, mjd, AR_MAX_LIFETIME_DAYS), mjd)
        holes = _place(
            list(polar_holes(self.seed, mjd))
            + self._recent(coronal_holes_forming, mjd, CH_MAX_LIFETIME_DAYS),
            mjd,
        )
        filaments = _place(self._recent(filaments_forming, mjd, FILAMENT_MAX_LIFETIME_DAYS), mjd)
        return SunState(
            mjd=mjd,
            active_regions=regions,
            coronal_holes=holes,
            filaments=filaments,
            north_pole_polarity=cycle.north_pole_polarity(mjd),
            activity=cycle.activity(mjd),
        )

"""Where the observer is and where each pixel of an image looks on the Sun.

The observer is at the Earth (sunpy's ephemeris; SDO's geosynchronous offset and the
Kanzelhoehe site are ignored). A :class:`Pointing` is the image's FITS WCS (HPLN/HPLT-TAN,
CRVAL = 0 at the disk centre, CROTA2 rotation); :func:`disk_view` inverts it analytically,
ray by ray, to the point each pixel sees on the solar sphere -- vectorised over all pixels,
and equal to what ``sunpy.map.Map(...).pixel_to_world`` gives for the same header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy.coordinates import HeliocentricMeanEcliptic
from astropy.time import Time
from sunpy.coordinates import get_earth, sun

from heliobench.archive.sim.config import (
    AIA_CDELT_4096_ARCSEC,
    HMI_CDELT_4096_ARCSEC,
    KSO_CDELT_2048_ARCSEC,
    RSUN_REF_M,
)
from heliobench.archive.sim.streams import rng

_ARCSEC = math.pi / 180.0 / 3600.0


@dataclass(frozen=True)
class Observer:
    """The Earth-based observer at one time, with the solar angles the headers carry."""

    mjd: float  # UTC
    dsun_m: float
    b0_deg: float  # heliographic latitude of the observer (HGLT_OBS, CRLT_OBS)
    l0_deg: float  # Carrington longitude of the observer (CRLN_OBS)
    carrington_rotation: int

    @property
    def rsun_obs_arcsec(self) -> float:
        """Apparent solar radius (RSUN_OBS)."""
        return math.degrees(math.asin(RSUN_REF_M / self.dsun_m)) * 3600.0

    @property
    def time(self) -> Time:
        """The observation time."""
        return Time(self.mjd, format="mjd", scale="utc")

    @property
    def p_deg(self) -> float:
        """Position angle of solar north, from celestial north towards east."""
        return _solar_p_deg(self.mjd)

    @property
    def hae_m(self) -> tuple[float, float, float]:
        """Heliocentric mean ecliptic (J2000) position (HAEX/Y/Z_OBS)."""
        return _hae_m(self.mjd)


@lru_cache(maxsize=64)
def observer_at(mjd: float) -> Observer:
    """The Earth observer at ``mjd`` (UTC), from sunpy's ephemeris."""
    t = Time(mjd, format="mjd", scale="utc")
    earth = get_earth(t)
    return Observer(
        mjd=mjd,
        dsun_m=float(earth.radius.to_value(u.m)),
        b0_deg=float(earth.lat.to_value(u.deg)),
        l0_deg=float(sun.L0(t).to_value(u.deg)),
        carrington_rotation=int(sun.carrington_rotation_number(t)),
    )


@lru_cache(maxsize=64)
def _solar_p_deg(mjd: float) -> float:
    return float(sun.P(Time(mjd, format="mjd", scale="utc")).to_value(u.deg))


@lru_cache(maxsize=64)
def _hae_m(mjd: float) -> tuple[float, float, float]:
    t = Time(mjd, format="mjd", scale="utc")
    x, y, z = get_earth(t).transform_to(HeliocentricMeanEcliptic(obstime=t)).cartesian.xyz.to_value(u.m)
    return float(x), float(y), float(z)


@dataclass(frozen=True)
class Pointing:
    """An image's WCS: square pixels of ``cdelt_arcsec``, reference pixel at the disk centre."""

    size: int
    cdelt_arcsec: float
    crpix1: float  # FITS 1-based
    crpix2: float
    crota2_deg: float


_INSTRUMENT_KEYS = {"AIA": 1, "HMI": 2, "KSO": 3}


def pointing_for(seed: int, instrument: str, day: int, size: int, observer: Observer) -> Pointing:
    """The pointing of ``instrument`` ("AIA", "HMI", "KSO") on ``day``, for ``size`` pixels.

    Plate scales are the real ones scaled to ``size``; the disk centre sits 1.5-4 pixels off the
    image centre. AIA is rolled by a few hundredths of a degree, HMI is upside down (CROTA2 near
    180), and the ground-based KSO images keep celestial north up (CROTA2 = -P).
    """
    rand = rng(seed, "pointing", _INSTRUMENT_KEYS[instrument], day)
    offset = rand.uniform(1.5, 4.0)
    angle = rand.uniform(0.0, 2.0 * math.pi)
    if instrument == "AIA":
        cdelt, crota2 = AIA_CDELT_4096_ARCSEC * 4096 / size, rand.uniform(0.01, 0.09)
    elif instrument == "HMI":
        cdelt, crota2 = HMI_CDELT_4096_ARCSEC * 4096 / size, 180.0 - rand.uniform(0.05, 0.1)
    else:
        cdelt, crota2 = KSO_CDELT_2048_ARCSEC * 2048 / size, -observer.p_deg
    return Pointing(
        size=size,
        cdelt_arcsec=cdelt,
        crpix1=(size + 1) / 2.0 + offset * math.cos(angle),
        crpix2=(size + 1) / 2.0 + offset * math.sin(angle),
        crota2_deg=crota2,
    )


@dataclass(frozen=True)
class DiskView:
    """What each pixel of an image sees.

    ``on_disk`` marks pixels whose line of sight hits the Sun; for them (flattened, in row-major
    order) ``xyz`` is the unit vector of the point hit in HGS Cartesian axes (x to the observer's
    meridian on the equator, y west, z north) and ``mu`` the cosine of the viewing angle there.
    For every pixel ``rho_rsun`` is the line of sight's distance from the Sun centre (solar radii)
    and ``position_angle`` its direction in the plane of the sky (radians from solar west
    towards north): off-limb structures stand above the limb point of that direction
    (:func:`limb_points`).
    """

    on_disk: np.ndarray
    xyz: np.ndarray
    mu: np.ndarray
    rho_rsun: np.ndarray
    position_angle: np.ndarray
    b0_deg: float
    pixel_deg: float  # heliographic degrees a pixel spans at disk centre


def _to_hgs(x_hc: np.ndarray, y_hc: np.ndarray, z_hc: np.ndarray, b0_rad: float) -> np.ndarray:
    """Heliocentric (x west, y north, z to observer) to HGS Cartesian, as an (n, 3) array."""
    cb, sb = math.cos(b0_rad), math.sin(b0_rad)
    return np.stack([z_hc * cb - y_hc * sb, x_hc, z_hc * sb + y_hc * cb], axis=-1)


def disk_view(pointing: Pointing, observer: Observer) -> DiskView:
    """Trace every pixel's line of sight to the solar sphere."""
    n = pointing.size
    p1 = np.arange(n, dtype=float)[None, :] + 1.0 - pointing.crpix1
    p2 = np.arange(n, dtype=float)[:, None] + 1.0 - pointing.crpix2
    c, s = math.cos(math.radians(pointing.crota2_deg)), math.sin(math.radians(pointing.crota2_deg))
    scale = pointing.cdelt_arcsec * _ARCSEC
    xi = scale * (c * p1 - s * p2)  # gnomonic (TAN) plane coordinates, radians
    eta = scale * (s * p1 + c * p2)
    norm = np.sqrt(1.0 + xi**2 + eta**2)
    to_sun, west, north = 1.0 / norm, xi / norm, eta / norm
    d, r = observer.dsun_m, RSUN_REF_M
    sin2 = 1.0 - to_sun**2
    disc = r * r - d * d * sin2
    on_disk = disc >= 0.0
    rho = d * np.sqrt(sin2) / r
    b0 = math.radians(observer.b0_deg)

    # nearest intersection of the ray from (0, 0, d) along (west, north, -to_sun) with the sphere
    path = d * to_sun[on_disk] - np.sqrt(disc[on_disk])
    x_hc, y_hc = path * west[on_disk] / r, path * north[on_disk] / r
    z_hc = (d - path * to_sun[on_disk]) / r
    mu = z_hc * to_sun[on_disk] - x_hc * west[on_disk] - y_hc * north[on_disk]

    return DiskView(
        on_disk=on_disk,
        xyz=_to_hgs(x_hc, y_hc, z_hc, b0),
        mu=np.clip(mu, 0.0, 1.0),
        rho_rsun=rho,
        position_angle=np.arctan2(north, west).astype(np.float32),
        b0_deg=observer.b0_deg,
        pixel_deg=math.degrees(scale * (d - r) / r),
    )


def limb_points(position_angle: np.ndarray, b0_deg: float) -> np.ndarray:
    """HGS unit vectors of the limb points in the plane-of-sky directions ``position_angle``
    (radians from solar west towards north)."""
    pa = np.asarray(position_angle, dtype=float)
    return _to_hgs(np.cos(pa), np.sin(pa), np.zeros_like(pa), math.radians(b0_deg))


def unit_vectors(lon_deg: np.ndarray | float, lat_deg: np.ndarray | float) -> np.ndarray:
    """HGS unit vectors of (lon, lat) in degrees, shape (..., 3)."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def lon_lat_deg(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HGS longitude and latitude (degrees) of unit vectors."""
    return np.degrees(np.arctan2(xyz[..., 1], xyz[..., 0])), np.degrees(
        np.arcsin(np.clip(xyz[..., 2], -1.0, 1.0))
    )


def visible(xyz: np.ndarray, observer: Observer) -> np.ndarray:
    """Whether points on the sphere (HGS unit vectors) face the observer."""
    b0 = math.radians(observer.b0_deg)
    toward = np.array([math.cos(b0), 0.0, math.sin(b0)])
    return xyz @ toward > RSUN_REF_M / observer.dsun_m

"""Pixel values of the simulated instruments, drawn from the surface fields of one scene."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from heliobench.archive.sim.config import AIA_READ_NOISE_DN, AIA_SATURATION_DN, HMI_NOISE_G, AIAChannel
from heliobench.archive.sim import texture
from heliobench.archive.sim.fields import PointSet, SurfaceFields, active_region_heat, coronal_hole_darkness, surface_fields
from heliobench.archive.sim.geometry import DiskView, limb_points, lon_lat_deg
from heliobench.archive.sim.sun import SunState

#: Quiet-Sun H-alpha disk-centre counts (12-bit camera) and the sky background.
KSO_QUIET_DN = 3000.0
KSO_SKY_DN = 30.0
KSO_MAX_DN = 4095


#: EUV limb brightening (optically thin corona seen along longer paths near the limb) rises
#: as (1 - mu) to this power: flat over most of the disk, steep in the last tenth of the radius.
EUV_LIMB_POWER = 6.0
#: Plumes: rays above open-field regions (polar holes), brighter than the dark corona around them
#: by up to this factor times the limb's fine structure.
PLUME_GAIN = 0.5
#: Off-limb structures are evaluated at this many limb points around the disk, then smoothed
#: along the limb: loops by ``_LOOP_SMOOTH_DEG``, the dark corona above coronal holes by
#: ``_OPEN_SMOOTH_DEG`` (its plumes and edges blur with height).
_LIMB_SAMPLES = 1440
_LOOP_SMOOTH_DEG = 0.5
_OPEN_SMOOTH_DEG = 3.0


@dataclass(frozen=True)
class Scene:
    """One image grid looking at the Sun at one time: geometry plus the surface fields."""

    view: DiskView
    fields: SurfaceFields
    # per pixel (full grid), at the limb point below an off-limb pixel:
    limb_heat: np.ndarray  # active-region heating (loops above the limb)
    limb_ch: np.ndarray  # coronal-hole darkness (open field: a dark, plume-filled corona)
    limb_corona: np.ndarray  # large-scale quiet-corona log-brightness (streamers), unit variance
    limb_rays: np.ndarray  # fine structure along the limb, >= 0 (plumes where the field is open)


def _around_limb(profile: np.ndarray, smooth_deg: float) -> np.ndarray:
    return gaussian_filter1d(profile, smooth_deg * _LIMB_SAMPLES / 360.0, mode="wrap")


def scene(view: DiskView, state: SunState, seed: int, l0_deg: float) -> Scene:
    """Evaluate the Sun's fields on the points a grid sees, and on the limb around it."""
    angles = np.linspace(-math.pi, math.pi, _LIMB_SAMPLES, endpoint=False)
    limb = limb_points(angles, view.b0_deg)
    lon, lat = lon_lat_deg(limb)
    heat = _around_limb(active_region_heat(PointSet(limb), state, strands=False), _LOOP_SMOOTH_DEG)
    dark = _around_limb(coronal_hole_darkness(PointSet(limb), state), _OPEN_SMOOTH_DEG)
    fine, _, large = texture.corona_maps(seed, state.mjd, texture.smoothing_level(view.pixel_deg))
    streamers = texture.sample(large, lon + l0_deg, lat)
    rays = np.maximum(texture.sample(fine, lon + l0_deg, lat), 0.0)
    index = np.round((view.position_angle + math.pi) * (_LIMB_SAMPLES / (2 * math.pi))).astype(np.int64) % _LIMB_SAMPLES
    fields = surface_fields(view.xyz, state, seed, l0_deg, view.pixel_deg)
    return Scene(view, fields, heat[index], dark[index], streamers[index], rays[index])


def full_image(scene_: Scene, on_disk: np.ndarray, off_disk: np.ndarray | float) -> np.ndarray:
    """Assemble an image from on-disk values (flattened) and off-disk values (full grid or scalar)."""
    image = np.empty(scene_.view.on_disk.shape)
    image[...] = off_disk
    image[scene_.view.on_disk] = on_disk
    return image


def aia_expected_dn(channel: AIAChannel, scene_: Scene) -> np.ndarray:
    """Noise-free AIA counts (DN at the channel's exposure).

    The quiet Sun is log-normal at every scale (the corona texture, ``corona_sigma``) with its
    network and bright points; coronal holes, filaments and their channels and sunspots darken
    it; active regions add their loops. Off the limb the corona falls off with the channel's
    scale height, structured into streamers and rays by the texture at the limb below, dark
    above coronal holes, with active-region loops.
    """
    f, view, q = scene_.fields, scene_.view, channel.quiet_dn
    one_minus_mu = 1.0 - view.mu
    sigma = channel.corona_sigma
    texture_ = np.exp(sigma * f.corona - 0.5 * sigma**2)
    if channel.is_uv:
        limb = 1.0 + channel.limb * one_minus_mu
        active = q * (channel.ar_gain - 1.0) * np.clip(np.abs(f.b_ar) / 200.0, 0.0, 1.0)
        network = 1.0 + 0.45 * f.network
    else:
        limb = 1.0 + channel.limb * one_minus_mu**EUV_LIMB_POWER
        active = (
            q
            * channel.ar_gain
            * (
                0.75 * f.heat**channel.ar_core_power
                + 0.25 * np.clip(np.abs(f.b_ar) / 300.0, 0.0, 1.0) * (1.0 - f.spot)
            )
        )
        network = 1.0 + 0.15 * f.network
    quiet = q * limb * (texture_ * network + channel.bright_point_gain * f.bright_points)
    quiet = quiet * (1.0 - (1.0 - channel.ch_contrast) * f.ch)
    disk = (
        (quiet + active)
        * (1.0 - (1.0 - channel.spot_contrast) * f.spot)
        * (1.0 - (1.0 - channel.filament_contrast) * f.filament)
        * (1.0 - (1.0 - channel.channel_contrast) * f.channel)
    )
    height = np.maximum(view.rho_rsun - 1.0, 0.0)
    edge = q * channel.off_limb * (1.0 + max(channel.limb, 0.0))  # continuous with the limb-brightened disk
    off = edge * np.exp(-height / channel.scale_height_rsun)
    if not channel.is_uv:
        streamers = (0.55 + 0.45 * np.cos(view.position_angle) ** 2) * np.exp(0.5 * scene_.limb_corona)
        plumes = 1.0 + PLUME_GAIN * scene_.limb_ch * scene_.limb_rays
        open_field = (1.0 - (1.0 - channel.ch_contrast) * 0.8 * scene_.limb_ch) * plumes
        loops = q * channel.ar_gain * scene_.limb_heat**channel.ar_core_power
        off = off * streamers * open_field + loops * np.exp(-height / channel.scale_height_rsun)
    return full_image(scene_, disk, off + 0.002 * q)


def aia_image(channel: AIAChannel, scene_: Scene, rand: np.random.Generator, sensitivity: float = 1.0) -> np.ndarray:
    """Level-1 AIA counts with shot and read noise, int16 up to saturation.

    A pixel holds the mean DN of the native 4096-grid pixels it covers, so its noise is
    that of the native pixel reduced by the binning (Gaussian limit of the shot noise).
    ``sensitivity`` is the channel's degradation factor at the time (1 = as at launch):
    real level-1 counts fall with it, and the default pipeline divides it out again.
    """
    expected = aia_expected_dn(channel, scene_) * sensitivity
    binned = (4096 / scene_.view.on_disk.shape[0]) ** 2
    variance = (np.maximum(expected, 0.0) * channel.dn_per_photon + AIA_READ_NOISE_DN**2) / binned
    counts = expected + np.sqrt(variance) * rand.standard_normal(expected.shape)
    return np.clip(np.rint(counts), -AIA_SATURATION_DN, AIA_SATURATION_DN).astype(np.int16)


def hmi_magnetogram(scene_: Scene, rand: np.random.Generator) -> np.ndarray:
    """Line-of-sight field (G) with noise; NaN off the disk, as in hmi.M_720s."""
    los = scene_.fields.b_r * scene_.view.mu + rand.normal(0.0, HMI_NOISE_G, scene_.view.mu.shape)
    return full_image(scene_, los, np.nan)


def halpha_expected_dn(scene_: Scene) -> np.ndarray:
    """Noise-free H-alpha line-centre counts: limb darkening, plage, spots, filaments."""
    f, view = scene_.fields, scene_.view
    one_minus_mu = 1.0 - view.mu
    limb = 1.0 - 0.35 * one_minus_mu - 0.2 * one_minus_mu**2
    plage = 1.0 + 0.4 * np.clip(np.abs(f.b_ar) / 200.0, 0.0, 1.0) * (1.0 - f.spot)
    disk = (
        KSO_QUIET_DN
        * limb
        * (1.0 + 0.08 * f.network)
        * plage
        * (1.0 - 0.7 * f.spot)
        * (1.0 - 0.55 * f.filament)
        * (1.0 - 0.05 * f.ch)
    )
    height = np.maximum(view.rho_rsun - 1.0, 0.0)
    return full_image(scene_, disk, KSO_QUIET_DN * 0.06 * np.exp(-height / 0.008) + KSO_SKY_DN)


def add_camera_noise(expected: np.ndarray, rand: np.random.Generator) -> np.ndarray:
    """Shot-like and read noise of the KSO camera."""
    return expected + rand.normal(0.0, 1.0, expected.shape) * (0.3 * np.sqrt(np.maximum(expected, 0.0)) + 2.0)


def to_kso_counts(image: np.ndarray) -> np.ndarray:
    """12-bit camera counts as int16."""
    return np.clip(np.rint(image), 0, KSO_MAX_DN).astype(np.int16)

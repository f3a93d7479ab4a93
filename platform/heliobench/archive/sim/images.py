"""Pixel values of the simulated instruments, drawn from the surface fields of one scene."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heliobench.archive.sim.config import AIA_READ_NOISE_DN, AIA_SATURATION_DN, HMI_NOISE_G, AIAChannel
from heliobench.archive.sim.fields import PointSet, SurfaceFields, active_region_heat, surface_fields
from heliobench.archive.sim.geometry import DiskView
from heliobench.archive.sim.sun import SunState

#: Off-limb pixels farther than this (solar radii) see no active-region loops.
_LOOP_REACH_RSUN = 1.6
#: Quiet-Sun H-alpha disk-centre counts (12-bit camera) and the sky background.
KSO_QUIET_DN = 3000.0
KSO_SKY_DN = 30.0
KSO_MAX_DN = 4095


@dataclass(frozen=True)
class Scene:
    """One image grid looking at the Sun at one time: geometry plus the surface fields."""

    view: DiskView
    fields: SurfaceFields
    limb_heat: np.ndarray  # per pixel (row-major): active-region heating at the limb point below


def scene(view: DiskView, state: SunState, seed: int, l0_deg: float) -> Scene:
    """Evaluate the Sun's fields on the points a grid sees."""
    limb_heat = np.zeros(view.rho_rsun.size)
    near = np.flatnonzero(~view.on_disk.ravel() & (view.rho_rsun.ravel() < _LOOP_REACH_RSUN))
    limb_heat[near] = active_region_heat(PointSet(view.limb_xyz[near]), state, strands=False)
    return Scene(view, surface_fields(view.xyz, state, seed, l0_deg), limb_heat)


def full_image(scene_: Scene, on_disk: np.ndarray, off_disk: np.ndarray | float) -> np.ndarray:
    """Assemble an image from on-disk values (flattened) and off-disk values (full grid or scalar)."""
    image = np.empty(scene_.view.on_disk.shape)
    image[...] = off_disk
    image[scene_.view.on_disk] = on_disk
    return image


def aia_expected_dn(channel: AIAChannel, scene_: Scene) -> np.ndarray:
    """Noise-free AIA counts (DN at the channel's exposure)."""
    f, view, q = scene_.fields, scene_.view, channel.quiet_dn
    one_minus_mu = 1.0 - view.mu
    if channel.is_uv:
        limb = 1.0 + channel.limb * one_minus_mu
        active = q * (channel.ar_gain - 1.0) * np.clip(np.abs(f.b_ar) / 200.0, 0.0, 1.0)
    else:
        limb = 1.0 + channel.limb * one_minus_mu**3
        active = (
            q
            * channel.ar_gain
            * (
                0.75 * f.heat**channel.ar_core_power
                + 0.25 * np.clip(np.abs(f.b_ar) / 300.0, 0.0, 1.0) * (1.0 - f.spot)
            )
        )
    quiet = q * limb * (1.0 + 0.3 * f.network) * (1.0 - (1.0 - channel.ch_contrast) * f.ch)
    disk = (
        (quiet + active)
        * (1.0 - (1.0 - channel.spot_contrast) * f.spot)
        * (1.0 - (1.0 - channel.filament_contrast) * f.filament)
    )
    height = np.maximum(view.rho_rsun - 1.0, 0.0)
    off = q * channel.off_limb * np.exp(-height / channel.scale_height_rsun)
    if not channel.is_uv:
        streamers = 0.55 + 0.45 * (1.0 - view.sin_plane_lat**2)
        loops = q * channel.ar_gain * scene_.limb_heat.reshape(height.shape) ** channel.ar_core_power
        off = off * streamers + loops * np.exp(-height / channel.scale_height_rsun)
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

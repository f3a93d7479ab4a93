"""Settings of one simulation run and the fixed properties of the simulated instruments."""

from __future__ import annotations

from dataclasses import dataclass

#: Plate scales of the real instruments at their native 4096 (SDO) / 2048 (KSO) pixels.
AIA_CDELT_4096_ARCSEC = 0.6
HMI_CDELT_4096_ARCSEC = 0.504
KSO_CDELT_2048_ARCSEC = 1.0

#: Solar radius of the SDO headers (RSUN_REF) and the Earth-Sun reference distance (DSUN_REF).
RSUN_REF_M = 696_000_000.0
DSUN_REF_M = 149_597_870_691.0


@dataclass(frozen=True)
class AIAChannel:
    """One AIA passband: how it is named, exposed and how the simulated Sun looks in it."""

    wavelength: int  # Angstrom
    series: str  # JSOC series of the level-1 export
    instrume: str  # telescope (INSTRUME keyword)
    wave_str: str
    exptime_s: float
    t_offset_s: float  # when in the 12 s (EUV) / 24 s (UV) cycle the channel is exposed
    quiet_dn: float  # quiet-Sun disk-centre counts at the nominal exposure
    dn_per_photon: float  # photon (shot) noise scale
    limb: float  # > 0: EUV limb brightening at the limb over disk centre, minus 1; < 0: UV limb darkening coefficient
    scale_height_rsun: float  # off-limb intensity e-folding height
    off_limb: float  # off-limb intensity just above the limb, relative to the disk's limb
    ch_contrast: float  # coronal-hole intensity relative to the quiet Sun
    ar_gain: float  # active-region core brightness over the quiet Sun
    ar_core_power: float  # > 1 concentrates the emission in the hot region cores
    spot_contrast: float  # intensity of sunspot umbrae relative to their surroundings
    filament_contrast: float  # intensity under a filament relative to its surroundings
    channel_contrast: float  # intensity in a filament channel relative to its surroundings
    corona_sigma: float  # standard deviation of the quiet Sun's log-brightness (all scales)
    bright_point_gain: float  # a coronal bright point's peak over the quiet Sun

    @property
    def is_uv(self) -> bool:
        """True for the 1600/1700 A channels (series aia.lev1_uv_24s)."""
        return self.wavelength >= 1600


AIA_CHANNELS: dict[int, AIAChannel] = {
    c.wavelength: c
    for c in (
        AIAChannel(
            94,
            "aia.lev1_euv_12s",
            "AIA_4",
            "94_THIN",
            exptime_s=2.9,
            t_offset_s=2.0,
            quiet_dn=2.5,
            dn_per_photon=2.1,
            limb=3.0,
            scale_height_rsun=0.1,
            off_limb=0.9,
            ch_contrast=0.55,
            ar_gain=30.0,
            ar_core_power=2.5,
            spot_contrast=1.0,
            filament_contrast=0.9,
            channel_contrast=0.9,
            corona_sigma=0.3,
            bright_point_gain=0.5,
        ),
        AIAChannel(
            131,
            "aia.lev1_euv_12s",
            "AIA_1",
            "131_THIN",
            exptime_s=2.9,
            t_offset_s=9.0,
            quiet_dn=12.0,
            dn_per_photon=1.7,
            limb=3.0,
            scale_height_rsun=0.08,
            off_limb=0.9,
            ch_contrast=0.6,
            ar_gain=12.0,
            ar_core_power=1.6,
            spot_contrast=1.0,
            filament_contrast=0.8,
            channel_contrast=0.85,
            corona_sigma=0.28,
            bright_point_gain=0.6,
        ),
        AIAChannel(
            171,
            "aia.lev1_euv_12s",
            "AIA_3",
            "171_THIN",
            exptime_s=2.0,
            t_offset_s=0.0,
            quiet_dn=290.0,
            dn_per_photon=1.2,
            limb=4.0,
            scale_height_rsun=0.1,
            off_limb=1.0,
            ch_contrast=0.65,
            ar_gain=4.0,
            ar_core_power=1.0,
            spot_contrast=0.8,
            filament_contrast=0.6,
            channel_contrast=0.8,
            corona_sigma=0.25,
            bright_point_gain=0.9,
        ),
        AIAChannel(
            193,
            "aia.lev1_euv_12s",
            "AIA_2",
            "193_THIN",
            exptime_s=2.0,
            t_offset_s=7.0,
            quiet_dn=320.0,
            dn_per_photon=1.0,
            limb=4.5,
            scale_height_rsun=0.12,
            off_limb=1.0,
            ch_contrast=0.1,
            ar_gain=6.0,
            ar_core_power=1.3,
            spot_contrast=0.9,
            filament_contrast=0.5,
            channel_contrast=0.68,
            corona_sigma=0.32,
            bright_point_gain=1.0,
        ),
        AIAChannel(
            211,
            "aia.lev1_euv_12s",
            "AIA_2",
            "211_THIN",
            exptime_s=2.9,
            t_offset_s=0.0,
            quiet_dn=160.0,
            dn_per_photon=0.95,
            limb=4.5,
            scale_height_rsun=0.12,
            off_limb=1.0,
            ch_contrast=0.2,
            ar_gain=10.0,
            ar_core_power=1.5,
            spot_contrast=0.9,
            filament_contrast=0.5,
            channel_contrast=0.65,
            corona_sigma=0.32,
            bright_point_gain=1.0,
        ),
        AIAChannel(
            304,
            "aia.lev1_euv_12s",
            "AIA_4",
            "304",
            exptime_s=2.9,
            t_offset_s=7.0,
            quiet_dn=90.0,
            dn_per_photon=0.65,
            limb=2.0,
            scale_height_rsun=0.04,
            off_limb=1.0,
            ch_contrast=0.7,
            ar_gain=5.0,
            ar_core_power=1.0,
            spot_contrast=0.8,
            filament_contrast=0.45,
            channel_contrast=0.85,
            corona_sigma=0.22,
            bright_point_gain=0.6,
        ),
        AIAChannel(
            335,
            "aia.lev1_euv_12s",
            "AIA_1",
            "335",
            exptime_s=2.9,
            t_offset_s=2.0,
            quiet_dn=9.0,
            dn_per_photon=0.6,
            limb=3.0,
            scale_height_rsun=0.13,
            off_limb=0.9,
            ch_contrast=0.3,
            ar_gain=18.0,
            ar_core_power=2.0,
            spot_contrast=1.0,
            filament_contrast=0.7,
            channel_contrast=0.7,
            corona_sigma=0.32,
            bright_point_gain=0.8,
        ),
        AIAChannel(
            1600,
            "aia.lev1_uv_24s",
            "AIA_3",
            "1600",
            exptime_s=2.9,
            t_offset_s=4.0,
            quiet_dn=160.0,
            dn_per_photon=0.06,
            limb=-0.45,
            scale_height_rsun=0.004,
            off_limb=0.3,
            ch_contrast=0.97,
            ar_gain=1.8,
            ar_core_power=1.0,
            spot_contrast=0.35,
            filament_contrast=1.0,
            channel_contrast=1.0,
            corona_sigma=0.06,
            bright_point_gain=0.15,
        ),
        AIAChannel(
            1700,
            "aia.lev1_uv_24s",
            "AIA_3",
            "1700",
            exptime_s=1.0,
            t_offset_s=16.0,
            quiet_dn=2200.0,
            dn_per_photon=0.05,
            limb=-0.55,
            scale_height_rsun=0.004,
            off_limb=0.25,
            ch_contrast=0.99,
            ar_gain=1.4,
            ar_core_power=1.0,
            spot_contrast=0.3,
            filament_contrast=1.0,
            channel_contrast=1.0,
            corona_sigma=0.04,
            bright_point_gain=0.1,
        ),
    )
}

#: AIA read noise (DN) and the largest level-1 value (saturation).
AIA_READ_NOISE_DN = 1.15
AIA_SATURATION_DN = 16383

#: HMI line-of-sight magnetogram noise (hmi.M_720s).
HMI_NOISE_G = 10.0

#: Share of KSO H-alpha images degraded by the weather or the optics.
HALPHA_DEGRADED_SHARE = 0.25


@dataclass(frozen=True)
class SimConfig:
    """What one simulation run produces: image sizes, the seed, and the time-step cadence."""

    size: int = 512
    seed: int = 0
    halpha_size: int | None = None
    cadence_s: float = 21600.0

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {self.size}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.halpha_size is not None and self.halpha_size < 16:
            raise ValueError(f"halpha_size must be at least 16 pixels, got {self.halpha_size}")
        if self.cadence_s <= 0:
            raise ValueError(f"cadence must be positive, got {self.cadence_s} s")

    @property
    def halpha_px(self) -> int:
        """Side of the H-alpha images (``halpha_size``, else ``size``)."""
        return self.halpha_size or self.size

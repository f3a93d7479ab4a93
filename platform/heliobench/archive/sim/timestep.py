"""One time step of the simulated archive: nine AIA channels, an HMI magnetogram, a KSO
H-alpha image, the CH/AR masks on the AIA grid and the step's HEK records.

Datetimes here are naive UTC unless named ``*_tai``. Each instrument sees the Sun at its own
observation time: AIA channels a few seconds into the step (as in the 12 s / 24 s cycles),
HMI at its 720 s TAI record slot, KSO at its exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from astropy.time import Time

from heliobench.archive.sim import fitsfiles, images, paths, weather
from heliobench.archive.sim.config import AIA_CHANNELS, SimConfig
from heliobench.archive.sim.geometry import Observer, Pointing, disk_view, observer_at, pointing_for
from heliobench.archive.sim.hek import hek_events
from heliobench.archive.sim.streams import rng
from heliobench.archive.sim.sun import SunModel
from heliobench.prep.calibrate import aia_degradation

#: Share of AIA images that lose rows in telemetry (and so get a non-zero QUALITY word).
AIA_DATA_LOSS_SHARE = 0.005
#: Level-1 QUALITY bits 8-11: MISSVALS > 0, > 1 %, > 5 %, > 25 % of TOTVALS.
_MISSING_BITS = ((0.0, 0x100), (0.01, 0x200), (0.05, 0x400), (0.25, 0x800))


@dataclass(frozen=True)
class TimeStepOutput:
    """What one time step produces: files (path under the archive root, bytes) and labels."""

    files: list[tuple[str, bytes]]
    hek_events: list[dict]
    halpha_row: dict


def _mjd(t: datetime) -> float:
    return float(Time(t, scale="utc").mjd)


def _step_key(t: datetime) -> int:
    """Integer key of a time (UTC seconds since MJD 0) for the random streams."""
    return int(round(_mjd(t) * 86400.0))


def aia_lost_rows(seed: int, wavelength: int, t: datetime, size: int) -> slice:
    """Rows of an AIA image lost in telemetry (usually none)."""
    draw = rng(seed, "quality", wavelength, _step_key(t))
    if draw.random() >= AIA_DATA_LOSS_SHARE:
        return slice(0, 0)
    first = int(draw.integers(0, size))
    return slice(first, first + max(1, size // 16))


def aia_quality_word(image: np.ndarray) -> int:
    """The QUALITY bits an image's missing (BLANK) pixels set."""
    missing = float(np.mean(image == fitsfiles.INT16_BLANK))
    return sum(bit for threshold, bit in _MISSING_BITS if missing > threshold)


def _look(
    model: SunModel, instrument: str, t: datetime, size: int, seed: int
) -> tuple[Observer, Pointing, images.Scene]:
    mjd = _mjd(t)
    observer = observer_at(mjd)
    pointing = pointing_for(seed, instrument, int(np.floor(mjd)), size, observer)
    view = disk_view(pointing, observer)
    return observer, pointing, images.scene(view, model.state(mjd), seed, observer.l0_deg)


def _aia_files(model: SunModel, t: datetime, config: SimConfig) -> tuple[list[tuple[str, bytes]], Observer]:
    observer, pointing, scene = _look(model, "AIA", t, config.size, config.seed)
    key = _step_key(t)
    files = []
    for channel in AIA_CHANNELS.values():
        date_obs = t + timedelta(seconds=channel.t_offset_s)
        sensitivity = aia_degradation(str(channel.wavelength), date_obs)
        image = images.aia_image(channel, scene, rng(config.seed, "noise", channel.wavelength, key), sensitivity)
        image[aia_lost_rows(config.seed, channel.wavelength, t, config.size)] = fitsfiles.INT16_BLANK
        quality = aia_quality_word(image)
        t_rec = (date_obs + timedelta(seconds=channel.exptime_s / 2 + 0.5)).replace(microsecond=0)
        header = fitsfiles.aia_header(channel, date_obs, t_rec, pointing, observer, image, quality)
        files.append((paths.aia_path(channel, t_rec), fitsfiles.jsoc_bytes(image, header)))
    for kind, content, mask in (
        ("ch", "CORONAL HOLE MASK", scene.fields.ch_mask),
        ("ar", "ACTIVE REGION MASK", scene.fields.ar_mask),
    ):
        header = fitsfiles.mask_header(content, t, pointing, observer)
        data = images.full_image(scene, mask, 0.0).astype(np.uint8)
        files.append((paths.mask_path(kind, t), fitsfiles.jsoc_bytes(data, header)))
    return files, observer


def _hmi_file(model: SunModel, t: datetime, config: SimConfig) -> tuple[str, bytes]:
    t_tai = Time(t, scale="utc").tai.datetime
    midnight = t_tai.replace(hour=0, minute=0, second=0, microsecond=0)
    slot = round((t_tai - midnight).total_seconds() / 720.0) * 720
    t_rec_tai = midnight + timedelta(seconds=slot)
    t_obs = Time(t_rec_tai, scale="tai").utc.datetime
    observer, pointing, scene = _look(model, "HMI", t_obs, config.size, config.seed)
    field = images.hmi_magnetogram(scene, rng(config.seed, "noise", 6173, _step_key(t_obs)))
    header = fitsfiles.hmi_header(t_rec_tai, t_obs, pointing, observer, field)
    return paths.hmi_path(t_rec_tai), fitsfiles.jsoc_bytes(field, header, scaled=True)


def _halpha_file(model: SunModel, t: datetime, config: SimConfig) -> tuple[str, bytes, dict]:
    rand = rng(config.seed, "halpha", _step_key(t))
    t_obs = t + timedelta(seconds=int(rand.integers(0, 60)))
    degradation = weather.draw_degradation(rand)
    exptime_s = float(rand.uniform(0.002, 0.004))
    observer, pointing, scene = _look(model, "KSO", t_obs, config.halpha_px, config.seed)
    image = images.add_camera_noise(
        images.halpha_expected_dn(scene), rng(config.seed, "noise", 6563, _step_key(t_obs))
    )
    if degradation != "none":
        radius_px = observer.rsun_obs_arcsec / pointing.cdelt_arcsec
        image = weather.degrade(image, degradation, radius_px, rand)
    counts = images.to_kso_counts(image)
    header = fitsfiles.kso_header(t_obs, exptime_s, pointing, observer, counts)
    path = paths.halpha_path(t_obs)
    row = {
        "file": path,
        "obs_time": fitsfiles.iso(t_obs),
        "quality": 1 if degradation == "none" else 2,
        "degradation": degradation,
    }
    return path, fitsfiles.gzipped_fits_bytes(counts, header), row


def simulate_time_step(model: SunModel, t: datetime, config: SimConfig) -> TimeStepOutput:
    """Every file and label of the time step at ``t`` (naive UTC)."""
    files, observer = _aia_files(model, t, config)
    files.append(_hmi_file(model, t, config))
    halpha_path, halpha_bytes, row = _halpha_file(model, t, config)
    files.append((halpha_path, halpha_bytes))
    events = hek_events(model.state(observer.mjd), observer, t, config.cadence_s)
    return TimeStepOutput(files=files, hek_events=events, halpha_row=row)

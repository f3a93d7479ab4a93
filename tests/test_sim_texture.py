"""The simulated Sun's fine structure: textures, ragged coronal holes and the dark features that
are not coronal holes (what makes segmentation more than a threshold)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from astropy.time import Time

from heliobench.archive.sim import SunModel, texture
from heliobench.archive.sim.config import AIA_CHANNELS
from heliobench.archive.sim.fields import hole_outline
from heliobench.archive.sim.geometry import visible
from heliobench.archive.sim.images import aia_image
from heliobench.archive.sim.streams import rng
from heliobench.archive.sim.timestep import _look

#: A declining-phase time with large low-latitude holes and filaments on the disk.
WHEN = datetime(2015, 11, 7, 12)


@pytest.fixture(scope="module")
def scene():
    return _look(SunModel(0), "AIA", WHEN, 256, 0)


def _power_slope(field: np.ndarray, per_deg: float, k_range: tuple[float, float]) -> float:
    """Slope of the azimuthally averaged power spectrum in log-log, over ``k_range`` (cycles/degree)."""
    power = np.abs(np.fft.rfft2(field)) ** 2
    ky = np.fft.fftfreq(field.shape[0], d=1 / per_deg)[:, None]
    kx = np.fft.rfftfreq(field.shape[1], d=1 / per_deg)[None, :]
    k = np.hypot(kx, ky).ravel()
    bins = np.geomspace(*k_range, 12)
    which = np.digitize(k, bins)
    mean = np.array([power.ravel()[which == i].mean() for i in range(1, len(bins))])
    centres = np.sqrt(bins[1:] * bins[:-1])
    return float(np.polyfit(np.log(centres), np.log(mean), 1)[0])


def test_power_law_fields_have_their_slope_and_unit_variance() -> None:
    field = texture.power_law_field((256, 512), 2.0, 2.2, (0.5, 200.0), np.random.default_rng(3))
    assert field.std() == pytest.approx(1.0, rel=1e-3) and abs(field.mean()) < 1e-3
    assert _power_slope(field, 2.0, (0.02, 0.2)) == pytest.approx(-2.2, abs=0.3)


def test_the_quiet_corona_evolves_smoothly_and_is_averaged_over_a_pixel() -> None:
    mjd = Time(WHEN).mjd
    now, later, much_later = (texture.corona_maps(0, mjd + dt)[0] for dt in (0.0, 0.25, 3 * texture.CORONA_EPOCH_DAYS))
    assert np.array_equal(now, texture.corona_maps(0, mjd)[0])  # a pure function of (seed, time)
    assert np.corrcoef(now.ravel(), later.ravel())[0, 1] > 0.95  # six hours apart: nearly the same
    assert abs(np.corrcoef(now.ravel(), much_later.ravel())[0, 1]) < 0.2  # epochs apart: a new pattern
    assert now.std() == pytest.approx(1.0, abs=0.15)  # blending keeps the statistics
    stds = [texture.corona_maps(0, mjd, level)[0].std() for level in range(4)]
    assert stds == sorted(stds, reverse=True) and stds[3] < 0.8 * stds[0]  # coarse pixels average fine structure
    assert [texture.smoothing_level(p) for p in (0.1, 1.1, 2.2, 9.0)] == [0, 1, 2, 4]  # sigma: about half a pixel


def test_coronal_holes_are_ragged_with_islands(scene) -> None:
    observer, _, sc = scene
    mask = sc.fields.ch_mask
    assert 0.02 < mask.mean() < 0.3
    on_disk = sc.view.on_disk
    image = np.zeros(on_disk.shape, dtype=bool)
    image[on_disk] = mask
    from scipy import ndimage

    labels, n = ndimage.label(image)
    assert n >= 3  # holes, islands of them and the polar holes
    largest = labels == 1 + int(np.argmax(ndimage.sum(image, labels, range(1, n + 1))))
    perimeter = (largest & ~ndimage.binary_erosion(largest)).sum()
    assert perimeter**2 / (4 * np.pi * largest.sum()) > 2.0  # a disk gives about 1: the outline is ragged
    state = SunModel(0).state(observer.mjd)
    outline = hole_outline(state.coronal_holes[-1], state.mjd)
    assert outline.shape == (48, 3) and np.allclose(np.linalg.norm(outline, axis=1), 1.0)
    assert visible(outline, observer).dtype == bool


def test_filament_channels_and_the_quiet_sun_are_dark_where_no_hole_is(scene) -> None:
    _, _, sc = scene
    f = sc.fields
    image = aia_image(AIA_CHANNELS[193], sc, rng(0, "noise", 193, 1)).astype(float)[sc.view.on_disk]
    quiet = ~f.ch_mask & ~f.ar_mask & (f.channel < 0.1) & (f.filament < 0.1)
    median = np.median(image[quiet])
    lanes = (f.channel > 0.6) & ~f.ch_mask
    assert lanes.sum() > 20 and np.median(image[lanes]) < 0.8 * median  # channels: the classic confusers
    holes = f.ch_mask & (f.ch > 0.5)
    assert np.median(image[holes]) < 0.5 * median
    # some quiet Sun is as dark as the holes' bright parts: a threshold cannot separate them
    assert (image[quiet] < np.percentile(image[holes], 90)).mean() > 0.005

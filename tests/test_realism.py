"""The realism report: its statistics and distances on hand-made inputs, and the whole
report (`heliobench sim-report`) on the real files."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone

import numpy as np
import pytest

from heliobench.realism import ReportSettings, realism_report
from heliobench.realism.compare_regions import STATISTICS as REGION_STATISTICS
from heliobench.realism.disks import DiskImage
from heliobench.realism.display import HELIOVIEWER_AIA193, HELIOVIEWER_HMI_MAGNETOGRAM, SDO_BROWSE_AIA193
from heliobench.realism.distances import log_ratio_rms, relative_error, rms_difference, total_variation, wasserstein
from heliobench.realism.reference import FAMILIES
from heliobench.realism.regions import axis_tilt_deg, folded_tilts, joy_fit
from heliobench.realism.simulated import partner_time
from heliobench.realism.statistics import (
    K_EDGES,
    LIMB_EDGES,
    bin_centres,
    coronal_hole_contrast,
    coronal_hole_fraction,
    limb_profile,
    log_intensity_ratios,
    power_spectrum,
)

T = datetime(2014, 7, 15, tzinfo=timezone.utc)


def _disk(data: np.ndarray, radius: float, mask: np.ndarray | None = None) -> DiskImage:
    n = data.shape[0]
    return DiskImage(data=data.astype(np.float32), centre_px=((n - 1) / 2, (n - 1) / 2), radius_px=radius,
                     instrument="AIA", channel="193", obs_time=T, uri="mem://test.fits", exposure_s=2.0, mask=mask)


def _grid(n: int = 257, radius: float = 100.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, x = np.mgrid[:n, :n].astype(float)
    c = (n - 1) / 2
    return x - c, y - c, np.hypot(x - c, y - c) / radius


# --- distances ------------------------------------------------------------------------


def test_distances_of_identical_inputs_are_zero():
    rng = np.random.default_rng(1)
    sample = rng.normal(size=1000)
    assert wasserstein(sample, sample) == 0.0
    assert log_ratio_rms(np.array([1.0, 2.0, 5.0]), np.array([1.0, 2.0, 5.0])) == 0.0
    assert rms_difference(np.array([3.0, np.nan]), np.array([3.0, 4.0])) == 0.0
    assert relative_error(2.0, 2.0) == 0.0
    assert total_variation({"Alpha": 3, "Beta": 7}, {"Alpha": 0.3, "Beta": 0.7}) == pytest.approx(0.0)


def test_distances_against_hand_computed_values():
    sample = np.arange(100.0)
    assert wasserstein(sample + 0.25, sample) == pytest.approx(0.25)  # a shift moves every quantile by it
    assert log_ratio_rms(np.array([10.0, 100.0]), np.array([1.0, 10.0])) == pytest.approx(1.0)  # a factor 10 is 1 dex
    assert log_ratio_rms(np.array([2.0, -1.0]), np.array([1.0, 1.0])) == pytest.approx(math.log10(2.0))  # non-positive left out
    assert rms_difference(np.array([1.0, 5.0]), np.array([4.0, 1.0])) == pytest.approx(math.sqrt((9 + 16) / 2))
    assert relative_error(1.2, 1.0) == pytest.approx(0.2)
    assert math.isnan(relative_error(1.0, 0.0))
    assert total_variation({"Alpha": 1}, {"Beta": 1}) == pytest.approx(1.0)
    assert total_variation({"Alpha": 1, "Beta": 1}, {"Alpha": 1, "Beta": 3}) == pytest.approx(0.25)
    assert math.isnan(wasserstein(np.array([np.nan]), sample))


# --- image statistics -------------------------------------------------------------------


def test_power_spectrum_of_a_sinusoid_peaks_at_its_frequency():
    x, _, r = _grid(513, radius=200.0)
    k0 = 12.0  # cycles per solar radius
    image = np.where(r < 1.2, 1.0 + 0.1 * np.sin(2 * np.pi * k0 * x / 200.0), np.nan)
    power = power_spectrum(_disk(image, 200.0))
    k = bin_centres(K_EDGES, geometric=True)
    peak = int(np.nanargmax(power))
    assert K_EDGES[peak] <= k0 < K_EDGES[peak + 1]
    far = (k < k0 / 2) | ((k > 2 * k0) & (k < 100))  # a Hann window leaks little beyond a factor 2
    assert np.nanmax(power[far]) < 1e-3 * power[peak]
    assert np.all(np.isnan(power[K_EDGES[:-1] > 0.5 * 200.0]))  # nothing above the Nyquist frequency


def test_log_ratios_limb_profile_and_coronal_holes_of_a_known_disk():
    x, y, r = _grid()
    mu = np.sqrt(np.clip(1 - r**2, 0, 1))
    hole = (x > 20) & (y > 20) & (r < 0.9)
    image = np.where(r < 1, mu, 0.0)
    image = np.where(hole, 0.3 * image, image)
    disk = _disk(image, 100.0, mask=hole)
    ratios = log_intensity_ratios(disk)
    assert np.median(ratios) == pytest.approx(0.0, abs=1e-6)
    profile = limb_profile(_disk(np.where(r < 1, mu, 0.0), 100.0))
    rings = bin_centres(LIMB_EDGES)
    inside = rings < 0.9
    median_mu = np.median(mu[r < 0.95])
    np.testing.assert_allclose(profile[inside], np.sqrt(1 - rings[inside] ** 2) / median_mu, atol=0.02)
    assert np.all(profile[rings > 1.02] == 0.0)
    on_disk = r < 1
    assert coronal_hole_fraction(disk) == pytest.approx(hole[on_disk].mean())
    quiet = image[(r < 0.95) & ~hole]
    assert coronal_hole_contrast(disk) == pytest.approx(image[hole & (r < 0.95)].mean() / np.median(quiet), rel=1e-5)


def test_resampling_keeps_the_disk_centred_and_its_mean():
    n = 401
    y, x = np.mgrid[:n, :n].astype(float)
    cx, cy, radius = 210.3, 190.7, 150.0
    r = np.hypot(x - cx, y - cy) / radius
    data = np.where(r < 1, 2.0 + np.cos(x / 7.0), np.nan)
    image = DiskImage(data=data.astype(np.float32), centre_px=(cx, cy), radius_px=radius, instrument="AIA", channel="171",
                      obs_time=T, uri="mem://a.fits", mask=r < 0.5)
    small = image.at_radius(50.0)
    assert small.radius_px == 50.0 and small.data.shape == (131, 131) and small.centre_px == (65.0, 65.0)
    inner = small.distance_rsun() < 0.9
    assert np.all(np.isfinite(small.data[inner]))
    assert np.all(np.isnan(small.data[small.distance_rsun() > 1.05]))
    assert np.nanmean(small.data[inner]) == pytest.approx(np.nanmean(data[r < 0.9]), rel=0.01)
    assert small.mask.mean() == pytest.approx(np.pi * 25**2 / 131**2, rel=0.05)


# --- display curves ---------------------------------------------------------------------


@pytest.mark.parametrize("curve", [HELIOVIEWER_AIA193, SDO_BROWSE_AIA193])
def test_log_display_curves_round_trip_within_one_grey_level(curve):
    exposure = 2.0
    lo, hi = (v * exposure / curve.exposure_norm_s for v in (curve.low, curve.high))  # the clip limits in DN
    values = np.geomspace(lo * 1.01, hi * 0.99, 500)
    back = curve.round_trip(values, exposure)
    step_dex = math.log10(curve.high / curve.low) / 256  # one byte
    levels = 3 if curve.colormap else 1  # the colour table's luminance merges a few bytes
    assert np.max(np.abs(np.log10(back / values))) <= levels * step_dex
    clipped = curve.round_trip(np.array([lo / 10]), exposure)[0]
    assert lo <= clipped <= lo * 10 ** (levels * step_dex)
    assert np.all(np.diff(curve.to_display(values, exposure)) >= 0)  # monotonic


def test_linear_display_curve_clips_and_quantises():
    grey = HELIOVIEWER_HMI_MAGNETOGRAM.to_display(np.array([-1000.0, -250.0, 0.0, 249.0, 1000.0]), None)
    assert grey.tolist() == [0.0, 0.0, 127.0, 255.0, 255.0]
    back = HELIOVIEWER_HMI_MAGNETOGRAM.to_physical(np.array([127.0]), None)[0]
    assert abs(back) < 500 / 256


# --- sunspot groups ---------------------------------------------------------------------


def test_tilt_of_the_principal_axis_is_clockwise_positive():
    x = np.linspace(-5, 5, 41)  # west positive
    down_west = axis_tilt_deg(x, -np.tan(np.radians(20)) * x, np.ones_like(x))
    assert down_west == pytest.approx(20.0)  # leading (west) end nearer the equator in the north: Joy's law
    assert axis_tilt_deg(x, np.tan(np.radians(35)) * x, np.ones_like(x)) == pytest.approx(-35.0)
    assert axis_tilt_deg(np.zeros(5), np.arange(5.0), np.ones(5)) == pytest.approx(90.0)
    lat = np.array([-20.0, -10.0, 10.0, 30.0])
    assert joy_fit(lat, 0.5 * lat) == pytest.approx((0.5, 0.0))
    slope, error = joy_fit(lat, 0.5 * lat + np.array([2.0, -2.0, 2.0, -2.0]))
    assert slope == pytest.approx(0.5 + (-40 + 20 + 20 - 60) / 1500) and error > 0
    assert folded_tilts(lat, 0.5 * lat).tolist() == [10.0, 5.0, 5.0, 15.0]


def test_images_before_sdo_are_paired_a_solar_cycle_later():
    assert partner_time(datetime(2002, 6, 25, 10, tzinfo=timezone.utc)) == datetime(2013, 6, 25, 10, tzinfo=timezone.utc)
    assert partner_time(datetime(1996, 2, 29, tzinfo=timezone.utc)) == datetime(2018, 2, 28, tzinfo=timezone.utc)
    assert partner_time(T) == T


# --- the report on the real files --------------------------------------------------------


#: Families with no file in ../shared/realdata (a user's own real-data folder may have them).
NOT_IN_REALDATA = {"aia193_fits", "hmi_magnetogram_fits"}


def _expected_keys() -> set[str]:
    keys = set(REGION_STATISTICS)
    for f in FAMILIES:
        if f.key in NOT_IN_REALDATA:
            continue
        names = ["field", "spectrum"] if f.kind == "field" else ["histogram", "limb", "spectrum"]
        names += ["disk_median"] * f.absolute + ["ch_fraction", "ch_contrast"] * f.coronal_holes
        keys |= {f"{f.key}.{n}" for n in names}
    return keys


def test_report_on_the_real_files(realdata, tmp_path, ray_session):
    out = tmp_path / "report"
    settings = ReportSettings(size=256, cycle_cadence_days=120, magnetogram_steps=4, real_limit=1)
    rows = realism_report(out, realdata=realdata, settings=settings, progress=False)

    assert {r.key for r in rows} == _expected_keys()
    written = json.loads((out / "realism.json").read_text())
    simulated_products = {tuple(p.split(" ")) for p in written["simulated_products"]}
    assert {("AIA", "171"), ("AIA", "193"), ("HMI", "magnetogram")} <= simulated_products
    for row in rows:
        family = next((f for f in FAMILIES if row.key.startswith(f"{f.key}.")), None)
        if family is not None and family.simulated not in simulated_products:
            # a product the simulator does not write (the HMI continuum today): the rows say so, no number
            assert math.isnan(row.distance) and f"no {' '.join(family.simulated)} images" in row.note, row
            continue
        assert math.isfinite(row.distance) and row.distance >= 0, row
        assert row.figure and (out / row.figure).is_file(), row
        assert row.source and row.n_simulated > 0 and row.n_real > 0, row
    assert [r["key"] for r in written["rows"]] == [r.key for r in rows]
    assert all((r["distance"] is None) == math.isnan(row.distance) for r, row in zip(written["rows"], rows, strict=True))

    page = (out / "index.html").read_text()
    referenced = set(re.findall(r"<img src='([^']+)'", page))
    assert {p.name for p in out.glob("*.png")} == referenced  # every figure is on the page, and only those
    assert {r.figure for r in rows if r.figure} <= referenced
    assert "EIT 171 8-bit display image" in page  # unused real files are listed with the reason
    assert written["families_without_real_files"] == sorted(NOT_IN_REALDATA, key=[f.key for f in FAMILIES].index)


def test_report_of_an_archive_without_real_data_uses_published_values(tmp_path):
    from heliobench.archive.sim import SimConfig, simulate_day
    from heliobench.realism import published

    archive = tmp_path / "archive"
    for day in ("2014-02-10", "2014-02-20", "2014-03-02"):
        simulate_day(str(archive), day, [f"{day}T00:00:00"], SimConfig(size=256))
    rows = {r.key: r for r in realism_report(tmp_path / "report", realdata=tmp_path / "no_realdata",
                                              archive=str(archive), progress=False)}

    assert rows["groups.joy"].source == published.JOY_SLOPE.citation and rows["groups.joy"].real == published.JOY_SLOPE.value
    assert math.isfinite(rows["groups.joy"].distance) and rows["groups.joy"].n_simulated >= 3
    assert rows["groups.sporer"].source == published.SPORER.citation and math.isfinite(rows["groups.sporer"].distance)
    assert "no Kislovodsk table" in rows["groups.area"].note and math.isnan(rows["groups.area"].distance)
    assert "no real SRS reports" in rows["srs.mt_wilson"].note
    assert set(rows) == set(REGION_STATISTICS)  # no image statistics without real images
    written = json.loads((tmp_path / "report" / "realism.json").read_text())
    assert written["settings"]["realdata"].startswith("absent")
    assert written["families_without_real_files"] == [f.key for f in FAMILIES]

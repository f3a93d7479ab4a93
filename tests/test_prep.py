"""Preprocessing: step hashes, each step against hand-computed values, registration geometry
on synthetic and real maps, label alignment, pipelines from configuration."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from scipy import ndimage
from sunpy.coordinates import frames
from sunpy.map.header_helper import make_fitswcs_header

from heliobench.binning import block_mean
from heliobench.errors import ConfigError
from heliobench.prep import (
    DISK_RADIUS_FRACTION,
    ClipScale,
    ContrastNormalize,
    DegradationCorrection,
    ExposureNormalize,
    FillNaN,
    LimbDarkeningNormalize,
    Log2Scale,
    PercentileScale,
    Pipeline,
    PrepError,
    PrepImage,
    Register,
    ZeroOffDisk,
    default_pipeline,
    disk_mask,
)

AIA_FILE = "fits/aia/AIA20110319_105400_0171.fits"
MDI_MAGNETOGRAM = "fits/mdi/mdi_fd_M_96m_01d.5874.0005_s.fits"
HMI_CONTINUUM = "fits/hmi/resampled_hmi.fits"
OBS_TIME = datetime(2020, 6, 1, tzinfo=timezone.utc)


def make_image(data, centre=None, radius_px: float = 10.0, scale: float = 1.0, exposure_s=2.0) -> PrepImage:
    """A north-up PrepImage around ``data`` with the disk at ``centre`` (default: image centre)."""
    data = np.asarray(data, dtype=np.float32)
    ny, nx = data.shape
    centre = centre or ((nx - 1) / 2, (ny - 1) / 2)
    return PrepImage(
        data=data,
        scale_arcsec=(scale, scale),
        rotation_matrix=((1.0, 0.0), (0.0, 1.0)),
        reference_px=centre,
        reference_arcsec=(0.0, 0.0),
        disk_center_px=centre,
        rsun_arcsec=radius_px * scale,
        obs_time=OBS_TIME,
        instrument="AIA",
        channel="171",
        exposure_s=exposure_s,
    )


def synthetic_map(
    brightness, shape=(512, 512), scale=4.0, crota2=180.0, ref_px=(255.5, 255.5), ref_hpc=(100.0, -50.0)
) -> sunpy.map.GenericMap:
    """A helioprojective map whose pixel values are ``brightness(Tx, Ty, rsun)`` (arcsec), via the full WCS.

    With the defaults the image is upside down (like HMI) and the Sun's centre is off the
    image centre (the reference pixel points at HPC (100", -50")).
    """
    coord = SkyCoord(
        ref_hpc[0] * u.arcsec, ref_hpc[1] * u.arcsec, obstime=OBS_TIME, observer="earth", frame=frames.Helioprojective
    )
    header = make_fitswcs_header(
        np.zeros(shape),
        coord,
        reference_pixel=list(ref_px) * u.pix,
        scale=[scale, scale] * u.arcsec / u.pix,
        rotation_angle=crota2 * u.deg,
        instrument="HMI",
        exposure=1.0 * u.s,
    )
    blank = sunpy.map.Map(np.zeros(shape), header)
    hpc = sunpy.map.all_coordinates_from_map(blank)
    data = brightness(hpc.Tx.to_value(u.arcsec), hpc.Ty.to_value(u.arcsec), blank.rsun_obs.to_value(u.arcsec))
    return sunpy.map.Map(data, header)


def blob_on_disk(tx, ty, rsun, at=(300.0, 400.0), sigma=12.0):
    """A uniform disk (1) with a Gaussian blob (amplitude 5) at HPC ``at``."""
    disk = (np.hypot(tx, ty) < rsun).astype(float)
    return disk + 5.0 * np.exp(-((tx - at[0]) ** 2 + (ty - at[1]) ** 2) / (2 * sigma**2))


def centroid(weights: np.ndarray) -> tuple[float, float]:
    """Weighted mean (x, y) pixel position."""
    y, x = np.indices(weights.shape)
    return float((x * weights).sum() / weights.sum()), float((y * weights).sum() / weights.sum())


# --- hashes ---------------------------------------------------------------------------


def test_step_hash_is_sha256_of_canonical_json():
    expected_json = (
        '{"params":{"high":3000.0,"low":-3000.0,"out_high":1.0,"out_low":-1.0},"step":"clip_scale","version":1}'
    )
    step = ClipScale(-3000, 3000, -1, 1)
    assert step.hash == hashlib.sha256(expected_json.encode()).hexdigest()
    assert step.hash == ClipScale(-3000.0, 3000.0, -1.0, 1.0).hash  # ints and floats canonicalised


def test_hash_changes_with_any_parameter_and_with_step_order():
    base = Register(256, fov_arcsec=2457.6)
    variants = [
        Register(512, fov_arcsec=2457.6),
        Register(256, fov_arcsec=2400.0),
        Register(256, radius_px=100.0),
        Register(256, fov_arcsec=2457.6, order=3),
    ]
    assert len({base.hash, *(v.hash for v in variants)}) == 5
    assert Register(256, fov_arcsec=2457.6).hash == base.hash

    a = Pipeline([base, Log2Scale()])
    assert a.hash == Pipeline([Register(256, fov_arcsec=2457.6), Log2Scale()]).hash
    assert a.hash != Pipeline([Log2Scale(), base]).hash
    assert a.hash != Pipeline([base, Log2Scale(high=2.0**13)]).hash
    assert a.hash != Pipeline([base]).hash


def test_describe_round_trips_through_from_config():
    pipeline = default_pipeline("HMI", 128)
    rebuilt = Pipeline.from_config(json.loads(json.dumps(pipeline.describe())), "recorded.json")
    assert rebuilt.hash == pipeline.hash
    assert [d["step"] for d in pipeline.describe()] == ["register", "clip_scale", "fill_nan"]


# --- photometric steps -----------------------------------------------------------------


def test_exposure_normalize_divides_by_exptime():
    out = ExposureNormalize().apply(make_image([[2.0, 4.0], [0.0, 10.0]], exposure_s=2.0))
    np.testing.assert_allclose(out.data, [[1.0, 2.0], [0.0, 5.0]])
    assert out.data.dtype == np.float32 and out.exposure_s == 1.0


@pytest.mark.parametrize("exposure", [0.0, None, -1.0])
def test_exposure_normalize_rejects_missing_exposure_naming_the_observation(exposure):
    with pytest.raises(PrepError, match=r"AIA 171 2020-06-01T00:00:00.*exposure time is"):
        ExposureNormalize().apply(make_image(np.ones((2, 2)), exposure_s=exposure))


def write_table(path: Path, rows: list[str]) -> str:
    path.write_text("time,channel,factor\n" + "\n".join(rows) + "\n")
    return str(path)


def test_degradation_interpolates_the_factor_in_time(tmp_path):
    table = write_table(
        tmp_path / "deg.csv",
        ["2020-05-31T00:00:00,171,1.0", "2020-06-02T00:00:00,171,0.5", "2020-06-01T00:00:00,193,0.9"],
    )
    step = DegradationCorrection(table)
    out = step.apply(make_image(np.full((2, 2), 3.0)))  # 2020-06-01: halfway between 1.0 and 0.5
    np.testing.assert_allclose(out.data, 3.0 / 0.75, rtol=1e-6)
    early = make_image(np.ones((2, 2))).with_data(
        np.ones((2, 2)), obs_time=datetime(2019, 1, 1, tzinfo=timezone.utc)
    )
    assert step.factor(early) == 1.0  # before the table: first row
    with pytest.raises(PrepError, match=r"no rows for channel '304'"):
        step.apply(make_image(np.ones((2, 2))).with_data(np.ones((2, 2)), channel="304"))


def test_degradation_from_aiapy_table_is_aiapys_factor_to_the_bit():
    """The response table's factor comes from each channel's rows selected once and held as
    numbers; it is exactly what aiapy.calibrate.degradation gives, at random times and on
    every epoch boundary, errors included."""
    import warnings
    from datetime import timedelta

    import astropy.units as u
    from aiapy.calibrate import degradation
    from astropy.time import Time

    table = DegradationCorrection()._factors
    rng = np.random.default_rng(5)
    start = datetime(2010, 5, 1, tzinfo=timezone.utc)
    # every epoch's start and stop, and a microsecond either side of them
    edges = {t.to_datetime(timezone=timezone.utc) for t in (*table.table["T_START"], *table.table["T_STOP"])}
    bounds = [t + timedelta(microseconds=d) for t in sorted(edges) for d in (-1, 0, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA: UTC past the leap-second table
        for channel in ("94", "131", "171", "193", "211", "304", "335", "1600", "1700", "4500"):
            for when in [start + timedelta(seconds=float(s)) for s in rng.uniform(0, 20 * 365 * 86400, 12)] + bounds:
                try:
                    want = float(degradation(int(channel) * u.AA, Time(when), correction_table=table.table)[0])
                except ValueError as exc:
                    with pytest.raises(ValueError, match=re.escape(str(exc))):
                        table.factor(channel, when)
                    continue
                assert table.factor(channel, when) == want


def test_degradation_hash_follows_table_content_not_path(tmp_path):
    table = write_table(tmp_path / "a.csv", ["2020-05-31T00:00:00,171,1.0"])
    moved = shutil.copy(table, tmp_path / "b.csv")
    changed = write_table(tmp_path / "c.csv", ["2020-05-31T00:00:00,171,0.9"])
    assert DegradationCorrection(table).hash == DegradationCorrection(str(moved)).hash
    assert DegradationCorrection(table).hash != DegradationCorrection(changed).hash
    assert DegradationCorrection(None).hash != DegradationCorrection(table).hash
    identity = DegradationCorrection(None).apply(make_image([[7.0]]))
    assert identity.data[0, 0] == 7.0


def test_degradation_table_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,wavelength,factor\n2020-01-01,171,1\n")
    with pytest.raises(ConfigError, match=r"bad.csv.*missing \['channel'\]"):
        DegradationCorrection(str(bad))
    zero = write_table(tmp_path / "zero.csv", ["2020-01-01,171,0"])
    with pytest.raises(ConfigError, match=r"zero.csv, line 2: factor must be > 0"):
        DegradationCorrection(zero)
    with pytest.raises(ConfigError, match=r"cannot be read"):
        DegradationCorrection(str(tmp_path / "absent.csv"))


def test_clip_scale_hand_values():
    hmi = ClipScale(-3000, 3000, -1, 1).apply(make_image([[-5000, -3000, -1500, 0, 1500, 3000, 5000]]))
    np.testing.assert_allclose(hmi.data, [[-1, -1, -0.5, 0, 0.5, 1, 1]])
    unit = ClipScale(0, 10).apply(make_image([[2.5, np.nan]]))
    assert unit.data[0, 0] == pytest.approx(0.25) and np.isnan(unit.data[0, 1])


def test_log2_scale_hand_values():
    out = Log2Scale().apply(make_image([[0.5, 1.0, 2.0, 2.0**7, 2.0**14, 2.0**20, np.nan]]))
    np.testing.assert_allclose(out.data[0, :6], [-1, -1, -1 + 2 / 14, 0, 1, 1], atol=1e-6)
    assert np.isnan(out.data[0, 6])
    with pytest.raises(ConfigError, match="log2_scale: low must be > 0"):
        Log2Scale(low=0)


def test_percentile_scale_hand_values():
    minmax = PercentileScale(0, 100).apply(make_image([[2.0, 4.0, 6.0]]))
    np.testing.assert_allclose(minmax.data, [[0.0, 0.5, 1.0]])
    robust = PercentileScale(10, 90).apply(make_image([np.arange(101.0)]))  # percentiles 10 and 90
    np.testing.assert_allclose(robust.data[0, [0, 10, 50, 90, 100]], [0, 0, 0.5, 1, 1], atol=1e-6)
    assert np.all(PercentileScale(0, 100).apply(make_image(np.full((2, 2), 3.0))).data == 0)


def test_contrast_normalize_hand_values():
    data = [[1.0, 2.0, 3.0, 4.0, 5.0]]  # median 3, std sqrt(2)
    wide = ContrastNormalize(clip=1.5).apply(make_image(data))
    np.testing.assert_allclose(wide.data, [[-2, -1, 0, 1, 2]] / np.sqrt(2) / 1.5, rtol=1e-6)
    narrow = ContrastNormalize(clip=1.0).apply(make_image(data))
    np.testing.assert_allclose(narrow.data, [[-1, -1 / np.sqrt(2), 0, 1 / np.sqrt(2), 1]], rtol=1e-6)


def test_disk_mask_zero_off_disk_and_fill_nan():
    image = make_image(np.ones((11, 11)), radius_px=3.0)  # centre (5, 5)
    assert disk_mask(image, 1.0).sum() == 25  # integer points with x² + y² < 9
    assert disk_mask(image, 0.5).sum() == 9  # x² + y² < 2.25: |x|, |y| <= 1
    zeroed = ZeroOffDisk(1.0).apply(image.with_data(np.full((11, 11), np.nan)))
    assert np.isnan(zeroed.data).sum() == 25 and np.all(zeroed.data[~disk_mask(image, 1.0)] == 0)
    filled = FillNaN(-1.0).apply(make_image([[np.nan, 2.0]]))
    np.testing.assert_array_equal(filled.data, [[-1.0, 2.0]])


def test_limb_darkening_normalize_flattens_a_limb_darkened_disk():
    image = make_image(np.zeros((256, 256)), centre=(130.0, 124.0), radius_px=100.0)
    y, x = np.indices(image.data.shape)
    r = np.hypot(x - 130.0, y - 124.0) / 100.0
    mu = np.sqrt(np.clip(1 - r**2, 0, 1))
    disk = np.where(r < 1, 1.0 - 0.6 * (1 - mu) - 0.2 * (1 - mu) ** 2, 0.05)  # quadratic limb darkening
    filament = np.hypot(x - 150.0, y - 124.0) < 6
    disk[filament] *= 0.5
    out = LimbDarkeningNormalize(degree=5).apply(image.with_data(disk))
    quiet = (r < 0.97) & ~filament
    assert np.abs(out.data[quiet] - 1).max() < 0.01
    assert np.median(out.data[filament]) == pytest.approx(0.5, abs=0.02)
    assert out.data[0, 0] == pytest.approx(0.05, rel=0.02)  # off disk: divided by the centre intensity


# --- registration ----------------------------------------------------------------------


def test_register_centres_the_disk_north_up_at_the_requested_radius():
    smap = synthetic_map(blob_on_disk)
    image = PrepImage.from_map(smap)
    assert image.rotation_deg == pytest.approx(180.0)
    assert np.hypot(image.disk_center_px[0] - 255.5, image.disk_center_px[1] - 255.5) > 20  # off-centre input
    out = Register(128, radius_px=48.0).apply(image)

    disk = out.data > 0.5
    cx, cy = centroid(disk.astype(float))
    assert (cx, cy) == (pytest.approx(63.5, abs=0.5), pytest.approx(63.5, abs=0.5))
    assert np.sqrt(disk.sum() / np.pi) == pytest.approx(48.0, abs=0.5)
    assert out.disk_center_px == (63.5, 63.5) and out.disk_radius_px == pytest.approx(48.0)
    assert out.rotation_deg == 0.0

    scale = image.rsun_arcsec / 48.0  # the blob at HPC (300", 400"): west and north of centre
    blob = np.clip(np.nan_to_num(out.data) - 1.0, 0, None)  # off-image pixels are NaN
    bx, by = centroid(blob)
    assert (bx, by) == (pytest.approx(63.5 + 300 / scale, abs=0.5), pytest.approx(63.5 + 400 / scale, abs=0.5))


def test_register_fixed_field_of_view_sets_the_plate_scale():
    image = PrepImage.from_map(synthetic_map(blob_on_disk, crota2=0.0))
    out = Register(64, fov_arcsec=2048.0).apply(image)
    assert out.scale_arcsec == (32.0, 32.0)
    assert out.disk_radius_px == pytest.approx(image.rsun_arcsec / 32.0)
    assert np.sqrt((out.data > 0.5).sum() / np.pi) == pytest.approx(image.rsun_arcsec / 32.0, abs=0.5)


def test_register_anti_aliases_a_checkerboard():
    y, x = np.indices((1000, 1000))
    checker = np.where((x + y) % 2 == 0, 1.0, -1.0)
    out = Register(256, fov_arcsec=1000.0).apply(make_image(checker, radius_px=400.0))  # 3.9 px -> 1 px
    assert np.isfinite(out.data).all()
    assert np.abs(out.data).max() < 0.12  # 3 x 3 box means are ±1/9, interpolated
    # Plain bilinear sampling at the same positions aliases the pattern into a strong moire.
    positions = 499.5 + (np.indices((256, 256)) - 127.5) * (1000 / 256)
    assert ndimage.map_coordinates(checker, positions, order=1).std() > 0.3


def test_register_keeps_constant_images_constant_and_marks_off_image_pixels_nan():
    image = make_image(np.full((300, 300), 7.0), centre=(40.0, 250.0), radius_px=50.0)
    out = Register(100, radius_px=25.0, order=3).apply(image)  # 2 x 2 boxes, box b centred on input 2b + 0.5
    # Output (col, row) samples box (col - 29.75, row + 75.25); boxes span [-0.5, 149.5].
    rows, cols = np.indices((100, 100))
    np.testing.assert_array_equal(np.isfinite(out.data), (cols >= 30) & (rows <= 74))
    np.testing.assert_allclose(out.data[np.isfinite(out.data)], 7.0, rtol=1e-5)


def test_register_nan_input_stays_local_for_cubic_splines():
    data = np.ones((200, 200))
    data[100, 100] = np.nan
    out = Register(200, radius_px=50.0, order=3).apply(make_image(data, radius_px=50.0))
    assert 1 <= np.isnan(out.data).sum() <= 16
    np.testing.assert_allclose(out.data[np.isfinite(out.data)], 1.0, atol=1e-5)


def test_transform_label_stays_aligned_with_the_image():
    def disk_and_region(tx, ty, rsun):
        return (np.hypot(tx, ty) < rsun).astype(float) + (np.hypot(tx - 300, ty - 400) < 120)

    smap = synthetic_map(disk_and_region)
    image = PrepImage.from_map(smap)
    mask = np.rint(image.data).astype(np.uint8)  # 0 off disk, 1 disk, 2 region
    register = Register(128, radius_px=48.0)
    out = register.apply(image)
    label = register.transform_label(mask, image)
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1, 2}
    assert (label == np.rint(np.nan_to_num(out.data))).mean() > 0.99  # off-image: NaN pixels, label 0
    scale = image.rsun_arcsec / 48.0
    rx, ry = centroid((label == 2).astype(float))
    assert (rx, ry) == (pytest.approx(63.5 + 300 / scale, abs=0.5), pytest.approx(63.5 + 400 / scale, abs=0.5))
    with pytest.raises(PrepError, match="label mask has shape"):
        register.transform_label(mask[:-1], image)


def test_pipeline_run_carries_labels_through_geometric_steps_only():
    smap = synthetic_map(blob_on_disk)
    mask = (PrepImage.from_map(smap).data > 0.5).astype(np.uint8)
    pipeline = Pipeline([Register(96, radius_px=40.0), ClipScale(0, 2, -1, 1), FillNaN(-1.0)])
    image, label = pipeline.run(smap, mask)
    assert image.data.dtype == np.float32 and image.data.shape == label.shape == (96, 96)
    np.testing.assert_array_equal(pipeline.apply_label(mask, smap), label)
    np.testing.assert_array_equal(pipeline.apply(smap), image.data)
    assert (label == (image.data > -0.5)).mean() > 0.99  # disk 1 -> 0; sky 0 and off-image -> -1


# --- real data --------------------------------------------------------------------------


def limb_circle(data: np.ndarray, centre: float, radius: float) -> tuple[float, float, float]:
    """Circle through the brightest point of each radial ray near the limb (171 A limb brightening),
    fitted by least squares after dropping rays whose peak is far from the median (limb structures)."""
    radii = np.linspace(0.85 * radius, 1.15 * radius, 121)
    points = []
    for angle in np.deg2rad(np.arange(0, 360, 2)):
        rows, cols = centre + radii * np.sin(angle), centre + radii * np.cos(angle)
        ray = ndimage.map_coordinates(data, [rows, cols], order=1)
        r = radii[np.argmax(ray)]
        points.append((centre + r * np.cos(angle), centre + r * np.sin(angle)))
    points = np.array(points)
    distance = np.hypot(*(points - centre).T)
    keep = np.abs(distance - np.median(distance)) < 3 * np.median(np.abs(distance - np.median(distance)))
    a = np.c_[2 * points[keep], np.ones(keep.sum())]
    cx, cy, c = np.linalg.lstsq(a, (points[keep] ** 2).sum(axis=1), rcond=None)[0]
    return cx, cy, np.sqrt(c + cx**2 + cy**2)


@pytest.mark.realdata
def test_register_real_aia_disk_is_centred_with_the_expected_radius(realdata):
    smap = sunpy.map.Map(realdata / AIA_FILE)
    image = PrepImage.from_map(smap)
    assert (image.instrument, image.channel, image.exposure_s) == ("AIA", "171", pytest.approx(1.999601))
    out = Register(256, fov_arcsec=2457.6).apply(image)
    expected_radius = smap.rsun_obs.to_value(u.arcsec) / 9.6  # 100.4 px
    cx, cy, radius = limb_circle(out.data, 127.5, expected_radius)
    assert (cx, cy) == (pytest.approx(127.5, abs=0.5), pytest.approx(127.5, abs=0.5))
    # the 171 A limb-brightening peak sits just above the photospheric limb
    assert expected_radius <= radius <= expected_radius + 2.0
    assert np.isfinite(out.data).all()


@pytest.mark.realdata
def test_default_aia_pipeline_on_real_file(realdata):
    smap = sunpy.map.Map(realdata / AIA_FILE)
    pipeline = default_pipeline("aia", 256)
    data = pipeline.apply(smap)
    assert data.shape == (256, 256) and data.dtype == np.float32 and np.isfinite(data).all()
    radius = 256 * DISK_RADIUS_FRACTION
    cx, cy, fitted = limb_circle(data, 127.5, radius)
    assert (cx, cy) == (pytest.approx(127.5, abs=0.5), pytest.approx(127.5, abs=0.5))
    assert radius <= fitted <= radius + 2.0
    # surface brightness is kept: the inner disk's median in DN/s, before and after
    prepped = np.median(data[disk_mask(make_image(data, radius_px=radius), 0.5)])
    raw = np.median(smap.data[disk_mask(PrepImage.from_map(smap), 0.5)]) / smap.exposure_time.to_value(u.s)
    assert prepped == pytest.approx(raw, rel=0.05)


@pytest.mark.realdata
@pytest.mark.parametrize("name", [AIA_FILE, "fits/aia/aia_171_cutout.fits"])
def test_pipeline_load_gives_the_full_maps_result_on_real_aia(realdata, name):
    """Real AIA files (uncompressed full disk; a RICE row-tiled JSOC cutout) loaded binned give
    the full Map's preprocessed pixels, and the box means are block_mean's to the bit."""
    from heliobench.archive.readers import read_map
    from heliobench.archive.readers.containers import open_image

    raw = (realdata / name).read_bytes()
    pipeline = default_pipeline("AIA", 64)
    image = pipeline.load(raw, name)
    assert image.binning > 1
    full = read_map(raw, name)
    np.testing.assert_array_equal(pipeline.run(image)[0].data, pipeline.run(full)[0].data, strict=True)
    np.testing.assert_array_equal(open_image(raw, name).box_means(image.binning),
                                  block_mean(np.asarray(full.data, dtype=np.float32), image.binning), strict=True)


def flipped_like_hmi(smap: sunpy.map.GenericMap) -> sunpy.map.GenericMap:
    """The same observation stored upside down, as HMI stores it (CROTA2 = 180)."""
    meta = smap.meta.copy()
    meta["crota2"] = 180.0
    meta["crpix1"] = smap.data.shape[1] + 1 - meta["crpix1"]
    meta["crpix2"] = smap.data.shape[0] + 1 - meta["crpix2"]
    return sunpy.map.Map(smap.data[::-1, ::-1].copy(), meta)


@pytest.mark.realdata
def test_register_undoes_a_180_degree_roll_on_a_real_magnetogram(realdata):
    smap = sunpy.map.Map(realdata / MDI_MAGNETOGRAM)
    flipped = flipped_like_hmi(smap)
    upright_image, flipped_image = PrepImage.from_map(smap), PrepImage.from_map(flipped)
    assert upright_image.channel == "magnetogram" and flipped_image.rotation_deg == pytest.approx(180.0)
    register = Register(64, fov_arcsec=128 * smap.scale[0].to_value(u.arcsec / u.pix))  # 2 x 2 boxes
    upright, rolled = register.apply(upright_image).data, register.apply(flipped_image).data
    np.testing.assert_array_equal(np.isnan(upright), np.isnan(rolled))  # MDI's off-disk NaN
    np.testing.assert_allclose(upright[np.isfinite(upright)], rolled[np.isfinite(rolled)], atol=1e-3)
    assert np.nanstd(upright - upright[::-1, ::-1]) > 5  # the field is not symmetric: the test can fail

    scaled = Pipeline([register, ClipScale(-3000, 3000, -1, 1), FillNaN(0.0)]).apply(flipped)
    assert np.isfinite(scaled).all() and np.all(scaled[np.isnan(rolled)] == 0)


@pytest.mark.realdata
def test_register_matches_full_wcs_resampling_on_real_hmi(realdata):
    smap = sunpy.map.Map(realdata / HMI_CONTINUUM)  # CROTA2 = 179.93
    image = PrepImage.from_map(smap)
    assert (image.instrument, image.channel) == ("HMI", "continuum")
    scale = smap.scale[0].to_value(u.arcsec / u.pix)
    out = Register(100, fov_arcsec=100 * scale).apply(image).data  # same plate scale: no box mean
    # Reference: every output pixel's HPC position through astropy's full TAN WCS.
    offsets = (np.indices((100, 100)) - 49.5) * scale
    hpc = SkyCoord(offsets[1] * u.arcsec, offsets[0] * u.arcsec, frame=smap.coordinate_frame)
    x, y = smap.world_to_pixel(hpc)
    reference = ndimage.map_coordinates(smap.data, [y.value, x.value], order=1, cval=np.nan)
    both = np.isfinite(out) & np.isfinite(reference)
    assert both.sum() > 5000
    assert np.abs(out[both] - reference[both]).max() < 1e-3 * np.nanmax(reference)


# --- configuration ---------------------------------------------------------------------


def test_from_config_builds_the_described_pipeline():
    items = [
        {"step": "exposure_normalize"},
        {"step": "register", "size_px": 256, "fov_arcsec": 2457.6},
        {"step": "log2_scale"},
    ]
    pipeline = Pipeline.from_config(items, "datasets/aia.yaml")
    assert pipeline.hash == Pipeline([ExposureNormalize(), Register(256, fov_arcsec=2457.6), Log2Scale()]).hash


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"step": "register"}, r"cards/x.yaml: expected a list of preprocessing steps"),
        ([{"size_px": 3}], r"cards/x.yaml: step 0: expected a mapping with a 'step' key"),
        ([{"step": "rotate"}], r"step 0: unknown step 'rotate'; known steps: clip_scale, contrast_normalize"),
        (
            [{"step": "fill_nan"}, {"step": "register", "size": 256}],
            r"step 1 \(register\): unknown key\(s\) \['size'\]; register accepts \['size_px'",
        ),
        ([{"step": "register", "fov_arcsec": 10.0}], r"step 0 \(register\): missing required key\(s\) \['size_px'\]"),
        ([{"step": "register", "size_px": -1, "fov_arcsec": 1.0}], r"step 0: register: size_px must be an integer >= 1, got -1"),
        ([{"step": "register", "size_px": 8}], r"step 0: register: give exactly one of fov_arcsec or radius_px"),
        ([{"step": "clip_scale", "low": 5, "high": 1}], r"step 0: clip_scale: low must be below high"),
        ([{"step": "register", "size_px": 8, "radius_px": 3, "order": 1.5}], r"order must be an integer in 0\.\.5"),
        ([{"step": "fill_nan", "value": "zero"}], r"step 0: fill_nan: value must be a finite number, got 'zero'"),
        ([{"step": "log2_scale", "version": 0}], r"step 0 \(log2_scale\): version 0 was recorded"),
        ([{"step": "log2_scale", "hash": "abc"}], r"step 0 \(log2_scale\): recorded hash abc differs"),
    ],
)
def test_from_config_errors_name_source_item_and_key(items, message):
    with pytest.raises(ConfigError, match=message):
        Pipeline.from_config(items, "cards/x.yaml")


def test_default_pipelines():
    assert [s.name for s in default_pipeline("AIA", 256).steps] == [
        "register",
        "exposure_normalize",
        "degradation",
        "fill_nan",
    ]
    kso = default_pipeline("KSO", 256)
    assert [s.name for s in kso.steps] == ["register", "limb_darkening_normalize", "fill_nan"]
    assert default_pipeline("HMI", 256).steps[0].params["radius_px"] == pytest.approx(256 * 976 / 2457.6)
    assert default_pipeline("HMI", 256).hash != default_pipeline("HMI", 512).hash
    with pytest.raises(ConfigError, match="no default pipeline for instrument 'XRT'; known: AIA, HMI, KSO"):
        default_pipeline("XRT", 256)


# --- fast paths (performance) ------------------------------------------------------------


def _box_mean_reference(data: np.ndarray, block: int) -> np.ndarray:
    """The box mean as first written: each box's columns summed, then its rows (float32)."""
    if block == 1:
        return data
    ny, nx = data.shape[0] // block, data.shape[1] // block
    return data[: ny * block, : nx * block].reshape(ny, block, nx, block).sum(axis=3).sum(axis=1) / np.float32(block * block)


def _transform_label_reference(register: Register, mask: np.ndarray, image: PrepImage) -> np.ndarray:
    """Register.transform_label as first written: a float32 box mean of ``mask == label`` per label."""
    from heliobench.prep.register import _resample

    plan = register._plan(image)
    labels = np.array([False, True]) if mask.dtype == bool else np.unique(mask)
    shares = np.stack([_resample(_box_mean_reference((mask == v).astype(np.float32), plan.block), plan, 1, 0.0)
                       for v in labels])
    out = labels[shares.argmax(axis=0)]
    out[shares.sum(axis=0) < 0.5] = 0
    return out.astype(mask.dtype)


def test_block_mean_equals_box_mean_up_to_rounding():
    data = np.random.default_rng(3).normal(1000.0, 300.0, (203, 331)).astype(np.float32)
    data[5, 7] = np.nan
    for block in (1, 2, 3, 4, 8, 9, 16):
        got, want = block_mean(data, block), _box_mean_reference(data, block)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=2e-6, equal_nan=True)


@pytest.mark.parametrize("n, size", [(1024, 64), (1000, 96), (256, 96), (64, 96)])
def test_transform_label_counts_equal_the_float_box_mean(n, size):
    """Integer box counts give bit for bit the labels of the float box mean (every mask kind)."""
    base = np.random.default_rng(n).random((n, n))
    image = make_image(np.zeros((n, n)), centre=(n / 2 + 3.3, n / 2 - 2.1), radius_px=n / 2.6)
    register = Register(size, radius_px=size / 2.6)
    masks = {
        "uint8 0/1": (base > 0.6).astype(np.uint8),
        "bool": base > 0.3,
        "int16 0/1/2": np.digitize(base, [0.3, 0.8]).astype(np.int16),
        "int8 -1/0/1": (np.digitize(base, [0.2, 0.9]) - 1).astype(np.int8),
        "only zeros": np.zeros((n, n), np.uint8),
        "only ones": np.ones((n, n), np.uint8),
        "float 0/1": (base > 0.5).astype(np.float32),
    }
    for name, mask in masks.items():
        got = register.transform_label(mask, image)
        want = _transform_label_reference(register, mask, image)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_default_aia_pipeline_registers_first_with_the_same_result():
    """Exposure and degradation after registering: the old order's result up to float rounding."""
    smap = synthetic_map(blob_on_disk, scale=2.0, crota2=0.0)
    smap.meta["exptime"] = 2.5
    new = default_pipeline("AIA", 128)
    old = Pipeline([ExposureNormalize(), DegradationCorrection(None), new.steps[0], FillNaN(0.0)])
    assert [s.name for s in new.steps][:2] == ["register", "exposure_normalize"] and new.hash != old.hash
    a, b = new.apply(smap), old.apply(smap)
    assert np.abs(a).max() > 0.1
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(PrepError, match="exposure time"):
        new.apply(PrepImage.from_map(smap).with_data(PrepImage.from_map(smap).data, exposure_s=0.0))


def _fits_bytes(hdu) -> bytes:
    from astropy.io import fits

    buf = __import__("io").BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    return buf.getvalue()


def _astropy_pixels(raw: bytes) -> np.ndarray:
    import io

    from astropy.io import fits

    with fits.open(io.BytesIO(raw)) as hdul:
        return np.array(hdul[1].data)


@pytest.mark.parametrize("case", ["int16 blank", "int32 bscale blank", "uint8", "int16 plain", "rows of 3", "int32 bzero"])
def test_reader_rice_rows_decode_what_astropy_decodes(case, monkeypatch):
    """The reader's RICE row-tile path gives astropy's pixels (float32 where astropy scales to float64)."""
    import io

    from astropy.io import fits

    from heliobench.archive.readers import containers

    rng = np.random.default_rng(7)
    scaling: dict = {}
    rows = 3 if case == "rows of 3" else 1
    if case == "uint8":
        data = (rng.random((70, 90)) > 0.5).astype(np.uint8)
    elif case == "int32 bscale blank":  # HMI: int32, BSCALE 0.1, BLANK
        data = rng.integers(-30000, 30000, (70, 90)).astype(np.int32)
        data[3, :10] = -2147483648
        scaling = {"BSCALE": 0.1, "BZERO": 0.0, "BLANK": -2147483648}
    elif case == "int32 bzero":
        data = rng.integers(-3000, 3000, (70, 90)).astype(np.int32)
        scaling = {"BSCALE": 0.5, "BZERO": 12.25}
    else:  # AIA: int16 with BLANK
        data = rng.integers(-200, 16000, (70, 90)).astype(np.int16)
        if case == "int16 blank":
            data[::7, 5] = -32768
            scaling = {"BLANK": -32768}
    hdu = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(rows, 90), do_not_scale_image_data=True)
    hdu.header.update(scaling)  # the stored integers stay as they are; readers scale them
    raw = _fits_bytes(hdu)
    want = _astropy_pixels(raw)
    assert (want.dtype.kind == "f") == bool(scaling)
    with fits.open(io.BytesIO(raw), disable_image_compression=True) as hdul:
        assert containers._rice_image(raw, hdul[1].header, hdul[1].fileinfo()["datLoc"]) is not None  # the fast path applies
    expected_dtype = np.float32 if want.dtype == np.float64 else want.dtype
    for chunk in (containers._CHUNK_PIXELS, 500):  # one chunk; chunks of 5 or 1 tiles, the last one short
        monkeypatch.setattr(containers, "_CHUNK_PIXELS", chunk)
        image = containers.open_image(raw, "mem://x.fits")
        got = image.decode()
        assert got.dtype == expected_dtype and got.flags.writeable
        np.testing.assert_array_equal(got, want.astype(expected_dtype), strict=True)
        for block in (2, 3, 7):  # box means while decoding: block_mean's numbers to the bit, partial boxes dropped
            np.testing.assert_array_equal(image.box_means(block), block_mean(got.astype(np.float32), block), strict=True)


def test_reader_leaves_other_compressions_to_astropy():
    from astropy.io import fits

    from heliobench.archive.readers import containers

    data = np.random.default_rng(1).normal(0, 1, (40, 50)).astype(np.float32)
    for kind in ("GZIP_1", "RICE_1"):  # float32 RICE is quantised: astropy's path
        raw = _fits_bytes(fits.CompImageHDU(data, compression_type=kind))
        with fits.open(__import__("io").BytesIO(raw), disable_image_compression=True) as hdul:
            assert containers._rice_image(raw, hdul[1].header, hdul[1].fileinfo()["datLoc"]) is None
        image = containers.open_image(raw, "mem://x.fits")
        np.testing.assert_array_equal(image.decode(), _astropy_pixels(raw))
        np.testing.assert_array_equal(image.box_means(4), block_mean(_astropy_pixels(raw), 4))


@pytest.mark.parametrize("keys", [
    {"crota2": 0.0}, {"crota2": 180.0}, {"crota2": -0.137, "cdelt2": 0.61}, {"crota2": 33.3, "cdelt2": 0.599},
    {}, {"pc1_1": 0.9, "pc1_2": -0.1, "pc2_1": 0.1, "pc2_2": 0.9, "crota2": 12.0},
    {"cd1_1": 0.5, "cd1_2": -0.02, "cd2_1": 0.02, "cd2_2": 0.5}, {"crota2": 5.0, "cunit2": "deg", "cdelt2": 0.6 / 3600},
])
def test_rotation_matrix_is_sunpys_to_the_bit(keys):
    """``from_map`` computes a CROTA2 rotation on floats; the matrix is sunpy's exactly, and
    maps with PC/CD keywords or mixed units are sunpy's own (AIA and HMI sources too)."""
    from heliobench.prep.image import _rotation_matrix

    header = {"naxis": 2, "naxis1": 64, "naxis2": 64, "ctype1": "HPLN-TAN", "ctype2": "HPLT-TAN", "cunit1": "arcsec",
              "cunit2": "arcsec", "cdelt1": 0.6, "cdelt2": 0.6, "crpix1": 32.5, "crpix2": 32.5, "crval1": 0.0,
              "crval2": 0.0, "date-obs": "2017-01-01T00:00:00", "dsun_obs": 1.47e11, "hgln_obs": 0.0, "hglt_obs": 3.0}
    header |= keys
    for extra in ({}, {"telescop": "SDO/AIA", "instrume": "AIA_4", "wavelnth": 193, "waveunit": "angstrom"},
                  {"telescop": "SDO/HMI", "instrume": "HMI_FRONT2", "content": "MAGNETOGRAM"}):
        smap = sunpy.map.Map(np.zeros((64, 64), np.float32), header | extra)
        ours = _rotation_matrix(smap, smap.scale)
        assert np.array_equal(ours, np.asarray(smap.rotation_matrix, dtype=float)), (keys, extra, ours)

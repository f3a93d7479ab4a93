"""Active-region detection and classification tasks: SRS encoder, accumulators, tasks, end to end."""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from heliobench.errors import ConfigError, ReaderError
from heliobench.prep.image import PrepImage
from heliobench.prep.labels import LabelContext
from heliobench.prep.labels.srs import K_MAX, encode_srs, rotated_longitude
from heliobench.specs import BenchmarkSpec, Member, load_benchmark
from heliobench.tasks import get_task
from heliobench.tasks.base import to_numpy
from heliobench.tasks.detection.accumulators import ClassificationAccumulator, DetectionAccumulator
from heliobench.tasks.detection.metrics import match_detections, ranked_report, resample_matches
from heliobench.tasks.detection.regions import min_box_area, sample_regions
from heliobench.tasks.detection.targets import detectnet_targets

SRS_TEXT = """:Product: 0101SRS.txt
:Issued: 2014 Jan 01 0030 UTC
# Prepared jointly by the U.S. Dept. of Commerce, NOAA,
# Space Weather Prediction Center and the U.S. Air Force.
#
Joint USAF/NOAA Solar Region Summary
SRS Number 1 Issued at 0030Z on 01 Jan 2014
Report compiled from data received at SWO on 31 Dec
I.  Regions with Sunspots.  Locations Valid at 31/2400Z
Nmbr Location  Lo  Area  Z   LL   NN Mag Type
1936 N00W00   100  0120 Dso  00   05 Beta
1937 S20E30   130  0300 Ekc  12   20 Beta-Gamma-Delta
1938 N10W85   015  0010 Axx  01   01 Alpha
IA. H-alpha Plages without Spots.  Locations Valid at 31/2400Z Dec
Nmbr  Location  Lo
1939  N10W30   070
II. Regions Due to Return 01 Jan to 03 Jan
Nmbr Lat    Lo
1925 S12    250
"""
VALID = datetime(2014, 1, 1, tzinfo=timezone.utc)
HMI_JP2_NAME = "2022_08_02__10_47_53_000__SDO_HMI_HMI_magnetogram.jp2"
#: Earth (the observer) from sunpy's ephemeris: B0 (deg) and distance (m).
EARTH = {VALID: (-3.00486205574513, 147108174241.85962),
         VALID + timedelta(days=1): (-3.1216522194641447, 147106538959.9984),
         datetime(2015, 3, 6, tzinfo=timezone.utc): (-7.251114400322437, 148382561731.80084)}
RSUN_M = 6.957e8


def registered_grid(size: int = 256, scale: float = 9.6) -> PrepImage:
    """A north-up registered grid with the disk centre at the array centre."""
    centre = (size - 1) / 2
    return PrepImage(np.zeros((size, size), np.float32), (scale, scale), ((1.0, 0.0), (0.0, 1.0)), (centre, centre),
                     (0.0, 0.0), (centre, centre), 976.0, VALID, "HMI", "magnetogram", None)


def hand_box(lat: float, lon: float, side: float, when: datetime, grid: PrepImage) -> np.ndarray:
    """The pixel-edge box of a heliographic square's outline (9 points a side), by hand.

    Surface point in units of R: x = cos(lat) sin(lon), y = sin(lat) cos(B0) - cos(lat) cos(lon) sin(B0),
    z = sin(lat) sin(B0) + cos(lat) cos(lon) cos(B0); with r = R/D, Tx = atan(x r / (1 - z r)),
    Ty = atan(y r / hypot(x r, 1 - z r)); pixel edge = CRPIX + (T - CRVAL) / CDELT + 0.5.
    """
    b0, dist = EARTH[when]
    h = side / 2
    t = np.linspace(-h, h, 9)
    pts = np.array([(lat + a, lon + b) for a in t for b in t if abs(a) == h or abs(b) == h])
    la, lo, b = np.radians(pts[:, 0]), np.radians(pts[:, 1]), math.radians(b0)
    x = np.cos(la) * np.sin(lo)
    y = np.sin(la) * math.cos(b) - np.cos(la) * np.cos(lo) * math.sin(b)
    z = np.sin(la) * math.sin(b) + np.cos(la) * np.cos(lo) * math.cos(b)
    r = RSUN_M / dist
    tx = np.degrees(np.arctan2(x * r, 1 - z * r)) * 3600
    ty = np.degrees(np.arctan2(y * r, np.hypot(x * r, 1 - z * r))) * 3600
    px = grid.reference_px[0] + (tx - grid.reference_arcsec[0]) / grid.scale_arcsec[0] + 0.5
    py = grid.reference_px[1] + (ty - grid.reference_arcsec[1]) / grid.scale_arcsec[1] + 0.5
    return np.array([px.min(), py.min(), px.max(), py.max()])


def encode(text: str, when: datetime, grid: PrepImage | None) -> np.ndarray:
    member = Member(key="srs", label="srs", grid="hmi_magnetogram")
    return encode_srs(text.encode(), "test.SRS.txt", LabelContext(member, when, None, grid, "hmi.fits"))


# ---------------------------------------------------------------- SRS encoder


def test_srs_regions_become_boxes_on_the_registered_grid_by_hand() -> None:
    grid = registered_grid()
    table = encode(SRS_TEXT, VALID, grid)
    assert table.shape == (K_MAX, 7) and table.dtype == np.float64
    # Section I only (the plage 1939 and the returning 1925 are left out), NaN padded.
    assert np.isnan(table[3:]).all()
    # noaa, class index into MT_WILSON_CLASSES (Beta 1, Beta-Gamma-Delta 6, Alpha 0), area
    np.testing.assert_array_equal(table[:3, [0, 1, 6]], [[11936, 1, 120], [11937, 6, 300], [11938, 0, 10]])
    # squares of LL + 2 x 2 deg: 4 deg at (0, 0), 16 deg at (-20, -30), 5 deg at (10, 85)
    np.testing.assert_allclose(table[0, 2:6], hand_box(0, 0, 4, VALID, grid), atol=0.02)
    np.testing.assert_allclose(table[1, 2:6], hand_box(-20, -30, 16, VALID, grid), atol=0.02)
    # 4 deg at the disk centre: x spans 2 sin(2 deg) r / (1 - z r) rad with r = R/D = 0.0047291,
    # z = cos(2 deg) cos(B0) = 0.99802: 0.069799 * 975.45" * 1.004741 = 68.41", 7.126 px at 9.6"/px
    assert table[0, 4] - table[0, 2] == pytest.approx(7.126, abs=0.002)


def test_srs_locations_rotate_differentially_to_the_frame_time() -> None:
    # Howard et al. (1990) sidereal rate 2.894 - 0.428 sin^2 - 0.370 sin^4 urad/s, minus the
    # Earth's 0.9856 deg/day: at the equator 14.3262 - 0.9856 = 13.3406 deg/day;
    # at 30 deg: (2.894 - 0.107 - 0.023125) urad/s = 13.6820 deg/day sidereal -> 12.6964
    np.testing.assert_allclose(rotated_longitude(np.array([0.0, 10.0]), np.array([0.0, 30.0]), 24.0),
                               [13.3406, 22.6964], atol=0.003)
    grid = registered_grid()
    later = VALID + timedelta(days=1)
    table = encode(SRS_TEXT, later, grid)
    np.testing.assert_allclose(table[0, 2:6], hand_box(0, 13.3406, 4, later, grid), atol=0.03)
    # N10W85 rotates to W98: wholly behind the limb, box NaN, the region kept
    assert table[2, 0] == 11938 and np.isnan(table[2, 2:6]).all()


def test_srs_encoder_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="member srs: an SRS label needs a grid"):
        encode(SRS_TEXT, VALID, None)
    head, tail = SRS_TEXT.split("IA.")
    many = head + "".join(f"{2000 + i} N05W{i:02d}   100  0010 Axx  01   01 Alpha\n" for i in range(K_MAX - 2)) + "IA." + tail
    with pytest.raises(ReaderError, match="33 sunspot regions, more than the 32"):  # 3 + 30
        encode(many, VALID, registered_grid())
    with pytest.raises(ReaderError, match="not an SRS report"):
        encode("hello", VALID, registered_grid())


HMI_JP2 = "jp2/2022_08_02__10_47_53_000__SDO_HMI_HMI_magnetogram.jp2"


@pytest.mark.realdata
def test_real_srs_regions_on_the_real_registered_hmi_grid(realdata: Path) -> None:
    # The real HMI magnetogram (4096^2 JP2) through the benchmark's HMI pipeline at 256 px gives
    # the grid; the real SRS of 2015-03-06 is placed on it at its own validity time (no real
    # SRS shares the magnetogram's date).
    from heliobench.archive.readers import read_map
    from heliobench.prep import default_pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid, _ = default_pipeline("HMI", 256).run(read_map((realdata / HMI_JP2).read_bytes(), HMI_JP2))
    assert grid.rotation_deg == pytest.approx(0.0, abs=1e-6) and grid.disk_radius_px == pytest.approx(256 * 976 / 2457.6)
    srs = realdata / "srs" / "20150306SRS.txt"
    when = datetime(2015, 3, 6, tzinfo=timezone.utc)
    member = Member(key="srs", label="srs", grid="hmi_magnetogram")
    table = encode_srs(srs.read_bytes(), str(srs), LabelContext(member, when, None, grid, HMI_JP2))
    # "2293 N05W53 342 0065 Cao 10 09 Beta", "2295 S08W53 342 0010 Bxo 02 02 Beta"
    np.testing.assert_array_equal(table[:2, [0, 1, 6]], [[12293, 1, 65], [12295, 1, 10]])
    np.testing.assert_allclose(table[0, 2:6], hand_box(5, 53, 14, when, grid), atol=0.05)
    np.testing.assert_allclose(table[1, 2:6], hand_box(-8, 53, 6, when, grid), atol=0.05)
    assert np.isnan(table[2:]).all()


@pytest.mark.realdata
def test_real_srs_classes_to_class_indices_and_paper4(realdata: Path) -> None:
    srs = realdata / "srs" / "20000922SRS.txt"
    table = encode_srs(srs.read_bytes(), str(srs),
                       LabelContext(Member(key="srs", label="srs", grid="hmi_magnetogram"),
                                    datetime(2000, 9, 22, tzinfo=timezone.utc), None, registered_grid(), None))
    # Mag types Alpha, Beta-Gamma, Beta, Beta-Gamma-Delta, Beta (in report order)
    np.testing.assert_array_equal(table[:5, 1], [0, 3, 1, 6, 1])
    regions = sample_regions(table, 0.0, "paper4")
    np.testing.assert_array_equal(regions.labels, [0, 3, 2, 3, 2])  # α, β-γ, β, β-γ (δ dropped), β
    np.testing.assert_array_equal(sample_regions(table, 0.0, "full").labels, [0, 3, 1, 6, 1])


# ---------------------------------------------------------------- regions and accumulators


def test_regions_keep_boxes_on_the_disk_above_the_area_and_in_the_class_map() -> None:
    table = np.full((K_MAX, 7), np.nan)
    table[0] = [1, 1, 0, 0, 7, 6, 10]  # Beta, 42 px
    table[1] = [2, 6, 10, 10, 16, 16, 10]  # Beta-Gamma-Delta, 36 px: not above 36
    table[2] = [3, 5, 20, 20, 30, 30, 10]  # Beta-Delta, 100 px
    table[3] = [4, np.nan, 0, 0, 10, 10, 0]  # no class, 100 px
    table[4, :2] = [5, 0]  # Alpha behind the limb
    full = sample_regions(table, 36.0, "full")
    np.testing.assert_array_equal(full.boxes, [[0, 0, 7, 6], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_array_equal(full.labels, [1, 5, -1])
    np.testing.assert_array_equal(sample_regions(table, 36.0, "paper4").labels, [2, 2, -1])  # Beta-Delta is β
    # 36 px at 256 is 9 px at 128
    spec = load_benchmark("ar_detection").model_copy(update={"resolution_px": 128})
    assert min_box_area(spec) == 9.0


def test_detection_accumulator_streams_and_bootstraps_by_hand() -> None:
    # Image 0: truths A=(0,0,10,10), B=(20,20,30,30); detections A (0.9, TP), (50,50,60,60) (0.6, FP).
    # Image 1: truth (0,0,10,10); detection (0,0,10,10) (0.7, TP).
    # Ranked TP(0.9) TP(0.7) FP(0.6), 3 truths: precision 2/3, recall 2/3, F1 2/3,
    # AP = 1/3 * 1 + 1/3 * 1 = 2/3; DIGITS mAP = 4/9.
    nan = np.nan
    dets = np.full((2, 3, 5), nan, np.float32)
    dets[0, :2] = [[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.6]]
    dets[1, 0] = [0, 0, 10, 10, 0.7]
    truths = np.full((2, 3, 4), nan, np.float32)
    truths[0, :2] = [[0, 0, 10, 10], [20, 20, 30, 30]]
    truths[1, 0] = [0, 0, 10, 10]
    acc = DetectionAccumulator(0.5, n_boot=200)
    acc.update({"detections": dets[:1]}, {"boxes": truths[:1]})
    acc.update({"detections": dets[1:]}, {"boxes": truths[1:]})
    report = acc.compute()
    assert report["n_images"] == 2 and (report["tp"], report["fp"], report["fn"]) == (2, 1, 1)
    for key, value in {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "ap_voc": 2 / 3, "map_digits": 4 / 9}.items():
        assert report[key] == pytest.approx(value)
        assert report[f"{key}_ci_low"] <= value <= report[f"{key}_ci_high"]
    # image 1 alone always gives precision 1: the interval's top is 1
    assert report["precision_ci_high"] == 1.0
    point = DetectionAccumulator(0.5, n_boot=0)
    point.update({"detections": dets}, {"boxes": truths})
    assert point.compute() == {k: v for k, v in report.items() if "_ci_" not in k}


def test_resampled_matches_equal_matching_the_resampled_images() -> None:
    boxes = [np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), np.array([[0, 0, 10, 10]])]
    scores = [np.array([0.9, 0.6]), np.array([0.7])]
    truths = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 10, 10]])]
    matches = match_detections(boxes, scores, truths)
    images = np.array([1, 1, 0])  # image 1 twice, image 0 once
    direct = ranked_report(match_detections([boxes[i] for i in images], [scores[i] for i in images],
                                            [truths[i] for i in images]))
    assert ranked_report(resample_matches(matches, images)) == direct
    # ranked TP(0.9) TP(0.7) TP(0.7) FP(0.6), 4 truths: AP = 3/4
    assert direct["ap_voc"] == pytest.approx(0.75) and direct["precision"] == pytest.approx(0.75)


def test_classification_accumulator_by_hand() -> None:
    names = ("Alpha", "Beta", "Beta-Gamma")
    acc = ClassificationAccumulator(names, n_boot=100)
    # true 0 0 1 1 1 2, predicted 0 1 1 1 0 2 (one-hot logits)
    logits = np.eye(3)[[0, 1, 1, 1, 0, 2]]
    acc.update({"logits": logits[:4]}, {"label": np.array([0, 0, 1, 1]), "batch_images": np.array([3])})
    acc.update({"logits": logits[4:]}, {"label": np.array([1, 2]), "batch_images": np.array([2])})
    acc.update({"logits": np.zeros((0, 3))}, {"label": np.zeros(0, np.int64), "batch_images": np.array([1])})
    r = acc.compute()
    assert (r["n_images"], r["n_regions"]) == (6, 6)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert (r["precision_alpha"], r["recall_alpha"]) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (r["precision_beta"], r["recall_beta"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert r["confusion_alpha_beta"] == 1 and r["confusion_beta_alpha"] == 1 and r["confusion_beta_beta"] == 2
    assert r["confusion_beta_gamma_beta_gamma"] == 1 and r["confusion_alpha_beta_gamma"] == 0
    assert r["accuracy_ci_low"] <= 4 / 6 <= r["accuracy_ci_high"]
    assert all(isinstance(v, float) for v in r.values())


# ---------------------------------------------------------------- tasks on synthetic batches


def synthetic_batch(n: int = 4, size: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Magnetograms with two bipolar regions each, of a strength growing with their class, and
    their encoded SRS tables."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = np.zeros((n, size, size), np.float32)
    tables = np.full((n, K_MAX, 7), np.nan)
    for i in range(n):
        for k in range(2):
            cx, cy = rng.uniform(12, size - 12, 2)
            half = rng.uniform(5, 9)
            cls = [0, 1, 3, 6][(i + k) % 4]
            bipole = (np.exp(-((xx - cx + half / 2) ** 2 + (yy - cy) ** 2) / 8)
                      - np.exp(-((xx - cx - half / 2) ** 2 + (yy - cy) ** 2) / 8))
            images[i] += (1 + cls) / 4 * bipole
            tables[i, k] = [100 + k, cls, cx - half, cy - half, cx + half, cy + half, 50]
    return {"sample_id": np.array([f"s{i}" for i in range(n)]), "hmi_magnetogram": images, "srs": tables}


def tiny(name: str, overrides: list[str], size: int = 64) -> BenchmarkSpec:
    return load_benchmark(name).with_overrides(overrides).model_copy(update={"resolution_px": size})


DETECTION_TINY = ["model.params.width=0.0625", "model.params.dropout=0.0", "training.lr=0.003", "training.batch_size=4"]
#: DIGITS' DetectNet grid (stride 16 on the image as it is) and the paper's (512-pixel input, stride 8).
DIGITS_GRID = ["model.params.stride=16", "model.params.upsample=1"]
PAPER_GRID = ["model.params.stride=8", "model.params.upsample=2"]
CLASSIFICATION_TINY = ["model.params.width=0.0625", "model.params.input_px=32", "training.lr=0.01", "training.batch_size=4"]


@pytest.mark.parametrize(("grid", "cells"), [(DIGITS_GRID, 4), (PAPER_GRID, 16)])
def test_detection_task_on_synthetic_batches(grid: list[str], cells: int) -> None:
    spec = tiny("ar_detection", DETECTION_TINY + grid + ["training.augment=false"])
    task = get_task("detection")
    torch.manual_seed(0)
    model = task.build_model(spec)
    optimizer = task.optimizer(spec, model)
    batch = synthetic_batch()
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    assert x.shape == (4, 1, 64, 64) and y["boxes"].shape == (4, K_MAX, 4) and y["coverage"].shape == (4, 1, cells, cells)
    assert model(x).coverage.shape == y["coverage"].shape
    assert np.isfinite(y["boxes"].numpy()[:, :, 0]).sum() == 8
    generator = torch.Generator().manual_seed(0)
    losses = [task.train_step(spec, model, optimizer, x, y, generator)["loss"] for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0]
    pred = task.predict(model, x)
    assert pred["detections"].shape == (4, K_MAX, 5)
    assert task.loss(pred, y) == pytest.approx(losses[-1], rel=0.5)
    acc = task.accumulator(spec, n_boot=0)
    acc.update(to_numpy(pred), to_numpy(y))
    report = acc.compute()
    assert set(spec.metrics) <= set(report) and "n_images" in report


@pytest.mark.parametrize(("grid", "cell", "min_cvg_len"), [(DIGITS_GRID, 16, 20.0), (PAPER_GRID, 4, 10.0)])
def test_mirrored_detectnet_maps_equal_the_maps_of_mirrored_boxes(grid: list[str], cell: int, min_cvg_len: float) -> None:
    from heliobench.tasks.detection.task import _mirror_detection

    spec = tiny("ar_detection", grid)
    task = get_task("detection")
    batch = synthetic_batch(n=3)
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    generator = torch.Generator().manual_seed(0)
    flip = torch.rand(3, generator=torch.Generator().manual_seed(0)) < 0.5
    assert flip.tolist() == [True, False, True]
    mx, my = _mirror_detection(x, y, 0.5, cell, generator)
    for i in range(3):
        boxes = y["boxes"][i].numpy()
        boxes = boxes[np.isfinite(boxes).all(axis=1)]
        expected_x = x[i].flip(-1) if flip[i] else x[i]
        if flip[i]:
            boxes = np.stack([64 - boxes[:, 2], boxes[:, 1], 64 - boxes[:, 0], boxes[:, 3]], axis=1)
        expected = detectnet_targets(boxes, (64, 64), cell, min_cvg_len=min_cvg_len)
        torch.testing.assert_close(mx[i], expected_x)
        np.testing.assert_allclose(my["coverage"][i].numpy(), expected.coverage)
        np.testing.assert_allclose(my["bbox"][i].numpy(), expected.bbox, atol=1e-4)
        np.testing.assert_allclose(my["obj_norm"][i].numpy(), expected.obj_norm, rtol=1e-6)


def test_classification_task_flattens_regions_and_learns() -> None:
    spec = tiny("ar_classification", CLASSIFICATION_TINY + ["training.augment=false", "model.params.class_map=full"])
    task = get_task("classification")
    torch.manual_seed(0)
    batch = synthetic_batch(n=4)
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    # 8 regions, classes (i + k) % 4 -> Alpha, Beta, Beta-Gamma, Beta-Gamma-Delta = full labels 0, 1, 3, 6
    assert x.shape == (8, 1, 32, 32) and y["batch_images"].tolist() == [4]
    assert sorted(y["label"].tolist()) == [0, 0, 1, 1, 3, 3, 6, 6]
    paper4 = tiny("ar_classification", CLASSIFICATION_TINY)
    assert sorted(task.targets(paper4, batch)["label"].tolist()) == [0, 0, 2, 2, 3, 3, 3, 3]  # α, β, β-γ (twice)
    model = task.build_model(spec)
    optimizer = task.optimizer(spec, model)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["weight_decay"] == 2e-4
    generator = torch.Generator().manual_seed(0)
    before = task.loss(task.predict(model, x), y)
    for _ in range(20):
        task.train_step(spec, model, optimizer, x, y, generator)
    assert task.loss(task.predict(model, x), y) < 0.7 * before
    empty = {k: v[:0] for k, v in batch.items()}
    assert task.train_step(spec, model, optimizer, task.inputs(spec, empty), task.targets(spec, empty), generator)["loss"] == 0
    acc = task.accumulator(paper4, n_boot=0)
    acc.update(to_numpy(task.predict(task.build_model(paper4), task.inputs(paper4, batch))), to_numpy(task.targets(paper4, batch)))
    assert set(paper4.metrics) <= set(acc.compute())


def test_unknown_model_params_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown model.params depth"):
        get_task("detection").build_model(tiny("ar_detection", ["model.params.depth=3"]))
    with pytest.raises(ConfigError, match="stride/upsample: DetectNet needs stride 16 or 8 .* got stride 12"):
        get_task("detection").build_model(tiny("ar_detection", ["model.params.stride=12"]))
    with pytest.raises(ConfigError, match="got stride 8, upsample 3"):
        get_task("detection").targets(tiny("ar_detection", ["model.params.upsample=3"]), synthetic_batch())
    with pytest.raises(ConfigError, match="unknown class map 'paper5'"):
        get_task("classification").build_model(tiny("ar_classification", ["model.params.class_map=paper5"]))


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def ar_shards(tmp_path_factory, tiny_catalog) -> Path:
    """park2019 shards of sdo_ar_sim (HMI + SRS) at 64 px from the tiny archive."""
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.shards import write_shards
    from heliobench.specs import load_card

    card = load_card("sdo_ar_sim")
    manifest, _ = make_manifest(load_catalog(str(tiny_catalog)), card, "park2019")
    uri = str(tmp_path_factory.mktemp("ar_manifest") / "manifest.parquet")
    write_manifest(manifest, uri)
    out = tmp_path_factory.mktemp("ar_shards")
    write_shards(uri, card, str(out), size_px=64, samples_per_shard=16, progress=False)
    return out


@pytest.fixture(scope="module")
def ar_runs(ar_shards, tmp_path_factory):
    """A 1-epoch detector (every cell's box kept) and classifier trained on ``ar_shards``:
    (detector, classifier, tracking URI)."""
    from heliobench.engine.train import train

    work = tmp_path_factory.mktemp("ar_runs")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    # every cell proposes a box and none is merged away, so predict has boxes to cut out
    keep_all = [*DIGITS_GRID, "training.epochs=1", "model.params.threshold=0.0", "model.params.group_threshold=0"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELIOBENCH_WORKSPACE", str(work))
        detector = train(tiny("ar_detection", DETECTION_TINY + keep_all), str(ar_shards), workers=2, tracking_uri=uri)
        classifier = train(tiny("ar_classification", CLASSIFICATION_TINY + ["training.epochs=1"]), str(ar_shards),
                           workers=2, tracking_uri=uri)
    return detector, classifier, uri


def test_train_evaluate_predict_end_to_end(ar_runs, ar_shards, tiny_archive, tmp_path, monkeypatch) -> None:
    import sunpy.map
    from mlflow.tracking import MlflowClient

    from heliobench.engine.evaluate import evaluate
    from heliobench.engine.predict import predict_files

    monkeypatch.setenv("HELIOBENCH_WORKSPACE", str(tmp_path))
    detector, classifier, uri = ar_runs
    client = MlflowClient(uri)
    for run, key in ((detector, "val_ap_voc"), (classifier, "val_accuracy")):
        assert client.get_run(run.run_id).info.status == "FINISHED" and key in client.get_run(run.run_id).data.metrics
    found = evaluate(load_benchmark("ar_detection"), detector.run_id, str(ar_shards), tracking_uri=uri, n_boot=50)
    assert found["n_truths"] > 0 and 0 <= found["recall"] <= 1 and found["ap_voc_ci_low"] <= found["ap_voc_ci_high"]
    classified = evaluate(load_benchmark("ar_classification"), classifier.run_id, str(ar_shards), tracking_uri=uri, n_boot=50)
    assert classified["n_regions"] > 0 and 0 <= classified["accuracy"] <= 1
    assert sum(v for k, v in classified.items() if k.startswith("confusion_")) == classified["n_regions"]

    hmi = sorted(tiny_archive.rglob("hmi.m_720s.*.fits"))[-1]
    [record] = predict_files(load_benchmark("ar_detection"), detector.run_id, [str(hmi)], str(tmp_path / "out"),
                             tracking_uri=uri, options={"classifier_run": classifier.run_id})
    assert Path(record["figure"]).read_bytes()[:4] == b"\x89PNG"
    listing = json.loads(Path(record["detections_json"]).read_text())
    assert len(listing) == len(record["boxes"]) == 16  # a 4 x 4 grid at 64 px
    for entry in listing:
        assert entry["class"] in ("Alpha", "Alpha-Gamma", "Beta", "Beta-Gamma") and 0 < entry["class_probability"] <= 1
        cut = sunpy.map.Map(entry["cutout_fits"])
        assert cut.coordinate_frame.name == "helioprojective"
    pngs = [e["cutout_png"] for e in listing[:3]]
    records = predict_files(load_benchmark("ar_classification"), classifier.run_id, pngs, str(tmp_path / "cls"),
                            tracking_uri=uri)
    assert [r["input"] for r in records] == [Path(p).stem for p in pngs]
    assert all(sum(r["probabilities"].values()) == pytest.approx(1.0) for r in records)
    assert json.loads((tmp_path / "cls" / "classes.json").read_text())[0]["class"] == records[0]["class"]


def test_the_detector_and_classifier_run_on_a_real_helioviewer_magnetogram(ar_runs, realdata, tmp_path, monkeypatch) -> None:
    """The paper's input: a Helioviewer HMI magnetogram (JP2, 4096², 8-bit), registered by the
    card's pipeline, boxed by DetectNet and each box classified."""
    from heliobench.engine.predict import predict_files

    monkeypatch.setenv("HELIOBENCH_WORKSPACE", str(tmp_path))
    detector, classifier, uri = ar_runs
    [record] = predict_files(load_benchmark("ar_detection"), detector.run_id, [str(realdata / "jp2" / HMI_JP2_NAME)],
                             str(tmp_path / "out"), tracking_uri=uri, options={"classifier_run": classifier.run_id})
    assert "error" not in record and Path(record["figure"]).read_bytes()[:4] == b"\x89PNG"
    listing = json.loads(Path(record["detections_json"]).read_text())
    assert len(listing) == len(record["boxes"]) == 16  # a 4 x 4 grid at 64 px, every cell kept
    assert all(entry["class"] in ("Alpha", "Alpha-Gamma", "Beta", "Beta-Gamma") for entry in listing)

"""Event-tracking parts: measures checked by hand, GOTURN crops and regressor, baselines.

Boxes are (x0, y0, x1, y1), continuous pixels, a box covering [x0, x1) x [y0, y1).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
import torch
from astropy.coordinates import SkyCoord
from astropy.time import Time
from sunpy.coordinates import frames, get_earth

from heliobench.tasks.tracking import (
    GoturnRegressor,
    context_window,
    crop,
    iou,
    l1_box_loss,
    motion_example,
    sequence_scores,
    shift_box,
    success_curve,
    track_sequence,
    tracking_report,
)
from heliobench.tasks.tracking.baselines import differential_rotation_tracker, static_box_tracker
from heliobench.tasks.tracking.model import STILL_BOX

# Three frames of a 10 x 10 target moving right by 10 px per frame, and a tracker lagging behind.
TRUE_3 = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [20, 0, 30, 10]], dtype=float)
PRED_3 = np.array([[0, 0, 10, 10], [12, 0, 22, 10], [26, 4, 36, 14]], dtype=float)
# Per-frame IoU of PRED_3:
#   frame 0: identical                                 -> 1
#   frame 1: overlap 8 x 10 = 80, union 100 + 100 - 80 = 120  -> 2/3
#   frame 2: overlap (30-26) x (10-4) = 24, union 200 - 24 = 176 -> 3/22
# Centre errors: 0; |(17,5)-(15,5)| = 2; |(31,9)-(25,5)| = sqrt(36 + 16) = sqrt(52).
PERFECT_2 = np.array([[5, 5, 15, 15], [6, 5, 16, 15]], dtype=float)


def test_iou_of_known_boxes() -> None:
    true = [[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 2, 2], [0, 0, 4, 4]]
    pred = [[2, 2, 6, 6], [0, 0, 4, 4], [2, 0, 4, 2], [0, 0, 8, 4]]
    # [2,2,6,6]: overlap 2 x 2 = 4, union 16 + 16 - 4 = 28 -> 1/7 (the original script's "+1"
    # convention would give 9/41). Identical -> 1. Sharing only an edge -> 0 (no common pixel).
    # [0,0,8,4] contains the truth: overlap 16, union 32 -> 1/2 (the original's coverage
    # |p n g| / |g| would give 1).
    np.testing.assert_allclose(iou(pred, true), [1 / 7, 1.0, 0.0, 0.5])


def test_three_frame_sequence_by_hand() -> None:
    scores = sequence_scores(PRED_3, TRUE_3)
    # Matched (IoU >= 0.5): frames 0 and 1. TP = 2, FP = 1 (frame 2), FN = 3 - 2 = 1.
    # P = 2/3, R = 2/3 -> F = 2/3.  OTA = 1 - (FN + FP) / N = 1 - 2/3 = 1/3.
    assert scores["f_score"] == pytest.approx(2 / 3)
    assert scores["ota"] == pytest.approx(1 / 3)
    # OTP = mean IoU over matched frames = (1 + 2/3) / 2 = 5/6.
    assert scores["otp"] == pytest.approx(5 / 6)
    # ATA = (1 + 2/3 + 3/22) / 3 = (66 + 44 + 9) / 66 / 3 = 119/198.
    assert scores["ata"] == pytest.approx(119 / 198)
    # Deviation: matched frames' centre errors over the 10 x 10 diagonal sqrt(200):
    # 1 - (0 + 2 / sqrt(200)) / 2 = 1 - 1 / sqrt(200).
    assert scores["deviation"] == pytest.approx(1 - 1 / math.sqrt(200))
    # PBM: T = (10 + 10 + 10 + 10) / 2 = 20 in every frame; L1 centre distances 0, 2, 6 + 4.
    # (1 + (1 - 2/20) + (1 - 10/20)) / 3 = (1 + 0.9 + 0.5) / 3 = 0.8. The original's signed
    # dx + dy gives 1 - (-10)/20 = 1.5 for frame 2.
    assert scores["pbm"] == pytest.approx(0.8)
    # Mean centre error (0 + 2 + sqrt(52)) / 3; all three are within 20 px.
    assert scores["centre_error_px"] == pytest.approx((2 + math.sqrt(52)) / 3)
    assert scores["precision_20px"] == 1.0


def test_success_curve_and_auc_by_hand() -> None:
    # IoUs 1, 2/3, 3/22 ~ 0.136 against t = 0, 0.05, ..., 1 (success means IoU > t):
    #   t = 0, 0.05, 0.10          -> 3/3   (3 thresholds)
    #   t = 0.15 ... 0.65          -> 2/3   (11 thresholds)
    #   t = 0.70 ... 0.95          -> 1/3   (6 thresholds)
    #   t = 1                      -> 0     (1 threshold)
    # AUC = (3 + 11 * 2/3 + 6 * 1/3 + 0) / 21 = (37/3) / 21 = 37/63.
    expected = [1.0] * 3 + [2 / 3] * 11 + [1 / 3] * 6 + [0.0]
    np.testing.assert_allclose(success_curve(PRED_3, TRUE_3), expected)
    assert sequence_scores(PRED_3, TRUE_3)["success_auc"] == pytest.approx(37 / 63)


def test_precision_at_20_px() -> None:
    true = np.array([[0, 0, 10, 10]] * 3, dtype=float)
    # Centre offsets (0, 0), (12, 16) and (15, 20): distances 0, 20 and 25 px.
    # The threshold is inclusive (<= 20, as OTB), so 2 of 3 frames pass.
    pred = true + np.array([[0, 0, 0, 0], [12, 16, 12, 16], [15, 20, 15, 20]], dtype=float)
    assert sequence_scores(pred, true)["precision_20px"] == pytest.approx(2 / 3)


def test_frame_without_prediction_counts_as_a_miss() -> None:
    pred = np.array([[5, 5, 15, 15], [np.nan] * 4])
    scores = sequence_scores(pred, PERFECT_2)
    # Frame 0 exact, frame 1 no box: TP = 1, FP = 0, FN = 1 -> P = 1, R = 1/2,
    # F = 2 * 1 * 0.5 / 1.5 = 2/3. OTA = 1 - (1 + 0) / 2 = 1/2. ATA = PBM = (1 + 0) / 2.
    assert scores["f_score"] == pytest.approx(2 / 3)
    assert scores["ota"] == pytest.approx(0.5)
    assert scores["ata"] == pytest.approx(0.5)
    assert scores["pbm"] == pytest.approx(0.5)
    assert scores["precision_20px"] == pytest.approx(0.5)
    assert scores["centre_error_px"] == 0.0  # only frames with a box


def test_report_is_a_mean_over_sequences_with_nothing_carried_over() -> None:
    perfect = tracking_report([(PERFECT_2, PERFECT_2)])
    assert perfect.pop("centre_error_px") == 0.0 and perfect.pop("n_sequences") == 1.0
    # Success needs IoU > t, so even IoU = 1 fails at t = 1 (OTB): AUC = 20/21 at best.
    assert perfect.pop("success_auc") == pytest.approx(20 / 21)
    assert perfect == {key: pytest.approx(1.0) for key in perfect}
    both = tracking_report([(PRED_3, TRUE_3), (PERFECT_2, PERFECT_2)])
    # Each sequence weighs 1/2 whatever its length:
    # F (2/3 + 1)/2 = 5/6, OTA (1/3 + 1)/2 = 2/3, OTP (5/6 + 1)/2 = 11/12, PBM (0.8 + 1)/2 = 0.9,
    # ATA (119/198 + 1)/2 = 317/396 (pooling the 5 frames would give 251/330 instead).
    assert both["f_score"] == pytest.approx(5 / 6)
    assert both["ota"] == pytest.approx(2 / 3)
    assert both["otp"] == pytest.approx(11 / 12)
    assert both["pbm"] == pytest.approx(0.9)
    assert both["ata"] == pytest.approx(317 / 396)
    assert both["deviation"] == pytest.approx((1 - 1 / math.sqrt(200) + 1) / 2)
    assert both["n_sequences"] == 2.0
    # Scoring the lagging sequence first changes nothing for the perfect one.
    assert tracking_report([(PERFECT_2, PERFECT_2), (PRED_3, TRUE_3)]) == both
    assert tracking_report([(PERFECT_2, PERFECT_2)])["ata"] == 1.0


def test_measures_undefined_for_a_sequence_are_left_out_of_the_mean() -> None:
    lost = np.array([[50, 50, 60, 60], [50, 50, 60, 60]], dtype=float)  # never overlaps
    report = tracking_report([(lost, PERFECT_2), (PERFECT_2, PERFECT_2)])
    # The lost sequence has no matched frame: its OTP is undefined, so OTP is the perfect one's.
    assert report["otp"] == 1.0
    assert report["ata"] == pytest.approx(0.5)


def test_mismatched_sequences_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match="pred_boxes has 2 frames but true_boxes has 3"):
        sequence_scores(PERFECT_2, TRUE_3)
    with pytest.raises(ValueError, match=r"true_boxes: expected finite boxes"):
        sequence_scores(PERFECT_2, [[0, 0, 10, 10], [5, 5, 5, 9]])


def test_crop_coordinates_round_trip() -> None:
    box = np.array([10.0, 10.0, 20.0, 20.0])
    window = context_window(box)
    # Centre 15, context 2 x 10 = 20 -> window [5, 25) on both axes; the box sits at
    # (10 - 5) / 20 * 10 = 2.5 ... (20 - 5) / 20 * 10 = 7.5: the model's no-motion answer.
    assert (window.x0, window.y0, window.x1, window.y1) == (5, 5, 25, 25)
    np.testing.assert_allclose(window.to_crop(box)[0], [2.5, 2.5, 7.5, 7.5])
    assert STILL_BOX == (2.5, 2.5, 7.5, 7.5)
    odd = np.array([[10.3, 11.7, 17.9, 30.2], [0.0, -4.0, 50.5, 3.25]])
    window = context_window(odd[0])
    np.testing.assert_allclose(window.from_crop(window.to_crop(odd)), odd, atol=1e-12)


def test_crop_cuts_the_window_and_pads_with_zeros() -> None:
    frame = torch.arange(40 * 40, dtype=torch.float32).reshape(1, 40, 40)
    inside = context_window([10, 10, 20, 20])  # [5, 25)
    torch.testing.assert_close(crop(frame, inside, 20), frame[:, 5:25, 5:25])
    corner = context_window([0, 0, 10, 10])  # centre 5 -> [-5, 15): 5 rows/cols off the frame
    cut = crop(frame, corner, 20)
    assert cut[:, :5].abs().sum() == 0 and cut[:, :, :5].abs().sum() == 0
    torch.testing.assert_close(cut[:, 5:, 5:], frame[:, :15, :15])
    assert crop(frame, inside, 7).shape == (1, 7, 7)


def test_motion_model_follows_goturn_laplace_parameters() -> None:
    rng = np.random.default_rng(7)
    box = np.array([500.0, 500.0, 520.0, 540.0])  # w = 20, h = 40, far from the frame edges
    shifted = np.stack([shift_box(box, 1000, 1000, rng) for _ in range(4000)])
    dx = ((shifted[:, 0] + shifted[:, 2]) / 2 - 510) / 20
    size_change = (shifted[:, 2] - shifted[:, 0]) / 20 - 1
    # Laplace(0, b) has mean |x| = b: b = 1/5 for the shift (in box widths), 1/15 for size.
    # The standard errors are b / sqrt(4000): 0.003 and 0.001.
    assert np.mean(np.abs(dx)) == pytest.approx(1 / 5, abs=0.015)
    assert np.mean(np.abs(size_change)) == pytest.approx(1 / 15, abs=0.006)
    assert np.abs(size_change).max() <= 0.4 + 1e-12  # clipped as min/max_scale = -/+0.4
    assert np.abs(dx).max() <= 1.0  # the new centre stays in the old context window


def test_motion_example_is_target_crop_shifted_search_crop_and_true_box() -> None:
    frame = torch.rand(1, 64, 64)
    prev_box, curr_box = np.array([28.0, 28.0, 38.0, 36.0]), np.array([30.0, 28.0, 40.0, 36.0])
    target, search, coords = motion_example(frame, frame, prev_box, curr_box,
                                            np.random.default_rng(3), 32)
    # Same draw by hand: shift the current box, cut its context window.
    window = context_window(shift_box(curr_box, 64, 64, np.random.default_rng(3)))
    torch.testing.assert_close(target, crop(frame, context_window(prev_box), 32))
    torch.testing.assert_close(search, crop(frame, window, 32))
    np.testing.assert_allclose(window.from_crop(coords)[0], curr_box)


# Synthetic moving blobs: a Gaussian spot on a dark 48 x 48 frame, its box 10 x 10 around it.
SIDE = 48


def _blob(cx: float, cy: float) -> torch.Tensor:
    y, x = np.mgrid[0:SIDE, 0:SIDE] + 0.5
    return torch.from_numpy(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 2.5 ** 2))
                            .astype(np.float32))[None]


def _blob_box(cx: float, cy: float) -> np.ndarray:
    return np.array([cx - 5, cy - 5, cx + 5, cy + 5])


def _blob_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, ...]:
    examples = []
    for _ in range(n):
        (cx, cy), (mx, my) = rng.uniform(12, 36, 2), rng.uniform(-3, 3, 2)
        examples.append(motion_example(_blob(cx, cy), _blob(cx + mx, cy + my), _blob_box(cx, cy),
                                       _blob_box(cx + mx, cy + my), rng, 32))
    targets, searches, coords = zip(*examples)
    return torch.stack(targets), torch.stack(searches), torch.tensor(np.stack(coords)).float()


@pytest.fixture(scope="module")
def trained() -> tuple[GoturnRegressor, list[float]]:
    """A small regressor trained for 120 steps on moving blobs; held-out losses before/after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only contend with each other
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    held_out = _blob_batch(rng, 64)
    model = GoturnRegressor(crop_size=32, channels=(8, 16, 32), hidden=64, dropout=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def held_out_loss() -> float:
        model.eval()
        with torch.no_grad():
            return l1_box_loss(model(held_out[0], held_out[1]), held_out[2]).item()

    constant = l1_box_loss(held_out[2].median(dim=0).values.expand_as(held_out[2]),
                           held_out[2]).item()
    losses = [constant, held_out_loss()]
    for _ in range(120):
        model.train()
        target, search, coords = _blob_batch(rng, 16)
        loss = l1_box_loss(model(target, search), coords)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    losses.append(held_out_loss())
    torch.set_num_threads(threads)
    return model, losses


def test_regressor_output_shape() -> None:
    model = GoturnRegressor(in_channels=2, crop_size=64, channels=(4, 8), hidden=16)
    crops = torch.rand(3, 2, 64, 64)
    assert model(crops, crops).shape == (3, 4)
    with pytest.raises(ValueError, match="crop_size 62 must be a positive multiple of"):
        GoturnRegressor(crop_size=62, channels=(4, 8))


def test_regressor_sees_crop_pairs_standardised_by_the_target_crop() -> None:
    torch.manual_seed(0)
    model = GoturnRegressor(crop_size=16, channels=(4, 8), hidden=16, dropout=0.0).eval()
    target, search = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        base = model(target, search)
        # The same gain and offset on both crops (an exposure change) changes nothing ...
        torch.testing.assert_close(model(5 * target + 3, 5 * search + 3), base, rtol=1e-4, atol=1e-4)
        # ... but a search crop brighter than its target does.
        assert not torch.allclose(model(target, search + 1), base, atol=1e-3)


def test_training_on_moving_blobs_beats_the_best_constant_box(trained) -> None:
    _, (constant, before, after) = trained
    # The best constant answer (the per-coordinate median) cannot see the images; a model that
    # goes well below it has learnt to locate the blob.
    assert after < 0.5 * constant
    assert after < 0.5 * before


def test_track_sequence_follows_a_drifting_blob_better_than_a_static_box(trained) -> None:
    model, _ = trained
    centres = [(14 + 2 * t, 16 + t) for t in range(10)]  # 2 px right and 1 px up per frame
    frames = np.stack([_blob(cx, cy)[0].numpy() for cx, cy in centres])
    truth = np.stack([_blob_box(cx, cy) for cx, cy in centres])
    model.train()
    boxes = track_sequence(model, frames, truth[0])
    assert model.training  # the caller's mode is restored
    assert boxes.shape == (10, 4)
    np.testing.assert_array_equal(boxes[0], truth[0])
    static = static_box_tracker(frames, truth[0])
    goturn_ata = tracking_report([(boxes, truth)])["ata"]
    static_ata = tracking_report([(static, truth)])["ata"]
    assert goturn_ata > static_ata + 0.2


def test_static_tracker_keeps_the_box() -> None:
    boxes = static_box_tracker([None] * 4, [1.5, 2, 7, 9])
    np.testing.assert_array_equal(boxes, [[1.5, 2, 7, 9]] * 4)


def _earth_view_map(obstime: Time) -> sunpy.map.GenericMap:
    """An empty 64 x 64 map, 20"/px, centred on the disk, seen from Earth at ``obstime``."""
    centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=frames.Helioprojective,
                      obstime=obstime, observer="earth")
    data = np.zeros((64, 64))
    header = sunpy.map.make_fitswcs_header(data, centre, scale=[20, 20] * u.arcsec / u.pix)
    return sunpy.map.Map(data, header)


def expected_shift_px(rsun_arcsec: float, latitude_deg: float, hours: float,
                       scale_arcsec: float) -> float:
    """Westward shift of a point on the central meridian, from Howard et al. (1990) by hand.

    Sidereal rate 2.894 - 0.428 sin^2(lat) - 0.370 sin^4(lat) microrad/s, minus the Earth's
    mean orbital motion 360/365.25 deg/day, gives the apparent (synodic) rate. A point
    rotated by dL sits R cos(lat) sin(dL) west of the central meridian.
    """
    s2 = math.sin(math.radians(latitude_deg)) ** 2
    sidereal_deg_day = math.degrees((2.894 - 0.428 * s2 - 0.370 * s2 ** 2) * 1e-6 * 86400)
    turned = math.radians((sidereal_deg_day - 360 / 365.25) * hours / 24)
    return rsun_arcsec * math.cos(math.radians(latitude_deg)) * math.sin(turned) / scale_arcsec


def test_differential_rotation_moves_a_disk_centre_box_west_in_a_day() -> None:
    t0 = Time("2020-06-06T00:00:00")  # B0 ~ 0: the disk centre is on the equator
    maps = [_earth_view_map(t0), _earth_view_map(t0 + 1 * u.day)]
    box = [27.0, 27.0, 37.0, 37.0]  # centre (32, 32) = WCS pixel 31.5, the reference pixel
    boxes = differential_rotation_tracker(maps, box)
    np.testing.assert_allclose(boxes[0], box, atol=1e-6)
    shift = boxes[1] - boxes[0]
    # Equator: 14.326 - 0.986 = 13.341 deg/day; sin(13.341 deg) = 0.2307;
    # R ~ 945" in June -> ~218" = ~10.9 px at 20"/px. Perspective (R/D ~ 0.5%) and the Earth's
    # slower June orbital motion (0.955 deg/day, 0.2%) are neglected: 2% tolerance.
    expected = expected_shift_px(maps[1].rsun_obs.to_value(u.arcsec), 0.0, 24, 20.0)
    assert shift[0] == pytest.approx(expected, rel=0.02)
    assert abs(shift[1]) < 0.05 * shift[0]
    np.testing.assert_allclose(shift[2:], shift[:2])  # same size


def eit_map_with_repaired_header(path: Path) -> sunpy.map.GenericMap:
    """A SunPy-test EIT frame with the two header faults that matter here repaired.

    1. The files were resampled 1024 -> 128 px for SunPy, but CDELT (2.63"/px) and SOLAR_R
       (372.27 px) were left at the 1024-px values. The limb sits 46.5 px from the centre, so
       the true scale is 8 x 2.63 = 21.04"/px.
    2. HEC_X/Y/Z (SOHO's position) are the same in all 13 frames. So SunPy's observer drifts
       by the Earth's orbital motion, about 0.5 deg in 12 h, which is an 8% error in the
       rotation. We put the observer at the Earth instead: SOHO at L1 is 1% closer.
    """
    raw = sunpy.map.Map(path)
    earth = get_earth(raw.date)
    meta = {key: value for key, value in raw.meta.items() if key not in ("hec_x", "hec_y", "hec_z")}
    meta |= {"cdelt1": 8 * raw.meta["cdelt1"], "cdelt2": 8 * raw.meta["cdelt2"],
             "solar_r": raw.meta["solar_r"] / 8, "hgln_obs": earth.lon.to_value(u.deg),
             "hglt_obs": earth.lat.to_value(u.deg), "dsun_obs": earth.radius.to_value(u.m)}
    return sunpy.map.Map(raw.data, meta)


@pytest.mark.realdata
def test_differential_rotation_on_the_real_eit_hourly_sequence(realdata: Path) -> None:
    paths = sorted((realdata / "fits" / "eit" / "hourly_2004-03-01").glob("*.fits"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SunPy's notes on the old EIT keywords
        maps = [eit_map_with_repaired_header(path) for path in paths]
        boxes = differential_rotation_tracker(maps, [59.0, 59.0, 69.0, 69.0])
    hours = (maps[-1].date - maps[0].date).to_value(u.hour)
    assert len(maps) == 13 and hours == pytest.approx(12, abs=0.01)
    shift_x = boxes[:, 0] - boxes[0, 0]
    # The disk-centre point has latitude B0 = -7.22 deg: sidereal 14.292 deg/day, synodic 13.306
    # deg/day = 0.554 deg/h, 6.65 deg in 12 h; 979.07" x cos(7.22 deg) x sin(6.65 deg) = 112.5"
    # = 5.35 px at 21.04"/px.
    b0 = maps[0].observer_coordinate.lat.to_value(u.deg)
    expected = expected_shift_px(maps[0].rsun_obs.to_value(u.arcsec), b0, hours, 21.04)
    assert expected == pytest.approx(5.35, abs=0.01)
    assert shift_x[-1] == pytest.approx(expected, rel=0.02)
    assert np.all(np.diff(shift_x) > 0)  # westward every hour
    assert shift_x[6] == pytest.approx(shift_x[-1] / 2, rel=0.02)  # steady rate

"""Segmentation task parts: SCSS-Net model, paired augmentation, IoU/Dice metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from heliobench.tasks.segmentation import metrics
from heliobench.tasks.segmentation.augment import augment_pair
from heliobench.tasks.segmentation.metrics import (
    SegmentationAccumulator,
    bootstrap_ci,
    bootstrap_ci_pooled,
    dice_per_image,
    dice_pooled,
    iou_per_image,
    iou_pooled,
    segmentation_report,
)
from heliobench.tasks.segmentation.model import ScssNet, count_parameters

# ---------------------------------------------------------------- model


def test_published_config_matches_keras_parameter_count() -> None:
    model = ScssNet()  # 1 channel in and out, 32 filters, 4 levels, batch norm, dropout 0.5
    # Keras model.summary() of scss_net((256, 256, 1), filters=32, layers=4, batch_norm=True,
    # drop_prob=0.5): "Trainable params: 7,851,969", "Non-trainable params: 5,888" (the batch-norm
    # moving mean and variance). Level by level, conv = 9*c_in*c_out + c_out, BN = 2*c:
    #   encoder 32: 320+9248+2*64 = 9,696 ... bottleneck 512: 1,180,160+2,359,808+2*1024
    #   head: 1*32 + 1 = 33
    assert count_parameters(model) == 7_851_969
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert 2 * bn_channels == 5_888


def test_dropout_where_the_original_puts_it() -> None:
    # before encoder levels 3 and 4, before the bottleneck, before the first two decoder levels
    assert sum(isinstance(m, nn.Dropout) for m in ScssNet().modules()) == 5
    assert not any(isinstance(m, nn.Dropout) for m in ScssNet(dropout=0.0).modules())


def test_output_shape_and_probability_range() -> None:
    torch.manual_seed(0)
    model = ScssNet(in_channels=3, out_channels=2, base_filters=4).eval()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        probs, logits = model(x), model.logits(x)
    assert probs.shape == (2, 2, 32, 48)
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    torch.testing.assert_close(probs, torch.sigmoid(logits))


def test_rejects_input_not_divisible_by_two_to_the_depth() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        ScssNet(base_filters=4)(torch.zeros(1, 1, 40, 40))


def test_a_few_training_steps_reduce_bce() -> None:
    torch.manual_seed(0)
    images = torch.rand(4, 1, 16, 16)
    masks = (images > 0.5).float()  # segment the bright pixels
    model = ScssNet(base_filters=8, depth=2, dropout=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(25):
        optimiser.zero_grad()
        loss = loss_fn(model.logits(images), masks)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- augmentation

FLIPS = {
    "none": lambda t: t,
    "h": lambda t: t.flip(-1),
    "v": lambda t: t.flip(-2),
    "hv": lambda t: t.flip(-1).flip(-2),
}


def _blob_mask(height: int = 64, width: int = 48) -> torch.Tensor:
    """Two rectangles near the centre, so that no rotation moves them out of the frame."""
    mask = torch.zeros(1, height, width)
    mask[0, height // 2 - 10:height // 2 - 2, width // 2 - 8:width // 2 + 8] = 1.0
    mask[0, height // 2 + 4:height // 2 + 12, width // 2 - 4:width // 2 + 6] = 1.0
    return mask


def test_geometry_is_shared_by_image_and_mask() -> None:
    mask = _blob_mask()
    changed = 0
    for seed in range(10):
        image_out, mask_out = augment_pair(
            mask.clone(), mask.clone(), torch.Generator().manual_seed(seed),
            gamma_range=(1.0, 1.0), brightness=0.0, contrast=0.0)
        # bilinear image and nearest mask of the same warp agree except at a few edge pixels
        assert ((image_out > 0.5) != (mask_out > 0.5)).float().mean() < 0.01
        assert abs(mask_out.sum() - mask.sum()) < 0.05 * mask.sum()
        changed += not torch.equal(mask_out, mask)
    assert changed == 10


def test_rotation_respects_the_aspect_ratio_of_non_square_images() -> None:
    rows, cols = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    disk = (((rows - 32) ** 2 + (cols - 24) ** 2) <= 20**2).float().unsqueeze(0)
    for seed in range(5):
        _, disk_out = augment_pair(disk, disk, torch.Generator().manual_seed(seed))
        # a centred solar disk maps onto itself; a rotation in un-rescaled normalised
        # coordinates would shear it into an ellipse
        assert (disk_out != disk).float().mean() < 0.01


def test_without_rotation_image_and_mask_get_the_same_exact_flip() -> None:
    image = torch.rand(2, 8, 8)
    mask = (torch.rand(1, 8, 8) > 0.5).long()
    seen = set()
    for seed in range(12):
        image_out, mask_out = augment_pair(
            image, mask, torch.Generator().manual_seed(seed), max_rotation_deg=0.0,
            gamma_range=(1.0, 1.0), brightness=0.0, contrast=0.0)
        matching = [name for name, flip in FLIPS.items()
                    if torch.allclose(image_out, flip(image), atol=1e-5)
                    and torch.equal(mask_out, flip(mask))]
        assert len(matching) == 1
        seen.add(matching[0])
    assert seen == set(FLIPS)
    assert mask_out.dtype == torch.long


def test_same_generator_state_same_result() -> None:
    image, mask = torch.rand(1, 32, 32), _blob_mask(32, 32)
    first = augment_pair(image, mask, torch.Generator().manual_seed(7))
    again = augment_pair(image, mask, torch.Generator().manual_seed(7))
    other = augment_pair(image, mask, torch.Generator().manual_seed(8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_photometric_changes_touch_the_image_only() -> None:
    image = torch.full((1, 4, 4), 0.5)
    mask = (torch.arange(16).reshape(1, 4, 4) % 3 == 0).float()
    image_out, mask_out = augment_pair(image, mask, torch.Generator().manual_seed(0),
                                       max_rotation_deg=0.0, flip=False, gamma_range=(2.0, 2.0),
                                       brightness=0.0, contrast=0.0)
    torch.testing.assert_close(image_out, torch.full((1, 4, 4), 0.25))  # 0.5 ** 2 = 0.25
    assert torch.equal(mask_out, mask)
    image_out, mask_out = augment_pair(torch.rand(1, 16, 16), mask.repeat(1, 4, 4),
                                       torch.Generator().manual_seed(1), max_rotation_deg=0.0,
                                       flip=False, gamma_range=(0.5, 1.5), brightness=0.5,
                                       contrast=0.5)
    assert torch.equal(mask_out, mask.repeat(1, 4, 4))
    assert image_out.min() >= 0.0 and image_out.max() <= 1.0


def test_batch_samples_get_their_own_transform() -> None:
    image = torch.rand(1, 1, 16, 16).repeat(4, 1, 1, 1)
    mask = (image > 0.5).float()
    image_out, mask_out = augment_pair(image, mask, torch.Generator().manual_seed(0))
    assert image_out.shape == (4, 1, 16, 16) and mask_out.shape == (4, 1, 16, 16)
    assert len({tuple(m.flatten().tolist()) for m in mask_out}) > 1


def test_augment_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same batch size"):
        augment_pair(torch.rand(1, 8, 8), torch.zeros(1, 8, 9), torch.Generator())


# ---------------------------------------------------------------- metrics

# Two 2x2 images.
#   image A: probs [[0.9, 0.6], [0.2, 0.0]], truth [[1, 1], [0, 0]]
#   image B: probs [[0.4, 0.7], [0.1, 0.3]], truth [[1, 0], [0, 0]]
PROBS = np.array([[[0.9, 0.6], [0.2, 0.0]], [[0.4, 0.7], [0.1, 0.3]]])
TRUTH = np.array([[[1, 1], [0, 0]], [[1, 0], [0, 0]]])
# soft:   A: I = 0.9+0.6 = 1.5, |P| = 1.7, |T| = 2, U = 1.7+2-1.5 = 2.2
#         B: I = 0.4,           |P| = 1.5, |T| = 1, U = 1.5+1-0.4 = 2.1
# at 0.5: A: pred [[1,1],[0,0]] -> I = 2, |P| = 2, |T| = 2, U = 2
#         B: pred [[0,1],[0,0]] -> I = 0, |P| = 1, |T| = 1, U = 2


def test_pooled_soft_against_hand_values() -> None:
    # IoU  = (1.5+0.4 + 1) / (2.2+2.1 + 1) = 2.9 / 5.3
    # Dice = (2*1.9 + 1) / (1.7+1.5 + 2+1 + 1) = 4.8 / 7.2 = 2/3
    assert iou_pooled(PROBS, TRUTH, None) == pytest.approx(2.9 / 5.3)
    assert dice_pooled(PROBS, TRUTH, None) == pytest.approx(2.0 / 3.0)


def test_pooled_thresholded_against_hand_values() -> None:
    # IoU  = (2+0 + 1) / (2+2 + 1) = 3/5;  Dice = (2*2 + 1) / (2+1 + 2+1 + 1) = 5/7
    assert iou_pooled(PROBS, TRUTH, 0.5) == pytest.approx(0.6)
    assert dice_pooled(PROBS, TRUTH, 0.5) == pytest.approx(5.0 / 7.0)
    # without smoothing: IoU = 2/4, Dice = 4/6
    assert iou_pooled(PROBS, TRUTH, 0.5, smooth=0.0) == pytest.approx(0.5)
    assert dice_pooled(PROBS, TRUTH, 0.5, smooth=0.0) == pytest.approx(4.0 / 6.0)


def test_per_image_against_hand_values() -> None:
    # soft IoU: 1.5/2.2, 0.4/2.1; soft Dice: 3.0/3.7, 0.8/2.5
    np.testing.assert_allclose(iou_per_image(PROBS, TRUTH, None), [1.5 / 2.2, 0.4 / 2.1])
    np.testing.assert_allclose(dice_per_image(PROBS, TRUTH, None), [3.0 / 3.7, 0.32])
    # at 0.5: A is perfect (2/2, 4/4), B misses entirely (0/2, 0/2)
    np.testing.assert_allclose(iou_per_image(PROBS, TRUTH, 0.5), [1.0, 0.0])
    np.testing.assert_allclose(dice_per_image(PROBS, TRUTH, 0.5), [1.0, 0.0])


def test_empty_cases() -> None:
    empty = np.zeros((3, 2, 2), dtype=int)
    probs = np.array([
        [[0.1, 0.2], [0.3, 0.4]],  # below 0.5: empty prediction on empty truth -> 1.0
        [[0.9, 0.0], [0.0, 0.0]],  # one false positive: I = 0, U = 1 -> 0.0
        [[0.0, 0.0], [0.0, 0.0]],  # soft and hard both empty -> 1.0
    ])
    np.testing.assert_allclose(iou_per_image(probs, empty, 0.5), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(dice_per_image(probs, empty, 0.5), [1.0, 0.0, 1.0])
    # soft: image 1 has |P| = 1.0 > 0 with I = 0 -> 0.0, likewise image 2 (|P| = 0.9)
    np.testing.assert_allclose(iou_per_image(probs, empty, None), [0.0, 0.0, 1.0])
    # pooled on an all-empty set: (0 + 1) / (0 + 1) = 1, never SCSS-Net dice_np's 2*(0+1)/(0+1) = 2
    assert dice_pooled(np.zeros((2, 2, 2)), empty[:2], 0.5) == 1.0
    assert iou_pooled(np.zeros((2, 2, 2)), empty[:2], None) == 1.0


@pytest.mark.parametrize(("probs", "truth", "message"), [
    (PROBS, TRUTH * 0.5, "binary"),
    (PROBS * 2.0, TRUTH, r"\[0, 1\]"),
    (PROBS, TRUTH[:1], "same shape"),
])
def test_metric_inputs_are_validated(probs: np.ndarray, truth: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iou_pooled(probs, truth, 0.5)


def test_bootstrap_ci_hand_cases() -> None:
    # constant values: every resampled mean is 0.7
    assert bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    # values [1, 0]: resampled means are 1 (p = 1/4), 0.5 (1/2), 0 (1/4); the 2.5 % and 97.5 %
    # percentiles of 1000 draws are 0 and 1
    assert bootstrap_ci([1.0, 0.0]) == (0.0, 1.0)
    # pooled, images A and B at 0.5 (I = 2, 0; U = 2, 2): resamples AA -> (4+1)/(4+1) = 1,
    # AB -> 3/5, BB -> (0+1)/(4+1) = 0.2
    assert bootstrap_ci_pooled([2.0, 0.0], [2.0, 2.0]) == pytest.approx((0.2, 1.0))
    # without smoothing a constant ratio I/U = 1/2 stays 1/2 in every resample
    assert bootstrap_ci_pooled([1, 2, 3], [2, 4, 6], smooth=0.0) == pytest.approx((0.5, 0.5))


def test_bootstrap_ci_contains_estimate_and_is_seeded() -> None:
    values = np.random.default_rng(1).uniform(size=200)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high
    assert bootstrap_ci(values, seed=3) == (low, high)
    assert bootstrap_ci(values, seed=4) != (low, high)
    inter, union = values, values + 1.0
    low, high = bootstrap_ci_pooled(inter, union, seed=3)
    assert low < (inter.sum() + 1.0) / (union.sum() + 1.0) < high


def test_bootstrap_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(2).uniform(size=50)
    whole = bootstrap_ci(values, n_boot=101)
    monkeypatch.setattr(metrics, "_BOOTSTRAP_CHUNK_ELEMENTS", 7 * 50)  # 7 resamples per chunk
    assert bootstrap_ci(values, n_boot=101) == whole


def test_report_keys_and_hand_values() -> None:
    report = segmentation_report(PROBS, TRUTH)
    thresholded = ["iou_pooled_05", "dice_pooled_05", "iou_image_mean_05", "dice_image_mean_05"]
    assert set(report) == {
        "n_images", "iou_pooled_soft", "dice_pooled_soft", "iou_image_mean_soft",
        "dice_image_mean_soft", *thresholded,
        *(f"{key}_ci_{bound}" for key in thresholded for bound in ("low", "high")),
    }
    assert report["n_images"] == 2.0
    assert report["iou_pooled_soft"] == pytest.approx(2.9 / 5.3)
    assert report["dice_pooled_05"] == pytest.approx(5.0 / 7.0)
    # soft per-image means: (1.5/2.2 + 0.4/2.1) / 2 and (3.0/3.7 + 0.32) / 2
    assert report["iou_image_mean_soft"] == pytest.approx((1.5 / 2.2 + 0.4 / 2.1) / 2)
    assert report["dice_image_mean_soft"] == pytest.approx((3.0 / 3.7 + 0.32) / 2)
    assert report["iou_image_mean_05"] == 0.5
    assert (report["iou_pooled_05_ci_low"], report["iou_pooled_05_ci_high"]) == \
        pytest.approx((0.2, 1.0))


def test_accumulator_equals_one_shot_report() -> None:
    rng = np.random.default_rng(5)
    probs = rng.uniform(size=(10, 1, 8, 8))
    truth = (rng.uniform(size=(10, 1, 8, 8)) > 0.6).astype(np.uint8)
    accumulator = SegmentationAccumulator()
    for start, stop in ((0, 3), (3, 5), (5, 10)):
        accumulator.update(probs[start:stop], truth[start:stop])
    assert accumulator.compute() == pytest.approx(segmentation_report(probs, truth))
    assert segmentation_report(probs, truth)["iou_pooled_05"] == \
        pytest.approx(iou_pooled(probs, truth, 0.5))
    with pytest.raises(ValueError, match="before any update"):
        SegmentationAccumulator().compute()


def test_accumulator_without_bootstrap_gives_point_estimates_only():
    probs = np.array([[[0.9, 0.2], [0.6, 0.1]]])
    truth = np.array([[[1, 0], [1, 0]]])
    acc = SegmentationAccumulator(n_boot=0)
    acc.update(probs, truth)
    report = acc.compute()
    assert not [k for k in report if k.endswith(("_ci_low", "_ci_high"))]
    # thresholded at 0.5: prediction {0.9, 0.6} equals the truth, IoU 1 = (2 + 1) / (2 + 1)
    assert report["iou_pooled_05"] == 1.0

"""Detection task parts: DetectNet targets, model, clustering, metrics, GoogLeNet, class maps."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from heliobench.errors import ConfigError
from heliobench.tasks.detection.classes import MT_WILSON_CLASSES, class_map, class_names, encode, label_lookup
from heliobench.tasks.detection.classifier import INCEPTION_SPECS, GoogLeNet, Inception, classification_loss
from heliobench.tasks.detection.figures import draw_detections
from heliobench.tasks.detection.metrics import (
    classification_report,
    confusion_matrix,
    detection_report,
    iou,
    iou_matrix,
    voc_ap,
    voc_ap_11point,
)
from heliobench.tasks.detection.model import DetectNet, cell_size, decode_boxes, detectnet_losses, group_rectangles
from heliobench.tasks.detection.targets import (
    cutout,
    detectnet_targets,
    heliographic_box,
    hek_box,
    large_enough,
)

# ---------------------------------------------------------------- IoU and detection metrics


def test_iou_by_hand() -> None:
    # (0,0,4,4) vs (2,2,6,6): intersection 2*2 = 4, union 16 + 16 - 4 = 28
    assert iou([0, 0, 4, 4], [2, 2, 6, 6]) == pytest.approx(4 / 28)
    # nested (1,1,3,3) in (0,0,4,4): 4 / 16; disjoint boxes: 0
    np.testing.assert_allclose(iou_matrix([[0, 0, 4, 4]], [[1, 1, 3, 3], [5, 5, 6, 6]]), [[0.25, 0.0]])


def _ranked_example() -> tuple[list, list, list]:
    """Two images, three truths; five detections given out of rank order.

    By confidence: 0.9 hits T1 (TP); 0.8 hits T1 again (FP, a truth matches once);
    0.7 hits T3 (TP); 0.6 overlaps nothing (FP); 0.5 overlaps T3 with IoU 40/100 (FP).
    """
    truths = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 10, 10]])]
    boxes = [np.array([[50, 50, 60, 60], [0, 0, 10, 10], [0, 0, 10, 10]]),
             np.array([[0, 0, 10, 4], [0, 0, 10, 10]])]
    scores = [np.array([0.6, 0.8, 0.9]), np.array([0.5, 0.7])]
    return boxes, scores, truths


def test_voc_ap_on_a_ranked_list_by_hand() -> None:
    # ranked TP FP TP FP FP, 3 truths:
    #   precision 1/1, 1/2, 2/3, 2/4, 2/5; recall 1/3, 1/3, 2/3, 2/3, 2/3
    # envelope (max to the right, 0 appended at recall 1): 1, 2/3, 2/3, 1/2, 2/5, 0
    # recall steps 0 -> 1/3 (p 1), 1/3 -> 2/3 (p 2/3), 2/3 -> 1 (p 0):
    #   AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 = 5/9
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t >= .7 -> 0: (4 + 2) / 11 = 6/11
    report = detection_report(*_ranked_example())
    assert report["ap_voc"] == pytest.approx(5 / 9)
    assert report["ap_voc11"] == pytest.approx(6 / 11)
    recall, precision = [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3], [1, 1 / 2, 2 / 3, 2 / 4, 2 / 5]
    assert voc_ap(recall, precision) == pytest.approx(5 / 9)
    assert voc_ap_11point(recall, precision) == pytest.approx(6 / 11)


def test_precision_recall_f1_and_digits_map_by_hand() -> None:
    report = detection_report(*_ranked_example())
    # TP 2, FP 3, FN 1: precision 2/5, recall 2/3, F1 = 2*(2/5)(2/3) / (2/5 + 2/3) = (8/15)/(16/15)
    assert (report["tp"], report["fp"], report["fn"]) == (2, 3, 1)
    assert report["precision"] == pytest.approx(0.4)
    assert report["recall"] == pytest.approx(2 / 3)
    assert report["f1"] == pytest.approx(0.5)
    assert report["map_digits"] == pytest.approx(0.4 * 2 / 3)  # DIGITS: precision x recall


def test_matching_takes_the_best_truth_without_falling_back() -> None:
    # A = (0,0,10,10), B = (5,0,15,10). Detection 0.9 = A: TP. Detection 0.8 = (2,0,12,10):
    # IoU with A 80/120 = 0.67, with B 70/130 = 0.54; its best truth A is taken, so it is a
    # false positive although B is free (VOCevaldet). Ranked TP FP, 2 truths:
    # AP = 1/2 * 1 + 1/2 * 0 = 0.5
    report = detection_report([[[0, 0, 10, 10], [2, 0, 12, 10]]], [[0.9, 0.8]], [[[0, 0, 10, 10], [5, 0, 15, 10]]])
    assert (report["tp"], report["fp"], report["fn"]) == (1, 1, 1)
    assert report["ap_voc"] == pytest.approx(0.5)


def test_iou_exactly_at_threshold_is_a_match() -> None:
    # (0,0,10,5) vs (0,0,10,10): IoU 50/100 = 0.5 >= 0.5
    assert detection_report([[[0, 0, 10, 5]]], [[1.0]], [[[0, 0, 10, 10]]])["tp"] == 1
    assert detection_report([[[0, 0, 10, 5]]], [[1.0]], [[[0, 0, 10, 10]]], iou_threshold=0.7)["tp"] == 0


def test_undefined_detection_ratios_are_nan() -> None:
    no_truth = detection_report([[[0, 0, 4, 4]]], [[1.0]], [np.zeros((0, 4))])
    assert math.isnan(no_truth["recall"]) and math.isnan(no_truth["ap_voc"]) and no_truth["precision"] == 0
    no_detection = detection_report([np.zeros((0, 4))], [[]], [[[0, 0, 4, 4]]])
    assert math.isnan(no_detection["precision"]) and no_detection["recall"] == 0 and no_detection["ap_voc"] == 0
    with pytest.raises(ValueError, match="image 0: 1 detections but 2 confidences"):
        detection_report([[[0, 0, 4, 4]]], [[1.0, 0.5]], [[[0, 0, 4, 4]]])


# ---------------------------------------------------------------- classification metrics


def test_confusion_matrix_and_classification_report_by_hand() -> None:
    y_true, y_pred = [0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2]
    cm = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 2, 0], [0, 0, 1]])  # rows true, columns predicted
    report = classification_report(y_true, y_pred, ["Alpha", "Beta", "Beta-Gamma"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["precision_alpha"] == pytest.approx(1 / 2)  # column 0: 1 of 2
    assert report["recall_alpha"] == pytest.approx(1 / 2)  # row 0: 1 of 2
    assert report["precision_beta"] == pytest.approx(2 / 3)
    assert report["recall_beta"] == pytest.approx(2 / 3)
    assert report["precision_beta_gamma"] == report["recall_beta_gamma"] == 1.0
    with pytest.raises(ValueError, match=r"class labels \[3\] are outside 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)


# ---------------------------------------------------------------- class maps


def test_paper4_is_the_papers_four_helioviewer_classes_with_every_srs_class_mapped() -> None:
    assert class_names("paper4") == ("Alpha", "Alpha-Gamma", "Beta", "Beta-Gamma")  # the paper's A, AG, B, BG
    assert class_map("paper4") == {"Alpha": 0, "Gamma": 1, "Gamma-Delta": 1, "Beta": 2, "Beta-Delta": 2,
                                   "Beta-Gamma": 3, "Beta-Gamma-Delta": 3}
    assert class_map("full") == {name: i for i, name in enumerate(MT_WILSON_CLASSES)}
    # MT_WILSON_CLASSES order: Alpha Beta Gamma Beta-Gamma Delta Beta-Delta Beta-Gamma-Delta Gamma-Delta
    np.testing.assert_array_equal(label_lookup("paper4"), [0, 2, 1, 3, -1, 2, 3, 1])
    np.testing.assert_array_equal(encode(["Beta-Gamma-Delta", "bg", "ALPHA", "Beta-Delta", "Delta", "gd"], "paper4"),
                                  [3, 3, 0, 2, -1, 1])
    np.testing.assert_array_equal(encode(["gd", "Gamma"], "full"), [7, 2])


def test_unknown_classes_and_maps_are_named() -> None:
    with pytest.raises(ValueError, match=r"\['Betta', 'Zeta'\]"):
        encode(["Betta", "Alpha", "Zeta"], "paper4")
    with pytest.raises(ConfigError, match="unknown class map 'paper5'.*full, paper4"):
        class_map("paper5")


# ---------------------------------------------------------------- targets


def test_detectnet_targets_by_hand() -> None:
    t = detectnet_targets([[20, 30, 70, 60], [40, 120, 50, 130]], (256, 256))
    # Box 1 is 50x30: 0.4 x size = 20x12, at least 20 -> 20x20 coverage region centred on
    # (45, 45): [35, 55]^2 covers cells 2..3 in x and y. obj_norm = 16^2 / 400 = 0.64.
    # Box 2 is 10x10, below min_cvg_len: its region is the box itself, [40, 50] x [120, 130]:
    # cells x 2..3, y 7..8; obj_norm = 256 / 100 = 2.56.
    expected = np.zeros((16, 16))
    expected[2:4, 2:4] = expected[7:9, 2:4] = 1
    np.testing.assert_array_equal(t.coverage[0], expected)
    # cell (gx=2, gy=2) has top-left corner (32, 32): (20-32, 30-32, 70-32, 60-32)
    np.testing.assert_array_equal(t.bbox[:, 2, 2], [-12, -2, 38, 28])
    np.testing.assert_array_equal(t.bbox[:, 3, 3], [-28, -18, 22, 12])
    assert t.obj_norm[0, 2, 2] == pytest.approx(0.64) and t.obj_norm[0, 8, 3] == pytest.approx(2.56)
    assert t.obj_norm[0, 0, 0] == 0 and not t.bbox[:, 0, 0].any()
    with pytest.raises(ValueError, match="not a multiple of the stride 16"):
        detectnet_targets([[0, 0, 4, 4]], (250, 256))


def test_encoded_boxes_decode_to_the_same_boxes() -> None:
    boxes = np.array([[20.0, 30, 70, 60], [150, 100, 230, 200]])
    t = detectnet_targets(boxes, (256, 256))
    found = decode_boxes(t.coverage, t.bbox, threshold=0.5)
    np.testing.assert_allclose(found.boxes, boxes)
    # 4 and 9 cells merged (box 2: region 32x40 at (190, 150) covers cells x 10..12, y 8..10)
    np.testing.assert_allclose(found.confidence, [math.log(4), math.log(9)])
    tall = decode_boxes(t.coverage, t.bbox, threshold=0.5, min_height=40)  # box 1 is 30 high
    np.testing.assert_allclose(tall.boxes, boxes[1:])


def test_small_boxes_are_filtered_as_the_paper() -> None:
    # areas 36 (not above 36), 42, 0
    np.testing.assert_array_equal(large_enough([[0, 0, 6, 6], [0, 0, 6, 7], [0, 0, 0, 10]]), [False, True, False])


def test_cutout_pads_outside_the_image_and_resamples() -> None:
    ones = np.ones((10, 10))
    # box (8,8,12,12): 4x4 window at rows/cols 8..11, half outside the image, kept at size 4
    expected = np.zeros((4, 4))
    expected[:2, :2] = 1
    np.testing.assert_array_equal(cutout(ones, [8, 8, 12, 12], 4), expected)
    # a 6x6 window wholly inside a constant image resamples to the constant
    np.testing.assert_allclose(cutout(5 * ones, [2, 2, 8, 8], 3), np.full((3, 3), 5.0), rtol=1e-6)


# ---------------------------------------------------------------- clustering


def test_group_rectangles_merges_similar_rectangles_by_hand() -> None:
    # eps 0.2 on 20x20 rectangles: edges may differ by 0.2 * (20 + 20) / 2 = 4
    rects = [[10, 10, 20, 20], [11, 10, 20, 20], [12, 11, 20, 20], [100, 100, 20, 20]]
    merged, weights = group_rectangles(rects, group_threshold=1, eps=0.2)
    # first three merge (mean y = 31/3); the lone one (1 <= threshold) is dropped
    np.testing.assert_allclose(merged, [[11, 31 / 3, 20, 20]])
    np.testing.assert_array_equal(weights, [3])
    # similarity is transitive: x = 0 ~ 4 ~ 8 though 0 and 8 differ by more than 4
    chain, weights = group_rectangles([[0, 0, 20, 20], [4, 0, 20, 20], [8, 0, 20, 20]], 1, 0.2)
    np.testing.assert_allclose(chain, [[4, 0, 20, 20]])
    # group_threshold 0 returns the input, weights 1 (OpenCV)
    same, weights = group_rectangles(rects, 0, 0.2)
    np.testing.assert_array_equal(same, rects)
    np.testing.assert_array_equal(weights, [1, 1, 1, 1])


def test_group_rectangles_drops_small_groups_inside_big_ones() -> None:
    big, small = [0, 0, 100, 100], [10, 10, 20, 20]
    # 5 big vs 2 small: the small group (< 3 members) inside the big one goes
    merged, weights = group_rectangles([big] * 5 + [small] * 2, 1, 0.2)
    np.testing.assert_array_equal(weights, [5])
    # 3 big vs 3 small: 3 > max(3, 3) fails and the small group has 3 members: both stay
    merged, weights = group_rectangles([big] * 3 + [small] * 3, 1, 0.2)
    np.testing.assert_allclose(merged, [big, small])


def test_digits_corner_quirk_reproduces_digits_clustering() -> None:
    # Two cells propose (300,300,340,340) and (303,300,343,340) on a 512-pixel image.
    coverage, bbox = np.zeros((32, 32)), np.zeros((4, 32, 32))
    coverage[18, 18] = coverage[18, 19] = 1.0
    bbox[:, 18, 18] = [12, 12, 52, 52]  # cell corner (288, 288)
    bbox[:, 18, 19] = [-1, 12, 39, 52]  # cell corner (304, 288)
    # as (x, y, w, h): delta = 0.02 * (40 + 40) / 2 = 0.8 < 3: no group of 2, nothing kept
    assert len(decode_boxes(coverage, bbox, 0.6, eps=0.02).boxes) == 0
    # DIGITS reads the corners as (x, y, w, h): delta = 0.02 * (340 + 340) / 2 = 6.8 and the
    # "right edges" x0 + x1 differ by 643 + 303 - 640 - 300 = 6: one box, their mean
    digits = decode_boxes(coverage, bbox, 0.6, eps=0.02, digits_corner_quirk=True)
    np.testing.assert_allclose(digits.boxes, [[301.5, 300, 341.5, 340]])
    np.testing.assert_allclose(digits.confidence, [math.log(2)])


# ---------------------------------------------------------------- DetectNet


def test_detectnet_output_shapes_at_256() -> None:
    torch.manual_seed(0)
    model = DetectNet(width=1 / 16).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 256, 256))
    assert out.coverage.shape == (2, 1, 16, 16) and out.bbox.shape == (2, 4, 16, 16)
    assert 0 <= out.coverage.min() and out.coverage.max() <= 1
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.zeros(1, 1, 250, 256))


def test_the_papers_detectnet_has_a_grid_cell_of_4_pixels_at_256() -> None:
    """de Oliveira & Gradvohl: input resized to 512 px, pool1 kernel and stride 1 (stride 8)."""
    torch.manual_seed(0)
    model = DetectNet(width=1 / 16, stride=8, upsample=2).eval()
    pools = [sum(isinstance(m, torch.nn.MaxPool2d) for m in net.trunk[0]) for net in (model, DetectNet(width=1 / 16))]
    assert model.cell == 4 and pools == [1, 2]  # the stem keeps pool2 only
    with torch.no_grad():
        out = model(torch.randn(2, 1, 256, 256))
        assert out.coverage.shape == (2, 1, 64, 64) and out.bbox.shape == (2, 4, 64, 64)
        assert model(torch.randn(1, 1, 132, 100)).coverage.shape == (1, 1, 33, 25)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.zeros(1, 1, 130, 128))
    assert cell_size(8, 1) == 8 and cell_size(16, 4) == 4
    for stride, upsample in ((4, 1), (8, 3), (16, 0)):
        with pytest.raises(ValueError, match=f"got stride {stride}, upsample {upsample}"):
            cell_size(stride, upsample)


def test_detectnet_losses_by_hand() -> None:
    # 2 images, a 1x2 grid; only cell 0 of image 0 is foreground. Coverage logits: 0 is 0.5,
    # ln(1/3) is 0.25.
    third = float(np.log(1 / 3))
    logit = torch.tensor([[[[0.0, third]]], [[[third, third]]]])
    tgt_cov = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 0.0]]]])
    tgt_bbox, pred_bbox = torch.zeros(2, 4, 1, 2), torch.zeros(2, 4, 1, 2)
    tgt_bbox[0, :, 0, 0] = torch.tensor([-2.0, -4, 8, 16])  # a 10 x 20 box
    pred_bbox[0, :, 0, 0] = torch.tensor([-1.0, -2, 8, 20])  # off by (1, 2, 0, 4)
    pred_bbox[0, :, 0, 1] = 5.0  # background cell: masked out
    obj_norm = torch.zeros(2, 1, 1, 2)
    obj_norm[0, 0, 0, 0] = 0.5
    loss = detectnet_losses(logit, pred_bbox, tgt_cov, tgt_bbox, obj_norm)
    # coverage: (-ln 0.5 - 3 ln 0.75) / (2 * 2 images)
    coverage = (np.log(2) + 3 * np.log(4 / 3)) / 4
    # bbox: |(1/10, 2/20, 0/10, 4/20)| = 0.1 + 0.1 + 0 + 0.2 = 0.4, x obj_norm 0.5 = 0.2, / 2 images = 0.1
    assert loss.coverage.item() == pytest.approx(coverage)
    assert loss.bbox.item() == pytest.approx(0.1)
    assert loss.total.item() == pytest.approx(coverage + 2 * 0.1)
    assert detectnet_losses(logit, pred_bbox, tgt_cov, tgt_bbox).bbox.item() == pytest.approx(0.2)


def _train_on_blobs(size: int, centres: tuple[float, float], steps: int):
    """A 1/16-width DetectNet trained ``steps`` Adam steps (lr 1e-2) on four ``size``² images of
    one Gaussian blob each (centre uniform in ``centres``, a 20-pixel box); the model, the
    images, their coverage targets and the loss of every step."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images, targets = [], []
    for _ in range(4):
        cx, cy = rng.uniform(*centres, 2)
        images.append(np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 5.0**2)))
        targets.append(detectnet_targets([[cx - 10, cy - 10, cx + 10, cy + 10]], (size, size)))
    x = torch.tensor(np.stack(images)[:, None], dtype=torch.float32)
    cov, bbox, norm = (torch.tensor(np.stack(parts)) for parts in zip(*targets))
    model = DetectNet(width=1 / 16, dropout=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        out = model(x)
        loss = detectnet_losses(out.coverage_logit, out.bbox, cov, bbox, norm).total
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return model, x, cov, losses


def test_a_few_detectnet_steps_on_synthetic_blobs_reduce_the_loss() -> None:
    losses = _train_on_blobs(64, (16, 48), 20)[-1]
    assert losses[-1] < 0.7 * losses[0]


def test_the_coverage_of_rare_objects_learned_from_scratch_does_not_collapse() -> None:
    """One blob per 128² image covers 4 of 64 cells. DIGITS' Euclidean loss on the sigmoid
    sends every cell's coverage to 0 here (0.000 on both kinds of cell after these 60 steps):
    the cross-entropy on the logits learns the blobs."""
    model, x, cov, _ = _train_on_blobs(128, (24, 104), 60)
    with torch.no_grad():
        found = model.eval()(x).coverage
    assert found[cov > 0].mean() > 0.5 and found[cov == 0].mean() < 0.2


# ---------------------------------------------------------------- GoogLeNet


def test_inception_widths_are_googlenets() -> None:
    # 3a: 64 + 128 + 32 + 32 = 256; 4e: 256 + 320 + 128 + 128 = 832; 5b: 384 + 384 + 128 + 128
    assert Inception(192, INCEPTION_SPECS["3a"], 1.0).out_channels == 256
    assert Inception(528, INCEPTION_SPECS["4e"], 1.0).out_channels == 832
    assert Inception(832, INCEPTION_SPECS["5b"], 1.0).out_channels == 1024


def test_googlenet_shapes_and_auxiliary_heads() -> None:
    model = GoogLeNet(4, width=1 / 16).train()
    logits, aux = model.forward_with_aux(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 4) and [a.shape for a in aux] == [(2, 4), (2, 4)]
    assert model.eval().forward_with_aux(torch.randn(2, 1, 64, 64))[1] == []
    no_aux = GoogLeNet(4, width=1 / 16, aux_classifiers=False).train()
    assert no_aux.forward_with_aux(torch.randn(1, 1, 32, 32))[1] == []
    with pytest.raises(ValueError, match="n_classes >= 2"):
        GoogLeNet(1)


def test_classification_loss_adds_0_3_of_each_auxiliary_loss() -> None:
    logits, aux, y = torch.zeros(2, 4), [torch.zeros(2, 4), torch.zeros(2, 4)], torch.tensor([0, 1])
    # uniform logits: each cross-entropy is ln 4; total ln 4 * (1 + 0.3 + 0.3)
    assert classification_loss(logits, aux, y).item() == pytest.approx(1.6 * math.log(4))


def test_a_few_googlenet_steps_learn_where_the_bright_quadrant_is() -> None:
    torch.manual_seed(0)
    y = torch.arange(8) % 4
    x = 0.1 * torch.randn(8, 1, 32, 32)
    for i, quadrant in enumerate(y.tolist()):
        r, c = 16 * (quadrant // 2), 16 * (quadrant % 2)
        x[i, 0, r:r + 16, c:c + 16] += 1.0
    model = GoogLeNet(4, width=1 / 8)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        before = F.cross_entropy(model.eval()(x), y).item()
    model.train()
    for _ in range(15):
        optimiser.zero_grad()
        logits, aux = model.forward_with_aux(x)
        classification_loss(logits, aux, y).backward()
        optimiser.step()
    with torch.no_grad():
        after = F.cross_entropy(model.eval()(x), y).item()
    assert after < 0.7 * before


# ---------------------------------------------------------------- figure


def test_draw_detections_writes_a_png(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(0, 300, (64, 64))
    path = draw_detections(image, [[5, 5, 20, 25], [30, 30, 60, 50]], ["Beta", "Beta-Gamma"], [0.93, 0.71],
                           tmp_path / "fig" / "detections.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="2 boxes, 1 labels"):
        draw_detections(image, [[5, 5, 20, 25], [30, 30, 60, 50]], ["Beta"], [0.9, 0.8], tmp_path / "x.png")


# ---------------------------------------------------------------- real data

HMI_JP2 = "jp2/2022_08_02__10_47_53_000__SDO_HMI_HMI_magnetogram.jp2"


@pytest.fixture(scope="module")
def hmi_map(realdata: Path):
    """The real HMI magnetogram of 2022-08-02 10:47 (Helioviewer JP2, 4096^2, 0.6"/px, 8-bit)."""
    import sunpy.map

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sunpy.map.Map(realdata / HMI_JP2)


@pytest.mark.realdata
def test_srs_location_lands_where_hand_geometry_puts_it_on_the_real_map(realdata: Path, hmi_map) -> None:
    # No real SRS report shares a date with a real magnetogram here, so the SRS location is
    # placed on the real map's geometry: observer B0 = 5.8599 deg, L0 = 0.0102 deg,
    # D = 1.5184889e11 m, R = 6.96e8 m (R/D = 0.0045835), 0.6"/px, disk centre at pixel edge 2048.
    # A surface point at (lat, lon) in units of R: x = cos(lat) sin(lon - L0),
    # y = sin(lat) cos(B0) - cos(lat) cos(lon - L0) sin(B0), z = sin(lat) sin(B0) + cos(lat) cos(lon - L0) cos(B0);
    # Tx = atan(x R/D / (1 - z R/D)), Ty = atan(y R/D / hypot(x R/D, 1 - z R/D)).
    from heliobench.archive.readers.srs import read_srs

    srs_file = realdata / "srs" / "20100621SRS.txt"
    regions = read_srs(srs_file.read_bytes(), str(srs_file))
    region = regions.filter(regions["noaa_number"] == 11082).row(0, named=True)  # "1082 N27W05"
    assert (region["latitude_deg"], region["longitude_deg"]) == (27, 5)
    # (27, 5): x = 0.077499, y = 0.360994, z = 0.929342 -> Tx = 73.582", Ty = 342.749"
    #   -> pixel edges 2048 + 73.582/0.6 = 2170.64, 2048 + 342.749/0.6 = 2619.25
    box = heliographic_box(region["latitude_deg"], region["longitude_deg"], 0.0, hmi_map)
    np.testing.assert_allclose(box, [2170.64, 2619.25, 2170.64, 2619.25], atol=0.05)
    # (0, 30): x = 0.499846, y = -0.088427, z = 0.861588 -> Tx = 474.435", Ty = -83.932"
    #   -> 2048 + 790.73 = 2838.73, 2048 - 139.89 = 1908.11
    np.testing.assert_allclose(heliographic_box(0, 30, 0.0, hmi_map)[:2], [2838.73, 1908.11], atol=0.05)
    with pytest.raises(ValueError, match="behind the limb"):
        heliographic_box(0, 120, 4.0, hmi_map)


@pytest.mark.realdata
def test_box_from_a_whole_degree_location_lands_on_strong_field(hmi_map) -> None:
    import astropy.units as u
    from sunpy.coordinates import HeliographicStonyhurst

    strength = np.abs(hmi_map.data.astype(float) - 128)  # 8-bit scaled |B_los|, 128 = 0 G
    blocks = strength.reshape(128, 32, 128, 32).mean(axis=(1, 3))
    centre_px = np.indices((128, 128)) * 32 + 16
    radius_px = hmi_map.rsun_obs.to_value(u.arcsec) / 0.6
    blocks[np.hypot(centre_px[0] - 2048, centre_px[1] - 2048) > 0.9 * radius_px] = 0
    by, bx = np.unravel_index(np.argmax(blocks), blocks.shape)
    peak = hmi_map.pixel_to_world((bx * 32 + 15.5) * u.pix, (by * 32 + 15.5) * u.pix)
    peak = peak.transform_to(HeliographicStonyhurst(obstime=hmi_map.reference_date))
    # an SRS-style location: whole degrees, as "S15W08"
    box = heliographic_box(round(peak.lat.deg), round(peak.lon.deg), 6.0, hmi_map)
    assert box[0] < bx * 32 + 16 < box[2] and box[1] < by * 32 + 16 < box[3]
    x0, y0, x1, y1 = np.round(box).astype(int)
    yy, xx = np.mgrid[0:4096:16, 0:4096:16]
    disk_median = np.median(strength[::16, ::16][np.hypot(xx + 0.5 - 2048, yy + 0.5 - 2048) < 0.9 * radius_px])
    assert strength[y0:y1, x0:x1].mean() > 5 * disk_median


@pytest.mark.realdata
def test_real_hek_box_converts_through_the_map_wcs(realdata: Path, hmi_map) -> None:
    from heliobench.archive.readers.hek import read_hek

    hek_file = next((realdata / "hek").glob("*.json"))
    events = read_hek(hek_file.read_bytes(), str(hek_file))
    polygon = events.filter(events["event_type"] == "AR")["hpc_bbox"][0].to_list()  # NOAA 12675, 2017-09-01
    # The map's WCS: reference pixel edge 2048 at (0", 0"), 0.6"/px, no rotation, so
    # edge = 2048 + arcsec / 0.6: x 362.327484" -> 2651.88, 407.753214" -> 2727.59;
    # y -226.56543" -> 1670.39, -220.685706" -> 1680.19
    box = hek_box(polygon, hmi_map)
    np.testing.assert_allclose(box, [2651.88, 1670.39, 2727.59, 1680.19], atol=0.01)
    assert large_enough([box])[0]  # 75.7 x 9.8 = 742 pixels > 36


@pytest.mark.realdata
def test_every_real_srs_class_is_a_mount_wilson_class(realdata: Path) -> None:
    from heliobench.archive.readers.srs import read_srs

    mag_types = [t for f in sorted((realdata / "srs").glob("*SRS.txt"))
                 for t in read_srs(f.read_bytes(), str(f))["mag_type"].drop_nulls().to_list()]
    # 1996-2015 reports: 43 typed regions, Alpha 8, Beta 29, Beta-Gamma 5, Beta-Gamma-Delta 1
    assert {t: mag_types.count(t) for t in set(mag_types)} == {"Alpha": 8, "Beta": 29, "Beta-Gamma": 5, "Beta-Gamma-Delta": 1}
    full, paper4 = encode(mag_types, "full"), encode(mag_types, "paper4")
    assert sorted(set(full.tolist())) == [0, 1, 3, 6] and sorted(set(paper4.tolist())) == [0, 2, 3]  # no γ region

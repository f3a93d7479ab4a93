"""Quality task parts: Jarolim et al. (2020) GAN shapes, quantiser, losses, metrics, figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from heliobench.tasks.quality.figures import quality_figure
from heliobench.tasks.quality.losses import (
    LossWeights,
    content_distance,
    critic_step_losses,
    generator_step_losses,
    lsgan_loss,
)
from heliobench.tasks.quality.metrics import (
    Calibration,
    Confusion,
    QualityAccumulator,
    accuracy,
    assess,
    bootstrap_intervals,
    classify,
    confusion,
    false_positive_rate,
    fit_calibration,
    fit_threshold,
    quality_report,
    quality_scale,
    true_positive_rate,
    true_skill_statistic,
)
from heliobench.tasks.quality.model import InstanceNorm, QualityGAN, QualityModelConfig, Quantizer

TINY = QualityModelConfig(base_filters=4, res_blocks=1, critic_filters=4, critic_depth=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_published_model_shapes_at_128():
    torch.manual_seed(0)
    model = QualityGAN()
    x = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        code = model.generator.encode(x)
        y = model.generator(x)
        outputs = model.discriminator(x)
    assert code.shape == (1, 8, 16, 16)
    assert set(code.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert y.shape == x.shape and y.abs().max() <= 1
    assert len(model.generator.decoder) == 1 + 9 + 3 + 3  # reshape, residual, up, pad/conv/tanh
    for scale, (features, patch) in enumerate(outputs):
        side = 128 // 2**scale
        assert [f.shape for f in features] == [
            (1, 64, side // 2, side // 2),
            (1, 128, side // 4, side // 4),
            (1, 256, side // 8, side // 8),
            (1, 512, side // 16, side // 16),
        ]
        assert patch.shape == (1, 1, side // 16, side // 16)
    assert model.classifier is not None and model.content_critic is model.classifier


def test_quantizer_forward_snaps_to_centres():
    # x * (5 - 1) = [0, 0.4, 1.2, 2.4, 3.6, 4.0] -> nearest centres [0, 0, 1, 2, 4, 4]
    x = torch.tensor([0.0, 0.1, 0.3, 0.6, 0.9, 1.0])
    assert Quantizer(5)(x).tolist() == [0.0, 0.0, 1.0, 2.0, 4.0, 4.0]


def test_quantizer_backward_is_soft_assignment_gradient():
    # x = 0.5 -> z = 4x = 2, forward = centre 2.
    # soft = sum_k c_k p_k, p_k = exp(-|z - c_k|) / Z; weights e^-2, e^-1, 1, e^-1, e^-2,
    # Z = 1 + 2(0.3678794) + 2(0.1353353) = 2.0064295.
    # d soft/dz = sum_k c_k p_k (s_k - sum_j p_j s_j), s_k = -sign(z - c_k) = (-1, -1, 0, 1, 1),
    # sum_j p_j s_j = 0 by symmetry -> (-1 e^-1 + 3 e^-1 + 4 e^-2) / Z
    # = (0.7357589 + 0.5413411) / 2.0064295 = 0.6365037; d/dx = 4 * 0.6365037 = 2.5460148.
    x = torch.tensor([0.5], requires_grad=True)
    y = Quantizer(5)(x)
    y.sum().backward()
    assert y.item() == 2.0
    assert x.grad.item() == pytest.approx(2.5460148, abs=1e-5)


def test_instance_norm_pools_channels_like_the_original():
    # one sample, channels [1, 3] at a single pixel: mean 2, population std 1,
    # (x - 2) / (1 + 0.001) = [-0.999001, 0.999001]  (per-channel instance norm would give 0)
    x = torch.tensor([1.0, 3.0]).reshape(1, 2, 1, 1)
    assert InstanceNorm()(x).flatten().tolist() == pytest.approx([-0.999001, 0.999001], abs=1e-6)


def test_lsgan_loss_by_hand():
    p = torch.tensor([[0.5, 1.0], [0.0, 2.0]])
    # target 1: (0.25 + 0 + 1 + 1) / 4 = 0.5625; target 0: (0.25 + 1 + 0 + 4) / 4 = 1.3125
    assert lsgan_loss(p, 1.0).item() == pytest.approx(0.5625)
    assert lsgan_loss(p, 0.0).item() == pytest.approx(1.3125)


def test_content_distance_sums_layer_means_per_image():
    patch = torch.zeros(2, 1, 1, 1)
    real = [
        ([torch.zeros(2, 2, 1, 1), torch.zeros(2, 1, 2, 2)], patch),
        ([torch.full((2, 1, 1, 1), 2.0)], patch),
    ]
    fake = [
        (
            [
                torch.tensor([[1.0, 3.0], [0.0, 0.0]]).reshape(2, 2, 1, 1),
                torch.tensor([[0.5] * 4, [1.0, -1.0, 1.0, -1.0]]).reshape(2, 1, 2, 2),
            ],
            patch,
        ),
        ([torch.tensor([-2.0, 2.0]).reshape(2, 1, 1, 1)], patch),
    ]
    # image 0: mean|1, 3| = 2, mean|0.5 x4| = 0.5, |2 - -2| = 4 -> 6.5
    # image 1: 0 + mean|1, -1, 1, -1| = 1 + |2 - 2| = 0 -> 1.0
    assert content_distance(real, fake).tolist() == pytest.approx([6.5, 1.0])


def _two_scale_critic(x: torch.Tensor):
    """Scale 0: features [x], patch x + 0.5; scale 1: features [2x], patch x - 1."""
    return [([x], x + 0.5), ([2 * x], x - 1)]


def _one_scale_critic(x: torch.Tensor):
    """Features [3x], patch 3x."""
    return [([3 * x], 3 * x)]


class StubGAN:
    """Generator G(x) = 0 with hand-readable critics, to check how the losses are weighted."""

    content_critic = QualityGAN.content_critic

    def __init__(self, classifier=None):
        self.generator = torch.zeros_like
        self.discriminator = _two_scale_critic
        self.classifier = classifier


def test_generator_objective_weighting():
    x = torch.ones(1, 1, 2, 2)
    losses = generator_step_losses(StubGAN(), x)
    # adversarial on G(x) = 0: (0.5 - 1)^2 + (-1 - 1)^2 = 0.25 + 4 = 4.25
    # content: mean|1 - 0| + mean|2 - 0| = 3; mse = mean((0 - 1)^2) = 1 (weight 0)
    assert {k: v.item() for k, v in losses.items()} == pytest.approx(
        {"loss": 7.25, "adversarial": 4.25, "content": 3.0, "mse": 1.0}
    )
    weighted = generator_step_losses(StubGAN(), x, LossWeights(adversarial=2, content=10, mse=0.5))
    assert weighted["loss"].item() == pytest.approx(2 * 4.25 + 10 * 3 + 0.5 * 1)  # 39.0


def test_classifier_mode_content_uses_classifier_features():
    # content from the classifier: mean|3 * 1 - 3 * 0| = 3; adversarial still 4.25
    losses = generator_step_losses(StubGAN(classifier=_one_scale_critic), torch.ones(1, 1, 2, 2))
    assert losses["content"].item() == pytest.approx(3.0)
    assert losses["loss"].item() == pytest.approx(4.25 + 3.0)


def test_critic_objectives_per_class():
    x = torch.ones(1, 1, 2, 2)
    plain = critic_step_losses(StubGAN(), x)
    # real x = 1: (1.5 - 1)^2 + (0 - 1)^2 = 1.25; fake 0: (0.5)^2 + (-1)^2 = 1.25
    assert {k: v.item() for k, v in plain.items()} == pytest.approx(
        {"loss": 2.5, "real": 1.25, "fake": 1.25}
    )
    q2 = -torch.ones(1, 1, 2, 2)
    with_q2 = critic_step_losses(StubGAN(_one_scale_critic), x, degraded=q2)
    # classifier: Q1 (3 - 1)^2 = 4, Q2 (-3 - 0)^2 = 9 -> 2.5 + 4 + 9 = 15.5
    assert {k: v.item() for k, v in with_q2.items()} == pytest.approx(
        {"loss": 15.5, "real": 1.25, "fake": 1.25, "classifier_q1": 4.0, "classifier_q2": 9.0}
    )
    # a batch without Q1 images trains the classifier on its Q2 images only
    only_q2 = critic_step_losses(StubGAN(_one_scale_critic), None, degraded=q2)
    assert {k: v.item() for k, v in only_q2.items()} == pytest.approx({"loss": 9.0, "classifier_q2": 9.0})
    # classifier mode without Q2 images: discriminators and the classifier's Q1 term
    only_q1 = critic_step_losses(StubGAN(_one_scale_critic), x)
    assert only_q1["loss"].item() == pytest.approx(2.5 + 4.0)
    with pytest.raises(ValueError, match="classifier mode"):
        critic_step_losses(StubGAN(), x, degraded=x)
    with pytest.raises(ValueError, match="neither"):
        critic_step_losses(StubGAN(_one_scale_critic), None)


def test_a_few_generator_steps_reduce_the_reconstruction_loss():
    torch.manual_seed(0)
    model = QualityGAN(TINY)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    content_only = LossWeights(adversarial=0.0)
    optimizer = torch.optim.Adam(model.generator.parameters(), lr=2e-3, betas=(0.5, 0.9))
    with torch.no_grad():
        before = generator_step_losses(model, x, content_only)["content"].item()
    for _ in range(20):
        optimizer.zero_grad()
        generator_step_losses(model, x, content_only)["loss"].backward()
        optimizer.step()
    with torch.no_grad():
        after = generator_step_losses(model, x, content_only)["content"].item()
    assert after < 0.92 * before


def test_assess_scores_and_classifier_vote():
    # classifier: 3 scales, patch = v -> c = 3v; degraded iff 3 - c >= 1 iff v <= 2/3.
    # v = 1.0, 0.7, 0.5, 0.0 -> 3 - c = 0, 0.9, 1.5, 3 -> votes F, F, T, T.
    # score with G(x) = 0 and features [v] per scale: 3|v| = 3, 2.1, 1.5, 0.
    stub = StubGAN(classifier=lambda x: [([x], x)] * 3)
    x = torch.tensor([1.0, 0.7, 0.5, 0.0]).reshape(4, 1, 1, 1)
    result = assess(stub, x)
    assert result.scores.tolist() == pytest.approx([3.0, 2.1, 1.5, 0.0])
    assert result.classifier_degraded.tolist() == [False, False, True, True]
    assert torch.equal(result.reconstructions, torch.zeros_like(x))


def test_threshold_is_mean_plus_three_population_sigma():
    # mean 2.5; population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25, sigma 1.1180340
    # 2.5 + 3 * 1.1180340 = 5.8541020  (sample sigma sqrt(5/3) would give 6.3729833)
    assert fit_threshold([1.0, 2.0, 3.0, 4.0]) == pytest.approx(5.8541020)
    with pytest.raises(ValueError, match="at least one"):
        fit_threshold([])


def test_calibration_is_threshold_and_lowest_q1_score():
    assert fit_calibration([4.0, 1.0, 3.0, 2.0]) == pytest.approx(Calibration(5.8541020, 1.0))
    with pytest.raises(ValueError, match="two distinct"):
        fit_calibration([2.0])
    with pytest.raises(ValueError, match="two distinct"):
        fit_calibration([2.0, 2.0])


def test_classify_threshold_and_classifier_votes():
    # score >= threshold is degraded (the tie counts as degraded)
    assert classify([0.5, 1.0, 1.5], 1.0).tolist() == [False, True, True]
    assert classify([0.5, 1.0, 1.5], 1.0, [True, False, False]).tolist() == [True, True, True]


def test_confusion_assigns_fp_and_fn_correctly():
    truth = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    c = confusion(truth, pred)
    # TP: degraded flagged = 3; FN: degraded passed = 1; FP: clean flagged = 2; TN = 4
    assert c == Confusion(tp=3, fp=2, tn=4, fn=1)
    assert accuracy(c) == pytest.approx(0.7)  # (3 + 4) / 10
    assert true_positive_rate(c) == pytest.approx(0.75)  # 3 / 4
    assert false_positive_rate(c) == pytest.approx(1 / 3)  # 2 / 6
    # TSS = 3/4 - 2/6 = 0.4166667; with FP and FN swapped (original callback): 3/5 - 1/5 = 0.4
    assert true_skill_statistic(c) == pytest.approx(0.4166667)
    swapped = Confusion(tp=3, fp=1, tn=4, fn=2)
    assert true_skill_statistic(swapped) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="shape"):
        confusion([1, 0], [1])


def test_quality_scale_runs_from_floor_to_threshold():
    # floor 1, threshold 3: (0.5 - 1) / 2 = -0.25, (2 - 1) / 2 = 0.5, (3 - 1) / 2 = 1, (5 - 1) / 2 = 2
    scale = quality_scale([0.5, 2.0, 3.0, 5.0], Calibration(threshold=3.0, floor=1.0))
    assert scale.tolist() == pytest.approx([-0.25, 0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="above the scale floor"):
        quality_scale([1.0], Calibration(threshold=1.0, floor=1.0))


def test_quality_report_by_hand():
    scores = [0.5, 1.0, 3.0, 2.5, 0.2]
    labels = [False, False, True, True, True]
    report = quality_report(scores, labels, Calibration(threshold=2.0, floor=0.0))
    # predictions [F, F, T, T, F]: TP 2, FN 1 (0.2), TN 2, FP 0
    # quality = (score - 0) / (2 - 0): Q1 (0.25 + 0.5) / 2 = 0.375; Q2 (1.5 + 1.25 + 0.1) / 3 = 0.95
    assert report == pytest.approx(
        {
            "threshold": 2.0,
            "score_floor": 0.0,
            "tp": 2.0,
            "fp": 0.0,
            "tn": 2.0,
            "fn": 1.0,
            "accuracy": 0.8,  # 4 / 5
            "tpr": 2 / 3,
            "fpr": 0.0,
            "tss": 2 / 3,  # 2/3 - 0
            "quality_q1_mean": 0.375,
            "quality_q2_mean": 0.95,
        }
    )
    # classifier votes [F, T, F, F, T] -> predictions [F, T, T, T, T]: TP 3, FN 0, FP 1, TN 1
    votes = [False, True, False, False, True]
    voted = quality_report(scores, labels, Calibration(2.0, 0.0), classifier_degraded=votes)
    assert (voted["tp"], voted["fp"], voted["tn"], voted["fn"]) == (3.0, 1.0, 1.0, 0.0)
    assert voted["tss"] == pytest.approx(0.5)  # 3/3 - 1/2
    # floor 0.5: quality of Q1 = ((0.5 - 0.5) + (1 - 0.5)) / 1.5 / 2 = 1/6
    assert quality_report(scores, labels, Calibration(2.0, 0.5))["quality_q1_mean"] == pytest.approx(1 / 6)
    only_q1 = quality_report([0.5, 3.0], [False, False], Calibration(2.0, 0.0))
    assert math.isnan(only_q1["tpr"]) and math.isnan(only_q1["quality_q2_mean"])
    assert only_q1["fpr"] == pytest.approx(0.5)


def test_bootstrap_intervals_bracket_and_degenerate():
    truth = [True, True, False, False, False, False]
    perfect = bootstrap_intervals(truth, truth, n_boot=200)
    # every resample is classified perfectly: accuracy 1; TSS 1 wherever both classes occur
    assert perfect["accuracy"] == (1.0, 1.0) and perfect["tss"] == (1.0, 1.0)
    inverted = bootstrap_intervals(truth, [not t for t in truth], n_boot=200)
    assert inverted["accuracy"] == (0.0, 0.0) and inverted["tss"] == (-1.0, -1.0)
    mixed = bootstrap_intervals(truth, [True, False, False, False, True, False], n_boot=500)
    low, high = mixed["accuracy"]
    assert 0.0 <= low < 4 / 6 < high <= 1.0  # point estimate 4/6 inside
    one_class = bootstrap_intervals([False, False], [False, True], n_boot=50)
    assert all(math.isnan(v) for v in one_class["tss"])
    with pytest.raises(ValueError, match="at least one image"):
        bootstrap_intervals([], [], n_boot=10)


def test_accumulator_fits_on_q1_or_uses_the_given_calibration():
    # two batches: Q1 scores 1, 2, 3, 4 (threshold 5.8541020, floor 1) and Q2 scores 7, 5
    fitting = QualityAccumulator(n_boot=0)
    fitting.update([1.0, 2.0, 7.0], [False, False, True])
    fitting.update([3.0, 4.0, 5.0], [False, False, True])
    report = fitting.compute()
    assert fitting.calibration == pytest.approx(Calibration(5.8541020, 1.0))
    # 7 flagged (TP), 5 < 5.854 passed (FN), all Q1 below: TN 4 -> acc 5/6, TSS 1/2 - 0
    assert (report["tp"], report["fn"], report["tn"], report["fp"]) == (1.0, 1.0, 4.0, 0.0)
    assert report["accuracy"] == pytest.approx(5 / 6) and report["tss"] == pytest.approx(0.5)
    assert report["n_images"] == 6.0 and not any(k.endswith("_ci_low") for k in report)
    fixed = QualityAccumulator(Calibration(4.5, 1.0), n_boot=100)
    fixed.update([1.0, 2.0, 7.0], [False, False, True])
    fixed.update([3.0, 4.0, 5.0], [False, False, True])
    report = fixed.compute()
    # threshold 4.5 kept: both Q2 flagged, Q1 passed -> TSS 1
    assert report["threshold"] == 4.5 and report["tss"] == pytest.approx(1.0)
    assert report["tss_ci_low"] == report["tss_ci_high"] == 1.0
    assert report["accuracy_ci_low"] == report["accuracy_ci_high"] == 1.0
    with pytest.raises(ValueError, match="before any update"):
        QualityAccumulator().compute()


def test_quality_figure_written(tmp_path):
    inputs = np.zeros((2, 1, 16, 16))
    reconstructions = inputs.copy()
    reconstructions[1, 0, 4:8, 4:8] = 1.0  # a "cloud" the reconstruction does not explain
    path = quality_figure(inputs, torch.from_numpy(reconstructions), ["Q1 score 0.1", "Q2 score 2"],
                          tmp_path / "figs" / "quality.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="same images"):
        quality_figure(inputs, reconstructions, ["one caption"], tmp_path / "bad.png")

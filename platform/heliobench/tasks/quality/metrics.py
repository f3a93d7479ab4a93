"""Quality score, decision threshold and detection metrics of Jarolim et al. (2020).

Definitions, from RobertJaro/SolarImageQualityAssessment:

* Quality score of an image x: the content loss between x and its reconstruction G(x),
  ``sum_i sum_l mean |f_il(x) - f_il(G(x))|`` with the features of the classifier in
  classifier mode, else of the discriminator (``validateProvider`` in ``siqa/train.py``).
  Higher means worse.
* Threshold: mean + 3 sigma of the scores of Q1 validation images, sigma the *population*
  standard deviation (``np.std``, ddof=0, as ``siqa/evaluation/loss.py``).
* Positive class = degraded (Q2). An image is predicted degraded when its score is at or
  above the threshold, or, in classifier mode, when the classifier says so: with
  c = sum_i mean C_i(x) over n scales (about n for Q1, 0 for Q2), when ``n - c >= 1``.
* TSS = TP / (TP + FN) - FP / (FP + TN).
* Continuous quality scale: ``(score - floor) / (threshold - floor)`` with ``floor`` the
  lowest Q1 validation score, the ``scale = (min(content_valid), threshold)`` of
  ``siqa/evaluation/loss.py``: 0 is the best validation image, 1 the decision boundary.

Difference from the original: the training callback (``IQAProgressPlot.call`` in
``siqa/evaluation/callback.py``, commit 8d436222) assigns Q1 images predicted degraded to
``fn`` and Q2 images predicted clean to ``fp``, i.e. swaps FP and FN, so its logged TSS is
``TP/(TP+FP) - FN/(FN+TN)``. Here FP is a Q1 image flagged degraded and FN a Q2 image
passed as clean, as in the paper's evaluation script ``siqa/evaluation/loss.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from heliobench.tasks.quality.losses import content_distance
from heliobench.tasks.quality.model import QualityGAN


class Assessment(NamedTuple):
    """Inference result for a batch: reconstructions, scores and classifier votes."""

    reconstructions: Tensor
    scores: np.ndarray
    classifier_degraded: np.ndarray | None


class Confusion(NamedTuple):
    """Confusion counts with degraded (Q2) as the positive class."""

    tp: int
    fp: int
    tn: int
    fn: int


@torch.no_grad()
def assess(model: QualityGAN, images: Tensor) -> Assessment:
    """Reconstruct ``images`` (B, C, H, W), score them and, in classifier mode, classify them."""
    reconstructions = model.generator(images)
    critic = model.content_critic
    scores = content_distance(critic(images), critic(reconstructions)).cpu().numpy()
    votes = None
    if model.classifier is not None:
        outputs = model.classifier(images)
        c = torch.stack([patch.flatten(1).mean(1) for _, patch in outputs]).sum(0)
        votes = (len(outputs) - c >= 1).cpu().numpy()
    return Assessment(reconstructions, scores, votes)


class Calibration(NamedTuple):
    """What the Q1 validation scores fix: the decision threshold and the floor of the quality scale."""

    threshold: float
    floor: float


def fit_threshold(q1_val_scores: ArrayLike) -> float:
    """Mean + 3 population standard deviations of the Q1 validation scores."""
    scores = np.asarray(q1_val_scores, dtype=float)
    if scores.size == 0:
        raise ValueError("fit_threshold needs at least one Q1 validation score, got none")
    return float(scores.mean() + 3 * scores.std())


def fit_calibration(q1_val_scores: ArrayLike) -> Calibration:
    """Threshold (mean + 3 sigma) and scale floor (minimum) of the Q1 validation scores.

    Needs two distinct scores: with one, the threshold would equal the floor.
    """
    scores = np.asarray(q1_val_scores, dtype=float)
    if np.unique(scores).size < 2:
        raise ValueError(
            f"calibration needs at least two distinct Q1 validation scores, got {scores.size} "
            f"({np.unique(scores).size} distinct); the validation split holds too few Q1 images"
        )
    return Calibration(fit_threshold(scores), float(scores.min()))


def classify(
    scores: ArrayLike, threshold: float, classifier_degraded: ArrayLike | None = None
) -> np.ndarray:
    """Boolean array, True = predicted degraded: score >= threshold, or the classifier's vote."""
    degraded = np.asarray(scores, dtype=float) >= threshold
    if classifier_degraded is not None:
        degraded |= np.asarray(classifier_degraded, dtype=bool)
    return degraded


def confusion(y_true_degraded: ArrayLike, y_pred_degraded: ArrayLike) -> Confusion:
    """TP, FP, TN, FN; FP = clean (Q1) image predicted degraded, FN = degraded image passed."""
    truth = np.asarray(y_true_degraded, dtype=bool)
    pred = np.asarray(y_pred_degraded, dtype=bool)
    if truth.shape != pred.shape:
        raise ValueError(f"labels have shape {truth.shape} but predictions {pred.shape}")
    return Confusion(
        tp=int(np.sum(truth & pred)),
        fp=int(np.sum(~truth & pred)),
        tn=int(np.sum(~truth & ~pred)),
        fn=int(np.sum(truth & ~pred)),
    )


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return numerator / denominator if denominator else float("nan")


def accuracy(c: Confusion) -> float:
    """(TP + TN) / all."""
    return _ratio(c.tp + c.tn, c.tp + c.fp + c.tn + c.fn)


def true_positive_rate(c: Confusion) -> float:
    """TP / (TP + FN): fraction of degraded images detected."""
    return _ratio(c.tp, c.tp + c.fn)


def false_positive_rate(c: Confusion) -> float:
    """FP / (FP + TN): fraction of clean images flagged."""
    return _ratio(c.fp, c.fp + c.tn)


def true_skill_statistic(c: Confusion) -> float:
    """TSS = TPR - FPR, in [-1, 1]; NaN when one class is absent."""
    return true_positive_rate(c) - false_positive_rate(c)


def quality_scale(scores: ArrayLike, calibration: Calibration) -> np.ndarray:
    """Continuous quality: 0 at the best Q1 validation score, 1 at the threshold, >1 degraded."""
    threshold, floor = calibration
    if not threshold > floor:
        raise ValueError(f"the threshold {threshold} must lie above the scale floor {floor}")
    return (np.asarray(scores, dtype=float) - floor) / (threshold - floor)


def _mean(values: np.ndarray) -> float:
    """Mean, NaN when empty."""
    return float(values.mean()) if values.size else float("nan")


def quality_report(
    scores: ArrayLike,
    labels: ArrayLike,
    calibration: Calibration,
    classifier_degraded: ArrayLike | None = None,
) -> dict[str, float]:
    """Metrics for MLflow; ``labels`` True = degraded (Q2). Undefined ratios are NaN."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(labels, dtype=bool)
    c = confusion(truth, classify(scores, calibration.threshold, classifier_degraded))
    quality = quality_scale(scores, calibration)
    return {
        "threshold": calibration.threshold,
        "score_floor": calibration.floor,
        "tp": float(c.tp),
        "fp": float(c.fp),
        "tn": float(c.tn),
        "fn": float(c.fn),
        "accuracy": accuracy(c),
        "tpr": true_positive_rate(c),
        "fpr": false_positive_rate(c),
        "tss": true_skill_statistic(c),
        "quality_q1_mean": _mean(quality[~truth]),
        "quality_q2_mean": _mean(quality[truth]),
    }


def bootstrap_intervals(
    truth: ArrayLike, predicted: ArrayLike, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of accuracy and TSS, resampling images (decisions fixed).

    Resamples lacking a class give no TSS and are left out of its interval.
    """
    truth, predicted = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    if truth.size == 0 or n_boot < 1:
        raise ValueError(f"bootstrap needs at least one image and one resample; got {truth.size}, {n_boot}")
    idx = np.random.default_rng(seed).integers(0, truth.size, size=(n_boot, truth.size))
    t, p = truth[idx], predicted[idx]
    tp, fn = (t & p).sum(1), (t & ~p).sum(1)
    fp, tn = (~t & p).sum(1), (~t & ~p).sum(1)
    acc = (tp + tn) / truth.size
    with np.errstate(invalid="ignore", divide="ignore"):
        tss = tp / (tp + fn) - fp / (fp + tn)
    out = {}
    for key, values in (("accuracy", acc), ("tss", tss)):
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
            out[key] = (float(low), float(high))
        else:
            out[key] = (float("nan"), float("nan"))
    return out


class QualityAccumulator:
    """Streams per-image scores, classifier votes and truth; ``compute`` gives every metric.

    Without a ``calibration`` (validation) the threshold and scale floor are fitted on the
    Q1 images streamed here; with one (test) they are the validation's, never refitted.
    Test metrics get 95% bootstrap intervals of accuracy and TSS unless ``n_boot=0``.
    """

    def __init__(self, calibration: Calibration | None = None, n_boot: int = 1000, seed: int = 0):
        self.calibration, self.n_boot, self.seed = calibration, n_boot, seed
        self._scores: list[np.ndarray] = []
        self._truth: list[np.ndarray] = []
        self._votes: list[np.ndarray] = []

    def update(self, scores: ArrayLike, degraded: ArrayLike, classifier_degraded: ArrayLike | None = None) -> None:
        """Add a batch: scores, truth (True = Q2) and, in classifier mode, the classifier's votes."""
        scores, degraded = np.asarray(scores, dtype=float).ravel(), np.asarray(degraded, dtype=bool).ravel()
        if scores.shape != degraded.shape:
            raise ValueError(f"{scores.size} scores but {degraded.size} labels")
        self._scores.append(scores)
        self._truth.append(degraded)
        if classifier_degraded is not None:
            self._votes.append(np.asarray(classifier_degraded, dtype=bool).ravel())

    def compute(self) -> dict[str, float]:
        """Metrics keyed as in the benchmark spec, ``n_images``, and ``*_ci_low``/``*_ci_high``."""
        if not self._scores:
            raise ValueError("QualityAccumulator.compute() called before any update()")
        scores, truth = np.concatenate(self._scores), np.concatenate(self._truth)
        votes = np.concatenate(self._votes) if self._votes else None
        if votes is not None and votes.size != scores.size:
            raise ValueError("classifier votes were given for some batches only")
        if self.calibration is None:
            self.calibration = fit_calibration(scores[~truth])
        report = quality_report(scores, truth, self.calibration, votes)
        report["n_images"] = float(scores.size)
        if self.n_boot > 0:
            predicted = classify(scores, self.calibration.threshold, votes)
            for key, (low, high) in bootstrap_intervals(truth, predicted, self.n_boot, seed=self.seed).items():
                report[f"{key}_ci_low"], report[f"{key}_ci_high"] = low, high
        return report

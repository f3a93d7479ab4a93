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
* Continuous quality scale: score / threshold, so 1 is the decision boundary and values
  above 1 are degraded. The original stored ``(min Q1 validation score, threshold)`` as its
  scale; anchoring at 0 keeps the scale a function of the threshold alone.

Difference from the original: the training callback ``siqa/evaluation/callback.py``
(commit 8d436222, lines 262-263 and 272-273) assigns Q1 images predicted degraded to
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


def fit_threshold(q1_val_scores: ArrayLike) -> float:
    """Mean + 3 population standard deviations of the Q1 validation scores."""
    scores = np.asarray(q1_val_scores, dtype=float)
    if scores.size == 0:
        raise ValueError("fit_threshold needs at least one Q1 validation score, got none")
    return float(scores.mean() + 3 * scores.std())


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


def quality_scale(scores: ArrayLike, threshold: float) -> np.ndarray:
    """Continuous quality: score / threshold (0 perfect, 1 decision boundary, >1 degraded)."""
    if threshold <= 0:
        raise ValueError(f"the threshold must be positive, got {threshold}")
    return np.asarray(scores, dtype=float) / threshold


def _mean(values: np.ndarray) -> float:
    """Mean, NaN when empty."""
    return float(values.mean()) if values.size else float("nan")


def quality_report(
    scores: ArrayLike,
    labels: ArrayLike,
    threshold: float,
    classifier_degraded: ArrayLike | None = None,
) -> dict[str, float]:
    """Metrics for MLflow; ``labels`` True = degraded (Q2). Undefined ratios are NaN."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(labels, dtype=bool)
    c = confusion(truth, classify(scores, threshold, classifier_degraded))
    quality = quality_scale(scores, threshold)
    return {
        "threshold": float(threshold),
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

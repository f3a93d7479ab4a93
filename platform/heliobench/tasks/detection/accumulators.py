"""Streaming metric accumulators of the detection and classification benchmarks.

Both add percentile-bootstrap 95% intervals (``<metric>_ci_low``/``_ci_high``) unless made
with ``n_boot=0``: detection resamples images (a detection's outcome depends on its own
image only), classification resamples regions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heliobench.tasks.base import MetricAccumulator
from heliobench.tasks.detection.metrics import (
    classification_report,
    confusion_matrix,
    match_detections,
    metric_key,
    ranked_report,
    resample_matches,
)
from heliobench.tasks.detection.regions import finite_rows

#: Detection metrics given bootstrap intervals.
DETECTION_CI = ("precision", "recall", "f1", "ap_voc", "map_digits")


def _interval(values: list[float], alpha: float) -> tuple[float, float]:
    """Central (1 - alpha) percentile interval, ignoring undefined (NaN) resamples."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


class DetectionAccumulator(MetricAccumulator):
    """Per-image detections ``(x0, y0, x1, y1, confidence)`` and truth boxes, NaN padded.

    ``update`` takes ``predictions["detections"]`` (B, N, 5) and ``targets["boxes"]`` (B, K, 4).
    """

    def __init__(self, iou_threshold: float = 0.5, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> None:
        self.iou_threshold, self.n_boot, self.alpha, self.seed = iou_threshold, n_boot, alpha, seed
        self._detections: list[np.ndarray] = []
        self._truths: list[np.ndarray] = []

    def update(self, predictions: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> None:
        for dets, truths in zip(predictions["detections"], targets["boxes"], strict=True):
            self._detections.append(finite_rows(dets))
            self._truths.append(finite_rows(truths))

    def compute(self) -> dict[str, float]:
        if not self._truths:
            raise ValueError("DetectionAccumulator.compute() called before any update()")
        matches = match_detections([d[:, :4] for d in self._detections], [d[:, 4] for d in self._detections],
                                   self._truths, self.iou_threshold)
        report = {"n_images": float(len(self._truths)), "iou_threshold": self.iou_threshold, **ranked_report(matches)}
        if self.n_boot > 0:
            rng = np.random.default_rng(self.seed)
            n = len(self._truths)
            samples = [ranked_report(resample_matches(matches, rng.integers(0, n, n))) for _ in range(self.n_boot)]
            for key in DETECTION_CI:
                report[f"{key}_ci_low"], report[f"{key}_ci_high"] = _interval([s[key] for s in samples], self.alpha)
        return report


class ClassificationAccumulator(MetricAccumulator):
    """Region labels and logits; ``targets["batch_images"]`` counts the images of each batch.

    ``compute`` gives accuracy, per-class precision and recall, the confusion matrix as
    ``confusion_<true>_<predicted>`` counts, ``n_regions`` and ``n_images``.
    """

    def __init__(self, class_names: Sequence[str], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> None:
        self.class_names, self.n_boot, self.alpha, self.seed = tuple(class_names), n_boot, alpha, seed
        self._true: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []
        self._images = 0

    def update(self, predictions: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> None:
        self._true.append(np.asarray(targets["label"], dtype=np.int64))
        self._pred.append(np.asarray(predictions["logits"]).argmax(axis=1).astype(np.int64))
        self._images += int(np.sum(targets["batch_images"]))

    def compute(self) -> dict[str, float]:
        y_true, y_pred = np.concatenate(self._true), np.concatenate(self._pred)
        report = {"n_images": float(self._images), "n_regions": float(len(y_true)),
                  **classification_report(y_true, y_pred, self.class_names)}
        cm = confusion_matrix(y_true, y_pred, len(self.class_names))
        keys = [metric_key(name) for name in self.class_names]
        for i, true in enumerate(keys):
            for j, pred in enumerate(keys):
                report[f"confusion_{true}_{pred}"] = float(cm[i, j])
        if self.n_boot > 0 and len(y_true):
            rng = np.random.default_rng(self.seed)
            hits = (y_true == y_pred).astype(float)
            means = [hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(self.n_boot)]
            report["accuracy_ci_low"], report["accuracy_ci_high"] = _interval(means, self.alpha)
        return {key: float(value) for key, value in report.items()}

"""Detection and classification metrics of the active-region task.

Detection (boxes ``(x0, y0, x1, y1)``, continuous pixel-edge coordinates):

* IoU = intersection area / union area, without the PASCAL devkit's ``+1`` on widths
  (that convention is for inclusive integer pixel indices; DIGITS does not use it either).
* Matching, as the PASCAL VOC devkit (``VOCevaldet.m``): detections of all images are
  ranked by confidence (stable for ties); each is matched to the truth box of its image it
  overlaps most; it is a true positive when that IoU >= the threshold (0.5) and that truth
  is still unmatched, otherwise a false positive (a second hit on a truth counts as false).
* precision = TP / (TP + FP), which de Oliveira & Gradvohl (2020) call *accuracy*;
  recall = TP / (number of truths); F1 = 2 P R / (P + R).
* ``ap_voc``: VOC2010+ average precision (``VOCap.m``), the area under the precision
  envelope: with recall and precision after each ranked detection, pad recall with 0 and 1
  and precision with 0 and 0, make precision non-increasing from the right, and sum
  ``(r[i] - r[i-1]) * p[i]`` where recall changes.
* ``ap_voc11``: VOC2007's 11-point AP, the mean over t in {0, 0.1, ..., 1} of the highest
  precision at recall >= t (0 where there is none).
* ``map_digits``: DIGITS' "simplified mAP" (``mean_ap.py``), precision x recall. DIGITS
  reports it in percent, matches at IoU >= 0.7 by default and first-fit in truth order;
  here it is a fraction, from the matching above at the report's threshold.

Undefined ratios (no truths, no detections) are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from heliobench.tasks.detection.targets import as_boxes


class RankedMatches(NamedTuple):
    """Detections of a data set in decreasing confidence, each a true or false positive."""

    true_positive: np.ndarray  # (D,) bool, detections sorted by decreasing confidence
    image: np.ndarray  # (D,) index of each detection's image
    truths_per_image: np.ndarray  # (n_images,) number of truth boxes of each image

    @property
    def n_truths(self) -> int:
        """Truth boxes in the data set."""
        return int(self.truths_per_image.sum())


def iou_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """(len(a), len(b)) intersection over union of two sets of boxes."""
    a, b = as_boxes(a), as_boxes(b)
    w = np.clip(np.minimum.outer(a[:, 2], b[:, 2]) - np.maximum.outer(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum.outer(a[:, 3], b[:, 3]) - np.maximum.outer(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou(a: ArrayLike, b: ArrayLike) -> float:
    """Intersection over union of two boxes."""
    return float(iou_matrix(np.atleast_2d(a), np.atleast_2d(b))[0, 0])


def match_detections(pred_boxes: Sequence[ArrayLike], pred_scores: Sequence[ArrayLike],
                     true_boxes: Sequence[ArrayLike], iou_threshold: float = 0.5) -> RankedMatches:
    """VOC matching over a data set given per-image detections, confidences and truths."""
    if not len(pred_boxes) == len(pred_scores) == len(true_boxes):
        raise ValueError(
            f"{len(pred_boxes)} images of detections, {len(pred_scores)} of scores and "
            f"{len(true_boxes)} of truths: one entry per image expected in each")
    images, boxes, scores = [], [], []
    for index, (b, s) in enumerate(zip(pred_boxes, pred_scores)):
        b, s = as_boxes(b), np.asarray(s, dtype=float).reshape(-1)
        if len(b) != len(s):
            raise ValueError(f"image {index}: {len(b)} detections but {len(s)} confidences")
        images.append(np.full(len(b), index))
        boxes.append(b)
        scores.append(s)
    image_of, boxes, scores = np.concatenate(images), np.concatenate(boxes).reshape(-1, 4), np.concatenate(scores)
    truths = [as_boxes(t) for t in true_boxes]
    taken = [np.zeros(len(t), dtype=bool) for t in truths]
    order = np.argsort(-scores, kind="stable")
    hits = np.zeros(len(order), dtype=bool)
    for rank, d in enumerate(order):
        image = image_of[d]
        if len(truths[image]) == 0:
            continue
        overlaps = iou_matrix(boxes[d:d + 1], truths[image])[0]
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold and not taken[image][best]:
            taken[image][best] = True
            hits[rank] = True
    return RankedMatches(hits, image_of[order], np.array([len(t) for t in truths], dtype=np.int64))


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return numerator / denominator if denominator else float("nan")


def precision_recall_curve(matches: RankedMatches) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision after each ranked detection (needs at least one truth)."""
    if matches.n_truths == 0:
        raise ValueError("recall is undefined without truth boxes")
    tp = np.cumsum(matches.true_positive)
    return tp / matches.n_truths, tp / np.arange(1, len(tp) + 1)


def voc_ap(recall: ArrayLike, precision: ArrayLike) -> float:
    """VOC2010+ all-point average precision (area under the precision envelope)."""
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=float), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, dtype=float), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[changes] - mrec[changes - 1]) * mpre[changes]))


def voc_ap_11point(recall: ArrayLike, precision: ArrayLike) -> float:
    """VOC2007 11-point average precision."""
    recall, precision = np.asarray(recall, dtype=float), np.asarray(precision, dtype=float)
    points = [precision[recall >= t].max() if np.any(recall >= t) else 0.0 for t in np.linspace(0, 1, 11)]
    return float(np.mean(points))


def f1_score(precision: float, recall: float) -> float:
    """2 P R / (P + R); 0 when both are 0, NaN when either is undefined."""
    if np.isnan(precision) or np.isnan(recall):
        return float("nan")
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def detection_report(pred_boxes: Sequence[ArrayLike], pred_scores: Sequence[ArrayLike],
                     true_boxes: Sequence[ArrayLike], iou_threshold: float = 0.5) -> dict[str, float]:
    """Detection metrics over a data set (one entry per image in each sequence), for MLflow."""
    return {"iou_threshold": float(iou_threshold),
            **ranked_report(match_detections(pred_boxes, pred_scores, true_boxes, iou_threshold))}


def ranked_report(matches: RankedMatches) -> dict[str, float]:
    """Counts, precision, recall, F1 and the average precisions of matched detections."""
    tp = int(matches.true_positive.sum())
    fp = len(matches.true_positive) - tp
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, matches.n_truths)
    nan = float("nan")
    curve = precision_recall_curve(matches) if matches.n_truths else None
    return {
        "n_truths": float(matches.n_truths),
        "n_detections": float(tp + fp),
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(matches.n_truths - tp),
        "precision": precision,
        "recall": recall,
        "f1": f1_score(precision, recall),
        "ap_voc": voc_ap(*curve) if curve else nan,
        "ap_voc11": voc_ap_11point(*curve) if curve else nan,
        "map_digits": precision * recall,
    }


def resample_matches(matches: RankedMatches, images: np.ndarray) -> RankedMatches:
    """The matches of a data set made of ``images`` (indices, repeats allowed), e.g. a bootstrap sample.

    A detection's outcome depends on its own image only, so resampling images resamples
    outcomes; the confidence order is kept.
    """
    copies = np.bincount(images, minlength=len(matches.truths_per_image))
    keep = np.repeat(np.arange(len(matches.image)), copies[matches.image])
    return RankedMatches(matches.true_positive[keep], matches.image[keep], matches.truths_per_image * copies)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; row = true class, column = predicted class."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"labels have shape {t.shape} but predictions {p.shape}")
    bad = sorted(set(np.concatenate([t, p]).tolist()) - set(range(n_classes)))
    if bad:
        raise ValueError(f"class labels {bad} are outside 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def metric_key(name: str) -> str:
    """An MLflow-safe metric-name fragment of a class name (``Beta-Gamma`` -> ``beta_gamma``)."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def classification_report(y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str]) -> dict[str, float]:
    """Accuracy and per-class precision and recall (keys ``precision_beta_gamma`` etc.)."""
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    report = {"accuracy": _ratio(np.trace(cm), cm.sum())}
    for k, name in enumerate(class_names):
        report[f"precision_{metric_key(name)}"] = _ratio(cm[k, k], cm[:, k].sum())
        report[f"recall_{metric_key(name)}"] = _ratio(cm[k, k], cm[k].sum())
    return report

"""Single-target tracking measures: the solar-tracking paper's set, with its evaluation bugs fixed.

Sarker & Banda (IEEE BigData 2019) tracked HEK active regions and coronal holes with GOTURN.
Their evaluation script, ``evaluation-tracking/evaluate_all_csv.py`` in
toqitahamid/solar-event-tracking, computes the measures of Smeulders et al.'s survey (ALOV++,
PAMI 2014). Its F-score is ported from the ALOV++ MATLAB ``quantitativeEvaluationFScore_poly.m``,
which the GOTURN repository ships.

Every frame of a sequence has a ground-truth box ``g`` and at most one predicted box ``p``
(a NaN row means no prediction). Boxes follow :mod:`.boxes`. Per sequence of N frames:

- ``IoU = |p n g| / |p u g|``, and 0 where there is no prediction.
- Matched frames ``M_s``: frames with IoU >= 0.5 (the PASCAL criterion of the survey).
- F-score (ALOV++): TP = |M_s|; FP = frames with a box that is not matched; FN = frames whose
  ground truth is not matched (missing plus unmatched, the "cvpr12" rule of the MATLAB code).
  P = TP / (TP + FP), R = TP / (TP + FN), F = 2PR / (P + R), and 0 when P + R = 0.
- OTA = 1 - (FN + FP) / N. This is Kasturi et al.'s accuracy for one target with no identity
  switches. An unmatched box counts once as a miss and once as a false positive.
- OTP = mean IoU over ``M_s``. ATA = mean IoU over all N frames.
- Deviation = 1 - mean over ``M_s`` of the centre distance divided by the ground-truth box
  diagonal. The script names its list ``centroid_normalized_distance`` but never normalises,
  and the sources we could read do not give the survey's normaliser. The diagonal is our
  choice.
- PBM = mean over frames of ``1 - D / T``. Here ``T = (w_p + h_p + w_g + h_g) / 2``, and D is
  the L1 distance between the centres when the boxes overlap and T when they do not.
- ``centre_error_px``: mean centre distance over frames that have a box.
- One-pass evaluation (OTB): success(t) = fraction of frames with IoU > t, for 21 thresholds
  t = 0, 0.05, ..., 1; AUC = their mean. Since IoU > 1 is impossible, even a perfect track
  scores 20/21 (about 0.952), as in OTB. Precision@20 = fraction of frames with centre error
  <= 20 px. A frame without a prediction fails both.

``tracking_report`` averages each measure over sequences. Where a measure is undefined for a
sequence (OTP and Deviation with no matched frame, centre error with no box), that sequence is
left out of that measure's mean.

Bugs in the original script, fixed here:

1. The F-score overlap is ``|p n g| / |g|`` (how much of the annotation is covered), not IoU.
   Any box that contains the annotation scores 1. The MATLAB code it was ported from uses IoU.
2. Two pixel conventions are mixed. The intersection is continuous (``x1 - x0``). Areas and the
   union are inclusive (``x1 - x0 + 1``). So a perfect track has ATA < 1. We use one
   convention, the continuous one.
3. OTP counts frames with coverage >= 0.99 instead of matched frames.
4. Deviation counts only frames whose coordinates are *exactly* equal. Their centre distance is
   0, so Deviation is 1 whenever any frame is exact. The sum is also divided by the OTP frame
   count, and the distance is in raw pixels, not normalised.
5. PBM uses the signed sum ``dx + dy`` instead of ``|dx| + |dy|``. Errors cancel, terms can
   exceed 1, and ``if formula > 2: formula = 0`` patches over this.
6. The per-frame lists behind OTP, Deviation and PBM are module globals, never reset between
   sequences. Sequence k's scores include the frames of every earlier sequence. ``pbm_list``
   is also reassigned to the list of per-sequence results, so per-frame terms and
   per-sequence means pile up in one list.
7. The printed "means" of OTP, ATA, Deviation and PBM are ``np.mean`` of the *last* sequence's
   scalar. Only F-score and OTA are averaged over sequences.
8. OTA is ``1 - FN / N`` with FN already holding the unmatched frames. This counts an unmatched
   box once, and OTA equals the F-score whenever no frame is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from heliobench.tasks.tracking.boxes import as_boxes, centres, sizes

MATCH_IOU = 0.5
SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_RADIUS_PX = 20.0
REPORT_KEYS = ("f_score", "ota", "otp", "ata", "deviation", "pbm", "centre_error_px",
               "success_auc", "precision_20px")


def _pair(pred_boxes: ArrayLike, true_boxes: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pred, true = as_boxes(pred_boxes, "pred_boxes"), as_boxes(true_boxes, "true_boxes")
    if pred.shape != true.shape:
        raise ValueError(f"pred_boxes has {len(pred)} frames but true_boxes has {len(true)}; "
                         "expected one predicted box (or a NaN row) per ground-truth frame")
    if not np.isfinite(true).all() or (sizes(true) <= 0).any():
        raise ValueError("true_boxes: expected finite boxes with x1 > x0 and y1 > y0")
    return pred, true


def _mean(values: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN when there are none."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def _intersection(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    low = np.maximum(pred[:, :2], true[:, :2])
    high = np.minimum(pred[:, 2:], true[:, 2:])
    return np.prod(np.clip(high - low, 0.0, None), axis=1)


def iou(pred_boxes: ArrayLike, true_boxes: ArrayLike) -> np.ndarray:
    """Per-frame intersection over union; 0 for frames without a prediction."""
    pred, true = _pair(pred_boxes, true_boxes)
    inter = _intersection(pred, true)
    pred_area = np.prod(np.clip(sizes(pred), 0.0, None), axis=1)
    union = pred_area + np.prod(sizes(true), axis=1) - inter
    return np.nan_to_num(inter / union, nan=0.0)


def centre_error(pred_boxes: ArrayLike, true_boxes: ArrayLike) -> np.ndarray:
    """Per-frame Euclidean distance between box centres in pixels; NaN without a prediction."""
    pred, true = _pair(pred_boxes, true_boxes)
    return np.hypot(*(centres(pred) - centres(true)).T)


def success_curve(pred_boxes: ArrayLike, true_boxes: ArrayLike) -> np.ndarray:
    """OTB success rate at each of ``SUCCESS_THRESHOLDS``: fraction of frames with IoU > t."""
    overlaps = iou(pred_boxes, true_boxes)
    return (overlaps[None, :] > SUCCESS_THRESHOLDS[:, None]).mean(axis=1)


def _pbm_terms(pred: np.ndarray, true: np.ndarray, overlaps: np.ndarray) -> np.ndarray:
    l1 = np.abs(centres(pred) - centres(true)).sum(axis=1)
    threshold = (sizes(pred).sum(axis=1) + sizes(true).sum(axis=1)) / 2
    return np.where(overlaps > 0, 1.0 - l1 / threshold, 0.0)


def sequence_scores(pred_boxes: ArrayLike, true_boxes: ArrayLike) -> dict[str, float]:
    """All measures of one sequence (see the module docstring), keyed by ``REPORT_KEYS``."""
    pred, true = _pair(pred_boxes, true_boxes)
    overlaps = iou(pred, true)
    distances = centre_error(pred, true)
    present = ~np.isnan(pred).any(axis=1)
    matched = overlaps >= MATCH_IOU
    n = len(true)
    tp = int(matched.sum())
    fp = int((present & ~matched).sum())
    fn = n - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n
    f_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    diagonals = np.hypot(*sizes(true).T)
    return {
        "f_score": f_score,
        "ota": 1.0 - (fn + fp) / n,
        "otp": _mean(overlaps[matched]),
        "ata": float(overlaps.mean()),
        "deviation": 1.0 - _mean(distances[matched] / diagonals[matched]),
        "pbm": float(_pbm_terms(pred, true, overlaps).mean()),
        "centre_error_px": _mean(distances[present]),
        "success_auc": float(success_curve(pred, true).mean()),
        "precision_20px": float((distances <= PRECISION_RADIUS_PX).mean()),
    }


def tracking_report(sequences: Sequence[tuple[ArrayLike, ArrayLike]]) -> dict[str, float]:
    """Each measure averaged over sequences of ``(pred_boxes, true_boxes)``, plus ``n_sequences``.

    Every sequence is scored on its own and then weighs the same in the mean, whatever its
    length. A sequence where a measure is undefined (NaN) is left out of that measure's mean.
    """
    if not sequences:
        raise ValueError("tracking_report: expected at least one (pred_boxes, true_boxes) pair")
    scores = [sequence_scores(pred, true) for pred, true in sequences]
    report = {key: _mean(np.array([s[key] for s in scores])) for key in REPORT_KEYS}
    report["n_sequences"] = float(len(scores))
    return report

"""Segmentation metrics: IoU and Dice, pooled over a set and per image, with bootstrap intervals.

SCSS-Net's ``src/metrics.py`` (space-lab-sk/scss-net) defines, with ``smooth = 1``::

    iou  = (I + s) / (U + s)               I = sum(y_true * y_pred), U = sum(y_true + y_pred) - I
    dice = (2 I + s) / (sum(y_true) + sum(y_pred) + s)

Both come in a Keras version (``iou``/``dice``, the compiled training metrics) and a numpy version
(``iou_np``/``dice_np``, for evaluating predictions). Both versions sum over every pixel of the
array they are given: the whole batch, or the whole set. The Keras metrics receive the raw sigmoid
output, so they are *soft* scores. Our ``*_pooled`` functions compute exactly this pooled,
smoothed ratio. ``threshold=None`` is the soft version. ``threshold=0.5`` first binarises the
prediction (``p > 0.5``).

Problems in the original and how ours differs:

1. ``dice_np`` returns ``2 * (I + s) / (|P| + |T| + s)``: the smoothing term sits inside the
   factor 2. This overstates Dice by ``s / (|P| + |T| + s)`` and gives 2.0 for an empty
   prediction on an empty mask. Its Keras twin ``dice`` is correct, so training-time and test-time
   Dice disagree. We use ``(2I + s) / (|P| + |T| + s)`` everywhere, so the value never exceeds 1.
2. During ``fit``, Keras averages the batch-pooled values over batches. The result depends on the
   batch size and is neither a set-pooled nor a per-image score. We report the set-pooled score
   (``*_pooled``) and the mean of per-image scores (``*_per_image``, ``*_image_mean_*``)
   separately.
3. The reference masks are PNGs resized with PIL's default (bicubic) filter and divided by 255,
   so edge pixels are fractional targets. We require binary targets.

Per-image scores are the unsmoothed ratios I/U and 2I/(|P| + |T|). A smoothing constant of 1
would dominate images with small structures. When both the prediction and the truth of an image
are empty, the score is defined as 1.0 (perfect agreement). Intervals are percentile bootstraps
over images. ``segmentation_report`` and ``SegmentationAccumulator`` keep only six float64 numbers
per image, so evaluation can stream over a large test set.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike, NDArray

SCSS_SMOOTH = 1.0
"""Smoothing constant of SCSS-Net's ``iou``/``dice`` (``smooth=1.0``)."""

REPORT_THRESHOLD = 0.5
"""Binarisation threshold of the ``*_05`` report entries (prediction is positive if p > 0.5)."""

_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22  # resampled indices held in memory at once

Floats = NDArray[np.float64]


def _image_stats(probs: ArrayLike, targets: ArrayLike,
                 threshold: float | None) -> tuple[Floats, Floats, Floats]:
    """Per-image intersection, prediction sum and truth sum (float64), images on axis 0."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if p.shape != t.shape or p.ndim < 2 or p.shape[0] == 0:
        raise ValueError(
            f"probs and targets must have the same shape (N, ...) with N >= 1 images; got "
            f"{p.shape} and {t.shape}")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"probs must lie in [0, 1]; got range [{p.min()}, {p.max()}]")
    if not ((t == 0.0) | (t == 1.0)).all():
        raise ValueError("targets must be binary (0 or 1)")
    if threshold is not None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1) or None; got {threshold}")
        p = (p > threshold).astype(np.float64)
    p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
    return (p * t).sum(axis=1), p.sum(axis=1), t.sum(axis=1)


def _ratio(numerator: Floats, denominator: Floats) -> Floats:
    """Element-wise ratio, with 0/0 defined as 1.0 (empty prediction on empty truth)."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 1.0)


def _pooled(numerator: Floats, denominator: Floats, smooth: float) -> float:
    """Smoothed ratio of sums over images: (sum num + s) / (sum den + s)."""
    return float((numerator.sum() + smooth) / (denominator.sum() + smooth))


def iou_pooled(probs: ArrayLike, targets: ArrayLike, threshold: float | None,
               smooth: float = SCSS_SMOOTH) -> float:
    """SCSS-Net IoU over all pixels of the set: (sum I + s) / (sum U + s)."""
    inter, pred, true = _image_stats(probs, targets, threshold)
    return _pooled(inter, pred + true - inter, smooth)


def dice_pooled(probs: ArrayLike, targets: ArrayLike, threshold: float | None,
                smooth: float = SCSS_SMOOTH) -> float:
    """SCSS-Net Dice over all pixels of the set: (2 sum I + s) / (sum |P| + sum |T| + s)."""
    inter, pred, true = _image_stats(probs, targets, threshold)
    return _pooled(2.0 * inter, pred + true, smooth)


def iou_per_image(probs: ArrayLike, targets: ArrayLike, threshold: float | None) -> Floats:
    """IoU of each image, I / U, with 1.0 where prediction and truth are both empty."""
    inter, pred, true = _image_stats(probs, targets, threshold)
    return _ratio(inter, pred + true - inter)


def dice_per_image(probs: ArrayLike, targets: ArrayLike, threshold: float | None) -> Floats:
    """Dice of each image, 2I / (|P| + |T|), with 1.0 where both are empty."""
    inter, pred, true = _image_stats(probs, targets, threshold)
    return _ratio(2.0 * inter, pred + true)


def _resample_indices(n: int, n_boot: int, seed: int) -> Iterator[NDArray[np.intp]]:
    """Bootstrap index rows (each n draws with replacement), in memory-bounded chunks."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"bootstrap needs at least one image and one resample; got {n}, {n_boot}")
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        yield rng.integers(0, n, size=(min(rows, n_boot - start), n))


def _percentile_interval(stats: Floats, alpha: float) -> tuple[float, float]:
    """Central (1 - alpha) percentile interval of bootstrap statistics."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    low, high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(per_image_values: ArrayLike, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-image values, resampling images."""
    values = np.asarray(per_image_values, dtype=np.float64).ravel()
    means = np.concatenate([values[idx].mean(axis=1)
                            for idx in _resample_indices(values.size, n_boot, seed)])
    return _percentile_interval(means, alpha)


def bootstrap_ci_pooled(intersections: ArrayLike, unions: ArrayLike, n_boot: int = 1000,
                        alpha: float = 0.05, seed: int = 0,
                        smooth: float = SCSS_SMOOTH) -> tuple[float, float]:
    """Percentile bootstrap interval of a pooled ratio (sum I + s) / (sum U + s), resampling images.

    For IoU pass per-image I and U. For Dice pass 2I as ``intersections`` and |P| + |T| as
    ``unions``.
    """
    num = np.asarray(intersections, dtype=np.float64).ravel()
    den = np.asarray(unions, dtype=np.float64).ravel()
    if num.shape != den.shape:
        raise ValueError(f"intersections and unions differ in length: {num.size} vs {den.size}")
    ratios = np.concatenate([(num[idx].sum(axis=1) + smooth) / (den[idx].sum(axis=1) + smooth)
                             for idx in _resample_indices(num.size, n_boot, seed)])
    return _percentile_interval(ratios, alpha)


class SegmentationAccumulator:
    """Streams batches and keeps per-image sufficient statistics, not pixels.

    ``compute()`` equals ``segmentation_report`` on the concatenation of all batches.
    """

    def __init__(self, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> None:
        self.n_boot, self.alpha, self.seed = n_boot, alpha, seed
        self._soft: list[tuple[Floats, Floats, Floats]] = []
        self._hard: list[tuple[Floats, Floats, Floats]] = []

    def update(self, probs_batch: ArrayLike, targets_batch: ArrayLike) -> None:
        """Add a batch: probabilities and binary targets, same shape, images on axis 0."""
        self._soft.append(_image_stats(probs_batch, targets_batch, None))
        self._hard.append(_image_stats(probs_batch, targets_batch, REPORT_THRESHOLD))

    def compute(self) -> dict[str, float]:
        """Every metric under stable keys: ``{iou,dice}_{pooled,image_mean}_{soft,05}`` and
        ``n_images``. The thresholded (``_05``) ones also get ``_ci_low``/``_ci_high`` bounds
        unless the accumulator was made with ``n_boot=0``."""
        if not self._soft:
            raise ValueError("SegmentationAccumulator.compute() called before any update()")
        soft = tuple(np.concatenate(parts) for parts in zip(*self._soft))
        hard = tuple(np.concatenate(parts) for parts in zip(*self._hard))
        report = {"n_images": float(soft[0].size)}
        for suffix, (inter, pred, true) in (("soft", soft), ("05", hard)):
            report[f"iou_pooled_{suffix}"] = _pooled(inter, pred + true - inter, SCSS_SMOOTH)
            report[f"dice_pooled_{suffix}"] = _pooled(2.0 * inter, pred + true, SCSS_SMOOTH)
            report[f"iou_image_mean_{suffix}"] = float(_ratio(inter, pred + true - inter).mean())
            report[f"dice_image_mean_{suffix}"] = float(_ratio(2.0 * inter, pred + true).mean())
        if self.n_boot > 0:  # n_boot=0: point estimates only (e.g. per-epoch validation)
            report.update(self._intervals(*hard))
        return report

    def _intervals(self, inter: Floats, pred: Floats, true: Floats) -> dict[str, float]:
        """Bootstrap bounds of the thresholded metrics."""
        def pooled_ci(num: Floats, den: Floats) -> tuple[float, float]:
            return bootstrap_ci_pooled(num, den, self.n_boot, self.alpha, self.seed)

        def mean_ci(values: Floats) -> tuple[float, float]:
            return bootstrap_ci(values, self.n_boot, self.alpha, self.seed)

        union, total = pred + true - inter, pred + true
        intervals = {
            "iou_pooled_05": pooled_ci(inter, union),
            "dice_pooled_05": pooled_ci(2.0 * inter, total),
            "iou_image_mean_05": mean_ci(_ratio(inter, union)),
            "dice_image_mean_05": mean_ci(_ratio(2.0 * inter, total)),
        }
        bounds: dict[str, float] = {}
        for key, (low, high) in intervals.items():
            bounds[f"{key}_ci_low"], bounds[f"{key}_ci_high"] = low, high
        return bounds


def segmentation_report(probs: ArrayLike, targets: ArrayLike) -> dict[str, float]:
    """All metrics of a whole set, keyed for MLflow (see ``SegmentationAccumulator.compute``)."""
    accumulator = SegmentationAccumulator()
    accumulator.update(probs, targets)
    return accumulator.compute()

"""DetectNet (NVIDIA DIGITS), the active-region detector of de Oliveira & Gradvohl (2020).

The network is DIGITS' ``detectnet_network.prototxt``: the GoogLeNet trunk (see
:mod:`~heliobench.tasks.detection.classifier`) up to Inception 5b *without* the fourth
pooling, so the output grid has stride 16, then dropout 0.4 and two 1x1 convolutions: a
coverage head with a sigmoid (is this cell on an object?) and a bbox head regressing the
object's corners ``(x0, y0, x1, y1)`` in pixels relative to the cell's top-left corner.

de Oliveira & Gradvohl (2020, section 5.1) adapted it to small regions on 256-pixel
magnetograms: images resized to 512 x 512 (``upsample=2``) and the ``pool1/3x3_s2`` kernel
and stride set to 1 (``stride=8``), so a cell is 4 pixels of the 256-pixel magnetogram.
Here the resizing is the network's first layer (bilinear), so boxes, targets and the
:attr:`DetectNet.cell` size stay in the pixels of the image handed to the network.

Losses (``detectnet_losses``), as in the prototxt but for the coverage term, for a batch of N images:

* coverage: binary cross-entropy of the coverage logits against the target,
  ``sum(BCE) / (2 N)``, weight 1, where DIGITS has Caffe's ``EuclideanLoss``
  ``sum((coverage - target)**2) / (2 N)`` on the sigmoid output (see below);
* bbox: Caffe ``L1Loss``, ``sum |m * (bbox - target)| / N``, weight 2, where the mask
  ``m`` is the target coverage (foreground cells only) times ``(1/w, 1/h, 1/w, 1/h)`` of the
  target box, times the per-cell ``obj_norm`` when given;
* total = coverage + 2 bbox.

Decoding (``decode_boxes``) follows DIGITS' ``ClusterDetections`` layer
(``python/caffe/layers/detectnet/clustering.py``): every cell whose coverage is at least the
threshold proposes its regressed box shifted by the cell's corner; the proposals are
clustered with OpenCV's ``groupRectangles``, reimplemented in :func:`group_rectangles`;
clusters shorter than ``min_height`` are dropped; a box's confidence is ``ln(cluster size)``.

Two deliberate differences. The coverage loss: DIGITS trains from an ImageNet GoogLeNet;
trained from scratch, as here, the Euclidean loss on the sigmoid drives every cell's coverage
to 0 in the first epochs (the sigmoid's slope, and with it the gradient, vanishes there):
on the simulated archive at 256 px and the benchmark's learning rate 1e-4 the foreground
cells' mean coverage fell from 0.004 to 0.000 in 6 epochs and nothing was ever detected,
while the cross-entropy, whose gradient on the logit is ``coverage - target`` however
saturated, raised it from 0.04 to 0.45 in the same 6 epochs (0.66 at learning rate 1e-3,
where 36 epochs of a quarter-width network reached AP 0.16 on the test split). And DIGITS
passes ``(x0, y0, x1, y1)`` corners to ``groupRectangles``, which reads them as
``(x, y, width, height)``, so its similarity tolerance grows with the distance from the image
origin. Here proposals are converted to ``(x, y, width, height)`` first;
``digits_corner_quirk=True`` reproduces DIGITS exactly
(its KITTI settings: threshold 0.6, ``group_threshold`` 3, ``eps`` 0.02, ``min_height`` 22).
Rectangle coordinates are kept as floats, where OpenCV rounds them to integers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from scipy.sparse.csgraph import connected_components
from torch import Tensor, nn

from heliobench.tasks.detection.classifier import he_init, inception_stack, max_pool, stem

#: DIGITS' DetectNet grid stride (network-input pixels); the paper's adapted network has 8.
STRIDE = 16
STRIDES = (16, 8)
BBOX_LOSS_WEIGHT = 2.0


def cell_size(stride: int = STRIDE, upsample: int = 1) -> int:
    """A grid cell's side in pixels of the image handed to the network: ``stride / upsample``.

    ValueError unless ``stride`` is 16 or 8 and ``upsample`` a positive divisor of it.
    """
    if stride not in STRIDES or upsample < 1 or stride % upsample:
        raise ValueError(f"DetectNet needs stride 16 or 8 and upsample dividing it, got stride {stride}, upsample {upsample}")
    return stride // upsample


class DetectNetOutput(NamedTuple):
    """Network output on a grid of (H/cell, W/cell) cells."""

    coverage: Tensor  # (B, 1, gh, gw), in [0, 1]
    bbox: Tensor  # (B, 4, gh, gw), input pixels relative to each cell's top-left corner
    coverage_logit: Tensor  # (B, 1, gh, gw), the coverage before the sigmoid


class DetectNetLoss(NamedTuple):
    """The two DetectNet losses and their weighted sum (coverage + 2 bbox)."""

    coverage: Tensor
    bbox: Tensor
    total: Tensor


class Detections(NamedTuple):
    """Boxes found in one image and their DIGITS confidence, ln(number of merged cells)."""

    boxes: np.ndarray  # (K, 4) as (x0, y0, x1, y1), pixel-edge coordinates
    confidence: np.ndarray  # (K,)


class DetectNet(nn.Module):
    """DetectNet: GoogLeNet trunk to Inception 5b, coverage and bbox heads.

    ``width`` scales every channel count (1 = the published network); ``stride`` 16 is
    DIGITS' grid, 8 the paper's (first pooling removed); ``upsample`` resizes the input by
    that factor first (the paper: 2, 256 -> 512 pixels). Input height and width must be
    multiples of :attr:`cell` (``stride / upsample``). Initialised as the classifier (He, zero
    biases); weights are kept channels-last.
    """

    def __init__(self, in_channels: int = 1, width: float = 1.0, dropout: float = 0.4, stride: int = STRIDE,
                 upsample: int = 1) -> None:
        super().__init__()
        if width <= 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"DetectNet needs width > 0 and 0 <= dropout < 1, got {width} and {dropout}")
        self.cell = cell_size(stride, upsample)
        self.upsample = upsample
        trunk_stem, ch = stem(in_channels, width, pool1=stride == 16)
        stage3, ch = inception_stack("3a 3b", ch, width)
        stage45, ch = inception_stack("4a 4b 4c 4d 4e 5a 5b", ch, width)
        self.trunk = nn.Sequential(trunk_stem, stage3, max_pool(), stage45, nn.Dropout(dropout))
        self.coverage_head = nn.Conv2d(ch, 1, 1)
        self.bbox_head = nn.Conv2d(ch, 4, 1)
        he_init(self)
        self.to(memory_format=torch.channels_last)  # channels-last pooling is 3-6x faster on a CPU

    def forward(self, x: Tensor) -> DetectNetOutput:
        if x.shape[-2] % self.cell or x.shape[-1] % self.cell:
            raise ValueError(f"DetectNet input height and width must be multiples of {self.cell}, got {tuple(x.shape[-2:])}")
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        features = self.trunk(x)
        logit = self.coverage_head(features)
        return DetectNetOutput(torch.sigmoid(logit), self.bbox_head(features), logit)


def detectnet_losses(coverage_logit: Tensor, pred_bbox: Tensor, tgt_cov: Tensor, tgt_bbox: Tensor,
                     obj_norm: Tensor | None = None) -> DetectNetLoss:
    """The coverage (cross-entropy on the logits) and DIGITS' bbox (L1, foreground-masked,
    size-normalised) losses.

    Shapes: coverage (N, 1, gh, gw), bbox (N, 4, gh, gw), ``obj_norm`` (N, 1, gh, gw) or
    None for DIGITS' ``obj_norm: false``.
    """
    n = coverage_logit.shape[0]
    coverage = F.binary_cross_entropy_with_logits(coverage_logit, tgt_cov, reduction="sum") / (2 * n)
    foreground = tgt_cov > 0
    size = torch.cat([tgt_bbox[:, 2:3] - tgt_bbox[:, 0:1], tgt_bbox[:, 3:4] - tgt_bbox[:, 1:2]], dim=1)
    inverse_size = torch.where(foreground, 1.0 / size.clamp_min(1e-6), torch.zeros_like(size))
    mask = inverse_size.repeat(1, 2, 1, 1)  # (1/w, 1/h, 1/w, 1/h)
    if obj_norm is not None:
        mask = mask * obj_norm
    bbox = (mask * (pred_bbox - tgt_bbox)).abs().sum() / n
    return DetectNetLoss(coverage, bbox, coverage + BBOX_LOSS_WEIGHT * bbox)


def _similar(rects: np.ndarray, eps: float) -> np.ndarray:
    """OpenCV's SimilarRects for all pairs of (x, y, w, h) rectangles."""
    x, y, w, h = rects.T
    delta = eps * (np.minimum.outer(w, w) + np.minimum.outer(h, h)) * 0.5
    return ((np.abs(np.subtract.outer(x, x)) <= delta) & (np.abs(np.subtract.outer(y, y)) <= delta)
            & (np.abs(np.subtract.outer(x + w, x + w)) <= delta) & (np.abs(np.subtract.outer(y + h, y + h)) <= delta))


def group_rectangles(rects: ArrayLike, group_threshold: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV ``groupRectangles`` on (N, 4) ``(x, y, w, h)`` rectangles: (rectangles, weights).

    Rectangles are partitioned into the transitive classes of the similarity "every edge
    within ``eps * (min width + min height) / 2``"; each class becomes its mean rectangle
    with weight = class size; classes of size <= ``group_threshold`` are dropped, and so is
    a class lying inside another class above the threshold (within ``eps`` of that one's
    size) when that one has more than max(3, its size) members or it has fewer than 3.
    Classes come in order of their first member. With ``group_threshold <= 0`` the input
    comes back unchanged with weights 1, as in OpenCV.
    """
    rects = np.asarray(rects, dtype=float).reshape(-1, 4)
    if group_threshold <= 0 or len(rects) == 0:
        return rects.copy(), np.ones(len(rects), dtype=np.int64)
    _, components = connected_components(_similar(rects, eps), directed=False)
    _, first, labels = np.unique(components, return_index=True, return_inverse=True)
    order = np.argsort(first)  # classes numbered by first member, as cv::partition
    labels = np.argsort(order)[labels]
    counts = np.bincount(labels)
    means = np.zeros((len(counts), 4))
    np.add.at(means, labels, rects)
    means /= counts[:, None]
    kept = []
    for i, (r1, n1) in enumerate(zip(means, counts)):
        if n1 <= group_threshold:
            continue
        inside = any(
            j != i and n2 > group_threshold
            and r1[0] >= r2[0] - r2[2] * eps and r1[1] >= r2[1] - r2[3] * eps
            and r1[0] + r1[2] <= r2[0] + r2[2] * (1 + eps) and r1[1] + r1[3] <= r2[1] + r2[3] * (1 + eps)
            and (n2 > max(3, n1) or n1 < 3)
            for j, (r2, n2) in enumerate(zip(means, counts)))
        if not inside:
            kept.append(i)
    return means[kept], counts[kept]


def cell_boxes(coverage: ArrayLike, bbox: ArrayLike, threshold: float, stride: int = STRIDE) -> np.ndarray:
    """The (N, 4) boxes proposed by the cells with coverage >= ``threshold`` (row-major order)."""
    cov = np.asarray(coverage, dtype=float).reshape(np.shape(coverage)[-2:])
    offsets = np.asarray(bbox, dtype=float)
    gy, gx = np.nonzero(cov >= threshold)
    corner = np.stack([gx, gy, gx, gy], axis=1) * stride
    return offsets[:, gy, gx].T + corner


def decode_boxes(coverage: ArrayLike, bbox: ArrayLike, threshold: float, stride: int = STRIDE,
                 group_threshold: int = 1, eps: float = 0.2, min_height: float = 0.0,
                 digits_corner_quirk: bool = False) -> Detections:
    """Boxes of one image from its coverage (gh, gw) or (1, gh, gw) and bbox (4, gh, gw) maps."""
    proposals = cell_boxes(coverage, bbox, threshold, stride)
    if digits_corner_quirk:
        grouped, weights = group_rectangles(proposals, group_threshold, eps)
    else:
        xywh = np.concatenate([proposals[:, :2], proposals[:, 2:] - proposals[:, :2]], axis=1)
        grouped, weights = group_rectangles(xywh, group_threshold, eps)
        grouped = np.concatenate([grouped[:, :2], grouped[:, :2] + grouped[:, 2:]], axis=1)
    tall = grouped[:, 3] - grouped[:, 1] >= min_height
    return Detections(grouped[tall], np.log(weights[tall]).astype(float))

"""GOTURN crops: target and search windows, crop coordinates, and the motion-model augmentation.

This follows Held et al. (ECCV 2016) and their code (davheld/GOTURN: ``helper/bounding_box.cpp``,
``train/example_generator.cpp``, ``scripts/train.sh``):

- Context window: centred on a box, ``CONTEXT_FACTOR`` (2) times its width and height, and at
  least 1 pixel. The *target* is the previous frame cut at the previous box's window. The
  *search region* is the current frame cut at the *same* window. Parts outside the frame are
  zero (GOTURN's edge spacing). Windows are snapped to whole pixels; GOTURN also crops with an
  integer ``cv::Rect``. Both crops are resized bilinearly to a square ``size`` x ``size``. Unlike GOTURN's
  ``cv::resize``, we low-pass filter when shrinking (``antialias``), so fine solar structure in
  a large window does not alias.
- Crop coordinates: a box relative to the window, divided by the window size and multiplied
  by ``COORD_SCALE`` (10, GOTURN's ``kScaleFactor``). The window spans [0, 10] on both axes.
- Motion model, for training: the current box is shifted and rescaled before its window is cut,
  and the network must regress the true box inside that window. Relative size change
  ``gamma ~ Laplace(0, 1/15)``, clipped to [-0.4, 0.4], so ``w' = w (1 + gamma)``, kept in
  [1, W - 1]. Centre shift ``dx ~ Laplace(0, 1/5)`` in units of the box width (``cx' = cx +
  w dx``), and likewise for y. A shift is drawn again (up to 10 tries) while the new centre
  leaves the old context window. The new box is then kept inside the frame. These are
  ``lambda_shift = 5``, ``lambda_scale = 15``, ``min/max_scale = -/+0.4`` of ``train.sh``.

Boxes follow :mod:`.boxes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from heliobench.tasks.tracking.boxes import as_boxes, centres, from_centres, sizes

CONTEXT_FACTOR = 2.0
COORD_SCALE = 10.0


@dataclass(frozen=True)
class MotionModel:
    """Laplace scales and limits of GOTURN's motion model (defaults from ``train.sh``)."""

    shift_scale: float = 1 / 5
    size_scale: float = 1 / 15
    max_size_change: float = 0.4
    max_tries: int = 10


@dataclass(frozen=True)
class CropWindow:
    """A whole-pixel window [x0, x1) x [y0, y1) in frame coordinates; it may leave the frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    def _origin_and_size(self) -> tuple[np.ndarray, np.ndarray]:
        origin = np.array([self.x0, self.y0, self.x0, self.y0], dtype=np.float64)
        size = np.array([self.x1 - self.x0, self.y1 - self.y0] * 2, dtype=np.float64)
        return origin, size

    def to_crop(self, boxes: ArrayLike) -> np.ndarray:
        """Frame boxes (N, 4) in crop coordinates, where the window spans [0, COORD_SCALE]."""
        origin, size = self._origin_and_size()
        return (as_boxes(boxes) - origin) / size * COORD_SCALE

    def from_crop(self, coords: ArrayLike) -> np.ndarray:
        """Crop coordinates (N, 4) back in frame coordinates; the inverse of ``to_crop``."""
        origin, size = self._origin_and_size()
        return as_boxes(coords, "coords") / COORD_SCALE * size + origin


def context_window(box: ArrayLike, context: float = CONTEXT_FACTOR) -> CropWindow:
    """The window centred on ``box``, ``context`` times its size, rounded to whole pixels."""
    boxes = as_boxes(box, "box")
    (cx, cy), (w, h) = centres(boxes)[0], sizes(boxes)[0]
    half_w, half_h = max(1.0, context * w) / 2, max(1.0, context * h) / 2
    x0, y0, x1, y1 = (int(np.floor(edge + 0.5))
                      for edge in (cx - half_w, cy - half_h, cx + half_w, cy + half_h))
    return CropWindow(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def frame_tensor(frame: ArrayLike | torch.Tensor) -> torch.Tensor:
    """A frame as a float32 tensor (C, H, W); a 2-D frame gets one channel.

    Arrays are first cast to native-endian float32, since FITS data are often big-endian.
    """
    tensor = frame.float() if torch.is_tensor(frame) \
        else torch.from_numpy(np.asarray(frame, dtype=np.float32))
    if tensor.dim() == 2:
        tensor = tensor[None]
    if tensor.dim() != 3:
        raise ValueError(f"frame: expected (H, W) or (C, H, W), got shape {tuple(tensor.shape)}")
    return tensor


def crop(frame: torch.Tensor, window: CropWindow, size: int) -> torch.Tensor:
    """Cut ``window`` out of ``frame`` (C, H, W), zero off the frame, resized to (C, size, size)."""
    _, height, width = frame.shape
    out = frame.new_zeros((frame.shape[0], window.y1 - window.y0, window.x1 - window.x0))
    sx0, sy0 = max(window.x0, 0), max(window.y0, 0)
    sx1, sy1 = max(sx0, min(window.x1, width)), max(sy0, min(window.y1, height))
    out[:, sy0 - window.y0:sy1 - window.y0, sx0 - window.x0:sx1 - window.x0] = \
        frame[:, sy0:sy1, sx0:sx1]
    return F.interpolate(out[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def crop_pair(prev_frame: torch.Tensor, curr_frame: torch.Tensor, prev_box: ArrayLike,
              size: int) -> tuple[torch.Tensor, torch.Tensor, CropWindow]:
    """Target (previous frame) and search region (current frame), both at ``prev_box``'s window."""
    window = context_window(prev_box)
    return crop(prev_frame, window, size), crop(curr_frame, window, size), window


def _shift_axis(centre: float, length: float, limit: int, rng: np.random.Generator,
                motion: MotionModel) -> tuple[float, float]:
    change = np.clip(rng.laplace(0.0, motion.size_scale),
                     -motion.max_size_change, motion.max_size_change)
    new_length = float(np.clip(length * (1 + change), 1.0, limit - 1))
    for _ in range(motion.max_tries):
        new_centre = float(np.clip(centre + length * rng.laplace(0.0, motion.shift_scale),
                                   new_length / 2, limit - new_length / 2))
        if abs(new_centre - centre) <= length * CONTEXT_FACTOR / 2:
            break
    return new_centre, new_length


def shift_box(box: ArrayLike, height: int, width: int, rng: np.random.Generator,
              motion: MotionModel = MotionModel()) -> np.ndarray:
    """``box`` moved and rescaled by one draw of GOTURN's motion model, inside a H x W frame.

    Returns one box, shape (4,).
    """
    boxes = as_boxes(box, "box")
    (cx, cy), (w, h) = centres(boxes)[0], sizes(boxes)[0]
    new_cx, new_w = _shift_axis(cx, w, width, rng, motion)
    new_cy, new_h = _shift_axis(cy, h, height, rng, motion)
    return from_centres(np.array([new_cx, new_cy]), np.array([new_w, new_h]))


def motion_example(prev_frame: torch.Tensor, curr_frame: torch.Tensor, prev_box: ArrayLike,
                   curr_box: ArrayLike, rng: np.random.Generator, size: int,
                   motion: MotionModel = MotionModel()
                   ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """One GOTURN training example: target crop, search crop and regression target.

    The search window is cut around a motion-model shift of ``curr_box``. The target is
    ``curr_box`` in that window's crop coordinates, shape (4,). For still images pass the
    same frame and box twice, as GOTURN does.
    """
    _, height, width = curr_frame.shape
    target = crop(prev_frame, context_window(prev_box), size)
    window = context_window(shift_box(curr_box, height, width, rng, motion))
    return target, crop(curr_frame, window, size), window.to_crop(curr_box)[0]

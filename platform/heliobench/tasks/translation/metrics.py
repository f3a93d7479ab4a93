"""Translation metrics of Park et al. (2019): CC, RE and PPE10 per AIA channel, on the solar disk.

Definitions, after the authors' evaluation code (eunsu-park/solar_euv_generation,
``example_of_evaluation.py``):

* Images are compared in data units (DN; invert the normalisation first), at 256×256 (``bin_image``),
  on the disk only (``solar_disk_mask``: r < 0.99 R_sun; the authors' example keeps r < 392 of ≈ 400 px
  at 1024², ≈ 0.98 R_sun).
* Both images are shifted by +1 DN and clipped to [1, 2^14] DN, I = clip(x + 1, 1, 2^14) — the
  authors' guard against division by zero, and the quantity whose log2 the network predicts. A pixel with
  tar = 0 DN therefore has I_tar = 1 and counts within 10 % iff gen ≤ 0.1 DN.
* CC: Pearson correlation of I_gen and I_tar over the disk pixels (0 when either image is constant there).
* RE = (Σ I_gen − Σ I_tar) / Σ I_tar, signed per channel; the channel average ``re_abs_mean`` is the
  mean of |RE|, as the paper's averages: the signed Model A REs of its nine channels (0.01, 0.11, −0.18,
  −0.05, 0.07, 0.08, −0.03, −0.03, −0.04, as reproduced in eunsu-park/publication-code) average to
  −0.06 signed but to the reported 0.07 in absolute value.
* PPE10: share of disk pixels with |I_gen − I_tar| / I_tar ≤ 0.1 (boundary included; ratios within
  1e-9 relative of 0.1 count as 0.1, so that an exact 10 % is not lost to floating-point rounding).
* Over a test set each metric is computed per image and averaged over images (the authors' code scores
  one image pair at a time), not pooled over all pixels.

The paper resized 1024² to 256² with bilinear interpolation (skimage ``resize``, order 1);
``bin_image`` averages 4×4 blocks instead (flux-preserving, no interpolation weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

EVAL_SIZE_PX = 256
DISK_FRACTION = 0.99
PPE_THRESHOLD = 0.1
PPE_RTOL = 1e-9
OFFSET_DN = 1.0
MAX_DN = 2.0**14


def _float64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)


def bin_image(image: np.ndarray | torch.Tensor, size_px: int = EVAL_SIZE_PX) -> np.ndarray:
    """Mean over square blocks of the last two axes, down to ``size_px`` × ``size_px``."""
    x = _float64(image)
    height, width = x.shape[-2:]
    if height != width or height % size_px:
        raise ValueError(f"cannot bin a {height}×{width} image to {size_px}² (need a square multiple)")
    f = height // size_px
    return x.reshape(*x.shape[:-2], size_px, f, size_px, f).mean(axis=(-3, -1))


def solar_disk_mask(size_px: int, center_px: tuple[float, float], radius_px: float,
              fraction: float = DISK_FRACTION) -> np.ndarray:
    """Boolean (row, column) mask of pixel centres at r < fraction · radius from ``center_px`` = (x, y)."""
    rows, cols = np.mgrid[:size_px, :size_px]
    return np.hypot(cols - center_px[0], rows - center_px[1]) < fraction * radius_px


def _per_image(gen: np.ndarray, tar: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """CC, RE, PPE10 of each (image, channel): arrays (B, C, H, W) and mask (B, 1, H, W) → (B, C)."""
    g = np.clip(gen + OFFSET_DN, 1.0, MAX_DN)
    t = np.clip(tar + OFFSET_DN, 1.0, MAX_DN)
    n = mask.sum(axis=(-2, -1))
    if np.any(n == 0):
        raise ValueError("disk mask selects no pixel for at least one image")

    def disk_sum(a: np.ndarray) -> np.ndarray:
        return np.where(mask, a, 0.0).sum(axis=(-2, -1))

    dg = g - (disk_sum(g) / n)[..., None, None]
    dt = t - (disk_sum(t) / n)[..., None, None]
    var = disk_sum(dg**2) * disk_sum(dt**2)
    cc = np.divide(disk_sum(dg * dt), np.sqrt(var), out=np.zeros_like(var), where=var > 0)
    re = (disk_sum(g) - disk_sum(t)) / disk_sum(t)
    ppe10 = disk_sum(np.abs(g - t) / t <= PPE_THRESHOLD * (1 + PPE_RTOL)) / n
    return {"cc": cc, "re": re, "ppe10": ppe10}


class TranslationMetricAccumulator:
    """Streams batches; :meth:`compute` averages the per-image metrics over all images seen."""

    def __init__(self, channels: Sequence[str]):
        self.channels = list(channels)
        self._sums = {name: np.zeros(len(self.channels)) for name in ("cc", "re", "ppe10")}
        self._images = 0

    def update(self, gen: np.ndarray | torch.Tensor, tar: np.ndarray | torch.Tensor,
               disk_mask: np.ndarray | torch.Tensor) -> None:
        """Add images (B, C, H, W) or (C, H, W) in data units; ``disk_mask`` is (H, W) or (B, H, W)."""
        g, t, m = _float64(gen), _float64(tar), _float64(disk_mask).astype(bool)
        if g.ndim == 3:
            g, t = g[None], t[None]
        if g.shape != t.shape or g.shape[1] != len(self.channels):
            raise ValueError(f"gen {g.shape} and tar {t.shape} must match, with channels {self.channels}")
        m = np.broadcast_to(m.reshape(-1, 1, *m.shape[-2:]), (g.shape[0], 1, *g.shape[-2:]))
        for name, values in _per_image(g, t, m).items():
            self._sums[name] += values.sum(axis=0)
        self._images += g.shape[0]

    def compute(self) -> dict[str, float]:
        """``cc_<ch>``, ``re_<ch>``, ``ppe10_<ch>`` and ``cc_mean``, ``re_abs_mean``, ``ppe10_mean``."""
        if not self._images:
            raise ValueError("no images were added")
        means = {name: total / self._images for name, total in self._sums.items()}
        report = {f"{name}_{ch}": float(means[name][i]) for name in means for i, ch in enumerate(self.channels)}
        report["cc_mean"] = float(means["cc"].mean())
        report["re_abs_mean"] = float(np.abs(means["re"]).mean())
        report["ppe10_mean"] = float(means["ppe10"].mean())
        return report


def translation_report(gen: np.ndarray | torch.Tensor, tar: np.ndarray | torch.Tensor,
                       disk_mask: np.ndarray | torch.Tensor, channels: Sequence[str]) -> dict[str, float]:
    """Metrics of one batch (see :class:`TranslationMetricAccumulator` for shapes and keys)."""
    accumulator = TranslationMetricAccumulator(channels)
    accumulator.update(gen, tar, disk_mask)
    return accumulator.compute()

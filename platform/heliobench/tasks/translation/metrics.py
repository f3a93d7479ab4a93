"""Translation metrics of Park et al. (2019): CC, RE and PPE10 per AIA channel, on the solar disk.

Definitions, after the authors' evaluation code (eunsu-park/solar_euv_generation,
``example_of_evaluation.py``):

* Images are compared in data units (DN; invert the normalisation first), at 256×256 (``bin_image``),
  on the disk only (``solar_disk_mask``: r < 0.99 R_sun). The authors' example builds its disk filter
  with the 1024² radius (``rsun = 392`` px, ≈ 0.98 R_sun) on the 256² grid, where every pixel lies within
  392 px of the centre: as written it keeps the whole image, off-limb corona included.
* Both images are shifted by +1 DN and clipped to [1, 2^14] DN, I = clip(x + 1, 1, 2^14) — the
  authors' guard against division by zero, and the quantity whose log2 the network predicts. A pixel with
  tar = 0 DN therefore has I_tar = 1 and counts within 10 % iff gen ≤ 0.1 DN.
* CC: Pearson correlation of I_gen and I_tar over the disk pixels (0 when either image is constant there).
* RE = (Σ I_gen − Σ I_tar) / Σ I_tar, signed per channel; the channel average ``re_abs_mean`` is the
  mean of |RE|, as the paper's averages: the signed Model A REs of its nine channels (0.01, 0.11, −0.18,
  −0.05, 0.07, 0.08, −0.03, −0.03, −0.04, as reproduced in eunsu-park/publication-code) average to
  −0.007 signed but to the reported 0.07 in absolute value. ``cc_min`` is the lowest channel CC, by
  which Lim et al. (2021) chose among their best channel combinations.
* PPE10: share of disk pixels with |I_gen − I_tar| / I_tar ≤ 0.1 (boundary included; ratios within
  1e-9 relative of 0.1 count as 0.1, so that an exact 10 % is not lost to floating-point rounding).
* Over a test set each metric is computed per image and averaged over images (the authors' code scores
  one image pair at a time), not pooled over all pixels. With ``n_boot`` > 0 the channel averages get
  95 % percentile-bootstrap intervals over images (``<name>_ci_low``/``_ci_high``).

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

    def __init__(self, channels: Sequence[str], n_boot: int = 0, alpha: float = 0.05, seed: int = 0):
        self.channels = list(channels)
        self.n_boot, self.alpha, self.seed = n_boot, alpha, seed
        self._per_image: dict[str, list[np.ndarray]] = {name: [] for name in ("cc", "re", "ppe10")}

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
            self._per_image[name].append(values)

    def compute(self) -> dict[str, float]:
        """``cc_<ch>``, ``re_<ch>``, ``ppe10_<ch>``; ``cc_mean``, ``cc_min``, ``re_abs_mean``, ``ppe10_mean``
        (with ``_ci_low``/``_ci_high`` when ``n_boot`` > 0) and ``n_images``."""
        if not self._per_image["cc"]:
            raise ValueError("no images were added")
        values = {name: np.concatenate(parts) for name, parts in self._per_image.items()}  # (images, channels)
        means = {name: v.mean(axis=0) for name, v in values.items()}
        report = {f"{name}_{ch}": float(means[name][i]) for name in means for i, ch in enumerate(self.channels)}
        report |= {k: float(v) for k, v in _channel_summaries(means).items()}
        report["n_images"] = float(len(values["cc"]))
        if self.n_boot > 0:
            idx = np.random.default_rng(self.seed).integers(0, len(values["cc"]), (self.n_boot, len(values["cc"])))
            boot = _channel_summaries({name: v[idx].mean(axis=1) for name, v in values.items()})
            for key, stats in boot.items():
                low, high = np.quantile(stats, [self.alpha / 2, 1 - self.alpha / 2])
                report[f"{key}_ci_low"], report[f"{key}_ci_high"] = float(low), float(high)
        return report


def _channel_summaries(means: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Channel averages of per-channel means (..., channels): the paper's averages and the lowest CC."""
    return {"cc_mean": means["cc"].mean(axis=-1), "cc_min": means["cc"].min(axis=-1),
            "re_abs_mean": np.abs(means["re"]).mean(axis=-1), "ppe10_mean": means["ppe10"].mean(axis=-1)}


def translation_report(gen: np.ndarray | torch.Tensor, tar: np.ndarray | torch.Tensor,
                       disk_mask: np.ndarray | torch.Tensor, channels: Sequence[str]) -> dict[str, float]:
    """Metrics of one batch (see :class:`TranslationMetricAccumulator` for shapes and keys)."""
    accumulator = TranslationMetricAccumulator(channels)
    accumulator.update(gen, tar, disk_mask)
    return accumulator.compute()

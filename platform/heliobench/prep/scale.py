"""Intensity scaling steps: fixed ranges (Park et al. 2019), per-image statistics
(SCSS-Net, Jarolim et al. 2020), and NaN / off-disk handling.

NaN pixels stay NaN through every scaling step; ``FillNaN`` replaces them at the end.
"""

from __future__ import annotations

import numpy as np

from heliobench.errors import ConfigError
from heliobench.prep.base import Step, finite_number, ordered_range, positive_number
from heliobench.prep.image import PrepImage, disk_mask


def _linear_map(x: np.ndarray, low: float, high: float, out_low: float, out_high: float) -> np.ndarray:
    """``x`` clipped to [low, high] and mapped linearly onto [out_low, out_high]."""
    return out_low + (np.clip(x, low, high) - low) * ((out_high - out_low) / (high - low))


class ClipScale(Step):
    """Clip to [low, high], map linearly to [out_low, out_high] (HMI: ±3000 G -> [-1, 1])."""

    name = "clip_scale"
    version = 1

    def __init__(self, low: float, high: float, out_low: float = 0.0, out_high: float = 1.0):
        low, high = finite_number(self.name, "low", low), finite_number(self.name, "high", high)
        ordered_range(self.name, "low", low, "high", high)
        out_low = finite_number(self.name, "out_low", out_low)
        out_high = finite_number(self.name, "out_high", out_high)
        super().__init__(low=low, high=high, out_low=out_low, out_high=out_high)

    def apply(self, image: PrepImage) -> PrepImage:
        """The clipped and rescaled image."""
        p = self.params
        return image.with_data(_linear_map(image.data, p["low"], p["high"], p["out_low"], p["out_high"]))


class Log2Scale(Step):
    """log2 of the value clipped to [low, high], mapped from [log2 low, log2 high] to [-1, 1].

    The defaults are Park et al. (2019) for AIA: [1, 2^14] DN/s -> [0, 14] -> [-1, 1].
    """

    name = "log2_scale"
    version = 1

    def __init__(self, low: float = 1.0, high: float = 2.0**14):
        low, high = positive_number(self.name, "low", low), positive_number(self.name, "high", high)
        ordered_range(self.name, "low", low, "high", high)
        super().__init__(low=low, high=high)

    def apply(self, image: PrepImage) -> PrepImage:
        """The log-scaled image in [-1, 1]."""
        low, high = np.log2(self.params["low"]), np.log2(self.params["high"])
        logged = np.log2(np.clip(image.data, self.params["low"], self.params["high"]))
        return image.with_data(_linear_map(logged, low, high, -1.0, 1.0))


class PercentileScale(Step):
    """Map the image's [low_pct, high_pct] percentiles (of finite pixels) to [0, 1], clipped.

    ``PercentileScale(0, 100)`` is min-max scaling (SCSS-Net feeds [0, 1] inputs). A
    constant image becomes all zeros.
    """

    name = "percentile_scale"
    version = 1

    def __init__(self, low_pct: float = 0.0, high_pct: float = 100.0):
        low_pct = finite_number(self.name, "low_pct", low_pct)
        high_pct = finite_number(self.name, "high_pct", high_pct)
        ordered_range(self.name, "low_pct", low_pct, "high_pct", high_pct)
        if low_pct < 0 or high_pct > 100:
            raise ConfigError(f"{self.name}: percentiles must lie in [0, 100], got {low_pct!r}, {high_pct!r}")
        super().__init__(low_pct=low_pct, high_pct=high_pct)

    def apply(self, image: PrepImage) -> PrepImage:
        """The image scaled to [0, 1] by its own percentiles."""
        finite = image.data[np.isfinite(image.data)]
        if finite.size == 0:
            return image
        low, high = np.percentile(finite, [self.params["low_pct"], self.params["high_pct"]])
        if not high > low:
            return image.with_data(np.where(np.isnan(image.data), np.nan, 0.0))
        return image.with_data(_linear_map(image.data, low, high, 0.0, 1.0))


class ContrastNormalize(Step):
    """(x - median) / std of the finite pixels, clipped to ±clip and divided by clip
    (Jarolim et al. 2020), so the result lies in [-1, 1]. A constant image becomes 0."""

    name = "contrast_normalize"
    version = 1

    def __init__(self, clip: float = 1.5):
        super().__init__(clip=positive_number(self.name, "clip", clip))

    def apply(self, image: PrepImage) -> PrepImage:
        """The contrast-normalised image."""
        finite = image.data[np.isfinite(image.data)]
        std = float(finite.std()) if finite.size else 0.0
        if std == 0.0:
            return image.with_data(np.where(np.isnan(image.data), np.nan, 0.0))
        clip = self.params["clip"]
        return image.with_data(np.clip((image.data - np.median(finite)) / std, -clip, clip) / clip)


class FillNaN(Step):
    """Replace NaN pixels (HMI's off-disk pixels, off-image pixels after ``register``) by ``value``."""

    name = "fill_nan"
    version = 1

    def __init__(self, value: float = 0.0):
        super().__init__(value=finite_number(self.name, "value", value))

    def apply(self, image: PrepImage) -> PrepImage:
        """The image without NaN."""
        return image.with_data(np.where(np.isnan(image.data), np.float32(self.params["value"]), image.data))


class ZeroOffDisk(Step):
    """Set every pixel outside ``rsun_fraction`` x R_sun to 0 (NaN ones too)."""

    name = "zero_off_disk"
    version = 1

    def __init__(self, rsun_fraction: float = 1.0):
        super().__init__(rsun_fraction=positive_number(self.name, "rsun_fraction", rsun_fraction))

    def apply(self, image: PrepImage) -> PrepImage:
        """The image with its off-disk pixels zeroed."""
        return image.with_data(np.where(disk_mask(image, self.params["rsun_fraction"]), image.data, 0.0))

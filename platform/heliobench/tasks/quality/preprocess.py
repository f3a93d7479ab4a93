"""Input preparation of Jarolim et al. (2020): Gaussian-pyramid reduction and contrast normalisation.

The original (``siqa/data/editor.py``) reduces the ±1000" sub-map with scikit-image's
``pyramid_reduce(data, downscale=shape / 128, order=3)`` (``PyramidRescaleEditor``) and
then applies ``ContrastNormalizeEditor(use_median=True, threshold=1.5)``. Both are
re-implemented here with SciPy, following scikit-image's definitions: Gaussian smoothing
with sigma = 2 * downscale / 6 (``mode='reflect'``), then a cubic-spline resize with pixel
edges aligned (``grid_mode``) and mirrored borders.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: The editor's ``10e-8`` added to the standard deviation.
CONTRAST_EPSILON = 1e-7


def pyramid_reduce(image: np.ndarray, size: int, order: int = 3) -> np.ndarray:
    """``image`` (n x n) reduced to ``size`` x ``size`` as scikit-image's ``pyramid_reduce``."""
    n = image.shape[-1]
    if image.shape != (n, n) or size > n:
        raise ValueError(f"pyramid_reduce takes a square image at least {size} px wide, got {image.shape}")
    if size == n:
        return image.astype(np.float32)
    downscale = n / size
    smoothed = ndimage.gaussian_filter(image.astype(np.float64), 2 * downscale / 6, mode="reflect")
    reduced = ndimage.zoom(smoothed, size / n, order=order, mode="mirror", grid_mode=True)
    return reduced.astype(np.float32)


def contrast_normalize(image: np.ndarray, clip: float = 1.5) -> np.ndarray:
    """``(x - median) / (std + 1e-7)``, clipped to ±clip and divided by clip: values in [-1, 1]."""
    x = image.astype(np.float64)
    z = (x - np.median(x)) / (x.std() + CONTRAST_EPSILON)
    return (np.clip(z, -clip, clip) / clip).astype(np.float32)

"""What the sky and the optics do to ground-based H-alpha images: clouds, contrails, occultation, blur."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from heliobench.archive.sim.config import HALPHA_DEGRADED_SHARE

DEGRADATIONS = ("clouds", "contrails", "occultation", "blur")


def draw_degradation(rand: np.random.Generator) -> str:
    """``"none"`` for most images, else one of DEGRADATIONS (together HALPHA_DEGRADED_SHARE)."""
    if rand.random() >= HALPHA_DEGRADED_SHARE:
        return "none"
    return DEGRADATIONS[int(rand.integers(len(DEGRADATIONS)))]


def _distance_to_line(n: int, rand: np.random.Generator, centre_offset_px: float) -> np.ndarray:
    """Signed pixel distance to a random straight line ``centre_offset_px`` from the image centre."""
    angle = rand.uniform(0.0, 2.0 * math.pi)
    rows, cols = np.mgrid[0:n, 0:n] - (n - 1) / 2.0
    return cols * math.cos(angle) + rows * math.sin(angle) - centre_offset_px


def degrade(image: np.ndarray, kind: str, disk_radius_px: float, rand: np.random.Generator) -> np.ndarray:
    """``image`` as the weather or the optics leave it (``kind`` from DEGRADATIONS)."""
    n = image.shape[0]
    if kind == "clouds":
        coarse = gaussian_filter(rand.standard_normal((16, 16)), 2.0, mode="wrap")
        cover = np.clip(
            zoom(coarse / coarse.std(), n / 16, order=1)[:n, :n] * 0.6 + rand.uniform(0.0, 0.6), 0, 1
        )
        depth = rand.uniform(0.4, 0.85)
        haze = 0.15 * float(np.median(image))
        return image * (1.0 - depth * cover) + haze * cover
    if kind == "contrails":
        out = image.copy()
        for _ in range(int(rand.integers(1, 3))):
            dist = _distance_to_line(n, rand, rand.uniform(-0.6, 0.6) * disk_radius_px)
            width = rand.uniform(0.01, 0.03) * n
            out *= 1.0 - rand.uniform(0.35, 0.6) * np.exp(-(dist**2) / (2 * width**2))
        return out
    if kind == "occultation":
        dist = _distance_to_line(n, rand, rand.uniform(0.0, 0.7) * disk_radius_px)
        shade = 1.0 / (1.0 + np.exp(-dist / max(0.01 * n, 0.5)))
        return image * (1.0 - 0.97 * shade)
    if kind == "blur":
        return gaussian_filter(image, rand.uniform(1.5, 4.0) * max(1.0, n / 512))
    raise ValueError(f"unknown degradation {kind!r}; expected one of {DEGRADATIONS}")

"""Distances between a simulated and a real statistic, each with what counts as close.

Every distance is 0 for identical inputs and grows with the difference, in units a
reader can picture (dex, degrees, gauss, spots, a share).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Distance:
    """A distance's name, its unit and the value below which simulated and real are close."""

    name: str
    unit: str
    close_below: float
    meaning: str

    def is_close(self, value: float) -> bool:
        """Whether ``value`` is below the closeness bound."""
        return bool(np.isfinite(value) and value < self.close_below)


def wasserstein(simulated: np.ndarray, real: np.ndarray) -> float:
    """Wasserstein-1 (earth mover's) distance between two samples, in their unit."""
    simulated, real = _finite(simulated), _finite(real)
    if simulated.size == 0 or real.size == 0:
        return float("nan")
    return float(stats.wasserstein_distance(simulated, real))


def log_ratio_rms(simulated: np.ndarray, real: np.ndarray) -> float:
    """Root mean square of log10(simulated / real) over the points where both are positive (dex)."""
    simulated, real = np.asarray(simulated, dtype=float), np.asarray(real, dtype=float)
    both = np.isfinite(simulated) & np.isfinite(real) & (simulated > 0) & (real > 0)
    if not both.any():
        return float("nan")
    return float(np.sqrt(np.mean(np.log10(simulated[both] / real[both]) ** 2)))


def rms_difference(simulated: np.ndarray, real: np.ndarray) -> float:
    """Root mean square of simulated - real over the points where both are finite."""
    simulated, real = np.asarray(simulated, dtype=float), np.asarray(real, dtype=float)
    both = np.isfinite(simulated) & np.isfinite(real)
    if not both.any():
        return float("nan")
    return float(np.sqrt(np.mean((simulated[both] - real[both]) ** 2)))


def relative_error(simulated: float, real: float) -> float:
    """|simulated - real| / |real|."""
    if not (np.isfinite(simulated) and np.isfinite(real)) or real == 0:
        return float("nan")
    return float(abs(simulated - real) / abs(real))


def total_variation(simulated: Mapping[str, float], real: Mapping[str, float]) -> float:
    """Half the summed absolute difference of two discrete distributions (0 = same, 1 = disjoint).

    The inputs are counts or shares per category; each is normalised to sum to 1.
    """
    keys = sorted(set(simulated) | set(real))
    p = np.array([simulated.get(k, 0.0) for k in keys], dtype=float)
    q = np.array([real.get(k, 0.0) for k in keys], dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


#: The distances the report uses.
W1_DEX = Distance("Wasserstein-1 of log10(I / disk median)", "dex", 0.05,
                  "mean shift between the two distributions' quantiles; 0.05 dex is a 12 % intensity shift")
LOG_RMS = Distance("RMS log10 ratio", "dex", 0.1, "typical factor between the curves; 0.1 dex is 26 %")
W1_GAUSS = Distance("Wasserstein-1 of B_LOS", "G", 2.0, "mean shift of the field's quantiles")
W1_DEG = Distance("Wasserstein-1", "deg", 2.0, "mean shift of the angles' quantiles")
RMS_DEG = Distance("RMS difference of yearly mean |latitude|", "deg", 2.0, "typical gap between the two butterfly-wing centres")
W1_LOG_AREA = Distance("Wasserstein-1 of log10(area / MSH)", "dex", 0.1, "0.1 dex is a 26 % area shift")
W1_SPOTS = Distance("Wasserstein-1 of the number of spots", "spots", 1.0, "mean shift of the counts' quantiles")
REL = Distance("relative error", "", 0.2, "|simulated - real| / |real|")
TV = Distance("total variation distance", "", 0.1, "share of regions that would have to change class; 0 same, 1 disjoint")

"""Published values the report uses where the real files are absent (each with its source)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Published:
    """A published value, its uncertainty where the source gives one, and where it comes from."""

    value: float
    citation: str
    error: float = float("nan")


#: Joy's law for white-light sunspot groups (tilt of the line through the spots, no polarity),
#: as the Kislovodsk table measures it: tilt = slope x latitude.
JOY_SLOPE = Published(
    0.26,
    "Dasi-Espuig et al. 2010, A&A 518, A7: Joy's law of Mount Wilson white-light groups, tilt = (0.26 ± 0.05) × latitude",
    error=0.05,
)

#: Spörer's law: the centroid of the sunspot zones drifts as 28° exp(-t / 90 months) from the
#: start of a cycle; cycle 24 started in December 2008 (SIDC minimum 2008.9).
SPORER = Published(28.0, "Hathaway 2011, Sol. Phys. 273, 221: mean latitude 28° × exp(-t / 90 months) from the cycle start (cycle 24: 2008.9)")
_CYCLE24_START_YEAR = 2008.9
_SPORER_E_FOLD_YEARS = 7.5


def sporer_latitude_deg(year: np.ndarray) -> np.ndarray:
    """Hathaway's (2011) mean unsigned latitude of cycle-24 sunspot groups at decimal ``year``."""
    return SPORER.value * np.exp(-(np.asarray(year, dtype=float) - _CYCLE24_START_YEAR) / _SPORER_E_FOLD_YEARS)

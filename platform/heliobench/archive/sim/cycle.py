"""The solar cycle: active-region emergence rate, butterfly latitudes, Hale polarities, NOAA numbers.

Cycles follow Hathaway et al. (1994)'s shape ``x**3 / (exp(x**2) - 0.71)``, timed on the real
cycles 22-25 (cycle 26 extrapolated); cycle 24's timing, amplitude and butterfly wing are fit
to the Kislovodsk sunspot groups of 2010-2020 (groups on the disk per day, yearly mean
latitude), the first groups of cycle 25 appearing in 2019. Times are MJD (UTC days).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from heliobench.errors import HelioBenchError

_HATHAWAY_C = 0.71
_X = np.linspace(0.0, 4.0, 4001)
_SHAPE = _X**3 / (np.exp(_X**2) - _HATHAWAY_C)
#: Position and height of the shape's maximum (the cycle peak), for normalisation.
_X_PEAK = float(_X[np.argmax(_SHAPE)])
_SHAPE_PEAK = float(_SHAPE.max())

_DAYS_PER_YEAR = 365.25
_MJD_2000 = 51544.5  # 2000-01-01T12:00 UTC


@dataclass(frozen=True)
class Cycle:
    """One solar cycle: start, peak, peak emergence rate over the whole Sun."""

    number: int
    start_year: float
    peak_year: float
    peak_rate_per_day: float
    #: Spörer's law: the mean latitude of emergence falls from ``start_latitude_deg`` with this
    #: e-folding time (Hathaway 2011: 28° and 90 months on average over cycles 12-23).
    start_latitude_deg: float = 28.0
    latitude_efold_years: float = 7.5

    def shape(self, mjd: np.ndarray) -> np.ndarray:
        """Relative activity in [0, 1] (1 at the cycle peak)."""
        years = (np.asarray(mjd, dtype=float) - _MJD_2000) / _DAYS_PER_YEAR + 2000.0
        x = np.clip((years - self.start_year) / (self.peak_year - self.start_year) * _X_PEAK, 0.0, None)
        return x**3 / (np.exp(np.minimum(x, 6.0) ** 2) - _HATHAWAY_C) / _SHAPE_PEAK

    def mean_latitude_deg(self, mjd: float) -> float:
        """Mean unsigned latitude of emergence (Spörer's law, Hathaway 2011)."""
        years = (mjd - _MJD_2000) / _DAYS_PER_YEAR + 2000.0
        return self.start_latitude_deg * float(np.exp(-max(years - self.start_year, 0.0) / self.latitude_efold_years))

    @property
    def north_leading_polarity(self) -> int:
        """Sign of the leading spots in the north (Hale's law: odd cycles positive)."""
        return 1 if self.number % 2 else -1


CYCLES = (
    Cycle(22, 1986.7, 1989.9, 1.6),
    Cycle(23, 1996.6, 2001.4, 1.45),
    Cycle(24, 2008.6, 2013.4, 1.2, start_latitude_deg=25.0, latitude_efold_years=9.0),
    Cycle(25, 2019.3, 2024.6, 1.4),
    Cycle(26, 2030.9, 2035.7, 1.25),
)
#: A few regions emerge even at the deepest minimum.
_BASE_RATE_PER_DAY = 0.01

#: Dates the simulation supports (MJD): 1996-01-01 .. 2040-01-01.
MJD_MIN = 50083.0
MJD_MAX = 66154.0
#: NOAA region 10000 was numbered on 2002-06-14; numbers count emergences from there.
_NOAA_ANCHOR_MJD = 52439
_NOAA_ANCHOR_NUMBER = 10000


def check_supported(mjd: float, what: str) -> None:
    """Raise a user error when ``mjd`` lies outside the simulated era."""
    if not MJD_MIN <= mjd < MJD_MAX:
        raise HelioBenchError(f"{what}: MJD {mjd:.3f} is outside the simulated era 1996-01-01 .. 2040-01-01")


def cycle_rates(mjd: float | np.ndarray) -> np.ndarray:
    """Emergence rate (regions per day over the whole Sun) of each cycle in CYCLES, shape (n_cycles, ...)."""
    return np.stack([c.peak_rate_per_day * c.shape(mjd) for c in CYCLES])


def emergence_rate(mjd: float | np.ndarray) -> np.ndarray:
    """Active regions emerging per day over the whole Sun."""
    return cycle_rates(mjd).sum(axis=0) + _BASE_RATE_PER_DAY


def activity(mjd: float) -> float:
    """Activity level in [0, 1]: the emergence rate relative to a strong cycle maximum."""
    return float(np.clip(emergence_rate(mjd) / 1.2, 0.0, 1.0))


def choose_cycle(mjd: float, u: float) -> Cycle:
    """The cycle a region emerging at ``mjd`` belongs to, drawn with ``u`` in [0, 1)."""
    rates = cycle_rates(mjd)
    weights = np.cumsum(rates) / max(rates.sum(), 1e-12)
    return CYCLES[min(int(np.searchsorted(weights, u, side="right")), len(CYCLES) - 1)]


def north_pole_polarity(mjd: float) -> int:
    """Sign of the north polar field: it reverses at each cycle maximum."""
    years = (mjd - _MJD_2000) / _DAYS_PER_YEAR + 2000.0
    past = [c for c in CYCLES if c.peak_year <= years]
    return -past[-1].north_leading_polarity


@lru_cache(maxsize=1)
def _cumulative_regions() -> np.ndarray:
    """Expected number of regions emerged since the NOAA anchor, at the start of each day."""
    days = np.arange(int(MJD_MIN), int(MJD_MAX) + 2)
    cum = np.concatenate([[0.0], np.cumsum(emergence_rate(days + 0.5))])[:-1]
    return cum - cum[_NOAA_ANCHOR_MJD - int(MJD_MIN)]


#: NOAA numbers reserved per region: NOAA gives a returning region a new number at each
#: disk passage, and a region lives through at most two passages (``AR_MAX_LIFETIME_DAYS``).
NOAA_SLOTS = 2


def noaa_numbers(day: int) -> range:
    """First-passage NOAA numbers of the regions emerging on ``day`` (MJD integer), in order.

    Counts follow the cycle's expected cumulative number of regions, so numbers are
    sequential, unique and a function of the day alone; each region owns ``NOAA_SLOTS``
    consecutive numbers, one per disk passage.
    """
    cum = _cumulative_regions()
    i = day - int(MJD_MIN)
    first = _NOAA_ANCHOR_NUMBER + NOAA_SLOTS * int(np.floor(cum[i]))
    return range(first, _NOAA_ANCHOR_NUMBER + NOAA_SLOTS * int(np.floor(cum[i + 1])), NOAA_SLOTS)

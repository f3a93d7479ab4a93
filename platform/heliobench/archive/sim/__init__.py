"""The simulated archive: SDO/AIA, SDO/HMI and Kanzelhoehe H-alpha files with their labels.

Files are format-identical to the real archives (JSOC exports, KSO ``.fts.gz``, HEK JSON,
NOAA SRS), drawn from a physically plausible Sun that is a pure function of (seed, time).
"""

from heliobench.archive.sim.archive import SimSummary, simulate_archive
from heliobench.archive.sim.config import SimConfig
from heliobench.archive.sim.day import simulate_day
from heliobench.archive.sim.sun import SunModel

__all__ = ["SimConfig", "SimSummary", "SunModel", "simulate_archive", "simulate_day"]

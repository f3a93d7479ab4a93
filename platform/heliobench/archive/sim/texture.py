"""The quiet-Sun network: a cellular pattern fixed in Carrington coordinates, one per seed."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from heliobench.archive.sim.streams import rng

#: Texture grid: 0.25 degree in Carrington longitude and latitude.
_PER_DEG = 4
_N_LAT, _N_LON = 180 * _PER_DEG, 360 * _PER_DEG


@lru_cache(maxsize=4)
def network_maps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(brightness, field) on the Carrington grid.

    Brightness is the network's relative contrast (zero mean, lanes bright); field is the
    network's signed flux density in units of its typical strength, in mixed-polarity clusters.
    """
    rand = rng(seed, "texture")
    cells = gaussian_filter(rand.standard_normal((_N_LAT, _N_LON)), sigma=4.0, mode=("nearest", "wrap"))
    lanes = np.exp(-((cells / cells.std()) ** 2) / 0.08)  # supergranule borders: zero crossings
    clusters = gaussian_filter(rand.standard_normal((_N_LAT, _N_LON)), sigma=16.0, mode=("nearest", "wrap"))
    field = lanes * np.tanh(2.0 * clusters / clusters.std())
    return (lanes - lanes.mean()).astype(np.float32), field.astype(np.float32)


def sample(texture: np.ndarray, carrington_lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Texture values at Carrington (lon, lat) degrees (nearest grid point)."""
    rows = np.clip(((lat_deg + 90.0) * _PER_DEG).astype(np.int64), 0, _N_LAT - 1)
    cols = ((carrington_lon_deg % 360.0) * _PER_DEG).astype(np.int64) % _N_LON
    return texture[rows, cols]

"""Random textures of the simulated Sun: Gaussian random fields with power-law spectra.

* The **quiet-Sun network** (supergranular lanes and their mixed-polarity field) is fixed in
  Carrington coordinates, one per seed.
* The **quiet corona** (EUV brightness at every scale from the network to the large-scale
  diffuse corona) and the **bright points** evolve: each epoch of ``CORONA_EPOCH_DAYS`` has
  its own fields, and the texture at a time blends two consecutive epochs so that its
  statistics stay the same while its pattern changes smoothly.
* **Patches** are small periodic fields in a feature's own tangent-plane degrees: a coronal
  hole reads its ragged boundary and its interior from one at an offset of its own.

All fields are drawn with numpy's FFT from named random streams, so a texture is a pure
function of (seed, epoch).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from heliobench.archive.sim.streams import rng

#: Grids in Carrington longitude and latitude: 0.25 degree for the network, 0.5 degree for
#: the quiet corona and its bright points (smaller structure comes from the network).
_PER_DEG = 4
_CORONA_PER_DEG = 2
#: The quiet corona changes on the time scale of supergranules' and the diffuse corona's
#: evolution: a new independent pattern every this many days.
CORONA_EPOCH_DAYS = 6.0
#: Spectral slope of the quiet corona's log-brightness, P(k) ~ k**-slope, and its scales
#: (degrees): structure from the network's loops up to supergranular groups, little beyond.
CORONA_SLOPE = 2.2
CORONA_SCALES_DEG = (1.0, 25.0)
#: Streamers and the off-limb corona follow the quiet corona's large scales (Gaussian sigma, degrees).
STREAMER_SCALE_DEG = 8.0
#: Coronal bright points over the whole Sun at once (about 400-800 on the visible disk in
#: AIA 193; Alipour & Safari 2015) and their size (Gaussian sigma, degrees).
BRIGHT_POINTS = 900
BRIGHT_POINT_SIGMA_DEG = 0.5
#: Patch textures: side (degrees, the period) and grid step.
PATCH_DEG = 64.0
_PATCH_PER_DEG = 4
#: A pixel averages the Sun over its footprint: textures are smoothed to the image's pixel
#: size (degrees of heliographic arc at disk centre) in these steps, so a coarse image shows
#: their mean, not an aliased sample of their finest structure.
_SMOOTHING_STEPS_DEG = (0.0, 0.5, 1.0, 2.0, 4.0)


def power_law_field(
    shape: tuple[int, int], per_deg: float, slope: float, scales_deg: tuple[float, float], rand: np.random.Generator
) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field, periodic on ``shape``, with power
    ``P(k) ~ k**-slope`` between the wavelengths ``scales_deg`` (smooth cut-offs outside)."""
    ky = np.fft.fftfreq(shape[0], d=1.0 / per_deg)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=1.0 / per_deg)[None, :]
    k = np.hypot(kx, ky)
    k_low, k_high = 1.0 / scales_deg[1], 1.0 / scales_deg[0]
    amplitude = (k**2 + k_low**2) ** (-slope / 4.0) * np.exp(-((k / k_high) ** 2))
    amplitude[0, 0] = 0.0
    noise = rand.standard_normal((shape[0], shape[1] // 2 + 1)) + 1j * rand.standard_normal((shape[0], shape[1] // 2 + 1))
    field = np.fft.irfft2(noise * amplitude, s=shape)
    return (field / field.std()).astype(np.float32)


def smoothing_level(pixel_deg: float) -> int:
    """The smoothing step for an image whose pixels span ``pixel_deg`` at disk centre."""
    return int(np.searchsorted(_SMOOTHING_STEPS_DEG, 0.5 * pixel_deg, side="right")) - 1


def _smooth(grid: np.ndarray, level: int) -> np.ndarray:
    sigma_cells = _SMOOTHING_STEPS_DEG[level] * grid.shape[1] / 360.0
    return gaussian_filter(grid, sigma=sigma_cells, mode=("nearest", "wrap")) if sigma_cells > 0 else grid


@lru_cache(maxsize=8)
def network_maps(seed: int, level: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(brightness, field) on the Carrington grid, smoothed to ``level``.

    Brightness is the network's relative contrast (zero mean, lanes bright); field is the
    network's signed flux density in units of its typical strength, in mixed-polarity clusters.
    """
    if level > 0:
        return tuple(_smooth(m, level) for m in network_maps(seed, 0))  # type: ignore[return-value]
    n_lat, n_lon = 180 * _PER_DEG, 360 * _PER_DEG
    rand = rng(seed, "texture")
    cells = gaussian_filter(rand.standard_normal((n_lat, n_lon)), sigma=4.0, mode=("nearest", "wrap"))
    lanes = np.exp(-((cells / cells.std()) ** 2) / 0.08)  # supergranule borders: zero crossings
    clusters = gaussian_filter(rand.standard_normal((n_lat, n_lon)), sigma=16.0, mode=("nearest", "wrap"))
    field = lanes * np.tanh(2.0 * clusters / clusters.std())
    return (lanes - lanes.mean()).astype(np.float32), field.astype(np.float32)


@lru_cache(maxsize=6)
def _corona_epoch(seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log-brightness field, bright-point map, large-scale log-brightness) of one epoch on
    the corona's Carrington grid."""
    rand = rng(seed, "corona", epoch)
    shape = (180 * _CORONA_PER_DEG, 360 * _CORONA_PER_DEG)
    field = power_law_field(shape, _CORONA_PER_DEG, CORONA_SLOPE, CORONA_SCALES_DEG, rand)
    large = gaussian_filter(field, sigma=STREAMER_SCALE_DEG * _CORONA_PER_DEG, mode=("nearest", "wrap"))
    points = np.zeros(shape, dtype=np.float32)
    # uniform on the sphere: latitude from arcsin of a uniform draw
    lat = np.degrees(np.arcsin(rand.uniform(-1.0, 1.0, BRIGHT_POINTS)))
    lon = rand.uniform(0.0, 360.0, BRIGHT_POINTS)
    rows = np.clip(((lat + 90.0) * _CORONA_PER_DEG).astype(np.int64), 0, shape[0] - 1)
    cols = (lon * _CORONA_PER_DEG).astype(np.int64) % shape[1]
    np.add.at(points, (rows, cols), rand.lognormal(0.0, 0.6, BRIGHT_POINTS).astype(np.float32))
    sigma = BRIGHT_POINT_SIGMA_DEG * _CORONA_PER_DEG
    points = gaussian_filter(points, sigma=sigma, mode=("nearest", "wrap")) * (2.0 * math.pi * sigma**2)
    return field, points, large / large.std()


@lru_cache(maxsize=4)
def corona_maps(seed: int, mjd: float, level: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The quiet corona at ``mjd`` on the Carrington grid: log-brightness (unit variance before
    smoothing), bright points (peak ~1) and the large-scale log-brightness that shapes the
    streamers (unit variance), blended between the two epochs around ``mjd``; the first two
    smoothed to ``level``."""
    position = mjd / CORONA_EPOCH_DAYS
    epoch = math.floor(position)
    angle = 0.5 * math.pi * (position - epoch)
    (f0, p0, l0), (f1, p1, l1) = _corona_epoch(seed, epoch), _corona_epoch(seed, epoch + 1)
    c, s = math.cos(angle), math.sin(angle)
    return _smooth(c * f0 + s * f1, level), _smooth(c * c * p0 + s * s * p1, level), c * l0 + s * l1


@lru_cache(maxsize=1)
def patch() -> np.ndarray:
    """A periodic unit-variance field of ``PATCH_DEG`` degrees: the ragged edges of coronal
    holes. One for every seed: features read it at offsets drawn from the seed's streams."""
    n = int(PATCH_DEG * _PATCH_PER_DEG)
    return power_law_field((n, n), _PATCH_PER_DEG, 3.0, (0.8, 20.0), rng(0, "texture", 1))


def _bilinear(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, wrap_rows: bool) -> np.ndarray:
    n_rows, n_cols = grid.shape
    r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    tr, tc = (rows - r0).astype(np.float32), (cols - c0).astype(np.float32)
    if wrap_rows:
        r0, r1 = r0 % n_rows, (r0 + 1) % n_rows
    else:
        r0, r1 = np.clip(r0, 0, n_rows - 1), np.clip(r0 + 1, 0, n_rows - 1)
    c0, c1 = c0 % n_cols, (c0 + 1) % n_cols
    top = grid[r0, c0] * (1 - tc) + grid[r0, c1] * tc
    bottom = grid[r1, c0] * (1 - tc) + grid[r1, c1] * tc
    return top * (1 - tr) + bottom * tr


def sample_patch(field: np.ndarray, x_deg: np.ndarray, y_deg: np.ndarray) -> np.ndarray:
    """Values of a patch texture at tangent-plane degrees (bilinear, periodic)."""
    return _bilinear(field, np.asarray(y_deg) * _PATCH_PER_DEG, np.asarray(x_deg) * _PATCH_PER_DEG, wrap_rows=True)


def sample(texture: np.ndarray, carrington_lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Values of a Carrington-grid texture (any resolution) at (lon, lat) degrees (bilinear)."""
    per_deg = texture.shape[1] / 360.0
    rows = (np.asarray(lat_deg) + 90.0) * per_deg - 0.5
    cols = (np.asarray(carrington_lon_deg) % 360.0) * per_deg - 0.5
    return _bilinear(texture, rows, cols, wrap_rows=False)

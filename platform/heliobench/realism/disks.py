"""Full-disk images brought to a common frame: physical pixel values, the Sun centred, a
chosen disk radius in pixels (resolution), NaN where the image has no data.

Geometry comes from HelioBench's readers (:func:`heliobench.archive.readers.read_map`,
with the limb fit for PNG/JPEG browse images) through :class:`heliobench.prep.image.PrepImage`.
Shrinking is a block mean over whole pixels and bilinear interpolation for the rest, so a
4096-pixel image and a 512-pixel simulation compare at the same resolution.
"""

from __future__ import annotations

import dataclasses
import math
import posixpath
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import ndimage

from heliobench.archive.readers import read_map
from heliobench.archive.readers.images import quiet_sunpy
from heliobench.prep.image import PrepImage
from heliobench.realism.display import DisplayCurve
from heliobench.storage import read_bytes

#: Field of view kept around the Sun, in solar radii (limb profiles reach 1.25 R).
EXTENT_RSUN = 1.3


@dataclass(frozen=True, eq=False)
class DiskImage:
    """An image of the full disk: pixel values in physical units, the disk's centre and radius."""

    data: np.ndarray  # float32 (ny, nx), NaN where there are no data
    centre_px: tuple[float, float]  # 0-based (x, y) of the Sun's centre
    radius_px: float
    instrument: str
    channel: str
    obs_time: datetime  # UTC
    uri: str
    exposure_s: float | None = None
    mask: np.ndarray | None = None  # bool, a label on the same grid (e.g. coronal holes)

    @property
    def name(self) -> str:
        """The file's name."""
        return posixpath.basename(self.uri.rstrip("/"))

    def distance_rsun(self) -> np.ndarray:
        """Each pixel's distance from the disk centre, in solar radii."""
        ny, nx = self.data.shape
        y, x = np.ogrid[:ny, :nx]
        return np.hypot(x - self.centre_px[0], y - self.centre_px[1]) / self.radius_px

    def with_values(self, data: np.ndarray) -> DiskImage:
        """The same image with other pixel values."""
        return dataclasses.replace(self, data=np.asarray(data, dtype=np.float32))

    def at_radius(self, radius_px: float, extent_rsun: float = EXTENT_RSUN) -> DiskImage:
        """The image resampled so that the disk radius is ``radius_px`` and its centre is the
        centre of a square ``2 * ceil(extent_rsun * radius_px) + 1`` pixels wide."""
        data, mask = self.data, self.mask
        cx, cy = self.centre_px
        factor = int(self.radius_px / radius_px)
        if factor >= 2:
            data = _block_mean(data, factor)
            mask = None if mask is None else _block_mean(mask.astype(np.float32), factor)
            cx, cy = (cx + 0.5) / factor - 0.5, (cy + 0.5) / factor - 0.5
        step = self.radius_px / max(factor, 1) / radius_px
        half = math.ceil(extent_rsun * radius_px)
        offsets = (np.arange(2 * half + 1) - half) * step
        rows, cols = np.meshgrid(cy + offsets, cx + offsets, indexing="ij")
        resampled = ndimage.map_coordinates(data.astype(np.float32), [rows, cols], order=1, mode="constant", cval=np.nan)
        new_mask = None
        if mask is not None:
            new_mask = ndimage.map_coordinates(mask.astype(np.float32), [rows, cols], order=1, mode="constant", cval=0.0) > 0.5
        return dataclasses.replace(self, data=resampled, centre_px=(float(half), float(half)), radius_px=float(radius_px),
                                   mask=new_mask)


def _block_mean(data: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks, ignoring NaN (a block of NaN stays NaN)."""
    ny, nx = (s // factor * factor for s in data.shape)
    blocks = data[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks off the disk
        return np.nanmean(blocks, axis=(1, 3), dtype=np.float64).astype(np.float32)


def load_disk(uri: str, curve: DisplayCurve | None = None, raw: bytes | None = None) -> DiskImage:
    """A full-disk observation file (FITS, JP2, PNG; ``raw``: its bytes, if already read) as a
    :class:`DiskImage`. A file that is not helioprojective (a CEA patch) is a ``PrepError``.

    Display-scaled pixels (8-bit JP2/PNG) go through ``curve`` back to physical units; without
    a curve they stay display values (fit only for statistics of ratios on linear displays).
    """
    smap = read_map(read_bytes(uri) if raw is None else raw, uri)
    with quiet_sunpy():  # sunpy's notes on assumed observer keywords (PNG, MDI, SWAP)
        image = PrepImage.from_map(smap)
    data = np.asarray(smap.data, dtype=np.float32)
    blank = smap.meta.get("blank")
    if blank is not None and np.issubdtype(np.asarray(smap.data).dtype, np.integer):
        data = np.where(np.asarray(smap.data) == blank, np.nan, data)  # lost telemetry rows
    if image.display_scaled and curve is not None:
        data = curve.to_physical(data, image.exposure_s).astype(np.float32)
    return DiskImage(
        data=data,
        centre_px=image.disk_center_px,
        radius_px=image.disk_radius_px,
        instrument=image.instrument,
        channel=image.channel,
        obs_time=image.obs_time,
        uri=uri,
        exposure_s=image.exposure_s,
    )


def whole_disk_in_frame(centre_px: tuple[float, float], radius_px: float, shape: tuple[int, int]) -> bool:
    """Whether the whole disk lies inside an image of ``shape`` (within 1 % of the radius)."""
    (cx, cy), (ny, nx), slack = centre_px, shape, 0.01 * radius_px
    return cx - radius_px >= -0.5 - slack and cy - radius_px >= -0.5 - slack and \
        cx + radius_px <= nx - 0.5 + slack and cy + radius_px <= ny - 0.5 + slack

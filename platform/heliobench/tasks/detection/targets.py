"""Ground-truth boxes on an image, DetectNet training targets, and classifier cut-outs.

Box convention, used throughout the detection task: ``(x0, y0, x1, y1)`` float pixel-edge
coordinates of the image array ``image[y, x]``: column c spans ``[c, c + 1)`` and row r
spans ``[r, r + 1)``, so a box's area is ``(x1 - x0) * (y1 - y0)`` pixels. A sunpy map's
array has solar south at row 0; sunpy's pixel coordinates put pixel centres on integers,
which this convention places at ``integer + 0.5``.

DetectNet targets reproduce the rectangular coverage generator of NVIDIA's DetectNet data
layer (``src/caffe/util/detectnet_coverage_rectangular.cpp`` in NVIDIA/caffe, as set up by
DIGITS' DetectNet network: ``stride 16, scale_cvg 0.4, gridbox_type GRIDBOX_MIN,
min_cvg_len 20, obj_norm true``). For each box:

* the coverage region is a rectangle centred on the box, of the box's size times
  ``scale_cvg``, but at least ``min_cvg_len`` pixels and at most the box's size per side;
* every grid cell (``stride`` x ``stride`` pixels) the region overlaps with positive area
  gets coverage 1, the box corners relative to the cell's top-left corner
  ``(x0 - gx*stride, y0 - gy*stride, x1 - gx*stride, y1 - gy*stride)`` as bbox target,
  and ``obj_norm = stride**2 / region area`` (so large objects do not dominate the loss);
* a cell covered by several boxes keeps the last box's targets, as DIGITS does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import astropy.units as u
import numpy as np
import torch
import torch.nn.functional as F
from astropy.coordinates import SkyCoord
from numpy.typing import ArrayLike
from sunpy.coordinates import Heliocentric, HeliographicStonyhurst, Helioprojective
from sunpy.sun.constants import radius as RSUN_M

from heliobench.archive.readers.hek import bbox_to_pixels
from heliobench.prep.image import PrepImage

if TYPE_CHECKING:
    import sunpy.map

#: Boxes of at most this area (pixels, on 256-pixel magnetograms) are dropped, as in
#: de Oliveira & Gradvohl (2020).
MIN_AREA_PX = 36.0


class DetectNetTargets(NamedTuple):
    """Per-cell training targets of one image on a grid of (H/stride, W/stride) cells."""

    coverage: np.ndarray  # (1, gh, gw): 1 where an object's coverage region falls, else 0
    bbox: np.ndarray  # (4, gh, gw): box corners relative to the cell's top-left corner
    obj_norm: np.ndarray  # (1, gh, gw): stride**2 / coverage-region area, 0 outside objects


def as_boxes(boxes: ArrayLike) -> np.ndarray:
    """A float (N, 4) array of ``(x0, y0, x1, y1)`` boxes; ValueError if not that shape."""
    array = np.asarray(boxes, dtype=float)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4) as (x0, y0, x1, y1), got {array.shape}")
    return array


def box_area(boxes: ArrayLike) -> np.ndarray:
    """Areas in pixels of (N, 4) boxes (0 for inverted boxes)."""
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def large_enough(boxes: ArrayLike, min_area_px: float = MIN_AREA_PX) -> np.ndarray:
    """Boolean mask of the boxes whose area exceeds ``min_area_px`` (36 by default)."""
    return box_area(boxes) > min_area_px


def hek_box(polygon_arcsec: Sequence[Sequence[float]], smap: sunpy.map.GenericMap) -> np.ndarray:
    """The pixel box of a HEK ``hpc_bbox`` polygon (helioprojective arcsec) on ``smap``."""
    return np.asarray(bbox_to_pixels(polygon_arcsec, smap)) + 0.5


def surface_square(lat_deg: float, lon_deg: float, size_deg: float, observer: SkyCoord, rsun_m: u.Quantity,
                   samples_per_side: int = 9) -> SkyCoord:
    """The visible outline of a ``size_deg`` square in Stonyhurst latitude/longitude, seen by ``observer``.

    The square is centred on (``lat_deg``, ``lon_deg``) at the observer's time and lies on
    the solar surface; its outline is sampled and the points behind the limb are left out.
    A square wholly behind the limb raises ValueError naming the location and the time.
    """
    half = size_deg / 2
    t = np.linspace(-half, half, samples_per_side)
    lats = lat_deg + np.concatenate([t, np.full_like(t, half), t, np.full_like(t, -half)])
    lons = lon_deg + np.concatenate([np.full_like(t, -half), t, np.full_like(t, half), t])
    obstime = observer.obstime
    outline = SkyCoord(lons * u.deg, lats * u.deg, rsun_m, frame=HeliographicStonyhurst(obstime=obstime, rsun=rsun_m))
    towards_observer = outline.transform_to(Heliocentric(observer=observer, obstime=obstime)).z
    visible = towards_observer > rsun_m**2 / observer.radius  # in front of the limb
    if not np.any(visible):
        raise ValueError(
            f"the region at Stonyhurst latitude {lat_deg} deg, longitude {lon_deg} deg is behind "
            f"the limb at {obstime.isot}")
    return outline[visible]


def heliographic_box(lat_deg: float, lon_deg: float, size_deg: float, smap: sunpy.map.GenericMap,
                     samples_per_side: int = 9) -> np.ndarray:
    """The pixel box of a ``size_deg`` square in Stonyhurst latitude/longitude on ``smap``.

    The square (see :func:`surface_square`) is placed at the map's observation time, seen
    from its observer, projected through the map's WCS and boxed.
    """
    outline = surface_square(lat_deg, lon_deg, size_deg, smap.observer_coordinate, smap.rsun_meters, samples_per_side)
    pixels = smap.world_to_pixel(outline)
    x, y = pixels.x.to_value(u.pix) + 0.5, pixels.y.to_value(u.pix) + 0.5
    return np.array([x.min(), y.min(), x.max(), y.max()])


def grid_box(lat_deg: float, lon_deg: float, size_deg: float, grid: PrepImage, observer: SkyCoord) -> np.ndarray:
    """The box of a ``size_deg`` Stonyhurst square on a registered grid, seen by ``observer``.

    Like :func:`heliographic_box`, through the grid's linear WCS (:meth:`PrepImage.world_to_pixel`)
    with the standard photospheric radius.
    """
    hpc = surface_square(lat_deg, lon_deg, size_deg, observer, RSUN_M).transform_to(
        Helioprojective(observer=observer, obstime=observer.obstime))
    x, y = grid.world_to_pixel(hpc.Tx.to_value(u.arcsec), hpc.Ty.to_value(u.arcsec))
    return np.array([x.min(), y.min(), x.max(), y.max()]) + 0.5


def _coverage_region(box: np.ndarray, scale_cvg: float, min_cvg_len: float) -> np.ndarray:
    """DIGITS' GRIDBOX_MIN coverage rectangle of one box."""
    centre = (box[:2] + box[2:]) / 2
    size = box[2:] - box[:2]
    shrunk = np.minimum(size, np.maximum(min_cvg_len, size * scale_cvg))
    return np.concatenate([centre - shrunk / 2, centre + shrunk / 2])


def detectnet_targets(boxes: ArrayLike, image_shape: tuple[int, int], stride: int = 16,
                      scale_cvg: float = 0.4, min_cvg_len: float = 20.0) -> DetectNetTargets:
    """DetectNet coverage, bbox and obj-norm targets of ``boxes`` on an image of ``image_shape``.

    Height and width must be multiples of ``stride``; boxes of zero area are ignored.
    """
    height, width = image_shape
    if height % stride or width % stride:
        raise ValueError(f"image shape {image_shape} is not a multiple of the stride {stride}")
    gh, gw = height // stride, width // stride
    coverage = np.zeros((1, gh, gw), dtype=np.float32)
    bbox = np.zeros((4, gh, gw), dtype=np.float32)
    obj_norm = np.zeros((1, gh, gw), dtype=np.float32)
    boxes = as_boxes(boxes)
    for box in boxes[box_area(boxes) > 0]:
        region = _coverage_region(box, scale_cvg, min_cvg_len)
        region_area = float(np.prod(region[2:] - region[:2]))
        gx0, gy0 = (max(0, math.floor(v / stride)) for v in region[:2])
        gx1, gy1 = min(gw, math.ceil(region[2] / stride)), min(gh, math.ceil(region[3] / stride))
        for gy in range(gy0, gy1):
            for gx in range(gx0, gx1):
                cell = np.array([gx, gy, gx + 1, gy + 1], dtype=float) * stride
                overlap_w = min(region[2], cell[2]) - max(region[0], cell[0])
                overlap_h = min(region[3], cell[3]) - max(region[1], cell[1])
                if overlap_w <= 0 or overlap_h <= 0:
                    continue
                coverage[0, gy, gx] = 1.0
                bbox[:, gy, gx] = box - np.tile(cell[:2], 2)
                obj_norm[0, gy, gx] = stride * stride / region_area
    return DetectNetTargets(coverage, bbox, obj_norm)


class Window(NamedTuple):
    """A square piece of an image around a box, and where its corner lies in the image."""

    data: np.ndarray  # (side, side) float32, 0 outside the image
    col0: int  # image column of the window's first column (may be negative)
    row0: int  # image row of the window's first row


def window(image: ArrayLike, box: ArrayLike) -> Window:
    """The square of side ``ceil(max(box width, box height))`` centred on ``box``.

    The region keeps its shape; pixels outside the image (and NaN pixels) are 0.
    """
    array = np.nan_to_num(np.asarray(image, dtype=np.float32))
    x0, y0, x1, y1 = as_boxes(np.atleast_2d(box))[0]
    side = max(1, math.ceil(max(x1 - x0, y1 - y0)))
    c0 = round((x0 + x1) / 2 - side / 2)
    r0 = round((y0 + y1) / 2 - side / 2)
    data = np.zeros((side, side), dtype=np.float32)
    rows = slice(max(r0, 0), min(r0 + side, array.shape[0]))
    cols = slice(max(c0, 0), min(c0 + side, array.shape[1]))
    if rows.start < rows.stop and cols.start < cols.stop:
        data[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0] = array[rows, cols]
    return Window(data, c0, r0)


def cutout(image: ArrayLike, box: ArrayLike, size: int) -> np.ndarray:
    """A ``size`` x ``size`` float32 classifier input: the :func:`window` around ``box``,
    resampled bilinearly with antialiasing."""
    piece = torch.from_numpy(window(image, box).data)[None, None]
    resized = F.interpolate(piece, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return resized[0, 0].numpy()

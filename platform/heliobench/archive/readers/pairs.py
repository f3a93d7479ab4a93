"""Image + mask pairs stored as two files with the same stem (PNG or FITS each), such as
the Reiss et al. coronal-hole set: 1024-pixel RGB images with 4096-pixel 0/255 masks.

Both arrays come back on one grid, row 0 at the bottom (FITS/sunpy convention; PNG rows,
stored top first, are flipped): the image as float32 grey levels, the mask as uint8 0/1.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from heliobench.archive.readers.containers import open_image
from heliobench.archive.readers.formats import detect_format
from heliobench.archive.readers.raster import decode_raster
from heliobench.errors import ReaderError
from heliobench.storage import read_bytes


def _load(raw: bytes, uri: str) -> np.ndarray:
    """A 2-D array, row 0 at the bottom: a FITS image, or any PIL image converted to grey."""
    if detect_format(raw) in ("fits", "fits.gz"):
        return open_image(raw, uri).decode()
    return decode_raster(raw, uri)


def _shrink_factor(shape: tuple[int, ...], target: tuple[int, int]) -> int | None:
    """The whole-number factor that shrinks ``shape`` to ``target``, if there is one."""
    fy, fx = shape[0] / target[0], shape[1] / target[1]
    return int(fy) if fy == fx and fy.is_integer() and fy > 1 else None


def _resize_image(image: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Block mean for whole-number shrink factors, bilinear otherwise."""
    if image.shape == target:
        return image
    f = _shrink_factor(image.shape, target)
    if f is not None:
        return image.reshape(target[0], f, target[1], f).mean(axis=(1, 3), dtype=np.float32)
    return np.asarray(Image.fromarray(image).resize((target[1], target[0]), Image.Resampling.BILINEAR))


def resize_mask(mask: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Block majority for whole-number shrink factors, nearest neighbour otherwise."""
    if mask.shape == target:
        return mask
    f = _shrink_factor(mask.shape, target)
    if f is not None:
        rows = mask.reshape(mask.shape[0], target[1], f).sum(axis=2, dtype=np.int32)
        votes = rows.reshape(target[0], f, target[1]).sum(axis=1)
        return (2 * votes >= f * f).astype(np.uint8)
    return np.asarray(Image.fromarray(mask).resize((target[1], target[0]), Image.Resampling.NEAREST))


def read_image_mask_pair(
    image_path: str | os.PathLike, mask_path: str | os.PathLike, size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The image (float32, H x W) and its mask (uint8 0/1) on the image grid, or on a
    ``size`` x ``size`` grid when ``size`` is given."""
    image_uri, mask_uri = os.fspath(image_path), os.fspath(mask_path)
    image = _load(read_bytes(image_uri), image_uri).astype(np.float32)
    mask = (_load(read_bytes(mask_uri), mask_uri) > 0).astype(np.uint8)
    if mask.shape[0] * image.shape[1] != mask.shape[1] * image.shape[0]:
        raise ReaderError(
            mask_uri,
            f"mask of {mask.shape[1]}x{mask.shape[0]} pixels does not cover image {image_uri} "
            f"({image.shape[1]}x{image.shape[0]}): the aspect ratios differ",
        )
    target = (size, size) if size is not None else image.shape
    return _resize_image(np.ascontiguousarray(image), target), resize_mask(np.ascontiguousarray(mask), target)

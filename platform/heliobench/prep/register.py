"""Registration: common plate scale, Sun centred, solar north up, in one resampling.

aiapy's ``register`` (aia_prep) calls ``Map.rotate(recenter=True, scale=...)`` and then
crops and, for ML use, downsamples: several passes over a 4096² image. Here the output
grid is mapped straight to input pixels by one affine transform built from the input
WCS's linear part (CDELT, PC/CROTA) around the disk centre, after a box average by the
integer reduction factor so that strong downsampling does not alias.

Performance: on the 2-core development machine, registering a 4096² float32 array to
256² (16 x 16 box mean, then bilinear) takes about 7 ms (the box mean 5 ms, the bilinear
sampling 0.3 ms); sunpy's ``Map.rotate(recenter=True)`` followed by ``Map.resample`` on the
same array takes 13 s. Shard writing hands over RICE images already box-averaged while they
were decoded (:meth:`heliobench.prep.pipeline.Pipeline.load`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from heliobench.binning import block_mean, block_sum
from heliobench.errors import ConfigError
from heliobench.prep.base import GeometricStep, PrepError, int_in_range, positive_int, positive_number
from heliobench.prep.image import PrepImage


@dataclass(frozen=True)
class _Resampling:
    """Where each output pixel samples the block-averaged input: ``coords[:, row, col]`` = (row, col)."""

    block: int
    coords: np.ndarray


class Register(GeometricStep):
    """Resample to ``size_px``² with the Sun's centre at the image centre and north up.

    The output plate scale is set either by a fixed field of view (``fov_arcsec``, e.g.
    2457.6" for AIA's 4096 x 0.6") or by a fixed solar radius in pixels (``radius_px``,
    which also removes the ~3 % yearly change of the apparent radius along Earth's orbit).
    Exactly one of the two must be given. Solar x grows with the column, solar y with
    the row (row 0 is the south edge, as sunpy shows maps with ``origin="lower"``); the
    roll angle (CROTA2, about 180 deg for HMI) is undone.

    Before interpolating (spline ``order``, 1 = bilinear), the input is averaged over
    k x k boxes, k being the integer part of the output/input pixel-size ratio (a
    4096 -> 256 reduction averages 16 x 16 boxes). Trailing rows/columns that do not fill
    a box are dropped. Output pixels more than half a pixel beyond the input image's edge,
    or whose interpolation draws on a box holding a NaN input pixel, are NaN
    (``FillNaN`` turns them into a number); everything else is finite where the input is.

    Only the linear part of the WCS is used: the gnomonic (TAN) projection's
    non-linearity is neglected. Its error grows like rho³/3 with the angle rho from the
    projection centre (tan(rho) - rho); at 1.3 R_sun (~1250", 6.1e-3 rad) that is
    ~0.015". Against astropy's full WCS the sampling positions differ by at most 0.03 px
    at AIA's native 0.6"/px within 1.3 R_sun, also with CRVAL 100" off the Sun's centre.
    """

    name = "register"
    version = 1

    def __init__(
        self,
        size_px: int,
        fov_arcsec: float | None = None,
        radius_px: float | None = None,
        order: int = 1,
    ):
        size_px = positive_int(self.name, "size_px", size_px)
        if (fov_arcsec is None) == (radius_px is None):
            raise ConfigError(
                f"{self.name}: give exactly one of fov_arcsec or radius_px, "
                f"got fov_arcsec={fov_arcsec!r}, radius_px={radius_px!r}"
            )
        if fov_arcsec is not None:
            fov_arcsec = positive_number(self.name, "fov_arcsec", fov_arcsec)
        if radius_px is not None:
            radius_px = positive_number(self.name, "radius_px", radius_px)
        order = int_in_range(self.name, "order", order, 0, 5)
        super().__init__(size_px=size_px, fov_arcsec=fov_arcsec, radius_px=radius_px, order=order)

    def output_scale_arcsec(self, image: PrepImage) -> float:
        """Plate scale of the registered image (arcsec / pixel)."""
        if self.params["fov_arcsec"] is not None:
            return self.params["fov_arcsec"] / self.params["size_px"]
        return image.rsun_arcsec / self.params["radius_px"]

    def apply(self, image: PrepImage) -> PrepImage:
        """The registered image; its geometry says north up, Sun centred, new plate scale.

        An image already binned by :meth:`box_size` (``PrepImage.binning``) is not averaged again.
        """
        plan = self._plan(image)
        if image.binning not in (1, plan.block):
            raise PrepError(f"{image.observation}: the image is binned {image.binning} x {image.binning}, "
                            f"registration averages {plan.block} x {plan.block} boxes")
        boxes = image.data if image.binning == plan.block else block_mean(image.data, plan.block)
        data = _resample(boxes, plan, self.params["order"], np.nan)
        scale = self.output_scale_arcsec(image)
        centre = (self.params["size_px"] - 1) / 2
        return image.with_data(
            data,
            scale_arcsec=(scale, scale),
            rotation_matrix=((1.0, 0.0), (0.0, 1.0)),
            reference_px=(centre, centre),
            reference_arcsec=(0.0, 0.0),
            disk_center_px=(centre, centre),
            binning=1,
        )

    def transform_label(self, mask: np.ndarray, image: PrepImage) -> np.ndarray:
        """A label mask on ``image``'s grid, resampled like the image by majority vote.

        Each label's share of every k x k box is interpolated bilinearly and the label
        with the largest share wins; pixels off the input image get label 0.
        """
        if mask.shape != image.data.shape:
            raise PrepError(
                f"{image.observation}: label mask has shape {mask.shape}, "
                f"expected the image's {image.data.shape}"
            )
        plan = self._plan(image)
        labels, shares = _label_shares(mask, plan.block)
        # every label's share sampled in one pass (the shares hold no NaN): a channel each
        sampled = _sample(np.stack(shares), plan.coords, 1)
        sampled[:, _off_image(plan, shares[0].shape)] = 0.0
        # argmax over the labels' shares, one label at a time: the first largest share wins, as
        # with np.argmax, at a fraction of the cost of numpy's reduction over a short outer axis
        best = sampled[0]
        winner, total = np.zeros(best.shape, dtype=np.intp), best.copy()
        for index, share in enumerate(sampled[1:], start=1):
            larger = share > best
            winner[larger], best = index, np.maximum(best, share)
            total += share
        out = labels[winner]
        out[total < 0.5] = 0
        return out.astype(mask.dtype)

    def box_size(self, image: PrepImage) -> int:
        """k: the input is averaged over k x k boxes first, the integer part of the output/input pixel-size ratio."""
        return max(1, math.floor(self.output_scale_arcsec(image) / max(abs(s) for s in image.scale_arcsec) + 1e-6))

    def _plan(self, image: PrepImage) -> _Resampling:
        """The box size and, for every output pixel, its position on the box-averaged input."""
        to_arcsec = np.diag(image.scale_arcsec) @ np.array(image.rotation_matrix)
        if abs(np.linalg.det(to_arcsec)) < 1e-12:
            raise PrepError(f"{image.observation}: the WCS's CDELT/PC matrix is singular, cannot register")
        scale = self.output_scale_arcsec(image)
        to_input = scale * np.linalg.inv(to_arcsec)  # output px offset -> input px offset, (x, y)
        size = self.params["size_px"]
        centre = np.full(2, (size - 1) / 2)
        offset = np.asarray(image.disk_center_px) - to_input @ centre
        block = self.box_size(image)
        # Box b of the block-averaged image is centred on input pixel block * b + (block - 1) / 2.
        to_block, block_offset = to_input / block, (offset - (block - 1) / 2) / block
        pixels = np.arange(size, dtype=float)
        coords = np.empty((2, size, size))
        for axis, (along_cols, along_rows) in enumerate((to_block[1], to_block[0])):  # y, then x
            np.add.outer(along_rows * pixels + block_offset[1 - axis], along_cols * pixels, out=coords[axis])
        return _Resampling(block, coords)


def _label_shares(mask: np.ndarray, block: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The labels of ``mask`` and each label's share of every block x block box (float32).

    Shares are counted in integers and divided once, so they equal the float32 box mean
    of ``mask == label`` exactly (counts up to block² are exact in float32).
    """
    labels = _label_values(mask)
    if block == 1:
        return labels, [(mask == v).astype(np.float32) for v in labels]
    area = block * block
    count = np.uint16 if area <= np.iinfo(np.uint16).max else np.int64
    if len(labels) == 2 and labels[0] == 0 and labels[1] == 1:  # a 0/1 mask: count the ones, the zeros are the rest
        ones = block_sum(mask.view(np.uint8) if mask.dtype == bool else mask, block, count)
        counts = [area - ones.astype(np.int64), ones]
    else:
        counts = [block_sum((mask == v).view(np.uint8), block, count) for v in labels]
    return labels, [c.astype(np.float32) / np.float32(area) for c in counts]


def _resample(data: np.ndarray, plan: _Resampling, order: int, cval: float) -> np.ndarray:
    """``data`` sampled at ``plan.coords``; ``cval`` off the image, NaN inputs stay local.

    A pixel covers +-0.5 around its centre, so samples up to half a pixel beyond the
    outermost centres take the edge value; farther out they are ``cval``.
    """
    nan = np.isnan(data)
    if order <= 1 or not nan.any():
        out = _sample(data, plan.coords, order)
    else:
        out = _sample(np.where(nan, np.float32(0), data), plan.coords, order)
        out[_sample((~nan).astype(np.float32), plan.coords, 1) < 1 - 1e-3] = np.nan
    out[_off_image(plan, data.shape)] = cval
    return out


def _off_image(plan: _Resampling, shape: tuple[int, ...]) -> np.ndarray:
    """Output pixels whose position lies farther than half a pixel beyond an image of ``shape``."""
    extent = np.array(shape, dtype=float).reshape(2, 1, 1) - 0.5
    return np.any((plan.coords < -0.5) | (plan.coords > extent), axis=0)


def _sample(data: np.ndarray, coords: np.ndarray, order: int) -> np.ndarray:
    """``data`` at ``coords`` (spline ``order``), positions beyond the edges clamped to them;
    ``data`` of shape (channels, ny, nx) gives one sampled image per channel (order 1).

    Bilinear sampling (order 1) runs on torch's ``grid_sample`` (float32 pixels, positions
    within 2e-5 px), 8x faster than scipy's spline machinery on a 256² grid; the same
    interpolation as ``map_coordinates(order=1, mode="nearest")``. Other orders use scipy.
    """
    if order != 1:
        return ndimage.map_coordinates(data, coords, order=order, mode="nearest").astype(np.float32, copy=False)
    import torch

    # grid_sample with align_corners: -1 and 1 are the centres of the first and last pixel; (x, y) last
    grid = np.empty((*coords.shape[1:], 2), dtype=np.float32)
    for axis, length in enumerate(data.shape[-2:]):
        np.multiply(coords[axis], 2 / max(length - 1, 1), out=grid[..., 1 - axis], casting="same_kind")
    grid -= 1
    image = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).reshape(1, -1, *data.shape[-2:])
    with torch.no_grad():
        out = torch.nn.functional.grid_sample(image, torch.from_numpy(grid)[None], mode="bilinear",
                                              padding_mode="border", align_corners=True)
    return out[0].numpy().reshape(*data.shape[:-2], *coords.shape[1:])


def _label_values(mask: np.ndarray) -> np.ndarray:
    """The distinct labels of a mask (min/max for 0/1 masks, bincount for other non-negative
    integers: both much faster than unique)."""
    if mask.dtype == bool:
        return np.array([False, True])
    if mask.dtype.kind in "iu":
        low, high = mask.min(), mask.max()
        if low >= 0 and high <= 1:
            return np.arange(low, high + 1, dtype=mask.dtype)
        if low >= 0:
            return np.flatnonzero(np.bincount(mask.ravel())).astype(mask.dtype)
    return np.unique(mask)

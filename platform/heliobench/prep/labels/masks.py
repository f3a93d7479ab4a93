"""Mask label files on the registered grid: FITS with a ``CONTENT`` keyword, or PNG/JPEG
masks of the Reiss/CHRONNOS layout (``masks/X.png`` beside ``images/X.png``)."""

from __future__ import annotations

import numpy as np

from heliobench.archive.readers.containers import open_image, stand_in
from heliobench.archive.readers.formats import detect_format
from heliobench.errors import ReaderError
from heliobench.prep.image import PrepImage
from heliobench.prep.labels import LabelContext
from heliobench.storage import read_bytes


def encode_mask(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The mask carried through the geometric steps of the member's pipeline, as ``uint8`` 0/1."""
    import sunpy.map

    if detect_format(raw) in ("png", "jpeg"):
        mask, header = _raster_mask_on_grid(raw, uri, ctx)
    else:
        image = open_image(raw, uri)  # HelioBench's reader: RICE tiles decode faster than astropy's loop
        mask, header = np.asarray(image.decode()), image.header
    # The Map gives the geometry only: a zero-cost stand-in of the mask's shape, as for polygon labels (``grid_map``).
    try:
        smap = sunpy.map.Map(stand_in(mask.shape), header)
    except (OSError, ValueError) as exc:
        raise ReaderError(uri, f"not a readable mask file ({exc})") from None
    # the geometric steps use no time: the label's own saves sunpy parsing the header's again
    grid = PrepImage.from_map(smap, obs_time=ctx.time)
    return (ctx.pipeline.apply_label(mask, grid) > 0).astype(np.uint8)


def _raster_mask_on_grid(raw: bytes, uri: str, ctx: LabelContext) -> tuple[np.ndarray, dict]:
    """A PNG/JPEG mask, which has no header, on the native grid of the image it belongs to.

    The mask covers the same field of view as the card's ``grid`` image at any
    resolution (CHRONNOS masks are 4096² for 1024² images): it is brought to the image's
    shape (block majority, or nearest neighbour) and takes the image's WCS.
    """
    from heliobench.archive.readers.images import understand
    from heliobench.archive.readers.pairs import resize_mask
    from heliobench.archive.readers.raster import decode_raster

    if ctx.grid_uri is None:
        raise ReaderError(uri, f"a PNG/JPEG mask has no WCS: member {ctx.member.key} needs a `grid` image to take it from")
    grid = understand(open_image(read_bytes(ctx.grid_uri), ctx.grid_uri))
    mask = (decode_raster(raw, uri) > 0).astype(np.uint8)
    (ny, nx), (my, mx) = grid.image.shape, mask.shape
    if my * nx != mx * ny:
        raise ReaderError(uri, f"mask of {mx}x{my} pixels does not cover image {ctx.grid_uri} ({nx}x{ny}): the aspect ratios differ")
    return resize_mask(mask, (ny, nx)), grid.header

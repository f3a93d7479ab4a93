"""Mask label files (FITS with a ``CONTENT`` keyword) on the registered grid."""

from __future__ import annotations

import numpy as np

from heliobench.archive.readers.containers import open_image
from heliobench.errors import ReaderError
from heliobench.prep.labels import LabelContext


def encode_mask(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The mask carried through the geometric steps of the member's pipeline, as ``uint8`` 0/1."""
    import sunpy.map

    image = open_image(raw, uri)  # HelioBench's reader: RICE tiles decode faster than astropy's loop
    mask = np.asarray(image.decode())
    try:
        smap = sunpy.map.Map(mask.astype(np.float32), image.header)
    except (OSError, ValueError) as exc:
        raise ReaderError(uri, f"not a readable mask FITS file ({exc})") from None
    return (ctx.pipeline.apply_label(mask, smap) > 0).astype(np.uint8)

"""Mask label files (FITS with a ``CONTENT`` keyword) on the registered grid."""

from __future__ import annotations

import io

import numpy as np

from heliobench.errors import ReaderError
from heliobench.prep.labels import LabelContext


def encode_mask(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The mask carried through the geometric steps of the member's pipeline, as ``uint8`` 0/1."""
    import sunpy.map
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(raw)) as hdul:
            hdu = next(h for h in hdul if h.data is not None)
            mask = np.asarray(hdu.data)
            smap = sunpy.map.Map(mask.astype(np.float32), hdu.header)
    except (OSError, StopIteration, ValueError) as exc:
        raise ReaderError(uri, f"not a readable mask FITS file ({exc or 'no image HDU'})") from None
    return (ctx.pipeline.apply_label(mask, smap) > 0).astype(np.uint8)

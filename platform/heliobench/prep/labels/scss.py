"""SCSS-Net polygon labels (``scss_ch``, ``scss_ar``) as masks on a sample's registered grid.

The polygons of one label file (:mod:`heliobench.archive.readers.scss`) were drawn on a
4096-pixel, north-up Helioviewer frame whose disk, of radius ``RADIUS`` pixels, is centred
in the frame; vertex ``y`` counts rows from the top (SCSS-Net draws them with PIL and pairs
the result with the Helioviewer PNG unflipped), so north is at small ``y``. Each vertex
becomes an offset from the disk centre in disk radii, hence a helioprojective position
(offset x the image's apparent solar radius), which the WCS of the card's ``grid`` image
places on that image's NATIVE pixels: the polygons are scaled by image radius / ``RADIUS``
about the two disk centres, and follow the image's roll. The filled mask is then carried
through the member pipeline's geometric steps like a FITS mask, so it is registered exactly
like the image. The label's ``DATE`` and the image differ by at most the pairing tolerance
(seconds for SCSS-Net's own image times): no rotation is applied.
"""

from __future__ import annotations

import numpy as np

from heliobench.archive.readers.scss import rasterize_scss, read_scss_bytes
from heliobench.prep.image import PrepImage
from heliobench.prep.labels import LabelContext, grid_map, registered_mask


def encode_scss(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The label file's polygons as a registered ``uint8`` 0/1 mask (see the module docstring)."""
    label = read_scss_bytes(raw, uri)
    native = grid_map(uri, ctx)
    image = PrepImage.from_map(native)
    rsun = image.rsun_arcsec

    def to_pixels(dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return image.world_to_pixel(dx * rsun, dy * rsun)

    return registered_mask(rasterize_scss(label, image.data.shape, to_pixels), native, ctx)

"""Readers: one per file family, each judging a file by its content, never its name.

Observation images (FITS, tile-compressed FITS, gzipped FITS, JPEG 2000) become catalog
records (:func:`read_header`) or sunpy Maps (:func:`read_map`); label files become
polars tables (:func:`read_srs`, :func:`read_hek`), polygons and masks (SCSS-Net labels,
image/mask pairs); :func:`inspect_uri` says what any of them holds. Bad input raises
:class:`heliobench.errors.ReaderError` naming the file and the problem.

Arrays follow the FITS/sunpy convention throughout: row 0 is the bottom row.
"""

from heliobench.archive.readers.hek import bbox_to_pixels, read_hek
from heliobench.archive.readers.images import read_header, read_map
from heliobench.archive.readers.inspection import format_inspection, inspect_uri
from heliobench.archive.readers.pairs import read_image_mask_pair
from heliobench.archive.readers.scss import ScssLabel, iter_scss_zip, rasterize_scss, read_scss_label
from heliobench.archive.readers.srs import read_srs

__all__ = [
    "ScssLabel",
    "bbox_to_pixels",
    "format_inspection",
    "inspect_uri",
    "iter_scss_zip",
    "rasterize_scss",
    "read_header",
    "read_hek",
    "read_image_mask_pair",
    "read_map",
    "read_scss_label",
    "read_srs",
]

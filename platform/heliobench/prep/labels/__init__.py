"""Label files encoded as shard arrays on a sample's registered grid.

Each label kind (the ``kind`` column of ``labels.parquet``) has an encoder that turns the
raw file into a fixed-shape numpy array: masks become ``uint8`` images carried through the
geometric preprocessing steps; event and region catalogs (HEK, SRS) become padded box
tables in the registered pixels of the member named by the card's ``grid``; quality
tables become the sample's quality class. Encoders live in one module per kind.

Polygon labels (SCSS-Net files, HEK outlines) are drawn on the native grid of the card's
``grid`` image (:func:`grid_map`) and then registered like a mask (:func:`registered_mask`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from heliobench.errors import ConfigError
from heliobench.prep.image import PrepImage
from heliobench.prep.pipeline import Pipeline
from heliobench.specs import Member

if TYPE_CHECKING:
    import sunpy.map

#: Label kind → ``module:function`` of its encoder. A ``hek`` member with a ``filter`` is
#: encoded as ``hek_outlines`` (the mask of the selected events' outlines).
ENCODERS = {
    "ch_mask": "heliobench.prep.labels.masks:encode_mask",
    "ar_mask": "heliobench.prep.labels.masks:encode_mask",
    "halpha_quality": "heliobench.prep.labels.quality:encode_quality",
    "table": "heliobench.prep.labels.quality:encode_quality",  # a quality table read as its member's `table:` says
    "hek": "heliobench.prep.labels.hek:encode_hek",
    "hek_outlines": "heliobench.prep.labels.hek_outlines:encode_hek_outlines",
    "srs": "heliobench.prep.labels.srs:encode_srs",
    "scss_ch": "heliobench.prep.labels.scss:encode_scss",
    "scss_ar": "heliobench.prep.labels.scss:encode_scss",
}


@dataclass(frozen=True)
class LabelContext:
    """What an encoder knows of the sample it encodes a label file for."""

    member: Member
    time: datetime  # the sample's reference time plus the member's offset (UTC)
    pipeline: Pipeline  # the label member's pipeline (masks follow its geometric steps)
    grid: PrepImage | None  # the registered image of the member's ``grid`` (None without one)
    grid_uri: str | None  # the file that image came from
    tolerance_min: float | None = None  # the card's pairing tolerance (None: not given)


def encode_label(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The shard array of label file ``uri`` for one sample."""
    kind = ctx.member.label or ""
    if kind == "hek" and ctx.member.filter:
        kind = "hek_outlines"
    if kind not in ENCODERS:
        raise ConfigError(f"member {ctx.member.key}: no encoder for label kind {kind!r} (known: {', '.join(ENCODERS)})")
    module, name = ENCODERS[kind].split(":")
    return getattr(importlib.import_module(module), name)(raw, uri, ctx)


def grid_map(uri: str, ctx: LabelContext) -> sunpy.map.GenericMap:
    """The native grid of the member's ``grid`` image, read from its header only: a Map of
    zeros with the image's shape and repaired WCS (label file ``uri`` is named when the
    member has no grid)."""
    from heliobench.archive.readers.containers import open_image
    from heliobench.archive.readers.images import geometry_map, understand
    from heliobench.storage import read_bytes

    if ctx.grid_uri is None:
        raise ConfigError(f"member {ctx.member.key}: label {uri} is drawn on an image's grid; set `grid:` in the card "
                          f"to the observation member it belongs to")
    return geometry_map(understand(open_image(read_bytes(ctx.grid_uri), ctx.grid_uri)))


def registered_mask(mask: np.ndarray, native: sunpy.map.GenericMap, ctx: LabelContext) -> np.ndarray:
    """A mask on the ``native`` grid carried through the geometric steps of the member's
    pipeline, as ``uint8`` 0/1: registered exactly like a FITS mask label."""
    return (ctx.pipeline.apply_label(mask, native) > 0).astype(np.uint8)

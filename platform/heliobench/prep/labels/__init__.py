"""Label files encoded as shard arrays on a sample's registered grid.

Each label kind (the ``kind`` column of ``labels.parquet``) has an encoder that turns the
raw file into a fixed-shape numpy array: masks become ``uint8`` images carried through the
geometric preprocessing steps; event and region catalogs (HEK, SRS) become padded box
tables in the registered pixels of the member named by the card's ``grid``; quality
tables become the sample's quality class. Encoders live in one module per kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from heliobench.errors import ConfigError
from heliobench.prep.image import PrepImage
from heliobench.prep.pipeline import Pipeline
from heliobench.specs import Member

#: Label kind → ``module:function`` of its encoder.
ENCODERS = {
    "ch_mask": "heliobench.prep.labels.masks:encode_mask",
    "ar_mask": "heliobench.prep.labels.masks:encode_mask",
    "halpha_quality": "heliobench.prep.labels.quality:encode_quality",
    "hek": "heliobench.prep.labels.hek:encode_hek",
    "srs": "heliobench.prep.labels.srs:encode_srs",
}


@dataclass(frozen=True)
class LabelContext:
    """What an encoder knows of the sample it encodes a label file for."""

    member: Member
    time: datetime  # the sample's reference time plus the member's offset (UTC)
    pipeline: Pipeline  # the label member's pipeline (masks follow its geometric steps)
    grid: PrepImage | None  # the registered image of the member's ``grid`` (None without one)
    grid_uri: str | None  # the file that image came from


def encode_label(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """The shard array of label file ``uri`` for one sample."""
    kind = ctx.member.label or ""
    if kind not in ENCODERS:
        raise ConfigError(f"member {ctx.member.key}: no encoder for label kind {kind!r} (known: {', '.join(ENCODERS)})")
    module, name = ENCODERS[kind].split(":")
    return getattr(importlib.import_module(module), name)(raw, uri, ctx)

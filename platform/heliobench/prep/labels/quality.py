"""H-alpha quality tables (``file,obs_time,quality,degradation`` CSV per day) as a sample's label.

The row of the sample's own H-alpha file is found by file name (the basename of the
``grid`` member's file against the ``file`` column), or else by an ``obs_time`` within a
second of the sample time. A sample whose file has no row is an error, never a default.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import PurePosixPath

import numpy as np

from heliobench.errors import ReaderError
from heliobench.prep.labels import LabelContext

#: Degradation kinds of the tables, coded by their index here (``none`` = 0).
DEGRADATION_KINDS = ("none", "clouds", "contrails", "occultation", "blur")
#: Quality classes: 1 = high quality (Q1), 2 = degraded (Q2), as at Kanzelhöhe.
QUALITY_CLASSES = (1, 2)
_COLUMNS = ("file", "obs_time", "quality", "degradation")


def encode_quality(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """``float32 [quality, degradation code]`` of the sample's H-alpha file.

    The degradation code is the index in :data:`DEGRADATION_KINDS`, NaN where the table
    leaves the kind empty.
    """
    rows = _read_rows(raw, uri)
    row = _find_row(rows, uri, ctx)
    quality = row["quality"].strip()
    if quality not in {str(q) for q in QUALITY_CLASSES}:
        raise ReaderError(uri, f"row of {row['file']}: quality {quality!r}, expected 1 (Q1) or 2 (Q2)")
    kind = row["degradation"].strip().lower()
    if kind and kind not in DEGRADATION_KINDS:
        raise ReaderError(uri, f"row of {row['file']}: degradation {kind!r}, expected one of {DEGRADATION_KINDS}")
    code = DEGRADATION_KINDS.index(kind) if kind else math.nan
    return np.array([int(quality), code], dtype=np.float32)


def _read_rows(raw: bytes, uri: str) -> list[dict[str, str]]:
    try:
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReaderError(uri, f"not a readable quality table ({exc})") from None
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ReaderError(uri, f"quality table without column(s) {', '.join(missing)} (expected {','.join(_COLUMNS)})")
    return rows


def _find_row(rows: list[dict[str, str]], uri: str, ctx: LabelContext) -> dict[str, str]:
    """The row of ``ctx.grid_uri`` by file name, else the row observed within 1 s of ``ctx.time``."""
    name = PurePosixPath(ctx.grid_uri).name if ctx.grid_uri else None
    if name is not None:
        for row in rows:
            if PurePosixPath(row["file"]).name == name:
                return row
    for row in rows:
        if abs((_utc(row["obs_time"], uri) - ctx.time).total_seconds()) <= 1.0:
            return row
    wanted = name or f"an observation at {ctx.time:%Y-%m-%dT%H:%M:%S}"
    raise ReaderError(uri, f"no row for {wanted} (member {ctx.member.key}; {len(rows)} rows)")


def _utc(value: str, uri: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReaderError(uri, f"obs_time {value!r} is not an ISO time") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)

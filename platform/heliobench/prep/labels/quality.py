"""H-alpha quality tables as a sample's label.

A quality table gives each H-alpha image's quality class, one row per image. Its layout is
the member's ``table:`` (:class:`heliobench.specs.LabelTable`: which columns name the file,
the time and the class, how the table's classes map to 1 = Q1 and 2 = Q2, the CSV's
delimiter), any CSV or JSON list of records (:func:`heliobench.archive.labels.read_table`);
a member without ``table:`` reads the simulator's per-day tables
(``file,obs_time,quality,degradation``, :data:`SIMULATOR_TABLE`).

The row of the sample's own H-alpha file is found by file name (the name of the ``grid``
member's file against the ``file`` column, both without directory and extensions:
``kanz_halph_fd_20170105_000041.fts.gz`` matches ``kanz_halph_fd_20170105_000041.fts``),
or else by a ``time`` within a second of the sample time. A sample whose file has no row,
or whose row holds a class the table layout does not map, is an error naming the table
(and the row), never a default.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

import numpy as np

from heliobench.archive.labels import Table, read_table, table_time
from heliobench.errors import ReaderError
from heliobench.prep.labels import LabelContext
from heliobench.specs import LabelTable

#: Degradation kinds of the tables, coded by their index here (``none`` = 0).
DEGRADATION_KINDS = ("none", "clouds", "contrails", "occultation", "blur")
#: Quality classes: 1 = high quality (Q1), 2 = degraded (Q2), as at Kanzelhöhe.
QUALITY_CLASSES = (1, 2)
#: The layout of the simulator's tables: the layout of a member without ``table:``.
SIMULATOR_TABLE = LabelTable(file="file", time="obs_time", quality="quality", classes={"1": 1, "2": 2},
                             degradation="degradation", delimiter=",")


def encode_quality(raw: bytes, uri: str, ctx: LabelContext) -> np.ndarray:
    """``float32 [quality, degradation code]`` of the sample's H-alpha file.

    The degradation code is the index in :data:`DEGRADATION_KINDS`, NaN where the table
    leaves the kind empty or has no degradation column.
    """
    layout = ctx.member.table or SIMULATOR_TABLE
    table = read_table(raw, uri, layout.delimiter)
    _check_columns(table, layout, uri)
    number, row = _find_row(table, layout, uri, ctx)
    where = f"row {number} ({row[layout.file or layout.time or '']})"
    value = row[layout.quality]
    if value not in layout.classes:
        choices = [f"{k} (Q{v})" for k, v in layout.classes.items()]
        expected = " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
        raise ReaderError(uri, f"{where}: {layout.quality} {value!r}, expected {expected}")
    kind = row[layout.degradation].lower() if layout.degradation else ""
    if kind and kind not in DEGRADATION_KINDS:
        raise ReaderError(uri, f"{where}: degradation {kind!r}, expected one of {DEGRADATION_KINDS}")
    code = DEGRADATION_KINDS.index(kind) if kind else math.nan
    return np.array([layout.classes[value], code], dtype=np.float32)


def _check_columns(table: Table, layout: LabelTable, uri: str) -> None:
    """A :class:`ReaderError` naming the columns of ``layout`` that ``table`` lacks."""
    wanted = [c for c in (layout.file, layout.time, layout.quality, layout.degradation) if c is not None]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise ReaderError(uri, f"quality table without column(s) {', '.join(missing)} (expected {', '.join(wanted)}; "
                               f"it has {', '.join(table.columns)})")


def _find_row(table: Table, layout: LabelTable, uri: str, ctx: LabelContext) -> tuple[int, dict[str, str]]:
    """The row (number from 1, values) of ``ctx.grid_uri`` by file name, else the row observed
    within 1 s of ``ctx.time``."""
    name = _stem(ctx.grid_uri) if ctx.grid_uri else None
    if layout.file is not None and name is not None:
        for number, row in enumerate(table.rows, 1):
            if _stem(row[layout.file]) == name:
                return number, row
    if layout.time is not None:
        for number, row in enumerate(table.rows, 1):
            if abs((table_time(row[layout.time], layout.time, number, uri) - ctx.time).total_seconds()) <= 1.0:
                return number, row
    wanted = name or f"an observation at {ctx.time:%Y-%m-%dT%H:%M:%S}"
    raise ReaderError(uri, f"no row for {wanted} (member {ctx.member.key}; {len(table.rows)} rows)")


def _stem(path: str) -> str:
    """A file's name without directory and extensions (``/a/b.fts.gz`` → ``b``; ``\\`` separates too)."""
    return PurePosixPath(path.replace("\\", "/")).name.split(".", 1)[0]

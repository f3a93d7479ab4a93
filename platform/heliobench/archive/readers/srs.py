"""NOAA/SWPC Solar Region Summaries (SRS) as a polars table, one row per region.

Parsing is sunpy's (:func:`sunpy.io.special.srs.read_srs`); on top of it HelioBench
gives every region its full NOAA number (SRS writes four digits after region 10000,
and sunpy adds 10000 to every number issued after 2002-06-15, old returning regions
included), and canonical McIntosh and Mount Wilson classes whatever the spelling of
the year the report was issued in.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from heliobench.archive.readers.formats import describe_start, detect_format
from heliobench.archive.readers.noaa import full_noaa_number
from heliobench.errors import ReaderError

#: Canonical Mount Wilson classes by their letters (hyphens and case removed), with the
#: one- to three-letter abbreviations of older reports.
MT_WILSON = {
    "ALPHA": "Alpha", "A": "Alpha",
    "BETA": "Beta", "B": "Beta",
    "GAMMA": "Gamma", "G": "Gamma",
    "DELTA": "Delta", "D": "Delta",
    "BETAGAMMA": "Beta-Gamma", "BG": "Beta-Gamma",
    "BETADELTA": "Beta-Delta", "BD": "Beta-Delta",
    "BETAGAMMADELTA": "Beta-Gamma-Delta", "BGD": "Beta-Gamma-Delta",
    "GAMMADELTA": "Gamma-Delta", "GD": "Gamma-Delta",
}

_MCINTOSH = re.compile(r"^[ABCDEFH][XRSAHK][XOIC]$")

SRS_SCHEMA = {
    "issued": pl.Datetime("us", "UTC"),
    "section": pl.String,  # "I" regions with spots, "IA" plages without spots, "II" due to return
    "noaa_number": pl.Int64,
    "latitude_deg": pl.Float64,  # Stonyhurst, north positive
    "longitude_deg": pl.Float64,  # Stonyhurst, west positive (None in section II)
    "carrington_longitude_deg": pl.Float64,
    "area_msh": pl.Int64,  # millionths of the solar hemisphere
    "mcintosh_class": pl.String,  # e.g. "Dkc"
    "longitudinal_extent_deg": pl.Int64,
    "number_of_spots": pl.Int64,
    "mag_type": pl.String,  # canonical Mount Wilson class, e.g. "Beta-Gamma-Delta"
}


def mt_wilson_class(value: str, uri: str) -> str:
    """The canonical Mount Wilson class of an SRS 'Mag Type' entry."""
    letters = re.sub(r"[^A-Z]", "", value.upper())
    if letters not in MT_WILSON:
        raise ReaderError(uri, f"unknown Mount Wilson magnetic class {value!r}")
    return MT_WILSON[letters]


def mcintosh_class(value: str, uri: str) -> str:
    """The McIntosh class written canonically (``DKC`` -> ``Dkc``)."""
    code = value.strip().upper()
    if not _MCINTOSH.match(code):
        raise ReaderError(uri, f"{value!r} is not a McIntosh sunspot class")
    return code[0] + code[1:].lower()


def _column(table: Any, name: str) -> list[Any]:
    """A table column as plain Python values, None where masked or absent."""
    if name not in table.colnames:
        return [None] * len(table)
    col = table[name]
    if hasattr(col, "unmasked"):  # a masked Quantity
        values, mask = col.unmasked.value, np.asarray(col.mask)
    else:
        values, mask = np.ma.getdata(getattr(col, "value", col)), np.ma.getmaskarray(col)
    return [None if masked else value.item() for value, masked in zip(np.asarray(values), mask, strict=True)]


def read_srs(raw: bytes, uri: str) -> pl.DataFrame:
    """The regions of one SRS report (see :data:`SRS_SCHEMA` for the columns)."""
    from sunpy.io.special.srs import read_srs as sunpy_read_srs

    if detect_format(raw) != "srs":
        raise ReaderError(uri, f"not an SRS report (no ':Product: ...SRS' header; starts with {describe_start(raw)})")
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as tmp:
        tmp.write(raw)
        tmp.flush()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                table = sunpy_read_srs(tmp.name)
            except Exception as exc:  # sunpy's parser fails with many types on malformed reports
                raise ReaderError(uri, f"SRS report cannot be parsed ({type(exc).__name__}: {exc})") from None
    issued = table.meta.get("issued")
    if not isinstance(issued, datetime):
        raise ReaderError(uri, "SRS report without a readable ':Issued:' line: the report's date is unknown")
    issued = issued.replace(tzinfo=timezone.utc)
    columns = {name: _column(table, name) for name in table.colnames}
    rows = []
    for i in range(len(table)):
        cell = {name: values[i] for name, values in columns.items()}
        mcintosh, mag = cell.get("Z"), cell.get("Mag Type")
        number = _number(cell, "Number", i, uri)
        if number is None:
            raise ReaderError(uri, f"region {i + 1} of the SRS report has no region number")
        rows.append({
            "issued": issued,
            "section": cell["ID"],
            "noaa_number": full_noaa_number(round(number) % 10000, issued),
            "latitude_deg": _number(cell, "Latitude", i, uri),
            "longitude_deg": _number(cell, "Longitude", i, uri),
            "carrington_longitude_deg": _number(cell, "Carrington Longitude", i, uri),
            "area_msh": _rounded(_number(cell, "Area", i, uri)),
            "mcintosh_class": mcintosh_class(str(mcintosh), uri) if mcintosh else None,
            "longitudinal_extent_deg": _rounded(_number(cell, "Longitudinal Extent", i, uri)),
            "number_of_spots": _rounded(_number(cell, "Number of Sunspots", i, uri)),
            "mag_type": mt_wilson_class(str(mag), uri) if mag else None,
        })
    return pl.DataFrame(rows, schema=SRS_SCHEMA)


def _number(cell: dict[str, Any], name: str, row: int, uri: str) -> float | None:
    """Column ``name`` of region ``row`` (counted from 0) as a finite number, None where empty."""
    value = cell.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or abs(number) > 1e9:
        raise ReaderError(uri, f"region {row + 1} of the SRS report: {name} {value!r} is not a number")
    return number


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)

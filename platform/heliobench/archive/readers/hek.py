"""HEK (Heliophysics Event Knowledgebase) query results as a polars table.

A HEK export is JSON: a list of events, or an object whose ``result`` is that list.
Each event keeps its type, times, feature-recognition method, NOAA region, position and
bounding polygon (WKT ``POLYGON`` in helioprojective arcsec). ``track_id`` links the
records of one feature across days: the method's own identifier when it gives one,
otherwise the NOAA region (the SWPC and SolarSoft sources leave ``frm_specificid``
empty, and SolarSoft writes region numbers without the leading 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import polars as pl
from astropy.coordinates import SkyCoord

from heliobench.archive.readers.noaa import full_noaa_number
from heliobench.errors import ReaderError

if TYPE_CHECKING:
    import sunpy.map

HEK_SCHEMA = {
    "event_type": pl.String,  # "AR", "FL", "CH", ...
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
    "peak_time": pl.Datetime("us", "UTC"),
    "frm_name": pl.String,
    "frm_specificid": pl.String,  # None when the method gives none
    "ar_noaanum": pl.Int64,  # full NOAA number (five digits after 2002), None for no region
    "goes_class": pl.String,  # flares: "X9.3"
    "hpc_x": pl.Float64,  # arcsec
    "hpc_y": pl.Float64,
    "hpc_bbox": pl.List(pl.List(pl.Float64)),  # [[x, y], ...] arcsec
    "hpc_boundcc": pl.List(pl.List(pl.Float64)),  # chain code outline, [] when absent
    "track_id": pl.String,
}

_WKT_POLYGON = re.compile(r"^\s*POLYGON\s*\(\((?P<ring>[^()]*)\)\)\s*$", re.IGNORECASE)


def parse_wkt_polygon(value: str | None) -> list[list[float]]:
    """The vertices ``[[x, y], ...]`` of a WKT ``POLYGON((x y, ...))`` ([] when empty)."""
    if value is None or not value.strip() or value.strip().upper() == "POLYGON EMPTY":
        return []
    match = _WKT_POLYGON.match(value)
    if match is None:
        raise ValueError(f"{value[:60]!r} is not a WKT POLYGON")
    vertices = []
    for pair in match["ring"].split(","):
        x, y = pair.split()
        vertices.append([float(x), float(y)])
    return vertices


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def _events(raw: bytes, uri: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReaderError(uri, f"not valid JSON ({exc})") from None
    events = doc.get("result") if isinstance(doc, dict) else doc
    if not isinstance(events, list) or any(not isinstance(e, dict) or "event_type" not in e for e in events):
        raise ReaderError(uri, "JSON that is not a HEK result (expected a list of events, each with 'event_type')")
    return events


def _row(event: dict[str, Any]) -> dict[str, Any]:
    start = _time(event["event_starttime"])
    specific = (event.get("frm_specificid") or "").strip() or None
    noaa = full_noaa_number(int(event.get("ar_noaanum") or 0), start)
    return {
        "event_type": event["event_type"],
        "start_time": start,
        "end_time": _time(event["event_endtime"]),
        "peak_time": _time(event.get("event_peaktime")),
        "frm_name": event.get("frm_name"),
        "frm_specificid": specific,
        "ar_noaanum": noaa,
        "goes_class": (event.get("fl_goescls") or "").strip() or None,
        "hpc_x": event.get("hpc_x"),
        "hpc_y": event.get("hpc_y"),
        "hpc_bbox": parse_wkt_polygon(event.get("hpc_bbox")),
        "hpc_boundcc": parse_wkt_polygon(event.get("hpc_boundcc")),
        "track_id": specific or (f"NOAA {noaa}" if noaa else None),
    }


def read_hek(raw: bytes, uri: str) -> pl.DataFrame:
    """The events of one HEK query result (see :data:`HEK_SCHEMA` for the columns)."""
    rows = []
    for index, event in enumerate(_events(raw, uri)):
        try:
            rows.append(_row(event))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReaderError(uri, f"HEK event {index} ({event.get('event_type')}) is malformed: {exc}") from None
    return pl.DataFrame(rows, schema=HEK_SCHEMA)


def bbox_to_pixels(polygon_arcsec: Sequence[Sequence[float]], smap: sunpy.map.GenericMap) -> tuple[float, float, float, float]:
    """The 0-based pixel box ``(x0, y0, x1, y1)`` of helioprojective vertices in ``smap``."""
    xy = np.asarray(polygon_arcsec, dtype=float).reshape(-1, 2)
    if len(xy) == 0:
        raise ValueError("an empty polygon has no pixel box")
    pixels = smap.world_to_pixel(SkyCoord(xy[:, 0] * u.arcsec, xy[:, 1] * u.arcsec, frame=smap.coordinate_frame))
    x, y = pixels.x.to_value(u.pix), pixels.y.to_value(u.pix)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())

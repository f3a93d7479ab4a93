"""HEK events as an archive source, through sunpy's HEK client, one JSON file per day.

``hek:AR,CH[2017-09-01/2017-09-03]`` names the event types (HEK's two-letter codes) and a
UTC range (:func:`~heliobench.archive.fetch.common.parse_time_range`); ``...@SWPC`` after the
brackets keeps only one feature-recognition method (``frm_name``). For every day of the
range, :class:`sunpy.net.hek.HEKClient` asks the HEK (``$HELIOBENCH_HEK_URL``, default
sunpy's ``https://www.lmsal.com/hek/her?``) for the events of that day, following its pages:
``?cosec=2&cmd=search&type=column&event_type=ar,ch&event_starttime=2017-09-01T00:00:00&
event_endtime=2017-09-02T00:00:00&event_coordsys=helioprojective&x1=-5000&x2=5000&y1=-5000&
y2=5000[&param0=FRM_Name&op0==&value0=SWPC]&page=1``. The events that *start* that day are
written, as the raw records HEK returned (sunpy keeps them in ``HEKTable.raw``), in HEK's own
result format ``{"result": [...], "overmax": false}`` to ``hek/hek_AR-CH[_FRM]_YYYYMMDD.json``,
which :func:`heliobench.archive.readers.hek.read_hek` reads. Each event is in exactly one
day's file; a day without events writes no file (and is asked again next time).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.error import HTTPError, URLError

import numpy as np
from astropy.table import Table
from tqdm import tqdm

from heliobench import storage
from heliobench.archive.fetch.common import (
    Failure,
    FetchResult,
    TimeRange,
    exists,
    parse_time_range,
    unreachable,
)
from heliobench.errors import HelioBenchError

#: The setting naming the HEK server (sunpy's default when unset).
URL_ENV = "HELIOBENCH_HEK_URL"

_URI = re.compile(r"hek:(?P<types>[A-Za-z]{2}(?:,[A-Za-z]{2})*)\[(?P<range>[^\[\]]+)\](?:@(?P<frm>.+))?")
_URI_SHAPE = "hek:TYPES[START/END][@FRM_NAME], e.g. hek:AR,CH[2017-09-01/2017-09-03]"


@dataclass(frozen=True)
class HekQuery:
    """What a ``hek:`` URI asks for."""

    event_types: tuple[str, ...]  # upper case, e.g. ("AR", "CH")
    span: TimeRange
    frm_name: str | None

    def file_name(self, day: date) -> str:
        """The day's file: ``hek_AR-CH_20170901.json`` (the method's name in it when one is chosen)."""
        frm = f"_{re.sub(r'[^A-Za-z0-9]+', '-', self.frm_name).strip('-')}" if self.frm_name else ""
        return f"hek_{'-'.join(self.event_types)}{frm}_{day:%Y%m%d}.json"


def parse_hek_uri(uri: str) -> HekQuery:
    """The event types, time range and method a ``hek:`` URI names."""
    match = _URI.fullmatch(uri.strip())
    if match is None:
        raise HelioBenchError(f"{uri!r}: not a HEK URI; expected {_URI_SHAPE}")
    types = tuple(dict.fromkeys(t.upper() for t in match["types"].split(",")))
    return HekQuery(types, parse_time_range(match["range"], uri), (match["frm"] or "").strip() or None)


def hek_url(server_url: str | None = None) -> str:
    """The HEK query URL sunpy's client appends its parameters to (ends with ``?``)."""
    from sunpy.net.hek.hek import DEFAULT_URL

    url = server_url or os.environ.get(URL_ENV) or DEFAULT_URL
    return url if url.endswith("?") else url + "?"


def fetch_hek(uri: str, dest: str, progress: bool = True, server_url: str | None = None) -> FetchResult:
    """Fetch the events ``uri`` names into ``dest/hek/``, one file per day (existing days skipped)."""
    from sunpy.net.hek import HEKClient

    query = parse_hek_uri(uri)
    url = hek_url(server_url)
    client = HEKClient(url=url)
    result = FetchResult()
    days = query.span.days()
    with tqdm(total=len(days), unit="day", desc=uri, disable=not progress) as bar:
        for day in days:
            target = storage.join(dest, "hek", query.file_name(day))
            if exists(target):
                result.paths.append(target)
            else:
                _fetch_day(uri, client, query, day, target, result)
            bar.update(1)
    return result


def _fetch_day(uri: str, client: Any, query: HekQuery, day: date, target: str, result: FetchResult) -> None:
    """Ask the HEK for one day and write the events starting that day (a failed day is recorded)."""
    from sunpy.net import attrs as a
    from sunpy.net.hek import attrs as hek

    start = max(query.span.start, datetime.combine(day, datetime.min.time()))
    end = min(query.span.end, datetime.combine(day + timedelta(days=1), datetime.min.time()))
    attrs = [a.Time(start, end), hek.EventType(",".join(t.lower() for t in query.event_types))]
    if query.frm_name:
        attrs.append(hek.FRM.Name == query.frm_name)
    try:
        table = client.search(*attrs)
    except HTTPError as exc:
        result.failures.append(Failure(exc.url or client.url, f"HTTP {exc.code}"))
        return
    except (URLError, ConnectionError, TimeoutError) as exc:
        raise unreachable(uri, "HEK", client.url, exc) from None
    except OSError as exc:  # sunpy's "Failed to load return from the HEKClient." (not HEK's JSON)
        result.failures.append(Failure(f"{client.url} (events of {day})", str(exc)))
        return
    events = [e for e in _records(table.raw) if start <= datetime.fromisoformat(e["event_starttime"]) < end]
    if events:
        storage.write_bytes_atomic(target, json.dumps({"result": events, "overmax": False}, indent=1).encode())
        result.paths.append(target)


def _records(raw: Table) -> list[dict[str, Any]]:
    """The rows of sunpy's unparsed HEK table as the JSON records HEK sent."""
    return [{name: _plain(row[name]) for name in raw.colnames} for row in raw]


def _plain(value: Any) -> Any:
    """A table cell as a JSON value (None for masked cells)."""
    if value is None or value is np.ma.masked:
        return None
    return value.item() if isinstance(value, np.generic) else value

"""Helioviewer JPEG 2000 images as an archive source, through the Helioviewer API client ``hvpy``.

``helioviewer:AIA_193[2013-06-24T00:00/2013-06-24T06:00@1h]`` names a Helioviewer data source
(a name of :class:`hvpy.DataSource`: ``AIA_171``, ``HMI_MAG``, ``EIT_195``...), a UTC range
(:func:`~heliobench.archive.fetch.common.parse_time_range`) and a cadence. For every step of
the range, ``getClosestImage`` (``GET <api>getClosestImage/?date=2013-06-24T00:00:00Z&
sourceId=11``, answering JSON ``{"id": ..., "date": "2013-06-24 00:00:07", ...}``) finds the
image nearest in time; an image more than half a cadence from its step (a data gap) and one
already found for an earlier step are left out. Each image is then downloaded with
``getJP2Image`` (``GET <api>getJP2Image/?date=<the image's date>Z&sourceId=11``, the JP2 file
itself) to ``helioviewer/YYYY_MM_DD__HH_MM_SS__AIA_193.jp2``. The API is
``$HELIOBENCH_HELIOVIEWER_URL``, default hvpy's ``https://api.helioviewer.org/v2/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from heliobench import storage
from heliobench.archive.fetch.common import (
    Failure,
    FetchResult,
    TimeRange,
    download_all,
    parse_cadence,
    parse_time_range,
    unreachable,
)
from heliobench.archive.readers.formats import detect_format
from heliobench.errors import HelioBenchError

#: The setting naming the Helioviewer API's base URL.
URL_ENV = "HELIOBENCH_HELIOVIEWER_URL"
DEFAULT_URL = "https://api.helioviewer.org/v2/"

_URI = re.compile(r"helioviewer:(?P<source>\w+)\[(?P<range>[^\[\]@]+)@(?P<cadence>[^\[\]@]+)\]")
_URI_SHAPE = "helioviewer:SOURCE[START/END@CADENCE], e.g. helioviewer:AIA_193[2013-06-24T00:00/2013-06-24T06:00@1h]"


@dataclass(frozen=True)
class HelioviewerQuery:
    """What a ``helioviewer:`` URI asks for."""

    source: Any  # hvpy.DataSource
    span: TimeRange
    cadence: timedelta

    def steps(self) -> list[datetime]:
        """``start, start + cadence, ...`` before the end of the range."""
        count = int((self.span.end - self.span.start - timedelta(microseconds=1)) / self.cadence) + 1
        return [self.span.start + i * self.cadence for i in range(count)]


def parse_helioviewer_uri(uri: str) -> HelioviewerQuery:
    """The data source, range and cadence a ``helioviewer:`` URI names."""
    from hvpy import DataSource

    match = _URI.fullmatch(uri.strip())
    if match is None:
        raise HelioBenchError(f"{uri!r}: not a Helioviewer URI; expected {_URI_SHAPE}")
    source = DataSource.__members__.get(match["source"].upper())
    if source is None:
        raise HelioBenchError(f"{uri}: {match['source']!r} is no Helioviewer data source; one of {', '.join(DataSource.__members__)}")
    return HelioviewerQuery(source, parse_time_range(match["range"], uri), parse_cadence(match["cadence"], uri))


def fetch_helioviewer(uri: str, dest: str, progress: bool = True, server_url: str | None = None) -> FetchResult:
    """Download the JP2 images ``uri`` names into ``dest/helioviewer/`` (files already there are kept)."""
    import hvpy

    query = parse_helioviewer_uri(uri)
    api = (server_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/") + "/"
    with _api_url(api):
        found, failures = _closest_images(uri, api, query)
        items = [(_jp2_url(api, query, t), storage.join(dest, "helioviewer", _file_name(query, t))) for t in found]
        dates = {url: t for (url, _), t in zip(items, found, strict=True)}
        result = download_all(
            items,
            lambda url: hvpy.getJP2Image(date=dates[url], sourceId=query.source),
            desc=uri,
            progress=progress,
            check=_not_jp2,
        )
    result.failures[:0] = failures
    return result


@contextmanager
def _api_url(api: str) -> Iterator[None]:
    """hvpy's API URL set to ``api`` for the duration (hvpy keeps it in a module setting)."""
    from hvpy.config import get_api_url, set_api_url

    previous = get_api_url()
    set_api_url(api)
    try:
        yield
    finally:
        set_api_url(previous)


def _closest_images(uri: str, api: str, query: HelioviewerQuery) -> tuple[list[datetime], list[Failure]]:
    """The dates of the distinct images nearest to the steps (within half a cadence), and the
    steps whose look-up failed."""
    import hvpy

    dates: dict[datetime, None] = {}
    failures = []
    for step in query.steps():
        url = f"{api}getClosestImage/?date={step.isoformat()}Z&sourceId={query.source.value}"
        try:
            answer = hvpy.getClosestImage(date=step, sourceId=query.source)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise unreachable(uri, "the Helioviewer API", api, exc) from None
        except (requests.HTTPError, ValueError) as exc:  # an error status, or not JSON
            failures.append(Failure(url, str(exc)[:200]))
            continue
        if "date" not in answer:  # the API's {"error": ...}
            failures.append(Failure(url, str(answer.get("error", answer))[:200]))
            continue
        found = datetime.fromisoformat(answer["date"])
        if abs(found - step) <= query.cadence / 2:
            dates[found] = None
    return list(dates), failures


def _jp2_url(api: str, query: HelioviewerQuery, date: datetime) -> str:
    """The ``getJP2Image`` request of one image (as hvpy sends it)."""
    return f"{api}getJP2Image/?date={date.isoformat()}Z&sourceId={query.source.value}"


def _file_name(query: HelioviewerQuery, date: datetime) -> str:
    """Helioviewer's file-name layout with the data source's name: ``2013_06_24__17_31_30__AIA_193.jp2``."""
    return f"{date:%Y_%m_%d__%H_%M_%S}__{query.source.name}.jp2"


def _not_jp2(data: bytes) -> str | None:
    """Why ``data`` is not a JP2 file (None when it is one)."""
    return None if detect_format(data) == "jp2" else "the API sent something that is not a JPEG 2000 (JP2) file"

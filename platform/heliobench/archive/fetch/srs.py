"""NOAA/SWPC Solar Region Summaries as an archive source, found by sunpy's ``SRSClient``.

``srs:2015-01-01/2015-01-03`` names a UTC range (:func:`~heliobench.archive.fetch.common.parse_time_range`).
sunpy's :class:`~sunpy.net.dataretriever.sources.noaa.SRSClient` (what ``Fido`` answers
``a.Instrument("SOON")`` with) lists the NCEI archive's month folders, ``<base>YYYY/MM/`` (HTML
directory listings), and keeps the daily reports ``<base>YYYY/MM/YYYYMMDDSRS.txt`` of the range;
those are downloaded as SWPC published them into ``srs/``. The base is ``$HELIOBENCH_SRS_URL``,
default the prefix of sunpy's own pattern
(``https://www.ngdc.noaa.gov/stp/space-weather/swpc-products/daily_reports/solar_region_summaries/``).

Two departures from ``Fido.search``/``Fido.fetch``, both small: ``Fido`` also sends SOON
queries to the VSO, so the client is used directly; and ``SRSClient`` takes its URL pattern
from a class attribute, so :class:`_SRSArchive` is SRSClient with the pattern re-rooted at the
base URL (and never offered to ``Fido``). Files are downloaded by
:func:`~heliobench.archive.fetch.common.download_all` rather than parfive, for atomic writes
(an interrupted run leaves no partial report that a resumed run would take as complete) and
object-storage download folders.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.error import HTTPError, URLError

from sunpy.net import attrs as a
from sunpy.net.dataretriever.sources.noaa import SRSClient

from heliobench import storage
from heliobench.archive.fetch.common import (
    FetchResult,
    download_all,
    http_get,
    parse_time_range,
    service_url,
    unreachable,
)
from heliobench.archive.readers.formats import detect_format
from heliobench.errors import HelioBenchError

#: The setting naming the SRS archive's base URL.
URL_ENV = "HELIOBENCH_SRS_URL"

_LAYOUT_AT = SRSClient.pattern.index("{{year")
#: sunpy's base URL of the SRS archive and the layout below it.
DEFAULT_URL, LAYOUT = SRSClient.pattern[:_LAYOUT_AT], SRSClient.pattern[_LAYOUT_AT:]


class _SRSArchive(SRSClient):
    """sunpy's SRSClient reading the archive under ``base_url`` (its search is SRSClient's)."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def pre_search_hook(self, *args: Any, **kwargs: Any) -> tuple[None, str, dict]:
        """SRSClient's search parameters with the URL pattern under :attr:`base_url`."""
        baseurl, _, matchdict = super().pre_search_hook(*args, **kwargs)
        return baseurl, self.base_url + LAYOUT, matchdict

    @classmethod
    def _can_handle_query(cls, *query: Any) -> bool:
        """Never chosen by ``Fido``: Fido's SOON queries keep going to SRSClient itself."""
        return False


def fetch_srs(uri: str, dest: str, progress: bool = True, server_url: str | None = None) -> FetchResult:
    """Download the SRS reports of the range ``srs:START/END`` names into ``dest/srs/``."""
    if not uri.startswith("srs:"):
        raise HelioBenchError(f"{uri!r}: not an SRS URI; expected srs:START/END, e.g. srs:2015-01-01/2015-01-03")
    span = parse_time_range(uri.removeprefix("srs:"), uri)
    base = service_url(URL_ENV, DEFAULT_URL, server_url)
    client = _SRSArchive(base)
    try:
        found = client.search(a.Time(span.start, span.end), a.Instrument("SOON"))
    except HTTPError as exc:
        raise HelioBenchError(f"{uri}: the SRS archive at {base} answered HTTP {exc.code} for {exc.url}") from None
    except (URLError, ConnectionError, TimeoutError) as exc:
        raise unreachable(uri, "the SRS archive", base, exc) from None
    urls = [str(row["url"]) for row in found if row["Start Time"].to_datetime() < span.end]  # not the day END ends at
    items = [(url, storage.join(dest, "srs", posixpath.basename(url))) for url in urls]
    return download_all(items, http_get, desc=uri, progress=progress, check=_not_srs)


def _not_srs(data: bytes) -> str | None:
    """Why ``data`` is not an SRS report (None when it is one)."""
    return None if detect_format(data) == "srs" else "the server sent something that is not an SRS report"


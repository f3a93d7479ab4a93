"""Kanzelhöhe Observatory (KSO) H-alpha full-disk files as an archive source, from the KSO's
HTTP archive.

``kso:2015-01-10/2015-01-11`` names a UTC range (:func:`~heliobench.archive.fetch.common.parse_time_range`).
KSO documents no query API for its archive. What this source relies on is the plain HTTP
directory layout of ``cesar.kso.ac.at`` that earlier clients used and that the KSO file-naming
convention (Pötzi et al. 2021, Sol. Phys. 296, 164) describes: one folder per year of
full-resolution H-alpha 2k images, ``<base>halpha2k/recent/YYYY/``, an HTML directory listing
of files ``kanz_halph_fr_YYYYMMDD_HHMMSS.fts.gz`` (the draft sunpy ``KanzelhoheClient`` of
2016 and SolarMonitor's scripts read it so). sunpy's :class:`~sunpy.net.scraper.Scraper`
lists those folders and keeps the files whose time is in the range; they are downloaded
unchanged into ``kso/``. The base is ``$HELIOBENCH_KSO_URL`` (default ``http://cesar.kso.ac.at/``);
should KSO move the files, ``$HELIOBENCH_KSO_LAYOUT`` replaces :data:`LAYOUT` (a sunpy
Scraper ``format`` below the base URL).
"""

from __future__ import annotations

import os
import posixpath
from urllib.error import HTTPError, URLError

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

#: The settings naming the KSO archive's base URL and its layout below it.
URL_ENV, LAYOUT_ENV = "HELIOBENCH_KSO_URL", "HELIOBENCH_KSO_LAYOUT"
DEFAULT_URL = "http://cesar.kso.ac.at/"
LAYOUT = "halpha2k/recent/{year:4d}/kanz_halph_fr_{year:4d}{month:2d}{day:2d}_{hour:2d}{minute:2d}{second:2d}.fts.gz"


def fetch_kso(uri: str, dest: str, progress: bool = True, server_url: str | None = None) -> FetchResult:
    """Download the KSO H-alpha files of the range ``kso:START/END`` names into ``dest/kso/``."""
    from sunpy.net.scraper import Scraper
    from sunpy.time import TimeRange

    if not uri.startswith("kso:"):
        raise HelioBenchError(f"{uri!r}: not a KSO URI; expected kso:START/END, e.g. kso:2015-01-10/2015-01-11")
    span = parse_time_range(uri.removeprefix("kso:"), uri)
    base = service_url(URL_ENV, DEFAULT_URL, server_url)
    layout = os.environ.get(LAYOUT_ENV, LAYOUT)
    scraper = Scraper(format=(base + layout).replace("{", "{{").replace("}", "}}"))  # Scraper applies str.format once
    try:
        urls = scraper.filelist(TimeRange(span.start, span.end))
    except HTTPError as exc:
        raise HelioBenchError(f"{uri}: the KSO archive at {base} answered HTTP {exc.code} for {exc.url}") from None
    except (URLError, ConnectionError, TimeoutError) as exc:
        raise unreachable(uri, "the KSO archive", base, exc) from None
    items = [(url, storage.join(dest, "kso", posixpath.basename(url))) for url in sorted(set(urls))]
    return download_all(items, http_get, desc=uri, progress=progress, check=_not_fits)


def _not_fits(data: bytes) -> str | None:
    """Why ``data`` is not a (gzipped) FITS file (None when it is one)."""
    return None if detect_format(data) in ("fits", "fits.gz") else "the server sent something that is not a FITS file"

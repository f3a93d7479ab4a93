"""Archive sources fetched from solar data services into a download folder, then ingested
like any local folder.

| URI | service | client | files |
| --- | --- | --- | --- |
| ``hek:AR,CH[2017-09-01/2017-09-03][@FRM]`` | HEK (``$HELIOBENCH_HEK_URL``) | sunpy ``HEKClient`` | ``hek/*.json``, one per day |
| ``srs:2015-01-01/2015-01-03`` | NCEI SRS archive (``$HELIOBENCH_SRS_URL``) | sunpy ``SRSClient`` | ``srs/YYYYMMDDSRS.txt`` |
| ``helioviewer:AIA_193[START/END@1h]`` | Helioviewer API (``$HELIOBENCH_HELIOVIEWER_URL``) | ``hvpy`` | ``helioviewer/*.jp2`` |
| ``kso:2015-01-10/2015-01-11`` | KSO HTTP archive (``$HELIOBENCH_KSO_URL``) | sunpy ``Scraper`` | ``kso/*.fts.gz`` |

(``jsoc:`` queries are exported and downloaded by :mod:`heliobench.archive.jsoc`.)
"""

from __future__ import annotations

from collections.abc import Callable

from heliobench.archive.fetch.common import Failure, FetchResult

#: The URI schemes fetched here (each by ``fetch(uri, dest, progress) -> FetchResult``).
SCHEMES = ("hek", "srs", "helioviewer", "kso")


def fetcher(uri: str) -> Callable[..., FetchResult] | None:
    """The function that fetches ``uri``, or None when ``uri`` is no fetched source."""
    scheme = uri.partition(":")[0]
    if scheme == "hek":
        from heliobench.archive.fetch.hek import fetch_hek

        return fetch_hek
    if scheme == "srs":
        from heliobench.archive.fetch.srs import fetch_srs

        return fetch_srs
    if scheme == "helioviewer":
        from heliobench.archive.fetch.helioviewer import fetch_helioviewer

        return fetch_helioviewer
    if scheme == "kso":
        from heliobench.archive.fetch.kso import fetch_kso

        return fetch_kso
    return None


__all__ = ["SCHEMES", "Failure", "FetchResult", "fetcher"]

"""JSOC as an archive source: export a DRMS record set through drms and download its files.

A JSOC URI names a DRMS record-set query, ``jsoc:<series>[<filter>]...[{<segments>}]``, e.g.
``jsoc:hmi.M_720s[2017.01.01_00:00_TAI/1d@6h]{magnetogram}``. :func:`fetch_jsoc` checks the
record set (``jsoc_info op=rs_list``), submits an export (``jsoc_fetch op=exp_request``, method
``url``, protocol ``fits``), polls ``op=exp_status`` until JSOC has staged the files and downloads
them. The server is ``server_url``, else ``$HELIOBENCH_JSOC_URL``, else JSOC itself (drms'
default); exports need an email address registered with JSOC (``email``, else ``$JSOC_EMAIL``).
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from json import JSONDecodeError
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

import drms
from drms.utils import create_request_with_header
from tqdm import tqdm

from heliobench import storage
from heliobench.errors import HelioBenchError

#: Where JSOC users register the email address exports are announced to.
REGISTER_EMAIL_URL = "http://jsoc.stanford.edu/ajax/register_email.html"

_URI = re.compile(
    r"jsoc:(?P<query>[A-Za-z]\w*\.\w+"  # series: namespace.name
    r"(?:\[[^\[\]{}]+\])+"  # one or more record-set filters
    r"(?:\{\s*\w+(?:\s*,\s*\w+)*\s*\})?)"  # optional segment list
)
_URI_SHAPE = (
    "jsoc:<series>[<filter>]...[{<segment>,...}], e.g. jsoc:hmi.M_720s[2017.01.01_00:00_TAI/1d@6h]"
)

#: Socket timeout of one file download or size check.
_HTTP_TIMEOUT_S = 60.0
#: Network failures: refused or reset connections, timeouts, truncated responses.
_NETWORK_ERRORS = (URLError, TimeoutError, ConnectionError, http.client.HTTPException)


def parse_jsoc_uri(uri: str) -> str:
    """The DRMS record-set query a ``jsoc:`` URI names (everything after ``jsoc:``)."""
    match = _URI.fullmatch(uri)
    if match is None:
        raise HelioBenchError(f"{uri!r}: not a JSOC URI; expected {_URI_SHAPE}")
    return match["query"]


def fetch_jsoc(
    uri: str,
    dest: str,
    email: str | None = None,
    server_url: str | None = None,
    progress: bool = True,
    timeout_s: float = 600,
    *,
    poll_s: float = 5.0,
) -> list[str]:
    """Export the record set ``uri`` names from JSOC as FITS files and download them into ``dest``.

    Files already in ``dest`` with the size JSOC reports are not downloaded again; each download
    is written atomically. Waits at most ``timeout_s`` for the export, polling every ``poll_s``.
    Returns the local paths (URIs for object storage), or ``[]`` when no record matches.
    """
    query = parse_jsoc_uri(uri)
    notify = email or os.environ.get("JSOC_EMAIL")
    if not notify:
        raise HelioBenchError(
            f"{uri}: JSOC exports need a registered email address: pass email= or set JSOC_EMAIL "
            f"(register one at {REGISTER_EMAIL_URL})"
        )
    server, where = _server(uri, server_url or os.environ.get("HELIOBENCH_JSOC_URL"))
    with _jsoc_errors(uri, where):
        client = _client(uri, server, notify)
        if client.query(query, key=drms.JsocInfoConstants.recnum).empty:
            return []
        request = client.export(query, method="url", protocol="fits")
        if not request.wait(timeout=timeout_s, sleep=poll_s):
            raise HelioBenchError(
                f"{uri}: JSOC export {request.id} still not ready after {timeout_s:g} s; "
                "retry later with a larger timeout_s"
            )
        files = [
            (row.url, storage.join(dest, _local_name(uri, row.filename)))
            for row in request.urls.itertuples()
        ]
        sizes = {url: _remote_size(url) for url, _ in files}
        todo = [(url, target) for url, target in files if not _has_size(target, sizes[url])]
        total = sum(sizes[url] or 0 for url, _ in todo)
        with tqdm(total=total, unit="B", unit_scale=True, desc=query, disable=not progress) as bar:
            for url, target in todo:
                _download(uri, url, target, sizes[url], bar)
    return [target for _, target in files]


def _server(uri: str, server_url: str | None) -> tuple[str | drms.ServerConfig, str]:
    """The drms server for ``server_url`` (JSOC itself when None) and its name for messages."""
    if server_url is None:
        return "jsoc", "JSOC"
    root = server_url.rstrip("/") + "/"
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HelioBenchError(
            f"{uri}: JSOC server URL {server_url!r} (server_url or HELIOBENCH_JSOC_URL) "
            "is not an http(s) URL like http://jsoc.stanford.edu/"
        )
    name = f"JSOC at {root}"
    config = drms.ServerConfig(
        name=name,
        cgi_baseurl=f"{root}cgi-bin/ajax/",
        cgi_jsoc_info="jsoc_info",
        cgi_jsoc_fetch="jsoc_fetch",
        cgi_check_address="checkAddress.sh",
        http_download_baseurl=root,
    )
    return config, name


def _client(uri: str, server: str | drms.ServerConfig, notify: str) -> drms.Client:
    """A drms client for ``server``; fails clearly when JSOC does not know ``notify``."""
    try:
        return drms.Client(server=server, email=notify)
    except ValueError:  # drms' answer to checkAddress status != 2
        raise HelioBenchError(
            f"{uri}: JSOC does not accept {notify!r} as an export email address; "
            f"register it at {REGISTER_EMAIL_URL}"
        ) from None


@contextmanager
def _jsoc_errors(uri: str, where: str) -> Iterator[None]:
    """Turn drms and network failures into errors naming the URI and the server."""
    try:
        yield
    except drms.DrmsError as exc:
        raise HelioBenchError(f"{uri}: {where} refused the request: {exc}") from None
    except HTTPError as exc:
        raise HelioBenchError(f"{uri}: {where} answered HTTP {exc.code} for {exc.url}") from None
    except _NETWORK_ERRORS as exc:
        reason = getattr(exc, "reason", None) or exc
        raise HelioBenchError(f"{uri}: {where} unreachable or broke off ({reason})") from None
    except JSONDecodeError:
        raise HelioBenchError(f"{uri}: {where} did not answer with JSOC's JSON") from None


def _local_name(uri: str, filename: str) -> str:
    """The base name of an exported file, refusing names that would leave ``dest``."""
    name = posixpath.basename(filename)
    if name in ("", ".", ".."):
        raise HelioBenchError(f"{uri}: JSOC listed an unusable export file name {filename!r}")
    return name


def _remote_size(url: str) -> int | None:
    """The size in bytes the server reports for ``url`` (None when it does not say)."""
    request = create_request_with_header(url)
    request.method = "HEAD"
    with urlopen(request, timeout=_HTTP_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def _has_size(target: str, size: int | None) -> bool:
    """Whether ``target`` already exists with ``size`` bytes."""
    fs, path = storage.filesystem(target)
    return size is not None and fs.exists(path) and fs.size(path) == size


def _download(uri: str, url: str, target: str, size: int | None, bar: tqdm) -> None:
    """Download ``url`` to ``target`` atomically, advancing ``bar`` by the bytes received."""
    chunks = []
    with urlopen(create_request_with_header(url), timeout=_HTTP_TIMEOUT_S) as response:
        while chunk := response.read(1 << 20):
            chunks.append(chunk)
            bar.update(len(chunk))
    data = b"".join(chunks)
    if size is not None and len(data) != size:
        raise HelioBenchError(
            f"{uri}: download of {url} broke off after {len(data)} of {size} bytes"
        )
    storage.write_bytes_atomic(target, data)

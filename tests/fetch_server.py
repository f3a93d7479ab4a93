"""Fake solar data services: one real HTTP server on 127.0.0.1 answering as HEK, the NCEI SRS
archive, the Helioviewer API and the Kanzelhöhe HTTP archive do, from recorded material.

- HEK, ``/hek/her?cosec=2&cmd=search&type=column&event_type=ar,fl&event_starttime=...&
  event_endtime=...[&param0=FRM_Name&op0==&value0=...]&page=N``: the given event records (real
  HEK JSON, completed with HEK's event coordinates where stored without them) that overlap the query's time range, of its event types and method, in HEK's
  result format ``{"result": [...], "overmax": bool}``, ``page_size`` records a page;
- SRS, under :data:`SRS_PATH`: Apache-style directory listings of ``YYYY/MM/`` and the daily
  ``YYYYMMDDSRS.txt`` files of a folder (real SWPC reports);
- Helioviewer, ``/v2/getClosestImage/?date=...Z&sourceId=N`` (the JSON metadata the API
  documents: ``id``, ``date``, ``scale``, ``width``, ``height``, ``refPixelX/Y``, ``rsun``...,
  or ``{"error": ...}``) and ``/v2/getJP2Image/?date=...Z&sourceId=N`` (the JP2 file with the
  API's headers, ``Content-Disposition: attachment; filename="..."``);
- KSO, ``/halpha2k/recent/YYYY/``: directory listings and the files of a folder.

Paths in ``fail_paths``, and ``getJP2Image`` of the ids in ``failing_images``, answer HTTP 500. Every request is recorded in :attr:`FetchServer.requests`.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

#: Where NCEI keeps the SRS reports (the base of sunpy's SRSClient pattern).
SRS_PATH = "/stp/space-weather/swpc-products/daily_reports/solar_region_summaries/"
#: Where the KSO HTTP archive keeps the H-alpha 2k files, one folder per year.
KSO_PATH = "/halpha2k/recent/"
_SRS_FILE = re.compile(r"(?P<year>\d{4})(?P<month>\d\d)\d\dSRS\.txt")
_KSO_FILE = re.compile(r"kanz_halph_fr_(?P<year>\d{4})\d{4}_\d{6}\.fts\.gz")


@dataclass(frozen=True)
class Jp2Image:
    """One image of the fake Helioviewer archive."""

    source_id: int
    date: datetime  # UTC
    path: Path
    image_id: int


@dataclass(frozen=True)
class ServedRequest:
    """One HTTP request the server answered."""

    path: str
    params: dict[str, str]
    status: int


class FetchServer:
    """The fake services; use as a context manager, root URL ``.url``."""

    def __init__(
        self,
        *,
        hek_events: Sequence[dict] = (),
        page_size: int = 200,
        srs_dir: Path | None = None,
        jp2_images: Sequence[Jp2Image] = (),
        kso_dir: Path | None = None,
        fail_paths: Collection[str] = (),
        failing_images: Collection[int] = (),
    ):
        self.hek_events = list(hek_events)
        self.page_size = page_size
        self.srs_dir = srs_dir
        self.jp2_images = list(jp2_images)
        self.kso_dir = kso_dir
        self.fail_paths = set(fail_paths)
        self.failing_images = set(failing_images)  # getJP2Image of these image ids answers 500
        self._lock = threading.Lock()
        self._requests: list[ServedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FetchServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT/``."""
        assert self._httpd is not None, "start the server with `with FetchServer(...)`"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    @property
    def requests(self) -> list[ServedRequest]:
        """The requests served so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one GET request."""
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query))
        answer = self._answer(parts.path, params)
        with self._lock:
            self._requests.append(ServedRequest(parts.path, params, answer[0]))
        status, content_type, body, headers = answer
        if status != 200:
            handler.send_error(status)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        """``(status, content type, body, extra headers)`` for one request."""
        if path in self.fail_paths:
            return 500, "", b"", {}
        if path == "/hek/her":
            return 200, "application/json", json.dumps(self._hek(params)).encode(), {}
        if path == "/v2/getClosestImage/":
            return 200, "application/json", json.dumps(self._closest_image(params)).encode(), {}
        if path == "/v2/getJP2Image/":
            return self._jp2(params)
        if path.startswith(SRS_PATH) and self.srs_dir is not None:
            return _folder(self.srs_dir, path, path.removeprefix(SRS_PATH), _srs_folder)
        if path.startswith(KSO_PATH) and self.kso_dir is not None:
            return _folder(self.kso_dir, path, path.removeprefix(KSO_PATH), _kso_folder)
        return 404, "", b"", {}

    # --- HEK ---------------------------------------------------------------------------

    def _hek(self, params: dict[str, str]) -> dict:
        start = datetime.fromisoformat(params["event_starttime"])
        end = datetime.fromisoformat(params["event_endtime"])
        types = {t.strip().upper() for t in params.get("event_type", "**").split(",")}
        frm = params.get("value0") if params.get("param0", "").lower() == "frm_name" and params.get("op0") == "=" else None
        events = [
            e
            for e in self.hek_events
            if datetime.fromisoformat(e["event_starttime"]) <= end
            and datetime.fromisoformat(e["event_endtime"]) >= start
            and ("**" in types or e["event_type"].upper() in types)
            and (frm is None or e.get("frm_name") == frm)
        ]
        page = int(params.get("page", "1"))
        first = (page - 1) * self.page_size
        chosen = [_with_event_coords(e) for e in events[first : first + self.page_size]]
        return {"result": chosen, "overmax": len(events) > first + self.page_size}

    # --- Helioviewer -------------------------------------------------------------------

    def _closest(self, params: dict[str, str]) -> Jp2Image | None:
        when = datetime.fromisoformat(params["date"].removesuffix("Z"))
        images = [i for i in self.jp2_images if i.source_id == int(params["sourceId"])]
        return min(images, key=lambda i: abs(i.date - when), default=None)

    def _closest_image(self, params: dict[str, str]) -> dict:
        image = self._closest(params)
        if image is None:
            return {"error": f"No images available for source {params['sourceId']}", "errno": 14}
        width, height = _jp2_shape(image.path)
        return {
            "id": image.image_id,
            "date": f"{image.date:%Y-%m-%d %H:%M:%S}",
            "scale": 0.6,
            "scaleCorrection": 1.0,
            "width": width,
            "height": height,
            "refPixelX": width / 2 + 0.5,
            "refPixelY": height / 2 + 0.5,
            "rsun": 1600 * width / 4096,
            "sunCenterOffsetParams": [],
            "layeringOrder": 1,
        }

    def _jp2(self, params: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        image = self._closest(params)
        if image is None:
            return 200, "application/json", json.dumps({"error": "No image found"}).encode(), {}
        if image.image_id in self.failing_images:
            return 500, "", b"", {}
        name = image.path.name
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Expires": "0", "Cache-Control": "must-revalidate"}
        return 200, "image/jp2", image.path.read_bytes(), headers


def _with_event_coords(event: dict) -> dict:
    """The record with the event coordinates every HEK record carries (``event_coordsys``,
    ``event_coordunit``, ``event_coord1..3``; sunpy's client needs them), taken from its
    ``hpc_x``/``hpc_y`` where the recorded record was stored without them."""
    coords = {
        "event_coordsys": "UTC-HPC-TOPO",
        "event_coordunit": "arcsec",
        "event_coord1": event.get("hpc_x"),
        "event_coord2": event.get("hpc_y"),
        "event_coord3": None,
    }
    return {**coords, **event}


def _handler(server: FetchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.serve(self)

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    return Handler


def _srs_folder(name: str) -> str | None:
    match = _SRS_FILE.fullmatch(name)
    return f"{match['year']}/{match['month']}/" if match else None


def _kso_folder(name: str) -> str | None:
    match = _KSO_FILE.fullmatch(name)
    return f"{match['year']}/" if match else None


def _folder(
    files_dir: Path, path: str, rel: str, folder_of: Callable[[str], str | None]
) -> tuple[int, str, bytes, dict[str, str]]:
    """A directory listing (``rel`` ends with ``/``) or a file of an archive laid out by ``folder_of``."""
    files = {p.name: p for p in sorted(files_dir.iterdir()) if folder_of(p.name)}
    if rel.endswith("/"):
        names = [n for n in files if folder_of(n) == rel]
        if not names:
            return 404, "", b"", {}
        return 200, "text/html;charset=UTF-8", _listing(path, names, files).encode(), {}
    folder, _, name = rel.rpartition("/")
    if name in files and folder_of(name) == f"{folder}/":
        return 200, "application/octet-stream", files[name].read_bytes(), {}
    return 404, "", b"", {}


def _listing(path: str, names: list[str], files: dict[str, Path]) -> str:
    """An Apache ``mod_autoindex`` page, as NCEI's and KSO's web servers list folders."""
    rows = "\n".join(
        f'<tr><td valign="top">&nbsp;</td><td><a href="{html.escape(n)}">{html.escape(n)}</a></td>'
        f'<td align="right">2020-01-01 00:00  </td><td align="right">{files[n].stat().st_size}</td></tr>'
        for n in names
    )
    parent = path.rstrip("/").rpartition("/")[0] + "/"
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n<head>\n'
        f"<title>Index of {html.escape(path)}</title>\n</head>\n<body>\n<h1>Index of {html.escape(path)}</h1>\n"
        '<table>\n<tr><th valign="top">&nbsp;</th><th><a href="?C=N;O=D">Name</a></th>'
        '<th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th></tr>\n'
        f'<tr><td valign="top">&nbsp;</td><td><a href="{html.escape(parent)}">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>\n'
        f"{rows}\n</table>\n</body></html>\n"
    )


def _jp2_shape(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a JP2 file, from its image header box."""
    import glymur

    height, width = glymur.Jp2k(str(path)).shape[:2]
    return int(width), int(height)

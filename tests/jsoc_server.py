"""A fake JSOC: a real HTTP server on 127.0.0.1 speaking the protocol drms uses.

It serves the FITS files of one folder, named as JSOC names exported files, as the records of
their series: HMI-like series slotted in TAI with the prime keys ``T_REC, CAMERA``
(``hmi.M_720s.20170101_000000_TAI.1.magnetogram.fits``) and AIA series slotted in UTC every
12 s with the prime keys ``T_REC, WAVELNTH``, whose segment ``image`` is the file
``image_lev1`` (``aia.lev1_euv_12s.2017-01-01T000011Z.171.image_lev1.fits``):

- ``/cgi-bin/ajax/jsoc_info`` ``op=series_struct`` and ``op=rs_list``;
- ``/cgi-bin/ajax/checkAddress.sh`` (is the notify address registered?);
- ``/cgi-bin/ajax/jsoc_fetch`` ``op=exp_request``, then ``op=exp_status`` answering
  "processing" ``pending_polls`` times and then the finished export's ``index.json``;
- the exported files under the export's ``dir``, as JSOC's web server does.

The JSON carries the field names and status codes of JSOC's CGI programs (``jsoc_info.c``,
``jsoc_fetch.c``, ``jsoc_export_make_index.c`` of lm-jps/drms). Record-set filters understood:
``[<time>]``, ``[<time>/<span>]`` and ``[<time>/<span>@<step>]`` (``<time>`` as
``2017.01.01_00:00[:00]_TAI`` or ``_UTC``, compared in the series' own time scale; ``@<step>``
keeps the first slot of every step), then optionally ``[<camera or wavelength>,...]`` and
``{segment,...}``. Every request served is recorded in :attr:`JsocServer.requests`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, unquote_plus, urlsplit

CONTACT = "jsoc_help@jsoc.stanford.edu"
DEFAULT_FILENAMEFMT = "{seriesname}.{recnum:%ld}.{segment}"

_QUERY = re.compile(
    r"(?P<series>\w+\.\w+)\[(?P<filter>[^\]]+)\](?:\[(?P<keys>\d+(?:,\d+)*)\])?(?:\{(?P<segments>[^}]*)\})?"
)
_FILTER = re.compile(
    r"(?P<start>\d{4}\.\d\d\.\d\d(?:_\d\d:\d\d(?::\d\d)?)?)_(?:TAI|UTC)"
    r"(?:/(?P<span>\d+[smhd]))?(?:@(?P<step>\d+[smhd]))?"
)
_FMT_FIELD = re.compile(r"\{(?P<name>\w+)(?::(?P<layout>[^}]*))?\}")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Layout:
    """How a family of series names its files and records."""

    file: re.Pattern[str]  # groups: series, t_rec, key (camera or wavelength), segment file
    file_time: str  # strptime layout of the file name's time
    key: str  # the second prime key
    scale: str  # time scale of T_REC
    slot_s: int  # T_REC step
    record_time: str  # strftime layout of T_REC in record queries and keyword values
    compact_time: str  # strftime layout of {T_REC:A} in exported file names
    segments: dict[str, str]  # segment file name -> segment name, where they differ


HMI = Layout(
    re.compile(r"(?P<series>hmi\.\w+)\.(?P<t_rec>\d{8}_\d{6})_TAI\.(?P<key>\d+)\.(?P<segfile>\w+)\.fits"),
    "%Y%m%d_%H%M%S", "CAMERA", "TAI", 720, "%Y.%m.%d_%H:%M:%S_TAI", "%Y%m%d_%H%M%S_TAI", {},
)
AIA = Layout(
    re.compile(r"(?P<series>aia\.\w+)\.(?P<t_rec>\d{4}-\d\d-\d\dT\d{6})Z\.(?P<key>\d+)\.(?P<segfile>\w+)\.fits"),
    "%Y-%m-%dT%H%M%S", "WAVELNTH", "UTC", 12, "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H%M%SZ", {"image_lev1": "image"},
)
LAYOUTS = (HMI, AIA)


@dataclass(frozen=True)
class Record:
    """One segment file of one record of the fake archive."""

    layout: Layout
    series: str
    t_rec: datetime  # in the layout's time scale
    key: int  # CAMERA or WAVELNTH
    segment: str
    segment_file: str
    path: Path
    recnum: int

    @property
    def name(self) -> str:
        """The record query JSOC prints for this record (``drms_sprint_rec_query``)."""
        return f"{self.series}[{self.t_rec:{self.layout.record_time}}][{self.key}]"


@dataclass(frozen=True)
class ServedRequest:
    """One HTTP request the server answered."""

    method: str  # "GET" or "HEAD"
    path: str
    params: dict[str, str]


@dataclass
class _Export:
    requestid: str
    method: str
    protocol: str
    dir: str
    files: dict[str, Record]  # exported file name -> record
    polls: int = 0


class _QueryError(Exception):
    """A record-set query or export request the fake JSOC cannot answer."""


class JsocServer:
    """A JSOC serving the files of ``files_dir``; use as a context manager, base URL ``.url``."""

    def __init__(
        self,
        files_dir: Path,
        *,
        registered: Collection[str] = ("user@example.org",),
        pending_polls: int = 1,
        export_error: str | None = None,
        truncate_downloads: bool = False,
    ):
        self.files_dir = files_dir
        self.registered = registered
        self.pending_polls = pending_polls
        self.export_error = export_error  # exp_status then fails with status 4 and this error
        self.truncate_downloads = truncate_downloads  # files then break off halfway
        self._lock = threading.Lock()
        self._requests: list[ServedRequest] = []
        self._exports: dict[str, _Export] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JsocServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        """The server root, as ``http://jsoc.stanford.edu/`` is JSOC's."""
        assert self._httpd is not None, "start the server with `with JsocServer(...)`"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    @property
    def requests(self) -> list[ServedRequest]:
        """The requests served so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one GET or HEAD request."""
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query))
        with self._lock:
            self._requests.append(ServedRequest(handler.command, parts.path, params))
            cgi = {
                "/cgi-bin/ajax/jsoc_info": self._jsoc_info,
                "/cgi-bin/ajax/jsoc_fetch": self._jsoc_fetch,
                "/cgi-bin/ajax/checkAddress.sh": self._check_address,
            }.get(parts.path)
            answer = cgi(params) if cgi else None
            record = None if cgi else self._exported_file(parts.path)
        if answer is not None:
            _send(handler, json.dumps(answer).encode(), "application/json")
        elif record is not None:
            data = record.path.read_bytes()
            sent = data[: len(data) // 2] if self.truncate_downloads else data
            _send(handler, data, "application/octet-stream", body=sent)
        else:
            handler.send_error(404)

    # --- jsoc_info -------------------------------------------------------------------------

    def _jsoc_info(self, params: dict[str, str]) -> dict:
        ds = params.get("ds", "")
        try:
            if params.get("op") == "series_struct":
                return self._series_struct(ds)
            if params.get("op") == "rs_list":
                return self._rs_list(ds, params)
        except _QueryError as exc:
            return {"status": 1, "error": str(exc)}
        return {"status": 1, "error": f"unsupported op {params.get('op')!r}"}

    def _series_struct(self, ds: str) -> dict:
        series = ds.split("[", 1)[0]
        records = [r for r in self._records() if r.series.lower() == series.lower()]
        if not records:
            raise _QueryError("series not found")
        segments = sorted({r.segment for r in records})
        layout = records[0].layout
        return {
            "note": f"{records[0].series} (fake JSOC)",
            "retention": 10000,
            "unitsize": 16,
            "archive": 1,
            "tapegroup": 6,
            "primekeys": ["T_REC", layout.key],
            "primekeysinfo": [
                {"name": "T_REC", "slotted": 1, "step": str(layout.slot_s)},
                {"name": layout.key, "slotted": 0},
            ],
            "dbindex": ["T_REC_index", layout.key],
            "keywords": [
                _keyword("T_REC", "time", "ts_eq", layout.scale, "Slot time"),
                _keyword(layout.key, "int", "variable", "none", layout.key.capitalize()),
                _keyword("T_OBS", "time", "variable", layout.scale, "Observation time"),
                _keyword("QUALITY", "int", "variable", "none", "Quality word"),
            ],
            "links": [],
            "segments": [_segment(s) for s in segments],
            "status": 0,
        }

    def _rs_list(self, ds: str, params: dict[str, str]) -> dict:
        records = list({r.recnum: r for r in self._select(ds)}.values())
        if not records:
            return {"count": 0, "status": 0}
        keys = [k for k in params.get("key", "").split(",") if k]
        return {
            "keywords": [{"name": k, "values": [_key_value(r, k) for r in records]} for k in keys],
            "count": len(records),
            "runtime": 0.001,
            "status": 0,
        }

    # --- checkAddress.sh -------------------------------------------------------------------

    def _check_address(self, params: dict[str, str]) -> dict:
        address = unquote_plus(params.get("address", ""))  # drms quotes it before urlencoding
        if address in self.registered:
            return {"status": 2, "msg": "Address is registered"}
        if "@" not in address:
            return {"status": -2, "msg": "Not a valid email address"}
        return {"status": 4, "msg": "Address has neither been validated nor registered"}

    # --- jsoc_fetch ------------------------------------------------------------------------

    def _jsoc_fetch(self, params: dict[str, str]) -> dict:
        if params.get("op") == "exp_request":
            try:
                return self._exp_request(params)
            except _QueryError as exc:
                return {"status": 4, "error": str(exc)}
        if params.get("op") == "exp_status":
            return self._exp_status(params.get("requestid", ""))
        return {"status": 4, "error": f"unsupported op {params.get('op')!r}"}

    def _exp_request(self, params: dict[str, str]) -> dict:
        records = self._select(params.get("ds", ""))
        number = len(self._exports) + 1
        fmt = params.get("filenamefmt", DEFAULT_FILENAMEFMT)
        export = _Export(
            requestid=f"JSOC_{datetime.now():%Y%m%d}_{number:03d}",
            method=params.get("method", "url"),
            protocol=params.get("protocol", "as-is"),
            dir=f"/SUM{number}/D{1000 + number}/S00000",
            files={_render(fmt, r): r for r in records},
        )
        self._exports[export.requestid] = export
        return self._pending(export, status=2)

    def _exp_status(self, requestid: str) -> dict:
        export = self._exports.get(requestid)
        if export is None:
            return {"status": 6, "error": f"Cant locate export request: jsoc.export[{requestid}]"}
        export.polls += 1
        if export.polls <= self.pending_polls:
            return self._pending(export, status=1)
        if self.export_error is not None:
            return {
                **self._pending(export, status=4),
                "wait": 999999,
                "error": self.export_error,
                "contact": CONTACT,
            }
        # index.json of the finished export: header values are strings, then the file list
        return {
            "version": "1",
            "requestid": export.requestid,
            "method": export.method,
            "protocol": export.protocol,
            "wait": "0",
            "count": str(len(export.files)),
            "size": str(_size_mb(export)),
            "status": "0",
            "dir": export.dir,
            "keywords": "**IN FITS FILES**",
            "data": [
                {"record": f"{r.name}{{{r.segment}}}", "filename": name}
                for name, r in export.files.items()
            ],
        }

    def _pending(self, export: _Export, status: int) -> dict:
        return {
            "status": status,
            "requestid": export.requestid,
            "method": export.method,
            "protocol": export.protocol,
            "wait": 1,
            "rcount": len({r.recnum for r in export.files.values()}),
            "size": _size_mb(export),
        }

    def _exported_file(self, path: str) -> Record | None:
        folder, _, name = path.rpartition("/")
        for export in self._exports.values():
            finished = export.polls > self.pending_polls and self.export_error is None
            if finished and export.dir == folder and name in export.files:
                return export.files[name]
        return None

    # --- the archive -----------------------------------------------------------------------

    def _records(self) -> list[Record]:
        matches = sorted(
            ((layout, m) for p in self.files_dir.iterdir() for layout in LAYOUTS if (m := layout.file.fullmatch(p.name))),
            key=lambda lm: (lm[1]["series"], lm[1]["t_rec"], lm[1]["key"], lm[1]["segfile"]),
        )
        recnums: dict[tuple[str, str, str], int] = {}
        records = []
        for layout, m in matches:
            number = (m["series"], m["t_rec"], m["key"])
            records.append(
                Record(
                    layout=layout,
                    series=m["series"],
                    t_rec=datetime.strptime(m["t_rec"], layout.file_time),
                    key=int(m["key"]),
                    segment=layout.segments.get(m["segfile"], m["segfile"]),
                    segment_file=m["segfile"],
                    path=self.files_dir / m.string,
                    recnum=recnums.setdefault(number, 1000 + len(recnums)),
                )
            )
        return records

    def _select(self, ds: str) -> list[Record]:
        """The segment files of the records ``ds`` selects."""
        query = _QUERY.fullmatch(ds.strip())
        if query is None:
            raise _QueryError(f"Bad record-set query {ds!r}")
        records = [r for r in self._records() if r.series.lower() == query["series"].lower()]
        if not records:
            raise _QueryError(f"series not found: {query['series']}")
        where = _FILTER.fullmatch(query["filter"])
        if where is None:
            raise _QueryError(f"Bad record-set filter [{query['filter']}] in {ds!r}")
        segments = {s for s in re.split(r"[\s,]+", query["segments"] or "") if s}
        keys = {int(k) for k in (query["keys"] or "").split(",") if k}
        return [
            r
            for r in records
            if _in_range(r, where)
            and (not keys or r.key in keys)
            and (not segments or r.segment in segments)
        ]


def _handler(server: JsocServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            server.serve(self)

        def do_HEAD(self) -> None:  # noqa: N802
            server.serve(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Keep test output quiet."""

    return Handler


def _send(
    handler: BaseHTTPRequestHandler, data: bytes, content_type: str, body: bytes | None = None
) -> None:
    """Answer 200 announcing ``len(data)`` bytes and sending ``body`` (default ``data``)."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data if body is None else body)


def _keyword(name: str, type_: str, recscope: str, units: str, note: str) -> dict:
    return {
        "name": name,
        "type": type_,
        "recscope": recscope,
        "defval": "",
        "units": units,
        "note": note,
    }


def _segment(name: str) -> dict:
    fields = {"type": "int", "units": "Gauss", "protocol": "fits", "dims": "", "note": ""}
    return {"name": name, **fields}


def _key_value(record: Record, key: str) -> int | str:
    """A keyword value as ``rs_list`` reports it (numbers for ``*recnum*``, strings otherwise)."""
    if key == "*recnum*":
        return record.recnum
    if key == "T_REC":
        return f"{record.t_rec:{record.layout.record_time}}"
    if key == record.layout.key:
        return str(record.key)
    return "Invalid KeyLink"


def _render(fmt: str, record: Record) -> str:
    """An exported file name from a ``filenamefmt`` (``jsoc_export_make_filename``)."""

    def field(match: re.Match[str]) -> str:
        name, layout = match["name"], match["layout"]
        if name == "seriesname":
            return record.series
        if name == "recnum":
            return (layout or "%d").replace("l", "") % record.recnum
        if name == "segment":
            return f"{record.segment_file}.fits"
        if name == "T_REC":
            if layout == "A":  # JSOC's compact time format
                return f"{record.t_rec:{record.layout.compact_time}}"
            return str(_key_value(record, name))
        if name == record.layout.key:
            return str(_key_value(record, name))
        raise _QueryError(f"Unknown keyword {name} in filenamefmt {fmt!r}")

    return _FMT_FIELD.sub(field, fmt)


def _in_range(record: Record, where: re.Match[str]) -> bool:
    """Whether the filter selects the record's slot (``@step``: the first slot of each step)."""
    start_text = where["start"]
    layout = {10: "%Y.%m.%d", 16: "%Y.%m.%d_%H:%M", 19: "%Y.%m.%d_%H:%M:%S"}[len(start_text)]
    start = datetime.strptime(start_text, layout)
    if where["span"] is None:
        return record.t_rec == start
    offset = (record.t_rec - start).total_seconds()
    step = _seconds(where["step"]) if where["step"] else None
    in_step = step is None or offset % step < record.layout.slot_s
    return 0 <= offset < _seconds(where["span"]) and in_step


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * _SECONDS[duration[-1]]


def _size_mb(export: _Export) -> int:
    """The export's volume in MB as JSOC reports it (at least 1 when not empty)."""
    size = sum(r.path.stat().st_size for r in export.files.values())
    return max(1, size // 2**20) if size else 0

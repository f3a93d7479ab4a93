"""Recognising label files (the catalogs' truth) among an archive's files.

Ingest sorts every file into an observation, a label file, or quarantine. Label files
are the real catalogs' formats: HEK query results (JSON), NOAA SRS text, coronal-hole /
active-region masks (FITS with a ``CONTENT`` keyword, or PNG in a ``masks/`` folder), H-alpha quality tables (CSV) and SCSS-Net
polygon archives. Formats are judged by content (:func:`detect_format`), and HEK/SRS/SCSS
files are parsed by their readers, so a label file that ingest accepts is one the
rest of the platform can read. An SCSS-Net ZIP archive is not one label file but many:
:func:`detect_labels` gives each of its files, addressed as ``zip://MEMBER::ARCHIVE``.

Tables. A CSV starting with the simulator's header (:data:`QUALITY_HEADER`) is kind
``halpha_quality``. Any other table is kind ``table``, whatever it holds: ingest does not
guess what a user's columns mean, the card's member (``label: table`` with ``table:``,
:class:`heliobench.specs.LabelTable`) says how to read it. A table is a UTF-8 CSV with a
header row of two or more distinct names and the same number of fields in every row
(delimiter sniffed among :data:`TABLE_DELIMITERS`), or a non-empty JSON list of records
none of which has ``event_type`` (a list whose records have it is a HEK result). It spans
the times of its rows: those of its first column named as in :data:`TIME_COLUMNS`
(case-insensitively, in that order; every value an ISO 8601 time, else the table is
quarantined naming the row), else those in the names of its first column of file names
that all carry a time stamp (``kanz_halph_fd_20170105_000041.fts.gz``). A CSV table with
neither is quarantined with that reason; text that is not a table is left to the
observation readers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from astropy.io import fits
from astropy.time import Time

from heliobench.archive.readers import read_hek, read_srs
from heliobench.archive.readers.fitsheaders import read_layout
from heliobench.archive.readers.formats import detect_format
from heliobench.archive.readers.scss import ScssLabel, read_scss_bytes, zip_members
from heliobench.archive.readers.validation import check_axis_counts
from heliobench.errors import ReaderError

#: FITS ``CONTENT`` values that mark a mask, and the label kind each one is.
MASK_CONTENT = {"CORONAL HOLE MASK": "ch_mask", "ACTIVE REGION MASK": "ar_mask"}

#: Folders of PNG/JPEG masks in the Reiss/CHRONNOS layout (``images/X.png`` + ``masks/X.png``), by label kind.
MASK_FOLDERS = {"masks": "ch_mask", "ch_masks": "ch_mask", "ar_masks": "ar_mask"}

#: SCSS-Net block names (``CH: n``, ``AR: n``) and the label kind of the files holding them.
SCSS_KINDS = {"CH": "scss_ch", "AR": "scss_ar"}

#: First line of an H-alpha quality table.
QUALITY_HEADER = b"file,obs_time,quality"

#: Column names giving a table row's time, tried case-insensitively in this order.
TIME_COLUMNS = ("obs_time", "date_obs", "date-obs", "time", "date", "timestamp")

#: Delimiters sniffed in a CSV table.
TABLE_DELIMITERS = ",;\t|"

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class LabelFile:
    """A label file: its kind and the time span it covers (UTC).

    A label file inside an archive also has its own ``uri`` (``zip://MEMBER::ARCHIVE``) and
    ``checksum`` (sha256 of its bytes); both are None for a file that is one label.
    """

    kind: str  # hek | srs | ch_mask | ar_mask | halpha_quality | table | scss_ch | scss_ar
    time_start: datetime | None
    time_end: datetime | None
    uri: str | None = None
    checksum: str | None = None


def _utc(value: str) -> datetime:
    return Time(value.replace("Z", ""), scale="utc").to_datetime(timezone=timezone.utc)


def _mask(raw: bytes) -> LabelFile | None:
    try:
        layout = read_layout(raw, fits.conf.strip_header_whitespace)  # the headers without astropy, where it can
        if layout is not None:
            return _mask_in(layout.headers)
        check_axis_counts(raw, "")  # astropy would loop over a damaged NAXIS's billions of axes
        with fits.open(io.BytesIO(raw), lazy_load_hdus=True) as hdul:
            return _mask_in(hdu.header for hdu in hdul)
    except Exception:  # noqa: BLE001 - not a readable mask: the observation readers give the precise reason
        return None


def _mask_in(headers: Iterable[Mapping]) -> LabelFile | None:
    """The mask label of the first header with a mask ``CONTENT``, None without one."""
    for header in headers:
        content = str(header.get("CONTENT", "")).strip().upper()
        if content in MASK_CONTENT:
            t = _utc(str(header["DATE-OBS"]))
            return LabelFile(MASK_CONTENT[content], t, t)
    return None


def _raster_mask(raw: bytes, uri: str) -> LabelFile | None:
    """A PNG/JPEG in a ``masks/`` folder: a binary mask whose file name gives its time."""
    import posixpath

    from heliobench.archive.readers.raster import grey_levels, name_time

    kind = MASK_FOLDERS.get(posixpath.basename(posixpath.dirname(uri)).lower())
    if kind is None:
        return None
    levels = grey_levels(raw, uri)
    if len(levels) > 2 or levels[0] != 0:
        raise ReaderError(uri, f"a mask in a masks/ folder must hold 0 and one other value; this one has {len(levels)} grey levels")
    t = name_time(uri)
    return LabelFile(kind, t, t)


def _quality_csv(raw: bytes, uri: str) -> LabelFile:
    lines = [line for line in raw.splitlines()[1:] if line.strip()]
    try:
        times = [_utc(line.split(b",")[1].decode()) for line in lines]
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ReaderError(uri, f"H-alpha quality table with a bad obs_time ({exc})") from None
    return LabelFile("halpha_quality", min(times, default=None), max(times, default=None))


@dataclass(frozen=True)
class Table:
    """A table file's column names and rows, every value as stripped text ("" where empty or null)."""

    columns: tuple[str, ...]
    rows: list[dict[str, str]]


def read_table(raw: bytes, uri: str, delimiter: str | None = None) -> Table:
    """A CSV with a header row (``delimiter``, else sniffed) or a JSON list of records; a
    :class:`ReaderError` when ``raw`` is neither (rules: this module's docstring)."""
    if detect_format(raw) == "json":
        return _json_table(_json(raw, uri), uri)
    return _csv_table(raw, uri, delimiter)


def table_time(value: str, column: str, row: int, uri: str) -> datetime:
    """``value`` of ``column`` in data row ``row`` (counted from 1) as UTC: an ISO 8601 date
    and time (``2017-01-05T06:00:12``, ``2017-01-05 06:00:12.5``, ``...Z``; naive is UTC)."""
    try:
        if not _ISO_DATE.match(value):
            raise ValueError(value)
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ReaderError(uri, f"row {row}: {column} {value!r} is not an ISO 8601 time (e.g. 2017-01-05T06:00:12)") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _csv_table(raw: bytes, uri: str, delimiter: str | None) -> Table:
    try:
        text = raw.decode("utf-8-sig")
        head = "\n".join(text.splitlines()[:20])
        sep = delimiter or csv.Sniffer().sniff(head, delimiters=TABLE_DELIMITERS).delimiter
        lines = [r for r in csv.reader(io.StringIO(text), delimiter=sep) if any(v.strip() for v in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReaderError(uri, f"not a readable CSV table ({exc})") from None
    header = tuple(name.strip() for name in lines[0]) if lines else ()
    if len(lines) < 2 or len(header) < 2 or len(set(header)) != len(header) or not all(header):
        raise ReaderError(uri, "not a table: it needs a header row of two or more distinct column names and a row")
    for n, fields in enumerate(lines[1:], 1):
        if len(fields) != len(header):
            raise ReaderError(uri, f"row {n} has {len(fields)} fields, the header {len(header)} ({sep!r}-delimited)")
    return Table(header, [dict(zip(header, (v.strip() for v in fields))) for fields in lines[1:]])


def _json(raw: bytes, uri: str) -> object:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReaderError(uri, f"not valid JSON ({exc})") from None


def _is_records(doc: object) -> bool:
    """A non-empty JSON list of records none of which is a HEK event (has ``event_type``)."""
    return isinstance(doc, list) and bool(doc) and all(isinstance(r, dict) and "event_type" not in r for r in doc)


def _json_table(doc: object, uri: str) -> Table:
    if not _is_records(doc):
        raise ReaderError(uri, "JSON that is not a table (expected a non-empty list of records without event_type)")
    columns = tuple(dict.fromkeys(key for record in doc for key in record))
    return Table(columns, [{c: _text(record.get(c)) for c in columns} for record in doc])


def _text(value: object) -> str:
    """A JSON value as table text: strings stripped, null empty, numbers and booleans as JSON writes them."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _row_times(table: Table, uri: str) -> list[datetime]:
    """Each row's time: from the first column named as in :data:`TIME_COLUMNS`, else from
    the first column whose every value is a file name with a time stamp."""
    from heliobench.archive.readers.raster import name_time

    named = {c.lower(): c for c in table.columns}
    for name in TIME_COLUMNS:
        if name in named:
            return [table_time(row[named[name]], named[name], n, uri) for n, row in enumerate(table.rows, 1)]
    for column in table.columns:
        try:
            return [name_time(row[column]) for row in table.rows]
        except ReaderError:
            continue
    raise ReaderError(uri, f"a table with no time column ({', '.join(TIME_COLUMNS)}) and no column of file names "
                           f"with a time stamp: it cannot label observations")


def _table_label(table: Table, uri: str) -> LabelFile:
    times = _row_times(table, uri)
    return LabelFile("table", min(times), max(times))


def _csv_label(raw: bytes, uri: str) -> LabelFile | None:
    """A CSV table as kind ``table``, or None when ``raw`` is not a table."""
    try:
        table = _csv_table(raw, uri, None)
    except ReaderError:
        return None  # not a table: the observation readers give the precise reason
    return _table_label(table, uri)


def _json_label(raw: bytes, uri: str) -> LabelFile:
    """A JSON list of records without ``event_type`` as a ``table``; anything else read as a HEK result."""
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        doc = _json(raw, uri)
        if _is_records(doc):
            return _table_label(_json_table(doc, uri), uri)
    events = read_hek(raw, uri)
    return LabelFile("hek", events["start_time"].min(), events["end_time"].max())


def _scss_archive(raw: bytes, uri: str) -> list[LabelFile | ReaderError] | None:
    """Each file of an SCSS-Net ZIP archive as a label, or None when the archive's first
    readable file is not an SCSS label.

    A file's kind comes from its blocks (``CH``: ``scss_ch``, ``AR``: ``scss_ar``); a file
    without any polygon (a day with no coronal hole drawn) takes the kind of the archive's
    other files. A file that cannot be read or parsed is the :class:`ReaderError` naming it.
    """
    parsed: list[tuple[ScssLabel, str] | ReaderError] = []
    readable = False
    for member, content in zip_members(raw, uri):
        if isinstance(content, ReaderError):
            parsed.append(content)
            continue
        if not readable and detect_format(content[:2000]) != "scss":
            return None  # the first readable file decides what the archive is
        readable = True
        try:
            parsed.append((read_scss_bytes(content, member), hashlib.sha256(content).hexdigest()))
        except ReaderError as exc:
            parsed.append(exc)
    if not readable:
        return None
    kinds = {SCSS_KINDS[p[0].kind] for p in parsed if not isinstance(p, ReaderError) and p[0].kind}
    archive_kind = next(iter(kinds)) if len(kinds) == 1 else None
    out: list[LabelFile | ReaderError] = []
    for item in parsed:
        if isinstance(item, ReaderError):
            out.append(item)
            continue
        label, checksum = item
        kind = SCSS_KINDS.get(label.kind, archive_kind)
        if kind is None:
            out.append(ReaderError(label.uri, "an SCSS label without any CH or AR block, in an archive whose other "
                                              "files do not show whether it labels coronal holes or active regions"))
        else:
            out.append(LabelFile(kind, label.date, label.date, label.uri, checksum))
    return out


def detect_labels(raw: bytes, uri: str) -> list[LabelFile | ReaderError] | None:
    """The label files ``raw`` holds: itself, or each file of an SCSS-Net ZIP archive (one
    that cannot be read or parsed as the :class:`ReaderError` naming it, so that the rest of
    the archive is still catalogued); None when ``raw`` is not a label file."""
    if detect_format(raw) == "zip":
        return _scss_archive(raw, uri)
    label = detect_label(raw, uri)
    return None if label is None else [label]


def detect_label(raw: bytes, uri: str) -> LabelFile | None:
    """The label file ``raw`` is, or None when it is not one (archives of label files: :func:`detect_labels`)."""
    fmt = detect_format(raw)
    if fmt == "fits":
        return _mask(raw)
    if fmt in ("png", "jpeg"):
        return _raster_mask(raw, uri)
    if fmt == "json":
        return _json_label(raw, uri)
    if fmt == "srs":
        issued = read_srs(raw, uri)["issued"]
        return LabelFile("srs", issued.min(), issued.max())
    if fmt == "unknown":
        return _quality_csv(raw, uri) if raw.startswith(QUALITY_HEADER) else _csv_label(raw, uri)
    return None

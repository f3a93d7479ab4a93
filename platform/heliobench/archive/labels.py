"""Recognising label files (the catalogs' truth) among an archive's files.

Ingest sorts every file into an observation, a label file, or quarantine. Label files
are the real catalogs' formats: HEK query results (JSON), NOAA SRS text, coronal-hole /
active-region mask FITS (``CONTENT`` keyword), H-alpha quality tables (CSV) and SCSS-Net
polygon archives. Formats are judged by content (:func:`detect_format`), and HEK/SRS
files are parsed by their readers, so a label file that ingest accepts is one the
rest of the platform can read.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone

from astropy.io import fits
from astropy.time import Time

from heliobench.archive.readers import read_hek, read_srs
from heliobench.archive.readers.formats import detect_format
from heliobench.errors import ReaderError

#: FITS ``CONTENT`` values that mark a mask, and the label kind each one is.
MASK_CONTENT = {"CORONAL HOLE MASK": "ch_mask", "ACTIVE REGION MASK": "ar_mask"}

#: First line of an H-alpha quality table.
QUALITY_HEADER = b"file,obs_time,quality"


@dataclass(frozen=True)
class LabelFile:
    """A label file: its kind and the time span it covers (UTC)."""

    kind: str  # hek | srs | ch_mask | ar_mask | halpha_quality | scss_polygons
    time_start: datetime | None
    time_end: datetime | None


def _utc(value: str) -> datetime:
    return Time(value.replace("Z", ""), scale="utc").to_datetime(timezone=timezone.utc)


def _mask(raw: bytes) -> LabelFile | None:
    try:
        with fits.open(io.BytesIO(raw), lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                content = str(hdu.header.get("CONTENT", "")).strip().upper()
                if content in MASK_CONTENT:
                    t = _utc(str(hdu.header["DATE-OBS"]))
                    return LabelFile(MASK_CONTENT[content], t, t)
    except (OSError, KeyError, ValueError):
        return None  # not a mask: the observation readers give the precise reason
    return None


def _quality_csv(raw: bytes, uri: str) -> LabelFile:
    lines = [line for line in raw.splitlines()[1:] if line.strip()]
    try:
        times = [_utc(line.split(b",")[1].decode()) for line in lines]
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ReaderError(uri, f"H-alpha quality table with a bad obs_time ({exc})") from None
    return LabelFile("halpha_quality", min(times, default=None), max(times, default=None))


def _is_scss_zip(raw: bytes, uri: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            return bool(names) and detect_format(zf.read(names[0])[:2000]) == "scss"
    except zipfile.BadZipFile:
        raise ReaderError(uri, "a ZIP archive that cannot be opened (truncated or corrupt)") from None


def detect_label(raw: bytes, uri: str) -> LabelFile | None:
    """The label file ``raw`` is, or None when it is not a label file."""
    fmt = detect_format(raw)
    if fmt == "fits":
        return _mask(raw)
    if fmt == "json":
        events = read_hek(raw, uri)
        return LabelFile("hek", events["start_time"].min(), events["end_time"].max())
    if fmt == "srs":
        issued = read_srs(raw, uri)["issued"]
        return LabelFile("srs", issued.min(), issued.max())
    if fmt == "zip" and _is_scss_zip(raw, uri):
        return LabelFile("scss_polygons", None, None)
    if fmt == "unknown" and raw.startswith(QUALITY_HEADER):
        return _quality_csv(raw, uri)
    return None

"""Recognising a file's format from its first bytes (magic numbers and leading text).

Readers never trust a file name: a ``.fits`` that holds text, or a ``.txt`` that holds
FITS, is recognised for what it is.
"""

from __future__ import annotations

import zlib

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"
JP2_MAGIC = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
J2K_CODESTREAM_MAGIC = b"\xff\x4f\xff\x51"
ZIP_MAGIC = b"PK\x03\x04"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def gunzipped_head(raw: bytes, n: int = 64) -> bytes:
    """The first ``n`` bytes of the gzip stream ``raw`` once decompressed (b'' if corrupt)."""
    try:
        return zlib.decompressobj(wbits=31).decompress(raw[:4096], n)[:n]
    except zlib.error:
        return b""


def detect_format(raw: bytes) -> str:
    """The format of ``raw`` judged by its content.

    One of ``fits``, ``fits.gz``, ``gzip`` (not FITS inside), ``jp2``, ``j2k`` (bare
    codestream), ``zip``, ``png``, ``jpeg``, ``json``, ``srs``, ``scss``, ``empty`` or ``unknown``.
    """
    if not raw:
        return "empty"
    if raw.startswith(FITS_MAGIC):
        return "fits"
    if raw.startswith(GZIP_MAGIC):
        return "fits.gz" if gunzipped_head(raw).startswith(FITS_MAGIC) else "gzip"
    if raw.startswith(JP2_MAGIC):
        return "jp2"
    if raw.startswith(J2K_CODESTREAM_MAGIC):
        return "j2k"
    if raw.startswith(ZIP_MAGIC):
        return "zip"
    if raw.startswith(PNG_MAGIC):
        return "png"
    if raw.startswith(JPEG_MAGIC):
        return "jpeg"
    head = raw[:2000].decode("latin-1")
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("[", "{")):
        return "json"
    if ":Product:" in head and "SRS" in head.upper():
        return "srs"
    if stripped.startswith("DATE:"):
        return "scss"
    return "unknown"


def describe_start(raw: bytes) -> str:
    """The first bytes of ``raw`` for an error message."""
    return repr(raw[:16]) if raw else "nothing (empty file)"

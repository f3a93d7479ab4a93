"""Damaging files the way archives get damaged, for the fuzz tests (``tests/test_fuzz.py``).

A mutation is a list of operations applied in turn to a file's bytes and name:

* keyword operations rewrite one header keyword (delete it, or set it to zero, NaN, text,
  a boolean, a huge, tiny or negative number, a wrong unit, an impossible date): in the
  FITS header cards of any HDU (gzipped FITS too), or in the XML-boxed FITS header of a
  JPEG 2000 file; structural keywords (``NAXISn``, ``BITPIX``, ``ZNAXISn``...) included;
* byte operations truncate the file, overwrite, insert or delete bytes (often in the
  first 8 KiB, where the headers are);
* a name operation breaks the file name that PNG/JPEG browse images take their time and
  channel from.

Keyword operations on files without a header (PNG, text labels) fall back to byte operations.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

from astropy.io import fits
from hypothesis import strategies as st

#: Keywords the readers and sunpy use, the structural ones among them.
KEYWORDS = (
    "CDELT1", "CDELT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CROTA2", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
    "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "RSUN_OBS", "DSUN_OBS", "RSUN_REF",
    "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS", "DATE-OBS", "DATE_OBS", "T_OBS", "TIME-OBS", "EXPTIME",
    "WAVELNTH", "WAVEUNIT", "WAVE_LEN", "INSTRUME", "TELESCOP", "DETECTOR", "CONTENT", "QUALITY", "LVL_NUM", "BUNIT",
    "IMG_TYPE", "OBS_MODE", "NAXIS", "NAXIS1", "NAXIS2", "BITPIX", "BSCALE", "BZERO", "BLANK", "ZNAXIS1", "ZNAXIS2",
    "ZBITPIX", "ZCMPTYPE", "ZTILE1", "ZTILE2", "ZNAME1", "ZVAL1", "TFORM1", "CENTER_X", "CENTER_Y", "SOLAR_R",
    "ANGLE", "EXP_TIME", "SHT_MDUR",
)

#: Values by kind: FITS card text (strings quoted) and the same value in an XML header.
VALUES = {
    "zero": ["0", "0.0"],
    "nan": ["'NaN'", "NaN", "'nan'", "'inf'", "'-Infinity'"],
    "text": ["'abc'", "''", "'12:34:56'"],
    "bool": ["T", "F"],
    "huge": ["1.0E+300", "99999999999999999999", "2147483648", "65536", "1.7976931348623157E+308"],
    "tiny": ["1.0E-300", "5E-324", "1"],
    "negative": ["-1", "-2.5", "-9999999999", "-2147483648"],
    "unit": ["'m'", "'kg'", "'furlong'", "'nm'", "'deg'", "'pix'"],
    "date": ["'2150-01-01T00:00:00'", "'1066-10-14T09:00:00'", "'2011-02-30T00:00:00'", "'2011-13-01'",
             "'0000-00-00T00:00:00'", "'yesterday'", "'2011-01-01T25:61:61'"],
}

BAD_NAMES = ("image.png", "aia193.png", "sdo_aia193_2014_13_45T25_61_61.png", "sdo_hmi999_2014_07_15T21_59_55.png",
             "sdo_aia9999_2014_07_15T21_59_55.png", "sdo_aia193_0001_01_01T00_00_00.png")


@dataclass(frozen=True)
class Op:
    """One operation: ``kind`` is a keyword operation (``keyword``), a byte operation or ``rename``."""

    kind: str  # delete | set | truncate | overwrite | insert | cut | rename
    keyword: str = ""
    value: str = ""
    hdu: int = 0  # which header (of a multi-HDU FITS)
    at: float = 0.0  # position as a share of the file (or of its first 8 KiB when head)
    head: bool = False
    data: bytes = b""
    length: int = 0


def keyword_ops() -> st.SearchStrategy[Op]:
    value = st.sampled_from(sorted(VALUES)).flatmap(lambda kind: st.sampled_from(VALUES[kind]))
    return st.one_of(
        st.builds(Op, kind=st.just("delete"), keyword=st.sampled_from(KEYWORDS), hdu=st.integers(0, 3)),
        st.builds(Op, kind=st.just("set"), keyword=st.sampled_from(KEYWORDS), value=value, hdu=st.integers(0, 3)),
    )


def byte_ops() -> st.SearchStrategy[Op]:
    where = {"at": st.floats(0, 1, exclude_max=True), "head": st.booleans()}
    return st.one_of(
        st.builds(Op, kind=st.just("truncate"), at=st.floats(0, 1, exclude_max=True)),
        st.builds(Op, kind=st.just("overwrite"), data=st.binary(min_size=1, max_size=64), **where),
        st.builds(Op, kind=st.just("insert"), data=st.binary(min_size=1, max_size=64), **where),
        st.builds(Op, kind=st.just("cut"), length=st.integers(1, 4096), **where),
    )


def mutations() -> st.SearchStrategy[list[Op]]:
    """One to three operations, keyword operations the most frequent."""
    op = st.one_of(keyword_ops(), keyword_ops(), byte_ops(),
                   st.builds(Op, kind=st.just("rename"), value=st.sampled_from(BAD_NAMES)))
    return st.lists(op, min_size=1, max_size=3)


def mutate(raw: bytes, name: str, ops: list[Op]) -> tuple[bytes, str]:
    """``raw`` and ``name`` after ``ops``."""
    for op in ops:
        if op.kind == "rename":
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                name = op.value
        elif op.kind in ("delete", "set"):
            raw = _keyword(raw, op)
        else:
            raw = _bytes(raw, op)
    return raw, name


def _position(raw: bytes, op: Op) -> int:
    span = min(len(raw), 8192) if op.head else len(raw)
    return int(op.at * span)


def _bytes(raw: bytes, op: Op) -> bytes:
    at = _position(raw, op)
    if op.kind == "truncate":
        return raw[: int(op.at * len(raw))]
    if op.kind == "overwrite":
        return raw[:at] + op.data + raw[at + len(op.data):]
    if op.kind == "insert":
        return raw[:at] + op.data + raw[at:]
    return raw[:at] + raw[at + op.length:]


def _keyword(raw: bytes, op: Op) -> bytes:
    if raw.startswith(b"SIMPLE  ="):
        return _fits_keyword(raw, op)
    if raw.startswith(b"\x1f\x8b"):
        try:
            inner = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return _bytes(raw, Op("overwrite", at=op.at, head=True, data=op.value.encode() or b"\0"))
        return gzip.compress(_keyword(inner, op), compresslevel=1) if inner.startswith(b"SIMPLE  =") else raw
    if raw.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return _jp2_keyword(raw, op)
    return _bytes(raw, Op("overwrite", at=(zlib.crc32(op.keyword.encode()) % 997) / 997, data=op.value.encode() or b"\0"))


def _card(key: str, value: str) -> bytes:
    text = f"{key:<8}= {value:>20}" if not value.startswith("'") else f"{key:<8}= {value:<20}"
    return text[:80].ljust(80).encode("ascii")


def _fits_keyword(raw: bytes, op: Op) -> bytes:
    """``raw`` with one keyword of header ``op.hdu`` (modulo the HDU count) deleted, set or added."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(raw), disable_image_compression=True, ignore_missing_end=True) as hdul:
                infos = [hdu.fileinfo() for hdu in hdul]
    except Exception:  # noqa: BLE001 - a file an earlier operation broke: damage its bytes instead
        return _bytes(raw, Op("overwrite", at=0.5, head=True, data=op.value.encode() or b"\0"))
    info = infos[op.hdu % len(infos)]
    start, end = info["hdrLoc"], info["datLoc"]
    cards = [raw[i:i + 80] for i in range(start, end, 80)]
    keys = [c[:8].decode("ascii", "replace").strip() for c in cards]
    if "END" not in keys:
        return raw
    cards = cards[: keys.index("END")]
    keys = keys[: len(cards)]
    if op.kind == "delete":
        cards = [c for c, k in zip(cards, keys) if k != op.keyword]
    elif op.keyword in keys:
        cards[keys.index(op.keyword)] = _card(op.keyword, op.value)
    else:
        cards.append(_card(op.keyword, op.value))
    header = b"".join(cards) + b"END".ljust(80)
    header += b" " * (-len(header) % 2880)
    return raw[:start] + header + raw[end:]


def _jp2_keyword(raw: bytes, op: Op) -> bytes:
    """``raw`` with one keyword of the XML box's FITS header deleted, set or added (box length fixed)."""
    offset = 0
    while offset + 8 <= len(raw):
        length, box = struct.unpack(">I4s", raw[offset:offset + 8])
        if length < 8:
            return raw
        if box == b"xml ":
            xml = raw[offset + 8:offset + length].decode("utf-8", "replace")
            element = re.compile(rf"<{re.escape(op.keyword)}>[^<]*</{re.escape(op.keyword)}>\n?", re.IGNORECASE)
            value = op.value.strip("'")
            if op.kind == "delete":
                xml = element.sub("", xml)
            elif element.search(xml):
                xml = element.sub(f"<{op.keyword}>{value}</{op.keyword}>\n", xml, count=1)
            else:
                xml = xml.replace("</fits>", f"<{op.keyword}>{value}</{op.keyword}>\n</fits>", 1)
            payload = xml.encode("utf-8")
            return raw[:offset] + struct.pack(">I4s", len(payload) + 8, box) + payload + raw[offset + length:]
        offset += length
    return raw


#: Keywords astropy writes itself for a primary HDU (taken out of a template header).
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT", "GCOUNT",
               "BLANK", "BSCALE", "BZERO", "CHECKSUM", "DATASUM"}


def malformed_images(template: bytes) -> dict[str, tuple[bytes, str]]:
    """FITS files damaged in every way the readers must explain, made from a good AIA-like
    file (``template``): name → (content, a phrase of the reason the file must get)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(template)) as hdul:
            hdu = next(h for h in hdul if h.is_image and h.data is not None)
            header = fits.Header([c for c in hdu.header.cards if c.keyword not in _STRUCTURAL])
            data = hdu.data.astype("float32")

    def plain(pixels=data, **changes) -> bytes:
        h = header.copy()
        for key, value in changes.items():
            h[key.replace("__", "-")] = value
        buf = io.BytesIO()
        fits.PrimaryHDU(pixels, h).writeto(buf)
        return buf.getvalue()

    good = plain()
    huge = good.replace(b"NAXIS1  =" + good.split(b"NAXIS1  =")[1][:21], b"NAXIS1  =" + b"100000".rjust(21), 1)
    nan = data.copy()
    nan[:] = float("nan")
    nan[0, 0] = float("inf")
    return {
        "cdelt_zero.fits": (plain(CDELT1=0.0), "CDELT1 = 0: the pixel scale is missing"),
        "crpix_nan.fits": (plain(CRPIX1="NaN"), "CRPIX1 = 'NaN': the reference pixel is missing"),
        "rsun_zero.fits": (plain(RSUN_OBS=0.0), "RSUN_OBS = 0: the Sun's apparent radius is missing"),
        "singular_pc.fits": (plain(PC1_1=1.0, PC1_2=1.0, PC2_1=1.0, PC2_2=1.0), "form a singular matrix"),
        "cunit_metre.fits": (plain(CUNIT1="m"), "CUNIT1 = 'm' is not an angle unit"),
        "cube.fits": (plain(pixels=data[None].repeat(2, axis=0)), "FITS file without a 2-D image"),
        "date_invalid.fits": (plain(DATE__OBS="2011-02-30T00:00:00"), "is not a valid date and time"),
        "date_future.fits": (plain(DATE__OBS="2150-01-01T00:00:00"), "an impossible observation time (in the future)"),
        "exposure_negative.fits": (plain(EXPTIME=-2.0), "EXPTIME = -2: a negative exposure time"),
        "shape_huge.fits": (huge, "more than the 16384-pixel limit per side"),
        "nan_only.fits": (plain(pixels=nan), "no finite pixel value"),
        "truncated.fits": (good[: len(good) // 2], "truncated FITS file"),
        "garbage.fits": (good[:2880] + bytes(range(256)) * 40, "FITS"),
        "empty.fits": (b"", "empty file"),
    }

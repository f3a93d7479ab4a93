"""FITS headers read straight from the file's bytes: the fast path of the FITS reader.

astropy turns every 80-character card into a ``Card`` through regular expressions and a
configuration look-up per access, and converts a tile-compressed table's header into
the image's header with a header operation per keyword: reading the header of a
1024² JSOC image that way costs about as much as decompressing its pixels.
:func:`read_layout` reads the two layouts archives hold in bulk in one pass over the
card text: a primary image, and an empty primary HDU followed by a tile-compressed
image (how JSOC exports AIA and HMI, and how the simulator writes them).

For those layouts it gives each HDU's keywords with the values and types astropy gives
(``containers`` turns them into an ``ImageFile`` exactly as it does astropy's header;
tests compare both readings on every real and simulated file). A card that is not a
plain ``KEYWORD = value / comment`` with a string, logical, integer or real value
(complex, undefined, unquoted ``nan``, record-valued keyword cards, a lower-case keyword)
is read by astropy alone. Anything else returns None and astropy reads the whole file:
CONTINUE and HIERARCH cards, repeated keywords, odd structure keywords, random groups,
more HDUs than the layout has, bytes after the last HDU, a header without END, and a
file shorter than its header says, for which astropy's error messages are the ones
users see.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

CARD = 80
BLOCK = 2880

_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?")
_EXPONENT = str.maketrans("Dd", "Ee")
_VALUE_END = re.compile(r" *(?:/.*)?")
#: A record-valued keyword card's value and comment (astropy's ``Card._rvkc_keyword_val_comm_RE``).
_RECORD_VALUED = re.compile(r"'[a-zA-Z_]\w*(\.\d+)?(\.[a-zA-Z_]\w*(\.\d+)?)*: +[+-]?(\.\d+|\d+(\.\d*)?)([DE][+-]?\d+)?' *(/ *[ -~]*)?$")
#: A card astropy reads but whose value its header does not hold.
_SKIPPED = object()
#: Keywords of cards that carry no value: skipped, as ``containers`` skips them in astropy's headers.
_COMMENTARY = ("", "COMMENT", "HISTORY")
#: Table keywords with an index (TTYPEn...) that are not image keywords (astropy.io.fits.column.KEYWORD_NAMES).
_TABLE_INDEXED = ("TTYPE", "TFORM", "TUNIT", "TNULL", "TSCAL", "TZERO", "TDISP", "TBCOL", "TDIM", "TCTYP", "TCUNI",
                  "TCRPX", "TCRVL", "TCDLT", "TRPOS")
_TABLE_INDEXED_RE = re.compile(r"(?P<label>^T[A-Z]*)(?P<num>[1-9][0-9 ]*$)")  # astropy's TDEF_RE
#: Compression keywords (astropy.io.fits.hdu.compressed.header): never image keywords.
_COMPRESSION = frozenset({"ZSIMPLE", "ZTENSION", "ZBITPIX", "ZNAXIS", "ZEXTEND", "ZBLOCKED", "ZPCOUNT", "ZGCOUNT",
                          "ZHECKSUM", "ZDATASUM", "ZIMAGE", "ZCMPTYPE", "ZMASKCMP", "ZQUANTIZ", "ZDITHER0", "ZBLANK",
                          "ZSCALE", "ZZERO"})
_COMPRESSION_INDEXED_RE = re.compile(r"(?P<label>^[Zz][a-zA-Z]*)(?P<num>[1-9][0-9 ]*$)?")  # astropy's ZDEF_RE
_COMPRESSION_INDEXED = ("ZNAXIS", "ZTILE", "ZNAME", "ZVAL")
#: What astropy's ``Header.strip`` removes before a table header becomes an image header.
_STRUCTURE = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS", "BSCALE", "BZERO",
              "TFIELDS")
_STRIPPED_INDEXED = ("TFORM", "TSCAL", "TZERO", "TNULL", "TTYPE", "TUNIT", "TDISP", "TDIM", "THEAP", "TBCOL")


@dataclass(frozen=True)
class FitsLayout:
    """Where a file's image is and what its headers say.

    ``headers`` holds each HDU's keywords as astropy shows them (a compressed image's
    header converted to the image's, as ``CompImageHDU.header``); ``table`` is the binary
    table's own header when the image is tile-compressed (what decoding reads), else None.
    """

    headers: tuple[dict[str, Any], ...]
    index: int  # the HDU holding the image
    table: dict[str, Any] | None
    data_offset: int  # byte offset of the image HDU's data (the table's, when compressed)
    data_span: int  # its size in bytes, padded to whole FITS blocks


def read_layout(raw: bytes, strip_strings: bool = True) -> FitsLayout | None:
    """The layout of a plain FITS file ``raw`` when it is one of the two this module reads,
    else None. ``strip_strings``: drop trailing blanks of string values (astropy's
    ``conf.strip_header_whitespace``)."""
    first = _header(raw, 0, "SIMPLE", strip_strings)
    if first is None:
        return None
    primary, end = first
    if primary["SIMPLE"] is not True or "GROUPS" in primary or "PCOUNT" in primary or "GCOUNT" in primary:
        return None
    size = _data_size(primary)
    if size is None:
        return None
    span = _padded(size)
    if size:  # a primary image and nothing after it
        if len(raw) != end + span:
            return None
        return FitsLayout((primary,), 0, None, end, span)
    second = _header(raw, end, "XTENSION", strip_strings)
    if second is None:
        return None
    table, data = second
    if table["XTENSION"] != "BINTABLE" or not table.get("ZIMAGE"):
        return None
    size = _table_size(table)
    if size is None or len(raw) != data + _padded(size):
        return None
    image = _image_header(table)
    if image is None:
        return None
    return FitsLayout((primary, image), 1, table, data, _padded(size))


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _header(raw: bytes, start: int, first: str, strip_strings: bool) -> tuple[dict[str, Any], int] | None:
    """The keywords of the header starting at byte ``start`` with keyword ``first`` and the
    offset just past its last block; None when a card is beyond this module or no END card comes."""
    out: dict[str, Any] = {}
    seen: set[str] = set()
    at = start
    while True:
        block = raw[at : at + BLOCK]
        if len(block) < BLOCK:
            return None
        try:
            text = block.decode("ascii")
        except UnicodeDecodeError:
            return None
        if at == start and not text.startswith(f"{first:8}= "):
            return None
        at += BLOCK
        for i in range(0, BLOCK, CARD):
            card = text[i : i + CARD]
            keyword = card[:8].rstrip()
            if keyword == "END":
                return (out, at) if not card[3:].strip() else None
            if keyword in _COMMENTARY:
                continue
            if keyword in ("CONTINUE", "HIERARCH"):
                return None
            value = _value(card[10:], strip_strings) if card[8:10] == "= " and _KEYWORD.fullmatch(keyword) else None
            if value is None:  # astropy reads this card (and skips it where its value is unreadable or undefined)
                keyword, value = _astropy_card(card)
                if _structural(keyword):
                    return None
            if keyword in seen:
                return None
            seen.add(keyword)
            if value is not _SKIPPED:
                out[keyword] = value


def _astropy_card(image: str) -> tuple[str, Any]:
    """Keyword and value of a card as astropy reads it; the value :data:`_SKIPPED` where
    astropy's header keeps no value (unparsable, as ``nan`` unquoted, or undefined)."""
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = fits.Card.fromstring(image)
        keyword = card.keyword
        try:
            value = card.value
        except VerifyError:
            return keyword, _SKIPPED
    return keyword, _SKIPPED if isinstance(value, fits.card.Undefined) else value


def _structural(keyword: str) -> bool:
    """Whether the layout or the compressed header's conversion reads ``keyword``."""
    return (keyword in _STRUCTURE or keyword.startswith(("NAXIS", "Z")) or _is_table_keyword(keyword)
            or keyword in ("BLANK", "BLOCKED", "CHECKSUM", "DATASUM", "EXTNAME", "THEAP"))


def _value(field: str, strip_strings: bool) -> Any:
    """The value of a card's value field (after ``= ``), None when it is not a plain
    string, logical, integer or real."""
    text = field.lstrip(" ")
    if text.startswith("'"):
        # A string: '' stands for a quote; the closing quote is followed by blanks or a comment.
        at = 1
        while True:
            close = text.find("'", at)
            if close < 0:
                return None
            if text.startswith("''", close):
                at = close + 2
                continue
            break
        inner, rest = text[1:close], text[close + 1 :]
        if not _VALUE_END.fullmatch(rest) or not inner.isprintable() or not inner.isascii():
            return None
        if _RECORD_VALUED.match(text):
            return None  # a record-valued keyword card ('AXIS.1: 2'): astropy's to read
        value = inner.replace("''", "'")
        return value.rstrip() if strip_strings else value
    token, _, rest = text.partition(" ")
    if "/" in token:
        token, slash, after = token.partition("/")
        rest = slash + after + " " + rest
    if not _VALUE_END.fullmatch(rest.lstrip(" ")):
        return None
    if token in ("T", "F"):
        return token == "T"
    if _NUMBER.fullmatch(token):
        digits = token.translate(_EXPONENT)
        try:
            return int(digits)
        except ValueError:
            return float(digits)
    return None


def _data_size(header: dict[str, Any]) -> int | None:
    """Bytes of a primary or image HDU's data (before padding), None for odd structure keywords."""
    bitpix, naxis = header.get("BITPIX"), header.get("NAXIS")
    if bitpix not in (8, 16, 32, 64, -32, -64) or not isinstance(naxis, int) or isinstance(naxis, bool) or not 0 <= naxis <= 999:
        return None
    size = abs(bitpix) // 8 if naxis else 0
    for i in range(1, naxis + 1):
        n = header.get(f"NAXIS{i}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            return None
        size *= n
    return size


def _table_size(table: dict[str, Any]) -> int | None:
    """Bytes of a binary table's data including its heap, None for odd structure keywords."""
    rows, size = table.get("NAXIS2"), _data_size(table)
    pcount, gcount = table.get("PCOUNT"), table.get("GCOUNT")
    if size is None or table.get("BITPIX") != 8 or table.get("NAXIS") != 2 or gcount != 1 or not isinstance(rows, int):
        return None
    if not isinstance(pcount, int) or isinstance(pcount, bool) or pcount < 0:
        return None
    return size + pcount


def _is_table_keyword(keyword: str) -> bool:
    match = _TABLE_INDEXED_RE.match(keyword)
    return keyword in ("TFIELDS", "THEAP") or bool(match and match.group("label") in _TABLE_INDEXED)


def _is_compression_keyword(keyword: str) -> bool:
    match = _COMPRESSION_INDEXED_RE.match(keyword)
    return keyword in _COMPRESSION or bool(match and match.group("label").upper() in _COMPRESSION_INDEXED)


def _count(value: Any) -> bool:
    """Whether a structure keyword's value is a usable count (a non-negative integer)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _image_header(table: dict[str, Any]) -> dict[str, Any] | None:
    """A compressed image's header from its table's, as astropy converts it
    (``_bintable_header_to_image_header``), for a table without repeated keywords;
    None when a keyword the conversion needs is missing."""
    znaxis, zbitpix = table.get("ZNAXIS"), table.get("ZBITPIX")
    if not _count(znaxis) or znaxis > 999 or not isinstance(zbitpix, int):
        return None
    if not all(_count(table.get(f"ZNAXIS{i}")) for i in range(1, znaxis + 1)):
        return None  # a missing or damaged axis length: astropy reads the file and says what is wrong
    naxis_t, tfields = table.get("NAXIS", 0), table.get("TFIELDS", 0)
    if not isinstance(tfields, int) or isinstance(tfields, bool):
        return None
    stripped = set(_STRUCTURE) | {f"NAXIS{i + 1}" for i in range(naxis_t)}
    stripped |= {f"{name}{i + 1}" for name in _STRIPPED_INDEXED for i in range(tfields)}
    body = {k: v for k, v in table.items()
            if k not in stripped and k not in ("CHECKSUM", "DATASUM") and not _is_table_keyword(k) and not _is_compression_keyword(k)}
    for keyword in [k for k in body if k.startswith("NAXIS") and len(k) > 5]:
        try:
            if int(keyword[5:]) > znaxis:
                del body[keyword]  # spurious NAXISn
        except ValueError:
            pass
    for keyword in ("BSCALE", "BZERO"):
        if table.get(keyword):
            body[keyword] = table[keyword]
    head: dict[str, Any] = {"SIMPLE": table["ZSIMPLE"]} if "ZSIMPLE" in table else {"XTENSION": "IMAGE"}
    head["BITPIX"] = zbitpix
    head["NAXIS"] = znaxis
    for i in range(1, znaxis + 1):
        head[f"NAXIS{i}"] = table[f"ZNAXIS{i}"]
    head["PCOUNT"] = table.get("ZPCOUNT", 0)
    head["GCOUNT"] = table.get("ZGCOUNT", 1)
    image = head | body
    for source, target in (("ZEXTEND", "EXTEND"), ("ZBLOCKED", "BLOCKED"), ("ZHECKSUM", "CHECKSUM"), ("ZDATASUM", "DATASUM")):
        if source in table:
            image[target] = table[source]
    if image.get("EXTNAME") == "COMPRESSED_IMAGE":
        del image["EXTNAME"]
    if "SIMPLE" in image:
        del image["PCOUNT"], image["GCOUNT"]
    if zbitpix > 0 and "BLANK" not in image:
        if "ZBLANK" in table:
            image["BLANK"] = table["ZBLANK"]
        elif any(f"TTYPE{i}" not in table for i in range(1, tfields + 1)):
            return None
        elif any(table[f"TTYPE{i}"] == "ZBLANK" for i in range(1, tfields + 1)):
            image["BLANK"] = -(1 << (zbitpix - 1))
    return image

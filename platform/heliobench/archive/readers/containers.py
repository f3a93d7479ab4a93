"""Opening the containers an observation comes in: FITS (plain, tile-compressed or
gzipped) and JPEG 2000 with an XML-boxed FITS header.

:func:`open_image` reads only what the header needs (a RICE-compressed image is not
decompressed, a JPEG 2000 codestream is not decoded); :attr:`ImageFile.decode` decodes
the pixels when they are wanted. Every failure becomes a :class:`ReaderError` that
names the file and says what is wrong with it.

JPEG 2000 headers are read with tag names in any case; pixels that are display values
(Helioviewer's 8-bit scaled images) are marked ``HB_PIXEL = 'display'`` in the header
(:data:`heliobench.archive.readers.keywords.PIXEL_KIND_KEY`).
"""

from __future__ import annotations

import gzip
import io
import math
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError

from heliobench.archive.readers.fitsheaders import read_layout
from heliobench.archive.readers.formats import describe_start, detect_format
from heliobench.archive.readers.keywords import DISPLAY_PIXELS, PIXEL_KIND_KEY, number
from heliobench.archive.readers.validation import check_axis_counts, check_shape
from heliobench.binning import block_mean, block_sum
from heliobench.errors import ReaderError


@dataclass(frozen=True)
class ImageFile:
    """One image as found in a file: its FITS keywords, shape and a way to decode its pixels."""

    uri: str
    file_format: str  # "fits", "fits.gz", "jp2"
    header: dict[str, Any]  # FITS keyword -> value (COMMENT, HISTORY and unparsable cards left out)
    shape: tuple[int, int]  # (ny, nx)
    decode: Callable[[], np.ndarray]  # the pixels in native byte order, row 0 at the bottom (FITS convention)
    stored_floats: np.ndarray | None = None  # uncompressed float pixels as stored (a view of the bytes), else None
    #: ``block`` -> box means computed while decoding (tile-compressed FITS), else None: see ``box_means``
    decode_box_means: Callable[[int], np.ndarray] | None = None

    def box_means(self, block: int) -> np.ndarray:
        """The pixels' float32 means over ``block`` x ``block`` boxes (trailing partial boxes
        dropped): :func:`heliobench.binning.block_mean` of the decoded image, computed for RICE
        row tiles (JSOC's AIA and HMI files) a chunk of rows at a time as they are decoded,
        so that the full-resolution image is never held (at 4096² that saves writing,
        faulting in and reading back 64 MB per image)."""
        if block > 1 and self.decode_box_means is not None:
            return self.decode_box_means(block)
        return block_mean(np.asarray(self.decode(), dtype=np.float32), block)


def stand_in(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 array of zeros of ``shape`` that costs no memory: the pixels of a
    Map or image built for its geometry only."""
    return np.broadcast_to(np.zeros((), dtype=np.float32), shape)


def open_image(raw: bytes, uri: str) -> ImageFile:
    """The image held by ``raw``: a FITS, gzipped FITS or JPEG 2000 file, or a PNG/JPEG
    full-disk browse image (:mod:`heliobench.archive.readers.raster`)."""
    kind = detect_format(raw)
    if kind == "fits":
        return _open_fits(raw, uri, "fits")
    if kind == "fits.gz":
        return _open_fits(_gunzip(raw, uri), uri, "fits.gz")
    if kind == "jp2":
        return _open_jp2(raw, uri)
    if kind in ("png", "jpeg"):
        from heliobench.archive.readers.raster import open_raster

        return open_raster(raw, uri, kind)
    if kind == "empty":
        raise ReaderError(uri, "empty file (0 bytes)")
    if kind == "j2k":
        raise ReaderError(uri, "a bare JPEG 2000 codestream without JP2 boxes: there is no FITS header to read")
    if kind == "gzip":
        raise ReaderError(uri, "a gzip file that does not hold FITS (or whose stream is corrupt)")
    raise ReaderError(uri, f"not a FITS, JPEG 2000, PNG or JPEG file (content starts with {describe_start(raw)})")


def _gunzip(raw: bytes, uri: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ReaderError(uri, f"gzip stream cannot be decompressed, the file is truncated or corrupt ({exc})") from None


# --- FITS -----------------------------------------------------------------------------


def _header_dict(header: fits.Header) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if not key or key in ("COMMENT", "HISTORY") or key in out:
            continue
        try:
            value = card.value
        except VerifyError:
            continue  # an unparsable card (e.g. SHARP's "R_VALUE = 'nan'") carries nothing we use
        if not isinstance(value, fits.card.Undefined):
            out[key] = value
    return out


def _image_shape(header: fits.Header) -> tuple[int, int] | None:
    naxis = int(header.get("NAXIS", 0))
    if naxis < 2:
        return None
    extra = [int(header.get(f"NAXIS{i}", 1)) for i in range(3, naxis + 1)]
    if any(n != 1 for n in extra):
        return None
    return int(header["NAXIS2"]), int(header["NAXIS1"])


def _describe_hdu(hdu: Any) -> str:
    naxis = int(hdu.header.get("NAXIS", 0))
    if not hdu.is_image:
        return f"{type(hdu).__name__} (table)"
    return f"{type(hdu).__name__} ({f'{naxis}-D image' if naxis else 'no data'})"


def _open_fits(raw: bytes, uri: str, file_format: str) -> ImageFile:
    """The first 2-D image of a FITS file: headers read from the bytes where the file has a
    layout :func:`read_layout` knows (nothing is parsed twice, decoding goes straight to
    the tiles), else by astropy."""
    layout = read_layout(raw, fits.conf.strip_header_whitespace)
    if layout is not None:
        header = layout.headers[layout.index]
        shape = _image_shape(header)
        if shape is not None:
            check_shape(shape, uri)
            decode = partial(_fits_data, raw, uri, layout.index, layout.table, layout.data_offset)
            floats = None if layout.table is not None else _stored_floats(raw, header, shape, layout.data_offset)
            return ImageFile(uri, file_format, header, shape, decode, floats, decode if layout.table is not None else None)
    return _open_fits_astropy(raw, uri, file_format)


def _open_fits_astropy(raw: bytes, uri: str, file_format: str) -> ImageFile:
    check_axis_counts(raw, uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(io.BytesIO(raw)) as hdul:
                for index, hdu in enumerate(hdul):
                    if not hdu.is_image:
                        continue
                    shape = _image_shape(hdu.header)
                    if shape is None:
                        continue
                    check_shape(shape, uri)
                    info = hdu.fileinfo()
                    needed = info["datLoc"] + info["datSpan"]
                    if len(raw) < needed:
                        raise ReaderError(
                            uri,
                            f"truncated FITS file: {len(raw)} bytes, but HDU {index} "
                            f"({shape[1]}x{shape[0]} image) needs {needed}",
                        )
                    header = _header_dict(hdu.header)
                    floats = None if isinstance(hdu, fits.CompImageHDU) else _stored_floats(raw, hdu.header, shape, info["datLoc"])
                    return ImageFile(uri, file_format, header, shape, partial(_fits_data, raw, uri, index, None, None), floats)
                found = ", ".join(_describe_hdu(h) for h in hdul)
                last = hdul[-1].fileinfo()
                if raw[last["datLoc"] + last["datSpan"]:].strip(b"\0 "):
                    raise ReaderError(
                        uri, f"truncated or corrupt FITS file: bytes after HDU {len(hdul) - 1} do not form a complete header"
                    )
        except ReaderError:
            raise
        except Exception as exc:  # astropy signals a broken file with many exception types
            raise ReaderError(uri, f"not a readable FITS file ({type(exc).__name__}: {exc})") from None
    raise ReaderError(uri, f"FITS file without a 2-D image (HDUs: {found})")


def _stored_floats(raw: bytes, header: Mapping[str, Any], shape: tuple[int, int], offset: int) -> np.ndarray | None:
    """The pixels of an uncompressed floating-point image HDU whose data start at ``offset``, as
    stored (big-endian), a view of ``raw``; None for any other image."""
    bitpix = header.get("BITPIX")
    if bitpix not in (-32, -64):
        return None
    return np.frombuffer(raw, f">f{-bitpix // 8}", count=shape[0] * shape[1], offset=offset).reshape(shape)


def _fits_data(raw: bytes, uri: str, index: int, table: Mapping[str, Any] | None, data_offset: int | None,
               block: int = 1) -> np.ndarray:
    """The pixels of HDU ``index``: RICE row tiles through :func:`_rice_image`, anything else
    through astropy. ``table`` and ``data_offset``: the compressed image's table header and
    data offset where :func:`read_layout` read them (None: astropy finds them). With
    ``block`` > 1, their float32 means over block x block boxes (``ImageFile.box_means``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data = None
            if table is not None:
                data = _rice_image(raw, table, data_offset, block)
                if data is not None and block > 1:
                    return data
            else:
                with fits.open(io.BytesIO(raw), disable_image_compression=True) as hdul:
                    hdu = hdul[index]  # a tile-compressed image stays its binary table here
                    if isinstance(hdu, fits.BinTableHDU):
                        data = _rice_image(raw, hdu.header, hdu.fileinfo()["datLoc"])
                    else:
                        data = np.asarray(hdu.data)
            if data is None:
                with fits.open(io.BytesIO(raw)) as hdul:
                    data = np.asarray(hdul[index].data)
        except Exception as exc:  # decompression and scaling failures have many types
            raise ReaderError(uri, f"image data cannot be decoded ({type(exc).__name__}: {exc})") from None
    data = data.reshape(data.shape[-2:])
    if data.dtype.byteorder == ">" or not data.flags.writeable:
        data = data.astype(data.dtype.newbyteorder("="))  # native and writeable; astropy's own arrays already are
    return data if block == 1 else block_mean(np.asarray(data, dtype=np.float32), block)


def _rice_image(raw: bytes, h: Mapping[str, Any], start: int, block: int = 1) -> np.ndarray | None:
    """The image of a RICE_1 tile-compressed HDU whose tiles are whole rows (as JSOC writes them),
    decoded tile by tile with astropy's C codec; None when the HDU is anything else.
    ``h``: the binary table's header; ``start``: the byte offset of the table's data. With
    ``block`` > 1, the float32 means over block x block boxes, each chunk of rows averaged
    as soon as it is decoded and scaled (the same numbers as ``block_mean`` of the image).

    astropy decodes the same tiles with several Python calls per tile (4096 tiles per
    4096² image), which costs as much as the decompression itself; here each tile costs
    one call, and the tiles' bytes are joined once. The pixels are identical to astropy's,
    with one difference in type: integer images that astropy scales to float64 (BITPIX 32
    with BSCALE/BZERO or BLANK, e.g. HMI magnetograms) come as float32, the same values as
    astropy's rounded once (preprocessing works in float32).
    Pseudo-unsigned integers, quantised floats, ZBLANK and tiles stored uncompressed are
    left to astropy.
    """
    try:
        from astropy.io.fits.hdu.compressed._compression import decompress_rice_1_c
    except ImportError:  # a private astropy module: without it, astropy decodes
        return None
    if h.get("ZIMAGE") is not True:
        return None
    if str(h.get("ZCMPTYPE", "")).strip() not in ("RICE_1", "RICE_ONE") or h.get("ZNAXIS") != 2:
        return None
    if h.get("TFIELDS") != 1 or str(h.get("TTYPE1", "")).strip() != "COMPRESSED_DATA" or "ZBLANK" in h or "ZQUANTIZ" in h:
        return None
    settings = {str(h.get(f"ZNAME{i}", "")).strip().upper(): h.get(f"ZVAL{i}") for i in range(1, 10) if f"ZNAME{i}" in h}
    zbitpix, blocksize, bytepix = h.get("ZBITPIX"), settings.get("BLOCKSIZE", 32), settings.get("BYTEPIX", 4)
    nx, ny = h.get("ZNAXIS1"), h.get("ZNAXIS2")
    rows_per_tile = h.get("ZTILE2", 1)
    tform = str(h.get("TFORM1", "")).strip().removeprefix("1")
    if zbitpix not in (8, 16, 32) or bytepix * 8 != zbitpix or h.get("ZTILE1", nx) != nx or tform[:2] not in ("PB", "QB"):
        return None
    bscale, bzero, blank = h.get("BSCALE", 1), h.get("BZERO", 0), h.get("BLANK")
    if bscale == 1 and (bzero == 1 << (zbitpix - 1) or (zbitpix == 8 and bzero == -128)):
        return None  # pseudo-unsigned integers
    row_bytes, n_rows = h["NAXIS1"], h["NAXIS2"]
    heap = start + h.get("THEAP", row_bytes * n_rows)
    descriptor = np.dtype(">i4" if tform[0] == "P" else ">i8")
    table = np.frombuffer(raw, np.uint8, count=row_bytes * n_rows, offset=start).reshape(n_rows, row_bytes)
    tiles = table[:, : 2 * descriptor.itemsize].copy().view(descriptor).reshape(n_rows, 2)
    if n_rows != -(-ny // rows_per_tile) or (tiles[:, 0] <= 0).any() or (heap + tiles.sum(axis=1)).max() > len(raw):
        return None  # an empty tile means "stored uncompressed" or a damaged table: astropy decides
    kind = {8: np.uint8, 16: np.int16, 32: np.int32}[zbitpix]
    step, total = rows_per_tile * nx, ny * nx
    whole = total // step  # tiles of ``step`` pixels; a last one may be shorter
    descriptors = tiles.tolist()

    def stored(first: int, last: int) -> np.ndarray:
        """The stored integers of tiles ``first`` to ``last`` (exclusive), writeable."""
        pieces = [decompress_rice_1_c(raw[heap + offset : heap + offset + size], blocksize, bytepix, step)
                  for size, offset in descriptors[first : min(last, whole)]]
        if last > whole:
            size, offset = descriptors[whole]
            pieces.append(decompress_rice_1_c(raw[heap + offset : heap + offset + size], blocksize, bytepix, total - whole * step))
        return np.frombuffer(bytearray().join(pieces), dtype=kind)

    if block == 1 and bscale == 1 and bzero == 0 and blank is None:
        return stored(0, n_rows).reshape(ny, nx)
    # Scaled images: tiles are decoded a cache-sized chunk at a time and scaled from there,
    # rather than in passes over the whole image; box means add each chunk's boxes from there.
    per_chunk = max(1, _CHUNK_PIXELS // step)
    if block == 1:
        wide = np.empty(per_chunk * step, dtype=np.float64) if zbitpix == 32 else None
        out = np.empty(total, dtype=np.float32)
        for chunk in range(0, n_rows, per_chunk):
            values = stored(chunk, min(n_rows, chunk + per_chunk))
            _scale_into(out[chunk * step : chunk * step + values.size], values, bscale, bzero, blank, wide)
        return out.reshape(ny, nx)
    aligned = math.lcm(rows_per_tile, block) // rows_per_tile  # tiles per chunk: whole box rows
    per_chunk = max(aligned, per_chunk // aligned * aligned)
    wide = np.empty(per_chunk * step, dtype=np.float64) if zbitpix == 32 else None
    scaled = np.empty(per_chunk * step, dtype=np.float32)
    box_rows = ny // block * block  # rows of whole boxes: the rest is not decoded
    sums = np.empty((ny // block, nx // block), dtype=np.float32)
    # Unscaled 8/16-bit integers whose box sums stay below 2**24 are added as integers (AIA
    # level 1): float32 holds every partial sum exactly there, so the sums are those of the
    # float32 pixels; a chunk holding BLANK pixels (NaN in float) is added in float.
    exact = bscale == 1 and bzero == 0 and zbitpix <= 16 and block * block << (zbitpix - 1) <= 1 << 24
    for chunk in range(0, -(-box_rows // rows_per_tile), per_chunk):
        values = stored(chunk, min(n_rows, chunk + per_chunk))
        first = chunk * rows_per_tile
        rows = min(values.size // nx, box_rows - first) // block * block
        if exact and not (blank and (values == blank).any()):
            box = block_sum(values[: rows * nx].reshape(rows, nx), block, np.int32)
        else:
            _scale_into(scaled[: values.size], values, bscale, bzero, blank, wide)
            box = block_sum(scaled[: rows * nx].reshape(rows, nx), block)
        sums[first // block : (first + rows) // block] = box
    return sums / np.float32(block * block)


#: Pixels decoded per chunk before scaling (256 K: a few MB of integers and float64 temporaries).
_CHUNK_PIXELS = 1 << 18


def _scale_into(out: np.ndarray, stored: np.ndarray, bscale: float, bzero: float, blank: int | None,
                wide: np.ndarray | None = None) -> None:
    """astropy's BSCALE/BZERO/BLANK scaling of stored integers into float32 ``out``.

    astropy computes in float32 for 8- and 16-bit integers and in float64 for 32-bit ones
    (here in ``wide``, a float64 buffer at least as long, rounded to float32 once, at the
    end); BLANK pixels become NaN (a BLANK of 0 marks nothing, as in astropy).
    """
    if stored.dtype.itemsize <= 2:
        np.copyto(out, stored, casting="unsafe")
        if bscale != 1:
            np.multiply(out, bscale, out)
        if bzero != 0:
            out += bzero
    else:
        wide = np.empty(stored.size, dtype=np.float64) if wide is None else wide[: stored.size]
        if bscale != 1:
            np.multiply(stored, bscale, out=wide)
        else:
            np.copyto(wide, stored, casting="unsafe")
        if bzero != 0:
            wide += bzero
        np.copyto(out, wide, casting="same_kind")
    if blank:
        out[stored == blank] = np.nan


# --- JPEG 2000 ------------------------------------------------------------------------


@contextmanager
def _as_file(raw: bytes) -> Iterator[str]:
    """``raw`` written to a temporary ``.jp2`` file (glymur reads from paths only)."""
    with tempfile.NamedTemporaryFile(suffix=".jp2") as tmp:
        tmp.write(raw)
        tmp.flush()
        yield tmp.name


def _xml_value(text: str | None) -> Any:
    value = (text or "").strip()
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _tag(element: Any) -> str | None:
    """An XML element's tag in upper case (FITS keywords are; files write either case),
    None for comments and processing instructions."""
    return element.tag.upper() if isinstance(element.tag, str) else None


def _jp2_fits_header(boxes: list, uri: str) -> tuple[dict[str, Any], bool]:
    """The FITS keywords of the first XML box holding ``<fits>``, and whether that box also
    holds Helioviewer's ``<helioviewer>`` section.

    Tag names are matched in any case and keywords returned in upper case: Helioviewer's
    JP2Gen writes ``<INSTRUME>``, sunpy's JP2 writer (and current Helioviewer files)
    ``<instrume>``.
    """
    for box in boxes:
        if box.box_id != "xml " or box.xml is None:
            continue
        root = box.xml.getroot()
        sections = {_tag(child): child for child in reversed(root)}  # the first of a name wins
        element = root if _tag(root) == "FITS" else sections.get("FITS")
        if element is None:
            continue
        header: dict[str, Any] = {}
        for child in element:
            key = _tag(child)
            if key and key not in ("COMMENT", "HISTORY") and key not in header:
                header[key] = _xml_value(child.text)
        return header, "HELIOVIEWER" in sections
    raise ReaderError(uri, "JPEG 2000 file without an embedded FITS header (no XML box holding <fits>)")


def _bits_per_component(boxes: list, uri: str) -> int:
    """The codestream's bit depth, from the JP2 image header box (``jp2h``/``ihdr``)."""
    header_box = next((box for box in boxes if box.box_id == "jp2h"), None)
    ihdr = next((sub for sub in getattr(header_box, "box", []) if sub.box_id == "ihdr"), None)
    if ihdr is None:
        raise ReaderError(uri, "JPEG 2000 file without an image header box (jp2h/ihdr): its bit depth is unknown")
    return int(ihdr.bits_per_component)


def _physical_scaling(header: dict[str, Any], bits: int, helioviewer: bool) -> tuple[float, float] | None:
    """``(BSCALE, BZERO)`` that turn the codestream's values into the header's physical units,
    or None when the pixels are display values that cannot be mapped back.

    Helioviewer's JP2Gen (Helioviewer-Project/jp2gen, ``hv_write_jp2_lwg.pro``) writes
    8-bit pixels scaled for viewing: divided by an exposure, clipped to ``dataMin..dataMax``,
    log10- or sqrt-scaled and byte-scaled, with per-channel parameters from an IDL setup
    file (e.g. ``sdo/aia/hvs_version6_aia.pro``). Its XML box records the source FITS
    header and the setup file's name (``HV_COMMENT``, ``HV_HVS_DETAILS_FILENAME``), not
    the scaling parameters (``HV_REVERSIBLE`` is the wavelet's losslessness); ``BITPIX``,
    ``DATAMIN``/``DATAMAX`` and ``EXPTIME`` describe the original FITS image, not these
    pixels. So a Helioviewer file, and any codestream with fewer bits than the header's
    integer ``BITPIX`` (sunpy's JP2 writer casts to 8 bits), holds display values. Only a
    codestream of the header's integer type at full depth holds the stored values, which
    ``BSCALE``/``BZERO`` turn into physical units as in FITS.
    """
    bitpix = number(header, "BITPIX")
    if helioviewer or bitpix is None or bitpix <= 0 or bits < bitpix:
        return None
    return number(header, "BSCALE") or 1.0, number(header, "BZERO") or 0.0


def _open_jp2(raw: bytes, uri: str) -> ImageFile:
    """A JPEG 2000 file's embedded FITS header and shape; display-scaled pixels are marked
    ``HB_PIXEL = 'display'`` (see :func:`_physical_scaling`)."""
    import glymur

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with _as_file(raw) as path:
                jp2 = glymur.Jp2k(path)
                boxes, shape = list(jp2.box), tuple(jp2.shape)
        except Exception as exc:  # glymur reports broken box structures with many types
            raise ReaderError(uri, f"JPEG 2000 file cannot be parsed ({type(exc).__name__}: {exc})") from None
    for box in boxes:
        if box.length and box.offset + box.length > len(raw):
            end = box.offset + box.length
            raise ReaderError(uri, f"truncated JPEG 2000 file: {len(raw)} bytes, but its '{box.box_id}' box ends at byte {end}")
    if len(shape) == 3 and shape[2] != 1:
        raise ReaderError(uri, f"JPEG 2000 image with {shape[2]} colour components; expected one (a science image)")
    check_shape(shape[:2], uri)
    header, helioviewer = _jp2_fits_header(boxes, uri)
    scaling = _physical_scaling(header, _bits_per_component(boxes, uri), helioviewer)
    if scaling is None:
        header[PIXEL_KIND_KEY] = DISPLAY_PIXELS
    return ImageFile(uri, "jp2", header, (int(shape[0]), int(shape[1])), partial(_jp2_data, raw, uri, scaling))


def _jp2_data(raw: bytes, uri: str, scaling: tuple[float, float] | None) -> np.ndarray:
    """The decoded pixels, times BSCALE plus BZERO (float32) when ``scaling`` is not the identity."""
    import glymur

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with _as_file(raw) as path:
                pixels = glymur.Jp2k(path)[:]
        except Exception as exc:  # openjpeg decode failures have many types
            raise ReaderError(uri, f"JPEG 2000 codestream cannot be decoded ({type(exc).__name__}: {exc})") from None
    pixels = pixels.reshape(pixels.shape[:2])[::-1]  # JPEG 2000 stores the top row first; FITS the bottom row
    if scaling is not None and scaling != (1.0, 0.0):
        return pixels * np.float32(scaling[0]) + np.float32(scaling[1])
    return pixels

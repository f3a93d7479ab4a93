"""The FITS reader's fast path (``readers.fitsheaders``) reads what astropy reads.

Every real FITS file and synthetic files in the layouts the fast path knows (a primary
image; an empty primary and a RICE tile-compressed image) give the same keywords, values,
types, order, shape and pixels whether read from the bytes or by astropy; files in any
other layout, or with cards beyond the fast path, are left to astropy.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from heliobench.archive.labels import detect_label
from heliobench.archive.readers import containers
from heliobench.archive.readers.fitsheaders import read_layout

pytestmark = [pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning"),
              pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")]

CARDS = {
    "TELESCOP": "SDO/AIA", "INSTRUME": "AIA_3", "WAVELNTH": 171, "WAVEUNIT": "angstrom", "LVL_NUM": 1.0,
    "DATE-OBS": "2012-03-07T00:00:01.34", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec",
    "CUNIT2": "arcsec", "CDELT1": 9.6, "CDELT2": 9.6, "CRPIX1": 32.5, "CRPIX2": 32.5, "CRVAL1": 12.0,
    "CRVAL2": -6.0, "CROTA2": 0.0, "RSUN_OBS": 967.0, "DSUN_OBS": 1.483e11, "HGLN_OBS": 0.0, "HGLT_OBS": -7.2,
    "EXPTIME": 2.0, "QUALITY": 0, "ACS_MODE": "SCIENCE  ", "T_OBS": "2012-03-07T00:00:02.34Z", "FLAG": True,
    "NOTE": "it''s: quoted", "BIG": 123456789012, "TINY": -1.5e-300,
}


def _compressed(data: np.ndarray, cards: dict, **options) -> bytes:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header, compression_type="RICE_1", **options)])
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    return buffer.getvalue()


def _plain(data: np.ndarray, cards: dict) -> bytes:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    buffer = io.BytesIO()
    fits.PrimaryHDU(data, header).writeto(buffer)
    return buffer.getvalue()


def _image(dtype=np.int16) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 4000, (64, 64)).astype(dtype)


def _same_as_astropy(raw: bytes, uri: str = "mem://x.fits") -> None:
    fast = containers.open_image(raw, uri)
    slow = containers._open_fits_astropy(raw, uri, "fits")
    assert list(fast.header.items()) == list(slow.header.items())
    assert [type(v) for v in fast.header.values()] == [type(v) for v in slow.header.values()]
    assert fast.shape == slow.shape
    np.testing.assert_array_equal(fast.decode(), slow.decode(), strict=True)


def _patched(raw: bytes, card: str, text: str) -> bytes:
    """``raw`` with the 80-character card starting ``card`` replaced by ``text`` (padded)."""
    at = raw.index(card.encode())
    return raw[:at] + text.ljust(80).encode() + raw[at + 80 :]


def test_fast_path_reads_the_realdata_fits_files_as_astropy_does(realdata: Path) -> None:
    files = sorted(p for p in realdata.rglob("*.fits") if p.is_file())
    assert files
    fast = 0
    for path in files:
        raw = path.read_bytes()
        if read_layout(raw) is not None:
            fast += 1
        _same_as_astropy(raw, str(path))
    assert fast >= 0.8 * len(files), f"only {fast} of {len(files)} real FITS files on the fast path"


@pytest.mark.parametrize("case", ["aia", "hmi float scaling", "mask", "plain int16", "plain float32", "primary-style"])
def test_fast_path_layouts_match_astropy(case: str) -> None:
    if case == "aia":
        raw = _compressed(_image(), CARDS | {"BLANK": -32768})
    elif case == "hmi float scaling":
        raw = _compressed(_image(np.int32), CARDS | {"BSCALE": 0.1, "BZERO": 0.0, "BLANK": -2147483648},
                          do_not_scale_image_data=True)
    elif case == "mask":
        raw = _compressed((_image() > 2000).astype(np.uint8), {"CONTENT": "CORONAL HOLE MASK", "DATE-OBS": "2017-07-01T00:00:00"})
    elif case == "plain int16":
        raw = _plain(_image(), CARDS)
    elif case == "plain float32":
        raw = _plain(_image(np.float32), CARDS)
    else:  # the compressed image of a primary HDU: ZSIMPLE instead of ZTENSION
        raw = _compressed(_image(), CARDS)
        raw = _patched(raw, "ZTENSION", "ZSIMPLE =                    T")
    layout = read_layout(raw)
    assert layout is not None
    _same_as_astropy(raw)


@pytest.mark.parametrize("card", [
    "OSCNMEAN= nan",  # astropy cannot parse it and leaves it out; so does the fast path
    "CMPLX   = (1.5, 2.0)",
    "UNDEF   =",
    "DP1     = 'AXIS.1: 2'",  # a record-valued keyword card
    "LOWEXP  = 1.5e+03 / lower-case exponent",
    "DEXP    = 1.5D+03",
    "SPACED  =   -  12",
    "COLON   = 'a: b' / data format of field: something",
    "quality =                    0",  # astropy upper-cases the keyword
])
def test_cards_astropy_reads_differently_or_not_at_all(card: str) -> None:
    raw = _patched(_compressed(_image(), CARDS), "QUALITY", card)
    _same_as_astropy(raw)


@pytest.mark.parametrize("change", [
    "duplicate keyword", "continue", "hierarch", "trailing bytes", "truncated",
    "undefined structure keyword", "extension after primary image", "text axis length",
])
def test_other_layouts_are_left_to_astropy(change: str) -> None:
    raw = _compressed(_image(), CARDS)
    if change == "duplicate keyword":
        raw = _patched(raw, "QUALITY", "EXPTIME =                  3.0")
    elif change == "continue":
        raw = _patched(raw, "ACS_MODE", "ACS_MODE= 'SCIEN&'")
        raw = _patched(raw, "QUALITY", "CONTINUE  'CE'")
    elif change == "hierarch":
        raw = _patched(raw, "QUALITY", "HIERARCH ESO DET = 5")
    elif change == "trailing bytes":
        raw = raw + b"\0" * 2880
    elif change == "truncated":
        raw = raw[:-100]
    elif change == "undefined structure keyword":
        raw = _patched(raw, "ZBLANK", "ZBLANK  =") if b"ZBLANK" in raw else _patched(raw, "QUALITY", "ZDITHER0=")
    elif change == "text axis length":  # found by make fuzz: the fast path took it for the image's width
        raw = _patched(raw, "ZNAXIS1", "ZNAXIS1 = '2150-01-01T00:00:00'")
    else:
        buffer = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(_image()), fits.ImageHDU(_image())]).writeto(buffer)
        raw = buffer.getvalue()
    assert read_layout(raw) is None
    try:
        _same_as_astropy(raw)
    except Exception as exc:  # noqa: BLE001 - whatever astropy says of it, open_image says the same
        with pytest.raises(type(exc)):
            containers.open_image(raw, "mem://x.fits").decode()


def test_mask_labels_are_found_in_either_path() -> None:
    raw = _compressed((_image() > 2000).astype(np.uint8), {"CONTENT": "ACTIVE REGION MASK", "DATE-OBS": "2017-07-01T06:00:00"})
    label = detect_label(raw, "mem://m.fits")
    assert read_layout(raw) is not None and label is not None and label.kind == "ar_mask"
    assert detect_label(raw + b"\0" * 2880, "mem://m.fits") == label  # astropy's path
    assert detect_label(_compressed(_image(), CARDS), "mem://x.fits") is None

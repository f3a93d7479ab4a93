"""Readers on every real file family of ../shared/realdata and on synthetic files made here.

Geometry is checked against values computed independently of the readers: sunpy's own
Map of the file, or the header keywords with the textbook formulas.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import re
import warnings
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import astropy.units as u
import numpy as np
import polars as pl
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from PIL import Image
from scipy import ndimage
from sunpy.coordinates import frames, get_earth, sun

from heliobench.archive.readers import (
    bbox_to_pixels,
    containers,
    format_inspection,
    inspect_uri,
    iter_scss_zip,
    rasterize_scss,
    read_header,
    read_hek,
    read_image_mask_pair,
    read_map,
    read_scss_label,
    read_srs,
)
from heliobench.errors import ReaderError

# sunpy's and astropy's notes on the real files themselves, seen when the tests read them directly
pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid 'BLANK' keyword"),
    pytest.mark.filterwarnings("ignore:CTYPE. value 'solar-.'"),
]

MT_WILSON_CANONICAL = {
    "Alpha", "Beta", "Gamma", "Beta-Gamma", "Delta", "Beta-Delta", "Beta-Gamma-Delta", "Gamma-Delta",
}


def _sunpy_map(path: Path) -> sunpy.map.GenericMap:
    """sunpy's own reading of a file, independent of HelioBench's readers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sunpy.map.Map(str(path))


def _sun_centre_px(smap: sunpy.map.GenericMap) -> tuple[float, float]:
    px = smap.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    return float(px.x.to_value(u.pix)), float(px.y.to_value(u.pix))


# --- synthetic files ----------------------------------------------------------------


def _header(cards: dict) -> fits.Header:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    return header


AIA_CARDS = {
    "TELESCOP": "SDO/AIA", "INSTRUME": "AIA_3", "WAVELNTH": 171, "WAVEUNIT": "angstrom", "LVL_NUM": 1.0,
    "DATE-OBS": "2012-03-07T00:00:01.34", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec",
    "CUNIT2": "arcsec", "CDELT1": 9.6, "CDELT2": 9.6, "CRPIX1": 128.5, "CRPIX2": 128.5, "CRVAL1": 12.0,
    "CRVAL2": -6.0, "CROTA2": 0.0, "RSUN_OBS": 967.0, "DSUN_OBS": 1.483e11, "HGLN_OBS": 0.0, "HGLT_OBS": -7.2,
    "EXPTIME": 2.0, "QUALITY": 0,
}

HMI_CARDS = {
    "TELESCOP": "SDO/HMI", "INSTRUME": "HMI_FRONT2", "WAVELNTH": 6173.0, "CONTENT": "MAGNETOGRAM", "BUNIT": "Gauss",
    "DATE-OBS": "2012-03-07T00:00:41.20", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec",
    "CUNIT2": "arcsec", "CDELT1": 9.6, "CDELT2": 9.6, "CRPIX1": 128.5, "CRPIX2": 128.5, "CRVAL1": 20.0,
    "CRVAL2": -10.0, "CROTA2": 180.0, "RSUN_OBS": 967.0, "DSUN_OBS": 1.483e11, "HGLN_OBS": 0.0, "HGLT_OBS": -7.2,
    "EXPTIME": 45.0, "QUALITY": 0,
}


def _disk_image(n: int = 256, radius: float = 100.0) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    return (1000 * (np.hypot(xx - 127.5, yy - 127.5) < radius) + 50).astype(np.int16)


def _compressed(data: np.ndarray, cards: dict) -> bytes:
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, _header(cards), compression_type="RICE_1")])
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    return buffer.getvalue()


def _plain(data: np.ndarray | None, cards: dict) -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(data, _header(cards)).writeto(buffer)
    return buffer.getvalue()


def test_rice_compressed_aia_like_file_is_read_from_its_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _compressed(_disk_image(), AIA_CARDS)

    def no_decompression(*args: object) -> np.ndarray:
        raise AssertionError("read_header decompressed the image")

    monkeypatch.setattr(containers, "_fits_data", no_decompression)
    record = read_header(raw, "mem://sim/aia.fits")
    assert (record.instrument, record.channel, record.level, record.data_kind) == ("AIA", "171", "1", "full_disk")
    assert (record.nx, record.ny, record.file_format, record.quality, record.exposure_s) == (256, 256, "fits", 0, 2.0)
    assert record.obs_time == datetime(2012, 3, 7, 0, 0, 1, 340000, tzinfo=timezone.utc)
    # Sun centre where CRVAL puts it: pixel = CRPIX - 1 - CRVAL / CDELT (no rotation)
    assert record.disk_x_px == pytest.approx(128.5 - 1 - 12.0 / 9.6, abs=1e-3)
    assert record.disk_y_px == pytest.approx(128.5 - 1 + 6.0 / 9.6, abs=1e-3)
    assert record.disk_radius_px == pytest.approx(967.0 / 9.6, rel=1e-6)


def test_rice_compressed_aia_like_file_as_map() -> None:
    data = _disk_image()
    smap = read_map(_compressed(data, AIA_CARDS), "mem://sim/aia.fits")
    assert type(smap).__name__ == "AIAMap"
    assert np.array_equal(smap.data, data)


@pytest.mark.parametrize("stamp", ["2012-03-07T00:00:01.34", "2012-03-07T00:00:01", "2016-12-31T23:59:59.999999",
                                   "2012-03-07T00:00:01.1234567", "2012-03-07 00:00:01.5", "2012-03-07T00:00:01.5Z",
                                   "2012-03-07T00:00", "2016-12-31T23:59:60.5", "2012-02-30T00:00:00", "2012-03-07T00:00:01.x"])
def test_observation_time_is_astropys_whichever_path_parses_it(stamp: str) -> None:
    """Plain ISO times take a fast path (datetime.fromisoformat); every stamp gives what astropy gives, or its error."""
    from astropy.time import Time

    from heliobench.archive.readers.keywords import observation_time

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = Time(stamp.removesuffix("Z"), scale="utc").to_datetime(timezone=timezone.utc)
    except Exception:  # noqa: BLE001 - astropy's errors come in several types
        with pytest.raises(ReaderError, match="is not a valid date and time"):
            observation_time({"DATE-OBS": stamp}, "mem://x.fits")
        return
    assert observation_time({"DATE-OBS": stamp}, "mem://x.fits") == want


def test_quiet_sunpy_nests() -> None:
    """An inner quiet block leaves the outer one quiet, and sunpy speaks again after both."""
    import logging

    import sunpy

    from heliobench.archive.readers.images import quiet_sunpy

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    sunpy.log.addHandler(handler)
    try:
        with quiet_sunpy():
            with quiet_sunpy():
                sunpy.log.warning("inner")
            sunpy.log.warning("outer, after the inner block")
            sunpy.log.error("an error")
        sunpy.log.warning("after both")
    finally:
        sunpy.log.removeHandler(handler)
    assert seen == ["an error", "after both"]


@pytest.mark.parametrize("instrument, cards, channel", [("AIA", AIA_CARDS, "171"), ("HMI", HMI_CARDS, "magnetogram")])
def test_pipeline_load_bins_while_decoding_with_the_full_maps_result(instrument: str, cards: dict, channel: str) -> None:
    """Shard writing and predict load RICE images binned as they are decoded: the same
    preprocessed pixels as the full-resolution Map, to the bit."""
    from heliobench.prep import ClipScale, Pipeline, default_pipeline
    from heliobench.prep.base import PrepError

    raw, uri = _compressed(_disk_image(), cards), "mem://sim/x.fits"
    pipeline = default_pipeline(instrument, 64, channel)  # a 100.7 px radius onto 25.4 px: 3 x 3 boxes
    image = pipeline.load(raw, uri)
    assert image.binning == 3 and image.data.shape == (85, 85)  # the last row and column of 256 make no box
    got, want = pipeline.run(image)[0], pipeline.run(read_map(raw, uri))[0]
    assert got.binning == 1 and got.data.shape == (64, 64)
    np.testing.assert_array_equal(got.data, want.data, strict=True)
    with pytest.raises(PrepError, match="binned 3 x 3 .* bins its input 1 x 1"):
        Pipeline([ClipScale(0, 1, 0, 1)]).run(image)
    assert default_pipeline(instrument, 256, channel).load(raw, uri).binning == 1  # no boxes: the pixels as decoded


def test_hmi_like_file_rotated_by_180_degrees() -> None:
    raw = _compressed(_disk_image(), HMI_CARDS)
    record = read_header(raw, "mem://sim/hmi.fits")
    assert (record.instrument, record.channel, record.bunit, record.data_kind) == ("HMI", "magnetogram", "Gauss", "full_disk")
    assert abs(record.crota2) == pytest.approx(180.0)
    # rotated by 180 degrees, a positive CRVAL moves the Sun centre to larger pixel numbers
    assert record.disk_x_px == pytest.approx(128.5 - 1 + 20.0 / 9.6, abs=1e-3)
    assert record.disk_y_px == pytest.approx(128.5 - 1 - 10.0 / 9.6, abs=1e-3)
    smap = read_map(raw, "mem://sim/hmi.fits")
    assert type(smap).__name__ == "HMIMap"
    assert _sun_centre_px(smap) == pytest.approx((record.disk_x_px, record.disk_y_px))
    from heliobench.archive.readers.containers import open_image
    from heliobench.archive.readers.images import geometry_map, understand

    geometry = geometry_map(understand(open_image(raw, "mem://sim/hmi.fits")))  # over a stand-in: no plot scaling from its pixels
    assert type(geometry).__name__ == "HMIMap" and geometry.plot_settings["norm"] is None
    assert _sun_centre_px(geometry) == pytest.approx((record.disk_x_px, record.disk_y_px))


@pytest.mark.parametrize("change, from_header", [
    ({}, True),
    ({"CROTA2": 179.93, "CDELT2": 9.59, "XPOSURE": 2.5}, True),  # XPOSURE before EXPTIME, as sunpy
    ({"RSUN_OBS": None, "SOLAR_R": 960.0}, True),
    ({"PC1_1": 0.0, "PC1_2": -1.0, "PC2_1": 1.0, "PC2_2": 0.0}, False),  # a PC matrix: sunpy reads it
    ({"CUNIT1": "deg", "CUNIT2": "deg", "CDELT1": 9.6 / 3600, "CDELT2": 9.6 / 3600, "CRVAL1": 0.0, "CRVAL2": 0.0}, False),
    ({"RSUN_OBS": None}, False),  # radius from DSUN_OBS
    ({"TIMEUNIT": "ms", "EXPTIME": 2000.0}, False),
])
def test_geometry_from_the_header_is_the_maps(change: dict, from_header: bool) -> None:
    """Shard writing reads a plain AIA header's geometry without building the Map: the same
    numbers as ``from_map``; any header it does not read that way builds the Map."""
    import dataclasses

    from heliobench.archive.readers.containers import open_image
    from heliobench.archive.readers.images import geometry_map, understand
    from heliobench.prep.image import PrepImage, _plain_geometry

    cards = {k: v for k, v in {**AIA_CARDS, **change}.items() if v is not None}
    observation = understand(open_image(_compressed(_disk_image(), cards), "mem://sim/aia.fits"))
    assert (_plain_geometry(observation.header, observation.instrument) is not None) == from_header
    got = PrepImage.from_observation(observation)
    want = PrepImage.from_map(geometry_map(observation), observation.instrument, observation.channel, observation.obs_time)
    assert {f.name: getattr(got, f.name) for f in dataclasses.fields(PrepImage) if f.name != "data"} == \
        {f.name: getattr(want, f.name) for f in dataclasses.fields(PrepImage) if f.name != "data"}


def test_aia_and_hmi_maps_read_geometry_as_generic_map() -> None:
    """``PrepImage.from_observation`` reads AIA and HMI geometry as GenericMap does: a sunpy
    whose AIAMap or HMIMap overrides one of these properties fails here."""
    from sunpy.map import GenericMap
    from sunpy.map.sources import AIAMap, HMIMap

    properties = ("scale", "spatial_units", "reference_pixel", "rotation_matrix", "_rotation_matrix_from_crota", "rsun_obs",
                  "_rsun_obs_no_default", "exposure_time", "timeunit")
    assert all(getattr(source, name) is getattr(GenericMap, name) for source in (AIAMap, HMIMap) for name in properties)


KSO_CARDS = {
    "DATE-OBS": "2023-08-06T08:50:03", "ORIGIN": "KANZELHOEHE", "INSTRUME": "HA2", "WAVELNTH": 6563.0,
    "WAVEUNIT": "ANG", "EXP_TIME": 2.0, "BUNIT": "counts",
}


def _kso(cards: dict, n: int = 512) -> bytes:
    return gzip.compress(_plain(np.full((n, n), 300, dtype=np.int16), KSO_CARDS | cards))


def test_kanzelhoehe_halpha_without_wcs_gets_one_from_centre_and_radius() -> None:
    raw = _kso({"CENTER_X": 250.0, "CENTER_Y": 262.0, "SOLAR_R": 230.0, "ANGLE": 1.5})
    record = read_header(raw, "mem://sim/kanz_halph_fi_20230806_085003.fts.gz")
    assert (record.instrument, record.channel, record.file_format, record.data_kind) == ("KSO", "halpha", "fits.gz", "full_disk")
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx((250.0, 262.0), abs=1e-6)
    assert record.disk_radius_px == pytest.approx(230.0, rel=1e-6)
    assert record.exposure_s == pytest.approx(0.002)
    assert record.wavelength_angstrom == pytest.approx(6563.0)
    assert record.crota2 == pytest.approx(-1.5)
    t = record.obs_time
    assert record.rsun_obs_arcsec == pytest.approx(sun.angular_radius(t).to_value(u.arcsec), rel=1e-3)
    assert record.dsun_obs_m == pytest.approx(get_earth(t).radius.to_value(u.m), rel=1e-6)
    smap = read_map(raw, "mem://sim/kso.fts.gz")
    assert type(smap) is sunpy.map.GenericMap
    assert isinstance(smap.coordinate_frame, frames.Helioprojective)
    assert _sun_centre_px(smap) == pytest.approx((250.0, 262.0), abs=1e-6)


def test_kanzelhoehe_with_wcs_takes_angle_and_arcsec_plate_scale() -> None:
    raw = _kso({"CTYPE1": "solar_x", "CTYPE2": "solar_y", "CDELT1": 4.2, "CDELT2": 4.2, "CRPIX1": 251.0,
                "CRPIX2": 263.0, "CRVAL1": 0.0, "CRVAL2": 0.0, "ANGLE": 1.5})
    record = read_header(raw, "mem://sim/kso.fts.gz")
    assert (record.cunit1, record.cdelt1, record.crota2) == ("arcsec", pytest.approx(4.2), pytest.approx(-1.5))
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx((250.0, 262.0), abs=1e-6)


def _table_only() -> bytes:
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.arange(3.0))])
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buffer)
    return buffer.getvalue()


def _corrupt_tiles(raw: bytes) -> bytes:
    """``raw`` with random bytes over the start of its compressed tiles."""
    with fits.open(io.BytesIO(raw), disable_image_compression=True) as hdul:
        heap = hdul[1].fileinfo()["datLoc"] + hdul[1].header["NAXIS1"] * hdul[1].header["NAXIS2"]
    noise = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return raw[:heap] + noise + raw[heap + len(noise):]


def _aia_variant(changes: dict, drop: tuple[str, ...] = ()) -> bytes:
    """A plain AIA-like FITS with keywords changed or dropped."""
    return _plain(_disk_image(), {k: v for k, v in (AIA_CARDS | changes).items() if k not in drop})


def _noisy_gzip() -> bytes:
    noise = np.random.default_rng(1).integers(0, 4000, (256, 256)).astype(np.int16)
    return gzip.compress(_plain(noise, AIA_CARDS))


BAD_INPUTS = {
    "text.fits": (lambda: b"This is not a FITS file\n", "not a FITS, JPEG 2000, PNG or JPEG file"),
    "empty.fits": (lambda: b"", "empty file"),
    "truncated.fits": (lambda: _plain(_disk_image(), AIA_CARDS)[:40000], "truncated FITS file"),
    "truncated_header.fits": (lambda: _compressed(_disk_image(), AIA_CARDS)[:3000], "truncated or corrupt FITS"),
    "no_date.fits": (lambda: _aia_variant({}, drop=("DATE-OBS",)), "no DATE-OBS"),
    "bad_date.fits": (lambda: _aia_variant({"DATE-OBS": "yesterday"}), "DATE-OBS='yesterday'"),
    "table.fits": (_table_only, "without a 2-D image"),
    "unknown.fits": (lambda: _aia_variant({"INSTRUME": "XRT", "TELESCOP": "HINODE"}), "unknown instrument INSTRUME='XRT'"),
    "no_instrument.fits": (lambda: _aia_variant({}, drop=("INSTRUME", "TELESCOP")), "no INSTRUME or TELESCOP"),
    "wrong_channel.fits": (lambda: _aia_variant({"WAVELNTH": 999}), "WAVELNTH=999 is none of the AIA channels"),
    "truncated.fts.gz": (lambda: _noisy_gzip()[:30000], "gzip stream"),
    "truncated.jp2": (lambda: b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 20, "JPEG 2000"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_raises_reader_error_naming_file_and_problem(name: str, tmp_path: Path) -> None:
    make, problem = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_bytes(make())
    uri = str(path)
    for reader in (read_header, read_map):
        with pytest.raises(ReaderError) as caught:
            reader(path.read_bytes(), uri)
        assert caught.value.uri == uri and uri in str(caught.value)
        assert problem in caught.value.reason


def test_corrupt_compressed_tiles_fail_on_decompression_only() -> None:
    raw = _corrupt_tiles(_compressed(_disk_image(), AIA_CARDS))
    assert read_header(raw, "mem://sim/corrupt.fits").channel == "171"
    with pytest.raises(ReaderError, match="image data cannot be decoded"):
        read_map(raw, "mem://sim/corrupt.fits")


def test_readers_judge_content_not_file_names() -> None:
    raw = _compressed(_disk_image(), AIA_CARDS)
    assert read_header(raw, "mem://odd/name.txt").channel == "171"
    with pytest.raises(ReaderError, match="not a FITS, JPEG 2000, PNG or JPEG"):
        read_header(b"SIMPLE but not really", "mem://odd/name.fits")


# --- real observations ----------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "level"), [("AIA20110319_105400_0171.fits", "1.5"), ("aia_171_level1.fits", "1")]
)
def test_aia_full_disk_geometry_matches_sunpy(realdata: Path, name: str, level: str) -> None:
    path = realdata / "fits" / "aia" / name
    record = read_header(path.read_bytes(), str(path))
    smap = _sunpy_map(path)
    header = fits.getheader(path)
    assert (record.instrument, record.channel, record.level, record.data_kind) == ("AIA", "171", level, "full_disk")
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(smap), abs=1e-6)
    assert record.disk_radius_px == pytest.approx(header["RSUN_OBS"] / header["CDELT1"], rel=1e-9)
    assert record.obs_time.tzinfo == timezone.utc
    assert record.obs_time.isoformat().startswith(header["DATE-OBS"][:19])
    assert record.quality == header["QUALITY"]


@pytest.mark.realdata
def test_aia_cutout_is_partial_disk(realdata: Path) -> None:
    path = realdata / "fits" / "aia" / "aia_171_cutout.fits"
    record = read_header(path.read_bytes(), str(path))
    assert (record.data_kind, record.nx, record.ny) == ("partial_disk", 769, 705)
    assert not 0 <= record.disk_y_px < record.ny  # the Sun centre is above the field of view
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(_sunpy_map(path)), abs=1e-6)
    assert read_map(path.read_bytes(), str(path)).data.shape == (705, 769)


@pytest.mark.realdata
def test_hmi_continuum(realdata: Path) -> None:
    path = realdata / "fits" / "hmi" / "resampled_hmi.fits"
    record = read_header(path.read_bytes(), str(path))
    assert (record.instrument, record.channel, record.data_kind, record.bunit) == ("HMI", "continuum", "full_disk", "DN/s")
    assert record.crota2 == pytest.approx(179.929779, abs=1e-4)
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(_sunpy_map(path)), abs=1e-6)
    assert record.disk_radius_px == pytest.approx(968.660583 / 20.65575936, rel=1e-6)


SHARP_SEGMENTS = {
    "magnetogram": "Mx/cm^2", "Br": "Mx/cm^2", "Bp": "Mx/cm^2", "Bt": "Mx/cm^2", "Br_err": "Mx/cm^2",
    "Bp_err": "Mx/cm^2", "Bt_err": "Mx/cm^2", "continuum": "DN/s", "Dopplergram": "cm/s", "bitmap": None,
    "conf_disambig": None,
}


@pytest.mark.realdata
def test_sharp_cea_patches(realdata: Path) -> None:
    files = sorted((realdata / "fits" / "hmi" / "sharp_377").glob("*.fits"))
    assert len(files) == len(SHARP_SEGMENTS)
    for path in files:
        segment = path.name.split(".")[-2]
        record = read_header(path.read_bytes(), str(path))
        assert (record.instrument, record.data_kind, record.nx, record.ny) == ("HMI", "cea_patch", 744, 377)
        assert record.channel == segment.replace("Dopplergram", "dopplergram")
        assert record.bunit == SHARP_SEGMENTS[segment]
        assert record.disk_x_px is record.disk_y_px is record.disk_radius_px is None
        assert (record.ctype1, record.cunit1, record.cdelt1) == ("CRLN-CEA", "deg", pytest.approx(0.03))
    bitmap_path = next(p for p in files if p.name.endswith(".bitmap.fits"))
    bitmap = read_map(bitmap_path.read_bytes(), str(bitmap_path))
    assert set(np.unique(bitmap.data)) <= {0, 1, 2, 33, 34}  # SHARP bitmap codes
    assert isinstance(bitmap.coordinate_frame, frames.HeliographicCarrington)


@pytest.mark.realdata
def test_mdi_full_disk_and_smarp(realdata: Path) -> None:
    mdi = realdata / "fits" / "mdi"
    expected = {
        "mdi_fd_M_96m_01d.5874.0005_s.fits": ("magnetogram", "full_disk", 0x200),
        "mdi_fd_Ic_6h_01d.5871.0000_s.fits": ("continuum", "full_disk", 0x1C),
        "mdi.smarp_cea_96m.13520.20100714_124800_TAI.magnetogram.fits": ("magnetogram", "cea_patch", 512),
        "mdi.smarp_cea_96m.13520.20100714_124800_TAI.bitmap.fits": ("bitmap", "cea_patch", 512),
    }
    for name, (channel, kind, quality) in expected.items():
        path = mdi / name
        record = read_header(path.read_bytes(), str(path))
        assert (record.instrument, record.channel, record.data_kind, record.quality) == ("MDI", channel, kind, quality)
        if kind == "full_disk":
            assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(_sunpy_map(path)), abs=1e-6)
            assert 55 < record.disk_radius_px < 64  # 128-pixel image, ~985 arcsec / 15.9 arcsec per pixel


@pytest.mark.realdata
def test_eit_single_frame_and_hourly_series(realdata: Path) -> None:
    single = realdata / "fits" / "eit" / "eit_l1_20020625_100011.fits"
    record = read_header(single.read_bytes(), str(single))
    assert (record.instrument, record.channel, record.data_kind) == ("EIT", "195", "full_disk")
    assert record.disk_radius_px == pytest.approx(fits.getheader(single)["SOLAR_R"])
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(_sunpy_map(single)), abs=1e-6)
    hourly = sorted((realdata / "fits" / "eit" / "hourly_2004-03-01").glob("*.fits"))
    series = [read_header(p.read_bytes(), str(p)) for p in hourly]
    assert len(series) == 13
    times = [r.obs_time for r in series]
    assert all(a < b for a, b in pairwise(times))
    assert all(3000 < (b - a).total_seconds() < 4000 for a, b in pairwise(times))
    assert sorted(r.channel for r in series) == ["171"] * 2 + ["195"] * 11
    assert {(r.instrument, r.data_kind, r.ny, r.nx) for r in series} == {("EIT", "full_disk", 128, 128)}


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["swap_lv1_20110607_063329.fits", "swap_lv1_20120101_001607.fits"])
def test_swap(realdata: Path, name: str) -> None:
    path = realdata / "fits" / "swap" / name
    record = read_header(path.read_bytes(), str(path))
    smap = _sunpy_map(path)
    assert (record.instrument, record.channel, record.level, record.data_kind) == ("SWAP", "174", "1", "full_disk")
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(smap), abs=1e-6)
    assert record.disk_radius_px == pytest.approx((smap.rsun_obs / smap.scale.axis1).to_value(u.pix), rel=1e-9)


@pytest.mark.realdata
def test_trace_is_partial_disk(realdata: Path) -> None:
    path = next((realdata / "fits" / "trace").glob("*.fits"))
    record = read_header(path.read_bytes(), str(path))
    assert (record.instrument, record.channel, record.data_kind) == ("TRACE", "171", "partial_disk")
    assert record.exposure_s == pytest.approx(23.1719)
    assert record.obs_time == datetime(1998, 5, 19, 22, 21, 43, tzinfo=timezone.utc)
    assert type(read_map(path.read_bytes(), str(path))).__name__ == "TRACEMap"


JP2_FILES = {
    "2013_06_24__17_31_30_84__SDO_AIA_AIA_193.jp2": ("AIA", "193", 4096),
    "2022_08_02__10_47_53_000__SDO_HMI_HMI_magnetogram.jp2": ("HMI", "magnetogram", 4096),
    "2010_12_06__18_56_41_105__SDO_HMI_HMI_continuum.jp2": ("HMI", "continuum", 4096),
    "2024_04_16__13_00_13_908__SOHO_EIT_EIT_171.jp2": ("EIT", "171", 1024),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(JP2_FILES))
def test_jp2(realdata: Path, name: str) -> None:
    path = realdata / "jp2" / name
    instrument, channel, size = JP2_FILES[name]
    record = read_header(path.read_bytes(), str(path))
    assert (record.instrument, record.channel, record.file_format, record.data_kind) == (instrument, channel, "jp2", "full_disk")
    assert (record.nx, record.ny) == (size, size)
    reference = _sunpy_map(path)
    assert (record.disk_x_px, record.disk_y_px) == pytest.approx(_sun_centre_px(reference), abs=1e-6)
    # the Sun's apparent radius, whatever the file says (the 2010 HMI file writes RSUN_OBS = 0)
    expected_arcsec = sun.angular_radius(record.obs_time).to_value(u.arcsec)
    assert record.disk_radius_px * record.cdelt1 == pytest.approx(expected_arcsec, rel=0.015)
    smap = read_map(path.read_bytes(), str(path))
    assert smap.data.shape == (size, size) and smap.data.dtype == np.uint8  # 8-bit scaled image
    assert np.array_equal(smap.data, reference.data)  # same orientation as sunpy's JP2 reader


# --- SRS ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_every_srs_file(realdata: Path) -> None:
    files = sorted((realdata / "srs").glob("*SRS.txt"))
    assert len(files) == 10
    for path in files:
        regions = read_srs(path.read_bytes(), str(path))
        assert regions["issued"].dt.strftime("%Y%m%d").unique().to_list() == [path.name[:8]]
        assert set(regions["section"]) <= {"I", "IA", "II"}
        spots = regions.filter(pl.col("section") == "I")
        assert set(spots["mag_type"]) <= MT_WILSON_CANONICAL
        assert all(re.fullmatch(r"[ABCDEFH][xrsahk][xoic]", c) for c in spots["mcintosh_class"])
        returning = regions.filter(pl.col("section") == "II")
        assert returning["longitude_deg"].null_count() == returning.height  # section II gives latitudes only
        assert regions["latitude_deg"].is_between(-90, 90).all()


def _region(realdata: Path, name: str, number: int) -> dict:
    regions = read_srs((realdata / "srs" / name).read_bytes(), name)
    return regions.filter(pl.col("noaa_number") == number).row(0, named=True)


@pytest.mark.realdata
def test_srs_values_and_old_spellings(realdata: Path) -> None:
    first = _region(realdata, "19960106SRS.txt", 7938)  # 7938  N12W41  187  0270 DSI  09  026 BETA
    assert (first["latitude_deg"], first["longitude_deg"], first["carrington_longitude_deg"]) == (12.0, 41.0, 187.0)
    classes = ("area_msh", "mcintosh_class", "longitudinal_extent_deg", "number_of_spots", "mag_type")
    assert tuple(first[c] for c in classes) == (270, "Dsi", 9, 26, "Beta")
    assert _region(realdata, "20000922SRS.txt", 9169)["mag_type"] == "Beta-Gamma-Delta"  # upper case in 2000
    east = _region(realdata, "20150101SRS.txt", 12253)  # S06E48, "Beta-Gamma" in mixed case
    assert (east["latitude_deg"], east["longitude_deg"], east["mag_type"]) == (-6.0, -48.0, "Beta-Gamma")


@pytest.mark.realdata
def test_srs_region_numbers_across_10000(realdata: Path) -> None:
    regions = read_srs((realdata / "srs" / "20020624SRS.txt").read_bytes(), "20020624SRS.txt")
    numbers = dict(regions.select("noaa_number", "section").iter_rows())
    assert {10001, 10005, 10008, 10014, 10006} <= set(numbers)  # written 0001, 0005, ...
    assert numbers[9997] == "IA" and {9973, 9975, 9978} <= set(numbers)  # older regions keep their number
    later = read_srs((realdata / "srs" / "20150306SRS.txt").read_bytes(), "20150306SRS.txt")
    assert set(later["noaa_number"]) == {12293, 12295, 12292, 12288}


# --- HEK --------------------------------------------------------------------------------


def _hek(realdata: Path) -> pl.DataFrame:
    path = next((realdata / "hek").glob("*.json"))
    return read_hek(path.read_bytes(), str(path))


@pytest.mark.realdata
def test_hek_events(realdata: Path) -> None:
    events = _hek(realdata)
    assert events.height == 265
    assert dict(events["event_type"].value_counts().iter_rows()) == {"AR": 45, "FL": 220}
    flares = events.filter(pl.col("event_type") == "FL")
    assert flares["ar_noaanum"].drop_nulls().min() > 10000  # SolarSoft's 2673 became 12673
    assert "X9.3" in flares["goes_class"].to_list()
    assert all(len(b) == 5 and b[0] == b[-1] for b in events["hpc_bbox"].to_list())  # closed WKT rings
    assert events["hpc_boundcc"].list.len().max() == 0
    first = events.row(0, named=True)
    assert first["hpc_bbox"][0] == [362.327484, -226.56543]
    assert first["start_time"] == datetime(2017, 9, 1, tzinfo=timezone.utc)


@pytest.mark.realdata
def test_hek_active_regions_link_across_days_by_noaa_number(realdata: Path) -> None:
    events = _hek(realdata)
    regions = events.filter(pl.col("event_type") == "AR")
    days = regions.group_by("track_id").agg(pl.col("start_time").dt.date().n_unique().alias("days"))
    tracks = dict(days.iter_rows())
    assert set(tracks) == {f"NOAA {n}" for n in range(12672, 12680)}
    assert tracks["NOAA 12673"] == 10 and min(tracks.values()) >= 2
    flare_tracks = set(events.filter(pl.col("event_type") == "FL")["track_id"].drop_nulls())
    assert len(flare_tracks & set(tracks)) >= 5  # flares of both sources join the AR tracks
    assert "NOAA 12673" in set(events.filter(pl.col("frm_name") == "SSW Latest Events")["track_id"])


@pytest.mark.realdata
def test_bbox_to_pixels(realdata: Path) -> None:
    path = realdata / "fits" / "aia" / "AIA20110319_105400_0171.fits"
    smap = read_map(path.read_bytes(), str(path))
    square = [[-120.0, -120.0], [120.0, -120.0], [120.0, 120.0], [-120.0, 120.0], [-120.0, -120.0]]
    x0, y0, x1, y1 = bbox_to_pixels(square, smap)
    cx, cy = _sun_centre_px(smap)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((cx, cy), abs=1e-3)
    assert (x1 - x0, y1 - y0) == pytest.approx((240 / 2.4, 240 / 2.4), rel=1e-3)
    region = _hek(realdata).filter(pl.col("event_type") == "AR").row(0, named=True)
    x0, y0, x1, y1 = bbox_to_pixels(region["hpc_bbox"], smap)
    xs = [x for x, _ in region["hpc_bbox"]]
    assert (x1 - x0) * 2.4 == pytest.approx(max(xs) - min(xs), rel=0.01)
    assert x0 > cx and y1 < cy  # the region lies west and south of disk centre


# --- SCSS-Net polygons ------------------------------------------------------------------


def _labels(realdata: Path, name: str) -> list:
    return list(iter_scss_zip(realdata / "labels" / "scss_net" / name))


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "kind", "count", "max_radius"), [("ch_custom.zip", "CH", 537, 1.02), ("ar_custom.zip", "AR", 533, 1.25)]
)
def test_scss_masks_lie_on_the_disk(realdata: Path, name: str, kind: str, count: int, max_radius: float) -> None:
    labels = _labels(realdata, name)
    assert len(labels) == count
    assert {label.kind for label in labels} <= {kind, ""}
    size = 256
    yy, xx = np.mgrid[0:size, 0:size]
    distance = np.hypot(xx - (size - 1) / 2, yy - (size - 1) / 2)
    fractions, outside = [], []
    for label in labels:
        mask = rasterize_scss(label, size)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        radius = label.radius_px * size / 4096
        fractions.append(mask.mean())
        if mask.any():
            outside.append(mask[distance > max_radius * radius].sum() / mask.sum())
    # coronal holes stay on the disk, active-region loops reach a little above the limb
    assert np.mean(outside) < 0.002 and max(outside) < 0.02
    assert 0.005 < np.median(fractions) < 0.06 and max(fractions) < 0.2


@pytest.mark.realdata
def test_scss_polygon_rows_are_flipped_to_fits_rows(realdata: Path) -> None:
    label = _labels(realdata, "ar_custom.zip")[0]
    polygon = label.polygons[0]
    single = rasterize_scss(dataclasses.replace(label, polygons=(polygon,)), 4096)
    rows = np.nonzero(single.any(axis=1))[0]
    assert rows.min() == pytest.approx(4095 - polygon[:, 1].max(), abs=1)
    assert rows.max() == pytest.approx(4095 - polygon[:, 1].min(), abs=1)


@pytest.mark.realdata
def test_scss_active_regions_sit_on_the_srs_sunspot_regions(realdata: Path) -> None:
    """The AR label of 2015-01-01 00:00 against NOAA's sunspot regions valid at that time."""
    label = next(lb for lb in _labels(realdata, "ar_custom.zip") if lb.date.strftime("%Y%m%d%H") == "2015010100")
    regions = read_srs((realdata / "srs" / "20150101SRS.txt").read_bytes(), "srs").filter(pl.col("section") == "I")
    size = 512
    frame = frames.Helioprojective(observer=get_earth(label.date), obstime=label.date)
    scale = sun.angular_radius(label.date).to(u.arcsec) / (label.radius_px * size / 4096 * u.pix)
    grid = sunpy.map.Map(np.zeros((size, size)), sunpy.map.make_fitswcs_header(
        (size, size), SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=frame), scale=u.Quantity([scale, scale])))
    spots = SkyCoord(regions["longitude_deg"].to_numpy() * u.deg, regions["latitude_deg"].to_numpy() * u.deg,
                     frame=frames.HeliographicStonyhurst, obstime=label.date)
    px = grid.world_to_pixel(spots)
    x, y = np.round(px.x.value).astype(int), np.round(px.y.value).astype(int)
    mask = rasterize_scss(label, size)
    distance = ndimage.distance_transform_edt(mask == 0)[y, x]
    distance_if_unflipped = ndimage.distance_transform_edt(mask[::-1] == 0)[y, x]
    assert (distance == 0).sum() >= 2
    assert np.median(distance) < 0.5 * np.median(distance_if_unflipped)


def test_scss_label_errors() -> None:
    with pytest.raises(ReaderError, match="RADIUS"):
        read_scss_label("DATE:  2012-01-01 00:00:07.84\nCH: 0\n 1 2\n", "mem://l.txt")
    with pytest.raises(ReaderError, match="line 4"):
        read_scss_label("DATE:  2012-01-01 00:00:07.84\nRADIUS: 1600\nCH: 0\n 1 x\n", "mem://l.txt")


# --- image + mask pairs ---------------------------------------------------------------


@pytest.mark.realdata
def test_ch_reiss_pairs(realdata: Path) -> None:
    images = sorted((realdata / "ch_reiss" / "images").glob("*.png"))
    assert len(images) == 15
    yy, xx = np.mgrid[0:1024, 0:1024]
    central_disk = np.hypot(xx - 511.5, yy - 511.5) < 300
    for path in images:
        image, mask = read_image_mask_pair(path, realdata / "ch_reiss" / "masks" / path.name)
        assert (image.shape, image.dtype, mask.shape, mask.dtype) == ((1024, 1024), np.float32, (1024, 1024), np.uint8)
        assert set(np.unique(mask)) <= {0, 1} and 0.001 < mask.mean() < 0.15
        on_disk_rest = image[central_disk & (mask == 0)].mean()
        assert image[mask == 1].mean() < 0.8 * on_disk_rest  # coronal holes are dark in 193 Angstrom
    with Image.open(path) as png:
        top_row = np.asarray(png.convert("L"), dtype=np.float32)[0]
    assert np.array_equal(image[-1], top_row)  # PNG rows (top first) turned to FITS rows (bottom first)
    small_image, small_mask = read_image_mask_pair(path, realdata / "ch_reiss" / "masks" / path.name, size=256)
    assert small_image.shape == small_mask.shape == (256, 256)
    assert small_mask.mean() == pytest.approx(mask.mean(), rel=0.1)


def test_image_mask_pair_errors(tmp_path: Path) -> None:
    image, text = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    text.write_text("not an image")
    with pytest.raises(ReaderError, match="not a readable PNG/JPEG image"):
        read_image_mask_pair(image, text)
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(text)
    with pytest.raises(ReaderError, match="does not cover image"):
        read_image_mask_pair(image, text)


# --- inspect ----------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("relative", "kind", "phrase"),
    [
        ("fits/aia/AIA20110319_105400_0171.fits", "observation", "AIA 171 (full_disk, fits, level 1.5)"),
        ("jp2/2022_08_02__10_47_53_000__SDO_HMI_HMI_magnetogram.jp2", "observation", "HMI magnetogram"),
        ("fits/hmi/sharp_377/hmi.sharp_cea_720s.377.20110215_020000_TAI.bitmap.fits", "observation", "no solar disk"),
        ("srs/20020624SRS.txt", "srs", "10008"),
        ("hek/events_2017-09-01T000000_2017-09-10T000000.json", "hek", "265 (45 AR, 220 FL)"),
        ("labels/scss_net/ar_custom.zip", "scss_zip", "533 files"),
    ],
)
def test_inspect_uri(realdata: Path, relative: str, kind: str, phrase: str) -> None:
    result = inspect_uri(str(realdata / relative))
    assert result["kind"] == kind
    assert json.loads(json.dumps(result)) == result
    assert phrase in format_inspection(result)


@pytest.mark.realdata
def test_inspect_observation_fields(realdata: Path) -> None:
    result = inspect_uri(str(realdata / "fits" / "aia" / "AIA20110319_105400_0171.fits"))
    assert result["shape"] == [1024, 1024] and result["plate_scale"] == [2.4, 2.4]
    assert result["obs_time"] == "2011-03-19T10:54:00.340000+00:00" and result["quality"] == 1073741824
    assert result["disk_radius_px"] == pytest.approx(963.879683 / 2.4)


def test_inspect_label_mask(tmp_path: Path) -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[10:26, 20:36] = 1
    path = tmp_path / "ch_mask.fits"
    path.write_bytes(_plain(mask, {"CONTENT": "CORONAL HOLE MASK", "DATE-OBS": "2012-03-07T00:00:00"}))
    result = inspect_uri(str(path))
    assert (result["kind"], result["label_kind"], result["shape"]) == ("mask", "ch_mask", [64, 64])
    assert result["fraction"] == pytest.approx(256 / 4096)
    assert "6.25% inside" in format_inspection(result)


def test_inspect_scss_label_and_bad_file(tmp_path: Path) -> None:
    label = tmp_path / "label.txt"
    label.write_text("DATE:  2015-01-01 00:00:11.34\r\nRADIUS:  1625.8\r\nAR:    0\r\n   10 20\r\n   30 20\r\n   20 40\r\n")
    result = inspect_uri(str(label))
    assert (result["kind"], result["label_kind"], result["vertices_per_polygon"]) == ("scss_label", "AR", [3])
    other = tmp_path / "notes.fits"
    other.write_text("hello")
    with pytest.raises(ReaderError, match="not an observation, SRS, HEK or SCSS"):
        inspect_uri(str(other))

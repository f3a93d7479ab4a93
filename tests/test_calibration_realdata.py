"""Real files end to end: Helioviewer JPEG 2000 (any case of XML tags, display-scaled pixels),
the catalog's selection columns (image type, display flag), and AIA degradation correction
through aiapy against aiapy's own result."""

from __future__ import annotations

import shutil
from pathlib import Path

import glymur
import lxml.etree as ET
import numpy as np
import pyarrow as pa
import pytest
import sunpy.map
from astropy.io import fits

from heliobench.archive.observation import CATALOG_SCHEMA
from heliobench.archive.readers import read_header, read_map
from heliobench.archive.readers.inspection import format_inspection, inspect_uri
from heliobench.errors import ConfigError
from heliobench.prep import DegradationCorrection, ExposureNormalize, Pipeline, PrepImage, default_pipeline
from heliobench.prep.calibrate import aiapy_table_path

pytestmark = pytest.mark.realdata

JP2 = {
    "aia_193": "jp2/2013_06_24__17_31_30_84__SDO_AIA_AIA_193.jp2",
    "hmi_magnetogram": "jp2/2022_08_02__10_47_53_000__SDO_HMI_HMI_magnetogram.jp2",
    "hmi_continuum": "jp2/2010_12_06__18_56_41_105__SDO_HMI_HMI_continuum.jp2",
    "eit_171": "jp2/2024_04_16__13_00_13_908__SOHO_EIT_EIT_171.jp2",
}
AIA_FITS = ["fits/aia/aia_171_level1.fits", "fits/aia/AIA20110319_105400_0171.fits", "fits/aia/aia_171_cutout.fits"]
EIT_FITS = "fits/eit/eit_l1_20020625_100011.fits"


def correction_table():
    from aiapy.calibrate.util import get_correction_table

    return get_correction_table(aiapy_table_path())


def xml_box(keywords: dict, lowercase: bool) -> glymur.jp2box.XMLBox:
    """A JP2 XML box ``<meta><fits>...</fits></meta>`` holding ``keywords``."""
    meta = ET.Element("meta")
    element = ET.SubElement(meta, "fits")
    for key, value in keywords.items():
        ET.SubElement(element, key.lower() if lowercase else key).text = str(value)
    return glymur.jp2box.XMLBox(xml=ET.ElementTree(meta))


def with_lowercase_tags(source: Path, out: Path) -> Path:
    """``source`` re-wrapped (the codestream untouched) with its FITS header's tags in lower case,
    as sunpy's JP2 writer and current Helioviewer files write them."""
    jp2 = glymur.Jp2k(str(source))
    fits_element = next(b for b in jp2.box if b.box_id == "xml ").xml.getroot().find("fits")
    keywords = {child.tag: child.text or "" for child in fits_element if isinstance(child.tag, str) and len(child) == 0}
    boxes = [xml_box(keywords, lowercase=True) if b.box_id == "xml " else b for b in jp2.box]
    jp2.wrap(str(out), boxes=boxes)
    return out


# --- JPEG 2000 --------------------------------------------------------------------------


def test_no_real_jp2_has_lowercase_tags_but_all_are_display_scaled(realdata):
    for name, path in JP2.items():
        jp2 = glymur.Jp2k(str(realdata / path))
        tags = [c.tag for c in next(b for b in jp2.box if b.box_id == "xml ").xml.getroot().find("fits")]
        assert "INSTRUME" in tags and "instrume" not in tags, name
        record = read_header((realdata / path).read_bytes(), path)
        assert record.display_scaled and record.file_format == "jp2", name
    assert read_header((realdata / JP2["aia_193"]).read_bytes(), "a.jp2").image_type == "LIGHT"


def test_lowercase_xml_tags_read_like_uppercase_ones(realdata, tmp_path):
    source = realdata / JP2["hmi_magnetogram"]
    lower = with_lowercase_tags(source, tmp_path / "hmi_lower.jp2")
    assert "<instrume>" in ET.tostring(next(b for b in glymur.Jp2k(str(lower)).box if b.box_id == "xml ").xml).decode()
    assert isinstance(sunpy.map.Map(str(lower)), sunpy.map.sources.HMIMap)  # what sunpy makes of it
    got = read_header(lower.read_bytes(), "x.jp2").to_row()
    want = read_header(source.read_bytes(), "x.jp2").to_row()
    assert got == want
    assert (got["instrument"], got["channel"], got["display_scaled"]) == ("HMI", "magnetogram", True)
    smap = read_map(lower.read_bytes(), "x.jp2")
    assert isinstance(smap, sunpy.map.sources.HMIMap) and smap.meta["hb_pixel"] == "display"


def test_full_depth_jp2_maps_back_to_physical_units(realdata, tmp_path):
    """A 16-bit codestream of the header's BITPIX (not a Helioviewer file) holds stored values:
    BSCALE/BZERO give physical units, and exposure normalisation applies."""
    with fits.open(realdata / AIA_FITS[0]) as hdul:
        header, data = hdul[0].header, hdul[0].data
    keywords = {k: v for k, v in header.items() if k not in ("COMMENT", "HISTORY", "")}
    keywords.update(BITPIX=16, BSCALE=0.5, BZERO=0.0)
    stored = np.rint(np.clip(data, 0, None) * 2).astype(np.uint16)
    plain = tmp_path / "plain.jp2"
    glymur.Jp2k(str(plain), data=stored[::-1])  # JPEG 2000 stores the top row first
    jp2 = glymur.Jp2k(str(plain))
    out = tmp_path / "aia16.jp2"
    jp2.wrap(str(out), boxes=[*jp2.box[:-1], xml_box(keywords, lowercase=True), jp2.box[-1]])
    record = read_header(out.read_bytes(), "aia16.jp2")
    assert not record.display_scaled and record.image_type == "LIGHT"
    smap = read_map(out.read_bytes(), "aia16.jp2")
    np.testing.assert_allclose(smap.data, stored * 0.5)
    image = PrepImage.from_map(smap)
    assert not image.display_scaled
    np.testing.assert_allclose(ExposureNormalize().apply(image).data, image.data / image.exposure_s, rtol=1e-6)


@pytest.fixture(scope="module")
def aia_jp2(realdata) -> PrepImage:
    return PrepImage.from_map(read_map((realdata / JP2["aia_193"]).read_bytes(), JP2["aia_193"]))


def test_display_scaled_aia_skips_exposure_and_degradation(aia_jp2):
    assert aia_jp2.display_scaled and aia_jp2.instrument == "AIA" and aia_jp2.exposure_s == pytest.approx(1.999637)
    assert ExposureNormalize().apply(aia_jp2) is aia_jp2
    step = DegradationCorrection()
    assert step.factor(aia_jp2) == 1.0 and step.apply(aia_jp2) is aia_jp2
    pipeline = default_pipeline("AIA", 64)
    geometric_only = Pipeline([pipeline.steps[0], pipeline.steps[-1]])
    np.testing.assert_array_equal(pipeline.apply(aia_jp2), geometric_only.apply(aia_jp2))
    assert 0 < pipeline.apply(aia_jp2).max() <= 255


def test_inspect_shows_display_flag_and_image_type(realdata):
    text = format_inspection(inspect_uri(str(realdata / JP2["aia_193"])))
    assert "pixels       display-scaled" in text and "image type LIGHT" in text
    fits_text = format_inspection(inspect_uri(str(realdata / AIA_FITS[0])))
    assert "pixels       physical units" in fits_text


# --- catalog columns ---------------------------------------------------------------------


def test_catalog_columns_for_selection_rules(realdata):
    assert CATALOG_SCHEMA.field("display_scaled").type == pa.bool_()
    assert CATALOG_SCHEMA.field("image_type").type == pa.string()
    aia = read_header((realdata / AIA_FITS[0]).read_bytes(), AIA_FITS[0])
    assert (aia.quality, aia.image_type, aia.display_scaled) == (0, "LIGHT", False)
    assert aia.exposure_s == pytest.approx(2.000, abs=1e-3)
    hmi = read_header((realdata / "fits/hmi/resampled_hmi.fits").read_bytes(), "hmi.fits")
    assert hmi.image_type is None and not hmi.display_scaled


def test_pointing_comes_from_the_level1_header(realdata, monkeypatch):
    """CRPIX/CRVAL/CROTA2 of a level-1 header reach the record and the prep geometry; the default
    pipeline never asks aiapy for its pointing table (which needs the network)."""
    import aiapy.calibrate.util

    def no_network(*args, **kwargs):
        raise AssertionError("the pointing table was fetched")

    monkeypatch.setattr(aiapy.calibrate.util, "get_pointing_table", no_network)
    raw = (realdata / AIA_FITS[0]).read_bytes()
    header = fits.getheader(realdata / AIA_FITS[0])
    record = read_header(raw, AIA_FITS[0])
    assert (record.crpix1, record.crpix2, record.crval1, record.crval2) == tuple(
        header[k] for k in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2")
    )
    assert record.crota2 == pytest.approx(header["CROTA2"], abs=1e-9)
    image = PrepImage.from_map(read_map(raw, AIA_FITS[0]))
    assert image.reference_px == pytest.approx((header["CRPIX1"] - 1, header["CRPIX2"] - 1))
    assert image.rotation_deg == pytest.approx(header["CROTA2"], abs=1e-9)
    assert np.isfinite(default_pipeline("AIA", 64).apply(image)).all()


# --- degradation through aiapy ---------------------------------------------------------------


@pytest.mark.parametrize("path", AIA_FITS)
def test_degradation_equals_aiapy_on_real_aia_files(realdata, path):
    from aiapy.calibrate import correct_degradation, degradation

    smap = sunpy.map.Map(str(realdata / path))
    image = PrepImage.from_map(smap)
    table = correction_table()
    expected = float(degradation(smap.wavelength, smap.date, correction_table=table)[0])
    step = DegradationCorrection()
    assert step.factor(image) == pytest.approx(expected, rel=1e-12)
    assert 0.8 < expected < 1.0  # 2011-2013: the 171 channel had lost 3 to 14 % of its 2010 response
    ours = step.apply(image).data
    theirs = np.asarray(correct_degradation(smap, correction_table=table).data, dtype=np.float32)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, equal_nan=True)


def test_degradation_passes_other_instruments_unchanged(realdata):
    eit = PrepImage.from_map(sunpy.map.Map(str(realdata / EIT_FITS)))
    assert eit.instrument == "EIT"
    step = DegradationCorrection()
    assert step.factor(eit) == 1.0 and step.apply(eit) is eit


def test_a_users_table_by_path_and_its_hash(realdata, tmp_path):
    shipped = aiapy_table_path()
    moved = Path(shutil.copy(shipped, tmp_path / "aia_V8_copy.txt"))
    lines = shipped.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.split()[4] == "171_THIN" and line.split()[1].startswith("2015-09-01"))
    parts = lines[row].split()
    parts[8] = f"{float(parts[8]) * 0.9:.5f}"  # EFF_AREA of the last 171 epoch: 10 % less response
    lines[row] = "   ".join(parts)
    changed = tmp_path / "aia_V99_response_table.txt"
    changed.write_text("\n".join(lines) + "\n")

    default, by_path, newer = DegradationCorrection(), DegradationCorrection(str(moved)), DegradationCorrection(str(changed))
    assert default.hash == by_path.hash != newer.hash
    assert DegradationCorrection(None).hash not in (default.hash, newer.hash)
    assert default._factors is by_path._factors  # one parse of a table per process
    assert Pipeline([default]).hash != Pipeline([newer]).hash
    aia = PrepImage.from_map(sunpy.map.Map(str(realdata / AIA_FITS[0])))
    in_2016 = aia.with_data(aia.data, obs_time=aia.obs_time.replace(year=2016))
    assert newer.factor(in_2016) == pytest.approx(0.9 * default.factor(in_2016), rel=1e-5)  # EFF_AREA has 5 decimals
    assert newer.factor(aia) == default.factor(aia)  # 2011: another epoch
    recorded = Pipeline([newer]).describe()
    assert Pipeline.from_config(recorded, "recorded.json").hash == Pipeline([newer]).hash


def test_unreadable_tables_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a table at all\n1 2\n")
    with pytest.raises(ConfigError, match=r"garbage.txt: neither a CSV with columns time, channel, factor nor an AIA"):
        DegradationCorrection(str(garbage))
    with pytest.raises(ConfigError, match=r"cannot be read"):
        DegradationCorrection(str(tmp_path / "absent.txt"))


def test_degradation_outside_the_table_names_the_observation(realdata):
    from heliobench.prep import PrepError

    image = PrepImage.from_map(sunpy.map.Map(str(realdata / AIA_FITS[0])))
    early = image.with_data(image.data, obs_time=image.obs_time.replace(year=2009))
    with pytest.raises(PrepError, match=r"AIA 171 2009-02-15T00:00:00: degradation table aiapy: No valid calibration epoch"):
        DegradationCorrection().apply(early)


@pytest.mark.parametrize("path", [*AIA_FITS, EIT_FITS, "fits/hmi/resampled_hmi.fits", "fits/mdi/mdi_fd_M_96m_01d.5874.0005_s.fits",
                                  "fits/swap/swap_lv1_20110607_063329.fits", "fits/trace/trace_1998-05-19T22:21:43.000_171_1024.fits",
                                  *JP2.values()])
def test_rotation_matrix_is_sunpys_on_real_files(realdata, path):
    """``PrepImage.from_map``'s rotation (CROTA2 on floats where sunpy would use it) is sunpy's
    matrix to the bit on every real full-disk family, as the readers hand the header to sunpy."""
    from heliobench.prep.image import _rotation_matrix

    smap = read_map((realdata / path).read_bytes(), path)
    assert np.array_equal(_rotation_matrix(smap, smap.scale), np.asarray(smap.rotation_matrix, dtype=float)), path
    assert PrepImage.from_map(smap).rotation_matrix == tuple(map(tuple, np.asarray(smap.rotation_matrix, dtype=float).tolist()))


@pytest.mark.parametrize("path", [*AIA_FITS, EIT_FITS, "fits/hmi/resampled_hmi.fits", "fits/mdi/mdi_fd_M_96m_01d.5874.0005_s.fits",
                                  "fits/swap/swap_lv1_20110607_063329.fits", "fits/trace/trace_1998-05-19T22:21:43.000_171_1024.fits",
                                  *JP2.values()])
def test_geometry_from_the_header_is_the_maps_on_real_files(realdata, path):
    """``PrepImage.from_observation`` (shard writing's geometry) equals ``from_map`` of the
    geometry Map field by field on every real full-disk family; AIA and HMI FITS headers
    are read without building the Map (``test_aia_and_hmi_maps_read_geometry_as_generic_map``
    guards the sunpy side)."""
    import dataclasses

    from heliobench.archive.readers.containers import open_image
    from heliobench.archive.readers.images import geometry_map, understand
    from heliobench.prep.image import _plain_geometry

    observation = understand(open_image((realdata / path).read_bytes(), path))
    got = PrepImage.from_observation(observation)
    want = PrepImage.from_map(geometry_map(observation), observation.instrument, observation.channel, observation.obs_time)
    for field in dataclasses.fields(PrepImage):
        if field.name != "data":
            assert getattr(got, field.name) == getattr(want, field.name), (path, field.name)
    assert got.data.shape == want.data.shape
    from_header = _plain_geometry(observation.header, observation.instrument) is not None
    if path.startswith(("fits/aia", "fits/hmi")):
        assert from_header, path
    elif observation.instrument not in ("AIA", "HMI"):
        assert not from_header, path

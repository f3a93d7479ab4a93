"""The simulated archive: determinism, format fidelity, physical plausibility, labels, Ray driver."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import astropy.units as u
import fsspec
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from scipy import ndimage
from sunpy.coordinates import frames, sun
from sunpy.io.special import read_srs

from heliobench.archive.sim import SimConfig, SunModel, fitsfiles, simulate_archive, simulate_day, weather
from heliobench.archive.sim import sun as sim_sun
from heliobench.archive.sim.config import AIA_CHANNELS
from heliobench.archive.sim.geometry import Pointing, disk_view, lon_lat_deg, observer_at
from heliobench.archive.sim.timestep import aia_lost_rows
from heliobench.errors import HelioBenchError

DAY = "2014-03-01"
T0 = datetime(2014, 3, 1, 0, 0)
T12 = datetime(2014, 3, 1, 12, 0)
MT_WILSON = {"Alpha", "Beta", "Gamma", "Beta-Gamma", "Delta", "Beta-Delta", "Beta-Gamma-Delta", "Gamma-Delta"}


def _one(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _hek(root: Path, day: str) -> list[dict]:
    return json.loads(_one(root, f"labels/hek/*/hek_{day.replace('-', '')}.json").read_text())["result"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Two days of the simulated archive at 128 px (2014-03-01 00/12 UT, 2014-03-02 00 UT)."""
    root = tmp_path_factory.mktemp("sim")
    config = SimConfig(size=128, seed=0, cadence_s=12 * 3600)
    simulate_day(str(root), DAY, ["2014-03-01T00:00:00", "2014-03-01T12:00:00"], config)
    simulate_day(str(root), "2014-03-02", ["2014-03-02T00:00:00"], config)
    return root


def test_day_writes_the_jsoc_kso_and_label_layout(archive: Path) -> None:
    names = {p.name for p in archive.rglob("*") if p.is_file()}
    for wl in (94, 131, 171, 193, 211, 304, 335):
        assert any(
            re.fullmatch(rf"aia\.lev1_euv_12s\.2014-03-01T12\d{{4}}Z\.{wl}\.image_lev1\.fits", n)
            for n in names
        )
    for wl in (1600, 1700):
        assert any(
            re.fullmatch(rf"aia\.lev1_uv_24s\.2014-03-01T12\d{{4}}Z\.{wl}\.image_lev1\.fits", n)
            for n in names
        )
    assert "hmi.m_720s.20140301_120000_TAI.1.magnetogram.fits" in names
    assert any(re.fullmatch(r"kanz_halph_fd_20140301_1200\d\d\.fts\.gz", n) for n in names)
    for kind in ("ch", "ar"):
        assert (archive / f"labels/masks/{kind}/2014/03/01/{kind}_mask.2014-03-01T120000Z.fits").is_file()
    assert (archive / "labels/hek/2014/hek_20140301.json").is_file()
    assert (archive / "labels/srs/2014/20140301SRS.txt").is_file()
    assert (archive / "labels/halpha_quality/2014/03/20140301.csv").is_file()
    assert len(list(archive.glob("aia/2014/03/01/*.fits"))) == 2 * 9


def test_same_seed_same_bytes_other_seed_other_sun(tmp_path: Path) -> None:
    times = ["2014-03-01T06:00:00"]
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        simulate_day(str(tmp_path / name), DAY, times, SimConfig(size=32, seed=seed))
        runs[name] = _files(tmp_path / name)
    assert runs["a"] == runs["b"]
    aia = next(k for k in runs["a"] if k.endswith(".193.image_lev1.fits"))
    other = sunpy.map.Map(tmp_path / "c" / aia).data
    assert not np.array_equal(sunpy.map.Map(tmp_path / "a" / aia).data, other)
    assert _hek(tmp_path / "a", DAY) != _hek(tmp_path / "c", DAY)


def test_the_sun_at_t_does_not_depend_on_the_start(tmp_path: Path) -> None:
    config = SimConfig(size=32, seed=3, cadence_s=6 * 3600)
    simulate_day(str(tmp_path / "late"), DAY, ["2014-03-01T18:00:00"], config)
    sim_sun.active_regions_emerging.cache_clear()
    sim_sun.coronal_holes_forming.cache_clear()
    sim_sun.filaments_forming.cache_clear()
    simulate_day(str(tmp_path / "early"), "2014-02-28", ["2014-02-28T18:00:00"], config)
    simulate_day(str(tmp_path / "early"), DAY, [f"{DAY}T{h:02d}:00:00" for h in (0, 6, 12, 18)], config)
    late, early = _files(tmp_path / "late"), _files(tmp_path / "early")
    step = [k for k in late if "T18" in k or "_18" in k]
    assert len(step) == 13
    assert all(late[k] == early[k] for k in step)
    late_events = _hek(tmp_path / "late", DAY)
    early_events = [e for e in _hek(tmp_path / "early", DAY) if e["event_starttime"].endswith("18:00:00")]
    assert late_events and late_events == early_events
    srs = "labels/srs/2014/20140301SRS.txt"
    assert late[srs] == early[srs]


def test_aia_files_are_aia_maps_with_the_right_observation(archive: Path) -> None:
    for wl, channel in AIA_CHANNELS.items():
        m = sunpy.map.Map(_one(archive, f"aia/2014/03/01/*T12*Z.{wl}.image_lev1.fits"))
        assert isinstance(m, sunpy.map.sources.AIAMap)
        assert m.wavelength == wl * u.AA
        assert m.exposure_time == channel.exptime_s * u.s
        assert abs((m.date - Time(T12)).to_value(u.s)) < 20
        assert m.meta["quality"] == 0
        assert 0.0 < abs(m.meta["crota2"]) < 0.1
        assert m.scale.axis1.to_value(u.arcsec / u.pix) == pytest.approx(0.6 * 4096 / 128)
        assert m.observer_coordinate.lat.to_value(u.deg) == pytest.approx(
            sun.B0(T12).to_value(u.deg), abs=0.01
        )
        assert m.observer_coordinate.radius.to_value(u.AU) == pytest.approx(
            sun.earth_distance(T12).to_value(u.AU), rel=1e-5
        )
        path = _one(archive, f"aia/2014/03/01/*T12*Z.{wl}.image_lev1.fits")
        with fits.open(path) as hdul:
            assert hdul[0].data is None and isinstance(hdul[1], fits.CompImageHDU)
            assert hdul[1].compression_type == "RICE_1"
        raw = path.read_bytes()[:20000]
        assert re.search(rb"ZBITPIX = +16 ", raw)  # stored as int16, as level 1

    m = sunpy.map.Map(_one(archive, "aia/2014/03/01/*T12*Z.171.image_lev1.fits"))
    centre = m.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=m.coordinate_frame))
    col, row = (int(round(float(c))) for c in centre)
    disk = np.nanmedian(m.data[row - 3 : row + 4, col - 3 : col + 4])
    assert disk > 0.5 * AIA_CHANNELS[171].quiet_dn
    assert np.nanmedian(m.data[:5, :5]) < 0.2 * disk  # corners are off the disk
    assert 1.0 < np.hypot(float(centre[0]) - 63.5, float(centre[1]) - 63.5) < 4.5  # a few pixels off centre
    limb = SkyCoord(1.3 * m.rsun_obs, 0 * u.arcsec, frame=m.coordinate_frame)
    off_col, off_row = (int(round(float(c))) for c in m.wcs.world_to_pixel(limb))
    assert m.data[off_row, off_col] < disk


def test_hmi_file_is_an_upside_down_hmi_magnetogram(archive: Path) -> None:
    path = _one(archive, "hmi/2014/03/01/hmi.m_720s.20140301_120000_TAI.1.magnetogram.fits")
    m = sunpy.map.Map(path)
    assert isinstance(m, sunpy.map.sources.HMIMap)
    assert m.measurement == "magnetogram"
    assert m.unit == u.G
    assert abs((m.date - Time("2014-03-01T12:00:00", scale="tai")).to_value(u.s)) < 1
    assert m.meta["crota2"] == pytest.approx(180.0, abs=0.2)
    centre = m.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=m.coordinate_frame))
    col, row = (int(round(float(c))) for c in centre)
    assert np.isfinite(m.data[row, col]) and np.isnan(m.data[0, 0])
    north = m.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0.9 * m.rsun_obs, frame=m.coordinate_frame))
    assert float(north[1]) < row  # solar north is at the bottom of HMI images
    assert np.nanmax(np.abs(m.data)) > 500 and np.nanmedian(np.abs(m.data)) < 40


def test_hek_active_region_box_holds_its_hmi_bipole(archive: Path) -> None:
    events = [
        e
        for e in _hek(archive, DAY)
        if e["event_type"] == "AR" and e["event_starttime"] == "2014-03-01T12:00:00"
    ]
    assert events
    hmi = sunpy.map.Map(_one(archive, "hmi/2014/03/01/*_120000_TAI*"))
    mask = fits.getdata(_one(archive, "labels/masks/ar/2014/03/01/ar_mask.2014-03-01T120000Z.fits"))
    aia = sunpy.map.Map(_one(archive, "aia/2014/03/01/*T12*Z.171.image_lev1.fits"))
    checked = 0
    for event in sorted(events, key=lambda e: -e["ar_numspots"]):
        if abs(event["hgs_x"]) > 60 or not event["ar_mtwilsoncls"]:
            continue
        corners = np.array([[float(v) for v in p.split()] for p in event["hpc_bbox"][9:-2].split(",")])
        box = SkyCoord(corners[:, 0] * u.arcsec, corners[:, 1] * u.arcsec, frame=hmi.coordinate_frame)
        cols, rows = hmi.wcs.world_to_pixel(box)
        patch = hmi.data[
            int(rows.min()) : int(np.ceil(rows.max())) + 1, int(cols.min()) : int(np.ceil(cols.max())) + 1
        ]
        assert np.nanmax(patch) > 100 and np.nanmin(patch) < -100, event["ar_noaanum"]
        centre = SkyCoord(event["hpc_x"] * u.arcsec, event["hpc_y"] * u.arcsec, frame=aia.coordinate_frame)
        c_col, c_row = (int(round(float(c))) for c in aia.wcs.world_to_pixel(centre))
        assert mask[c_row, c_col] == 1
        checked += 1
    assert checked >= 1


def _contrast_at_same_radius(m: sunpy.map.GenericMap, inside: np.ndarray, outside: np.ndarray) -> float:
    """Median intensity inside over outside, comparing pixels at the same distance from disk centre."""
    coords = sunpy.map.all_coordinates_from_map(m)
    radius = np.hypot(coords.Tx, coords.Ty) / m.rsun_obs
    ratios = []
    for r0 in np.arange(0.0, 0.95, 0.1):
        ring = (radius >= r0) & (radius < r0 + 0.1)
        if (inside & ring).sum() >= 3 and (outside & ring).sum() >= 10:
            ratios.append(np.median(m.data[inside & ring]) / np.median(m.data[outside & ring]))
    assert ratios
    return float(np.median(ratios))


def _on_hmi(aia: sunpy.map.GenericMap, hmi: sunpy.map.GenericMap, mask: np.ndarray) -> np.ndarray:
    """HMI values at the places of the AIA pixels in ``mask`` (through both WCS)."""
    rows, cols = np.nonzero(mask)
    hmi_cols, hmi_rows = hmi.wcs.world_to_pixel(aia.pixel_to_world(cols * u.pix, rows * u.pix))
    ok = np.isfinite(hmi_cols) & np.isfinite(hmi_rows)
    values = hmi.data[np.round(hmi_rows[ok]).astype(int), np.round(hmi_cols[ok]).astype(int)]
    return values[np.isfinite(values)]


def test_coronal_holes_are_dark_in_193_over_weak_unipolar_field(archive: Path) -> None:
    ch = fits.getdata(_one(archive, "labels/masks/ch/2014/03/01/ch_mask.2014-03-01T000000Z.fits")).astype(
        bool
    )
    ar = fits.getdata(_one(archive, "labels/masks/ar/2014/03/01/ar_mask.2014-03-01T000000Z.fits")).astype(
        bool
    )
    assert ch.sum() > 20 and ar.sum() > 20 and not (ch & ar).any()
    ratios = {}
    for wl in (193, 171, 1700):
        m = sunpy.map.Map(_one(archive, f"aia/2014/03/01/*T00*Z.{wl}.image_lev1.fits"))
        ratios[wl] = _contrast_at_same_radius(m, ch, ~ch & ~ar)
    assert ratios[193] < 0.45 < ratios[171] < 0.9 < ratios[1700]

    aia = sunpy.map.Map(_one(archive, "aia/2014/03/01/*T00*Z.193.image_lev1.fits"))
    hmi = sunpy.map.Map(_one(archive, "hmi/2014/03/01/*_000000_TAI*"))
    labels, n = ndimage.label(ch)
    largest = labels == 1 + int(np.argmax(ndimage.sum(ch, labels, range(1, n + 1))))
    hole = _on_hmi(aia, hmi, largest)
    quiet = _on_hmi(aia, hmi, (aia.data > 0.3 * AIA_CHANNELS[193].quiet_dn) & ~ch & ~ar)
    assert abs(hole.mean()) / np.abs(hole).mean() > 0.25  # unipolar
    # mixed: the network's flux nearly balances (the unipolar field around low-latitude holes,
    # which mostly extend their hemisphere's polar field, leaves an imbalance of about 10 %)
    assert abs(quiet.mean()) / np.abs(quiet).mean() < 0.2
    assert np.abs(hole).mean() < 30  # weak
    with fits.open(_one(archive, "labels/masks/ch/2014/03/01/*T000000Z.fits")) as hdul:
        header = hdul[1].header
    aia = fits.getheader(_one(archive, "aia/2014/03/01/*T00*Z.193.image_lev1.fits"), 1)
    for key in ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2", "CTYPE1", "CTYPE2", "DSUN_OBS", "HGLT_OBS"):
        assert header[key] == aia[key]
    assert header["CONTENT"] == "CORONAL HOLE MASK"


def test_srs_parses_with_sunpy_and_matches_hek_numbers(archive: Path) -> None:
    table = read_srs(str(_one(archive, "labels/srs/2014/20140301SRS.txt")))
    assert table.meta["issued"] == datetime(2014, 3, 1, 0, 30)
    on_disk = table[[i in ("I", "IA") for i in table["ID"]]]
    hek = {
        e["ar_noaanum"]
        for e in _hek(archive, DAY)
        if e["event_type"] == "AR" and e["event_starttime"].endswith("T00:00:00")
    }
    assert len(on_disk) > 0
    assert {int(n) for n in on_disk["Number"]} == hek
    spotted = table[table["ID"] == "I"]
    assert set(spotted["Mag Type"]) <= MT_WILSON
    assert all(re.fullmatch(r"[ABCDEFH][xrsahk][xoic]", z) for z in spotted["Z"])
    assert all(abs(lat) <= 45 for lat in spotted["Latitude"].to_value(u.deg))


def test_active_regions_rotate_west_at_about_13_degrees_a_day(archive: Path) -> None:
    def hgs(day: str) -> dict[str, tuple[float, float]]:
        positions = {}
        for e in _hek(archive, day):
            if (
                e["event_type"] == "AR"
                and e["event_starttime"].endswith("T00:00:00")
                and abs(e["hgs_x"]) < 70
                and abs(e["hgs_y"]) < 35
            ):
                t = Time(e["event_starttime"])
                earth = SkyCoord(
                    0 * u.deg,
                    sun.B0(t),
                    sun.earth_distance(t),
                    frame=frames.HeliographicStonyhurst,
                    obstime=t,
                )
                c = SkyCoord(
                    e["hpc_x"] * u.arcsec,
                    e["hpc_y"] * u.arcsec,
                    frame=frames.Helioprojective(observer=earth, obstime=t),
                )
                c = c.transform_to(frames.HeliographicStonyhurst(obstime=t))
                positions[e["frm_specificid"]] = (c.lon.to_value(u.deg), c.lat.to_value(u.deg))
        return positions

    first, second = hgs(DAY), hgs("2014-03-02")
    tracks = first.keys() & second.keys()
    assert tracks
    for track in tracks:
        assert second[track][0] - first[track][0] == pytest.approx(13.2, abs=1.2)
        assert second[track][1] == pytest.approx(first[track][1], abs=0.3)


def test_halpha_files_quality_table_and_degradations(archive: Path) -> None:
    rows = list(
        csv.DictReader(io.StringIO(_one(archive, "labels/halpha_quality/2014/03/20140301.csv").read_text()))
    )
    assert len(rows) == 2
    for row in rows:
        assert (archive / row["file"]).is_file()
        assert row["quality"] == ("1" if row["degradation"] == "none" else "2")
        header = fits.getheader(archive / row["file"])
        assert header["WAVELNTH"] == 6563 and header["ORIGIN"] == "KANZELHOEHE"
        assert header["DATE-OBS"] == row["obs_time"]
        data = fits.getdata(archive / row["file"])
        cx, cy, r = header["CENTER_X"], header["CENTER_Y"], header["SOLAR_R"]
        assert data[int(cy), int(cx)] > 5 * data[int(cy), max(0, int(cx - 1.2 * r))]

    kinds = [weather.draw_degradation(np.random.default_rng(k)) for k in range(4000)]
    assert np.mean([k != "none" for k in kinds]) == pytest.approx(0.25, abs=0.03)
    assert set(kinds) == {"none", *weather.DEGRADATIONS}

    n = 128
    rows_, cols_ = np.mgrid[0:n, 0:n] - (n - 1) / 2
    disk = np.hypot(rows_, cols_) < 50
    clean = np.where(disk, 3000.0, 30.0) + np.random.default_rng(0).normal(0, 20, (n, n))
    for kind in weather.DEGRADATIONS:
        bad = weather.degrade(clean, kind, 50.0, np.random.default_rng(1))
        if kind == "blur":
            centre = np.s_[44:84, 44:84]
            assert np.diff(bad[centre], axis=1).std() < 0.5 * np.diff(clean[centre], axis=1).std()
        else:
            darkened = (bad < 0.8 * clean) & disk
            assert 0.02 < darkened.sum() / disk.sum() < 0.95, kind


def test_active_regions_follow_hale_joy_and_mt_wilson_configurations() -> None:
    regions = [r for day in range(56650, 56700) for r in sim_sun.active_regions_emerging(0, day)]  # 2014
    assert len(regions) > 30
    cycle24_north = -1
    hale = [r.leading_polarity == cycle24_north * np.sign(r.lat_deg) for r in regions]
    assert np.mean(hale) > 0.85
    # Joy's law, with the real scatter (Kislovodsk 2010-2020: slope 0.37): fit over two years of regions
    many = [r for day in range(56300, 57030) for r in sim_sun.active_regions_emerging(0, day)]
    lat = np.array([abs(r.lat_deg) for r in many])
    tilt = np.array([-np.sign(r.lat_deg) * r.tilt_deg for r in many])
    assert float(lat @ tilt / (lat @ lat)) == pytest.approx(sim_sun.JOY_SLOPE, abs=0.08)
    assert 12.0 < tilt.std() < 30.0
    for r in regions:
        polarities = {s.polarity for s in r.spots}
        assert (polarities == {1}) == (r.mt_wilson in ("Alpha",)), r.mt_wilson
        if "Delta" in r.mt_wilson:
            pairs = [
                (a, b)
                for a in r.spots
                for b in r.spots
                if a.polarity != b.polarity
                and np.hypot(a.x_deg - b.x_deg, a.y_deg - b.y_deg)
                < 1.5
                * (
                    sim_sun.spot_radius_deg(a.share * r.max_area_msh)
                    + sim_sun.spot_radius_deg(b.share * r.max_area_msh)
                )
            ]
            assert pairs, r.mt_wilson
    classes = [r.mt_wilson for r in regions]
    assert classes.count("Beta") > classes.count("Beta-Gamma") > 0


def test_polar_holes_shrink_towards_maximum_and_unknown_era_is_refused() -> None:
    def polar_radius(date: str) -> float:
        return sim_sun.polar_holes(0, Time(date).mjd)[0].radius_deg

    assert polar_radius("2009-01-01") > 20.0
    assert polar_radius("2014-04-01") < 8.0
    with pytest.raises(HelioBenchError, match="outside the simulated era"):
        SunModel(0).state(Time("1990-01-01").mjd)


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore:Invalid 'BLANK' keyword")  # the real level-1 sample is float with BLANK
def test_headers_hek_and_srs_carry_the_real_keys(archive: Path, realdata: Path) -> None:
    real_aia = fits.getheader(realdata / "fits/aia/aia_171_level1.fits")
    ours = fits.getheader(_one(archive, "aia/2014/03/01/*T00*Z.171.image_lev1.fits"), 1)
    shared = {
        "T_OBS",
        "DATE-OBS",
        "WAVELNTH",
        "WAVEUNIT",
        "EXPTIME",
        "QUALITY",
        "CDELT1",
        "CDELT2",
        "CRPIX1",
        "CRPIX2",
        "CRVAL1",
        "CRVAL2",
        "CTYPE1",
        "CTYPE2",
        "CUNIT1",
        "CUNIT2",
        "CROTA2",
        "RSUN_OBS",
        "R_SUN",
        "RSUN_REF",
        "DSUN_OBS",
        "HGLN_OBS",
        "HGLT_OBS",
        "CRLN_OBS",
        "CRLT_OBS",
        "TELESCOP",
        "INSTRUME",
        "LVL_NUM",
        "T_REC",
        "DATAMIN",
        "DATAMAX",
        "HAEX_OBS",
        "CAR_ROT",
        "X0_MP",
        "IMSCL_MP",
    }
    assert shared <= set(real_aia) and shared <= set(ours)
    for key in ("TELESCOP", "INSTRUME", "WAVEUNIT", "CTYPE1", "CUNIT1", "RSUN_REF", "LVL_NUM"):
        assert ours[key] == real_aia[key], key

    real_hek = json.loads(next((realdata / "hek").glob("*.json")).read_text())
    real_ar_keys = set(next(e for e in real_hek if e["event_type"] == "AR"))
    for event in _hek(archive, DAY):
        assert real_ar_keys <= set(event)
        assert {"hpc_boundcc", "obs_instrument"} <= set(event)

    real = read_srs(str(realdata / "srs/20150101SRS.txt"))
    ours_srs = read_srs(str(_one(archive, "labels/srs/2014/20140301SRS.txt")))
    assert ours_srs.colnames == real.colnames


@pytest.mark.realdata
def test_active_region_sizes_and_latitudes_match_kislovodsk_2014(realdata: Path) -> None:
    import polars as pl

    groups = pl.read_csv(realdata / "tables/kislovodsk_sunspot_groups.csv").filter(
        pl.col("date").str.starts_with("2014")
    )
    real_lat = float(groups["lat_mean"].abs().median())
    real_area = float(groups["area"].median())
    model = SunModel(0)
    lats, areas = [], []
    for mjd in np.arange(Time("2014-01-01").mjd, Time("2015-01-01").mjd, 7.0):
        for placed in model.state(mjd).active_regions:
            area = placed.feature.spot_area_msh(placed.envelope)
            if area > 0 and abs(placed.lon_deg) < 60:
                lats.append(abs(placed.lat_deg))
                areas.append(area)
    assert len(lats) > 100
    assert np.median(lats) == pytest.approx(real_lat, abs=4.0)
    assert real_area / 3 < np.median(areas) < real_area * 3


def test_euv_limb_brightens_uv_limb_darkens_and_the_corona_extends(archive: Path) -> None:
    profile = {}
    for wl in (171, 1700):
        m = sunpy.map.Map(_one(archive, f"aia/2014/03/01/*T12*Z.{wl}.image_lev1.fits"))
        coords = sunpy.map.all_coordinates_from_map(m)
        r = (np.hypot(coords.Tx, coords.Ty) / m.rsun_obs).to_value(u.one)
        profile[wl] = [
            np.median(m.data[(r >= a) & (r < b)]) for a, b in ((0.0, 0.3), (0.9, 0.98), (1.05, 1.15))
        ]
    centre, limb, corona = profile[171]
    assert limb > 1.1 * centre and corona > 0.2 * centre
    centre, limb, corona = profile[1700]
    assert limb < 0.85 * centre and corona < 0.05 * centre


@pytest.mark.parametrize("crota2_deg", [0.05, 179.93, -21.5])
def test_pixel_rays_land_where_sunpy_puts_them(crota2_deg: float) -> None:
    observer = observer_at(Time(T12).mjd)
    pointing = Pointing(
        size=48, cdelt_arcsec=0.6 * 4096 / 48, crpix1=25.3, crpix2=22.8, crota2_deg=crota2_deg
    )
    view = disk_view(pointing, observer)
    m = sunpy.map.Map(np.zeros((48, 48)), fitsfiles.mask_header("TEST", T12, pointing, observer))
    rows, cols = np.nonzero(view.on_disk)
    hgs = m.pixel_to_world(cols * u.pix, rows * u.pix).transform_to(
        frames.HeliographicStonyhurst(obstime=m.date)
    )
    lon, lat = lon_lat_deg(view.xyz)
    assert np.isfinite(hgs.lon).all()
    assert np.allclose(lon, hgs.lon.to_value(u.deg), atol=1e-5) and np.allclose(
        lat, hgs.lat.to_value(u.deg), atol=1e-5
    )


def test_rare_quality_flags_mark_lost_rows(tmp_path: Path) -> None:
    steps = [T0 + timedelta(minutes=12 * k) for k in range(800)]
    lossy = [(t, wl) for t in steps for wl in AIA_CHANNELS if aia_lost_rows(0, wl, t, 32) != slice(0, 0)]
    assert 0.002 < len(lossy) / (len(steps) * len(AIA_CHANNELS)) < 0.01
    t, wl = lossy[0]
    simulate_day(str(tmp_path), t.date().isoformat(), [t], SimConfig(size=32))
    path = _one(tmp_path, f"aia/*/*/*/*.{wl}.image_lev1.fits")
    header = fits.getheader(path, 1)
    lost = header["MISSVALS"] / header["TOTVALS"]
    assert 0 < lost < 0.1
    assert header["QUALITY"] == 0x100 | (0x200 if lost > 0.01 else 0) | (0x400 if lost > 0.05 else 0)
    assert np.isnan(fits.getdata(path, 1)).all(axis=1).any()
    others = [p for p in tmp_path.glob("aia/*/*/*/*.fits") if p != path]
    assert all(fits.getheader(p, 1)["QUALITY"] == 0 for p in others)


def test_day_writes_through_fsspec() -> None:
    root = "memory://heliobench-sim-test"
    uris = simulate_day(root, DAY, ["2014-03-01T00:00:00"], SimConfig(size=16))
    fs = fsspec.filesystem("memory")
    try:
        assert len(uris) == 13 + 3 and all(fs.exists(uri) for uri in uris)
        assert fs.cat_file(f"{root}/labels/halpha_quality/2014/03/20140301.csv").startswith(
            b"file,obs_time,quality"
        )
    finally:
        fs.rm(root, recursive=True)


def test_ray_path_writes_two_days_and_counts_them(tmp_path: Path, ray_session) -> None:
    summary = simulate_archive(
        str(tmp_path), "2014-01-01", "2014-01-03", "12h", size=64, seed=5, progress=False
    )
    assert summary.time_steps == 4 and summary.days == 2
    assert summary.files == {
        "aia": 36,
        "hmi": 4,
        "halpha": 4,
        "ch_mask": 4,
        "ar_mask": 4,
        "hek": 2,
        "srs": 2,
        "halpha_quality": 2,
    }
    assert summary.seconds > 0
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == summary.total_files == 58
    assert not list(tmp_path.rglob(".tmp-*"))


def test_ray_path_writes_to_object_storage(s3_bucket: str, ray_session) -> None:
    import s3fs

    summary = simulate_archive(
        f"{s3_bucket}/sim", "2014-01-01", "2014-01-01T06:00", "6h", size=16, progress=False
    )
    assert summary.time_steps == 1 and summary.total_files == 16
    fs = s3fs.S3FileSystem(endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys = [k for k in fs.find(f"{s3_bucket}/sim") if "/.tmp-" not in k]
    assert len(keys) == 16
    assert fs.cat_file(f"{s3_bucket}/sim/labels/srs/2014/20140101SRS.txt").startswith(
        b":Product: 0101SRS.txt"
    )


def test_bad_arguments_are_refused_with_the_value(tmp_path: Path) -> None:
    with pytest.raises(HelioBenchError, match="cadence 'six hours'"):
        simulate_archive(str(tmp_path), "2014-01-01", "2014-01-02", "six hours", progress=False)
    with pytest.raises(HelioBenchError, match="not after start"):
        simulate_archive(str(tmp_path), "2014-01-02", "2014-01-01", "6h", progress=False)
    with pytest.raises(ValueError, match="outside the day"):
        simulate_day(str(tmp_path), DAY, [T0 + timedelta(days=1)], SimConfig(size=32))


def test_observer_matches_sunpy_ephemeris() -> None:
    observer = observer_at(Time(T12).mjd)
    assert observer.b0_deg == pytest.approx(sun.B0(T12).to_value(u.deg), abs=1e-6)
    assert observer.l0_deg == pytest.approx(sun.L0(T12).to_value(u.deg), abs=1e-6)
    assert observer.rsun_obs_arcsec == pytest.approx(sun.angular_radius(T12).to_value(u.arcsec), rel=1e-3)


def test_catalog_identities_change_at_each_disk_passage():
    from heliobench.archive.sim.sun import disk_passage

    # At the equator the Sun turns ~14.2°/day (synodic): emerging at HGS 80° (near the west
    # limb), the feature stays in passage 0 until it comes round the east limb (-90° = 270°),
    # i.e. after (270 - 80) / 14.2 ≈ 13.4 days.
    assert disk_passage(80.0, 0.0, 100.0, 100.0) == 0
    assert disk_passage(80.0, 0.0, 100.0, 112.0) == 0
    assert disk_passage(80.0, 0.0, 100.0, 114.5) == 1
    # emerging behind the east limb (-120°), its first visible passage is passage 1
    assert disk_passage(-120.0, 0.0, 100.0, 100.0) == 0
    assert disk_passage(-120.0, 0.0, 100.0, 103.0) == 1

"""SCSS-Net polygon archives and HEK outlines as segmentation targets: ingest one row per
label file of a ZIP, masks drawn on the native grid of the paired AIA image and registered
with it, and the whole path ingest → split → shard on the real SCSS-Net archive."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import astropy.units as u
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from heliobench.archive.readers import iter_scss_zip, rasterize_scss
from heliobench.archive.readers.scss import read_scss_label
from heliobench.archive.sim.config import SimConfig
from heliobench.archive.sim.day import simulate_day
from heliobench.catalog.ingest import ingest
from heliobench.catalog.tables import load_catalog
from heliobench.prep import default_pipeline
from heliobench.prep.labels import LabelContext, encode_label, grid_map
from heliobench.prep.pipeline import DISK_RADIUS_FRACTION, registered_disk_mask
from heliobench.specs import Member, load_card
from heliobench.storage import read_bytes

SIZE = 256  # simulated AIA frames and registered masks


def _zip(realdata: Path, name: str) -> Path:
    return realdata / "labels" / "scss_net" / name


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}


def _aia_193(out: Path, when: datetime, size: int = SIZE) -> Path:
    """The simulated AIA 193 level-1 file of the time step ``when`` (the simulator writes every channel)."""
    written = simulate_day(str(out), when.date().isoformat(), [when.replace(tzinfo=None).isoformat()],
                           SimConfig(size=size, seed=5, cadence_s=86400))
    return Path(next(w for w in written if w.endswith(".193.image_lev1.fits")))


def _ctx(label: str, grid_uri: Path, time: datetime, card_tolerance_min: float | None = None, **member) -> LabelContext:
    """The context of label member ``ch_mask`` drawn on the AIA 193 file ``grid_uri``, registered to SIZE px."""
    return LabelContext(Member(key="ch_mask", label=label, grid="aia_193", **member), time, default_pipeline("AIA", SIZE),
                        None, str(grid_uri), card_tolerance_min)


def _shoelace_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


# --- ingest ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_ingest_catalogues_one_row_per_label_file(realdata: Path, ray_session, tmp_path: Path) -> None:
    archives = {"scss_ch": _zip(realdata, "ch_custom.zip"), "scss_ar": _zip(realdata, "ar_custom.zip")}
    summary = ingest([str(p) for p in archives.values()], str(tmp_path / "cat"), progress=False)
    labels = load_catalog(str(tmp_path / "cat")).labels
    assert summary.files_read == 2 and summary.new_quarantined == 0
    assert summary.new_labels == labels.height == sum(len(_members(p)) for p in archives.values())
    for kind, path in archives.items():
        members = _members(path)
        rows = labels.filter(pl.col("kind") == kind).sort("uri")
        assert rows.height == len(members)
        assert rows["uri"].to_list() == sorted(f"zip://{name}::{path.resolve()}" for name in members)
        for row in rows.head(40).iter_rows(named=True):  # times, checksums and reads through storage
            name = row["uri"].removeprefix("zip://").split("::")[0]
            date = read_scss_label(members[name].decode(), row["uri"]).date
            assert row["time_start"] == row["time_end"] == date
            assert row["checksum"] == hashlib.sha256(members[name]).hexdigest()
            assert read_bytes(row["uri"]) == members[name]
        assert (rows["size_bytes"] == path.stat().st_size).all()
        assert rows["time_start"].dt.year().unique().sort().to_list() == [2012, 2013, 2014, 2015]
    again = ingest([str(p) for p in archives.values()], str(tmp_path / "cat"), progress=False)
    assert (again.files_read, again.unchanged, again.total_labels) == (0, 2, labels.height)


@pytest.mark.realdata
def test_a_bad_member_is_quarantined_alone(realdata: Path, ray_session, tmp_path: Path) -> None:
    good = dict(list(_members(_zip(realdata, "ch_custom.zip")).items())[:5])
    bad_text = {"ch_custom/bad_radius.txt": b"DATE:  2013-05-01 00:00:07.84\nRADIUS:  wide\nCH: 0\n 1 2\n"}
    corrupt_name = "ch_custom/2013_05_02__00_00_07_84__SDO_AIA_AIA_193.txt"
    archive = tmp_path / "src" / "ch_custom.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for name, data in {**good, **bad_text, corrupt_name: next(iter(good.values()))}.items():
            zf.writestr(name, data)
    with zipfile.ZipFile(archive) as zf:  # flip one byte of the last member's data: its CRC-32 no longer matches
        info = zf.getinfo(corrupt_name)
    raw = bytearray(archive.read_bytes())
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 40] ^= 0xFF
    archive.write_bytes(bytes(raw))

    cat = str(tmp_path / "cat")
    summary = ingest([str(archive)], cat, progress=False, max_quarantine=None)
    tables = load_catalog(cat)
    assert (summary.new_labels, summary.new_quarantined) == (5, 2)
    assert set(tables.labels["kind"]) == {"scss_ch"}
    reasons = dict(tables.quarantine.select("uri", "reason").iter_rows())
    assert set(reasons) == {f"zip://{corrupt_name}::{archive}", f"zip://ch_custom/bad_radius.txt::{archive}"}
    assert "CRC" in reasons[f"zip://{corrupt_name}::{archive}"]
    assert "RADIUS" in reasons[f"zip://ch_custom/bad_radius.txt::{archive}"]

    with zipfile.ZipFile(archive, "w") as zf:  # the archive repaired: its rows are replaced, none duplicated
        for name, data in good.items():
            zf.writestr(name, data)
    again = ingest([str(archive)], cat, progress=False)
    tables = load_catalog(cat)
    assert (again.files_read, tables.labels.height, tables.quarantine.height) == (1, 5, 0)


# --- SCSS-Net polygons on an AIA image ---------------------------------------------------------


@pytest.fixture(scope="module")
def ch_label(realdata: Path):
    """The first coronal-hole label of 2013 with at least three polygons."""
    return next(lb for lb in iter_scss_zip(_zip(realdata, "ch_custom.zip")) if lb.date.year == 2013 and len(lb.polygons) >= 3)


@pytest.fixture(scope="module")
def aia_193_at_label(ch_label, tmp_path_factory) -> Path:
    return _aia_193(tmp_path_factory.mktemp("sim193"), ch_label.date)


@pytest.mark.realdata
def test_scss_polygons_on_the_native_grid_keep_their_disk_fraction(ch_label, aia_193_at_label: Path) -> None:
    from heliobench.prep.image import PrepImage

    image = PrepImage.from_map(grid_map("label", _ctx("scss_ch", aia_193_at_label, ch_label.date)))
    rsun = image.rsun_arcsec
    native = rasterize_scss(ch_label, image.data.shape, lambda dx, dy: image.world_to_pixel(dx * rsun, dy * rsun))
    disk_area = np.pi * image.disk_radius_px**2
    expected = sum(_shoelace_area(p) for p in ch_label.polygons) / (np.pi * ch_label.radius_px**2)
    # PIL fills every pixel the outline touches: about half a pixel more along the outline at 256 px
    assert native.sum() / disk_area == pytest.approx(expected, rel=0.08)
    yy, xx = np.mgrid[: image.data.shape[0], : image.data.shape[1]]
    r = np.hypot(xx - image.disk_center_px[0], yy - image.disk_center_px[1]) / image.disk_radius_px
    # hand-drawn outlines follow the limb: a pixel's width beyond it at most
    assert native[r > 1 + 1.5 / image.disk_radius_px].sum() == 0


@pytest.mark.realdata
def test_scss_mask_is_registered_with_the_image(ch_label, aia_193_at_label: Path) -> None:
    ctx = _ctx("scss_ch", aia_193_at_label, ch_label.date)
    mask = encode_label(read_bytes(ch_label.uri), ch_label.uri, ctx)
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    disk_px = np.pi * (SIZE * DISK_RADIUS_FRACTION) ** 2
    expected = sum(_shoelace_area(p) for p in ch_label.polygons) / (np.pi * ch_label.radius_px**2)
    assert mask.sum() / disk_px == pytest.approx(expected, rel=0.1)
    assert mask[~registered_disk_mask(SIZE, 1 + 1.5 / (SIZE * DISK_RADIUS_FRACTION))].sum() == 0
    # the same polygons on the 4096 frame, scaled to the registered disk: the two masks agree
    frame = rasterize_scss(ch_label, SIZE, lambda dx, dy: ((SIZE - 1) / 2 + dx * SIZE * DISK_RADIUS_FRACTION,
                                                            (SIZE - 1) / 2 + dy * SIZE * DISK_RADIUS_FRACTION))
    assert (mask & frame).sum() / (mask | frame).sum() > 0.85


@pytest.mark.realdata
def test_scss_vertices_with_small_y_lie_in_the_north(ch_label, aia_193_at_label: Path) -> None:
    """SCSS-Net draws its vertices with PIL on a north-up frame, y down: a polygon near y = 700
    is a northern feature, in the upper rows of a FITS (row 0 at the bottom) mask."""
    text = "DATE:  {:%Y-%m-%d %H:%M:%S.%f}\nRADIUS:  {}\nCH:    0\n 1900 700\n 2200 700\n 2200 900\n 1900 900\n"
    raw = text.format(ch_label.date, ch_label.radius_px).encode()
    mask = encode_label(raw, "mem://north.txt", _ctx("scss_ch", aia_193_at_label, ch_label.date))
    rows = np.nonzero(mask.any(axis=1))[0]
    centre = (SIZE - 1) / 2
    assert rows.min() > centre
    # rows 700..900 of the 4096 frame: (2047.5 - y) / RADIUS disk radii north of the centre
    scale = SIZE * DISK_RADIUS_FRACTION / ch_label.radius_px
    assert rows.mean() == pytest.approx(centre + (2047.5 - 800) * scale, abs=1.5)


# --- HEK outlines ---------------------------------------------------------------------------


def _circle_wkt(x: float, y: float, radius: float, n: int = 40) -> str:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = [(x + radius * np.cos(a), y + radius * np.sin(a)) for a in angles]
    ring.append(ring[0])  # HEK closes its rings
    return "POLYGON((" + ",".join(f"{vx:.4f} {vy:.4f}" for vx, vy in ring) + "))"


def _hek_record(event_type: str, frm_name: str, specific: str, start: datetime, hours: float,
                x: float, y: float, radius: float) -> dict:
    """A HEK record as the HEK API returns it (the fields HelioBench reads, in their formats)."""
    return {
        "event_type": event_type,
        "frm_name": frm_name,
        "frm_institute": "ROB" if frm_name == "SPoCA" else "TCD",
        "frm_specificid": specific,
        "event_starttime": f"{start:%Y-%m-%dT%H:%M:%S}",
        "event_endtime": f"{start + timedelta(hours=hours):%Y-%m-%dT%H:%M:%S}",
        "event_peaktime": "",
        "event_coordsys": "UTC-HPC-TOPO",
        "event_coordunit": "arcsec",
        "hpc_x": x,
        "hpc_y": y,
        "hpc_coord": f"POINT({x} {y})",
        "hpc_bbox": f"POLYGON(({x - radius} {y - radius},{x + radius} {y - radius},{x + radius} {y + radius},"
                    f"{x - radius} {y + radius},{x - radius} {y - radius}))",
        "hpc_boundcc": _circle_wkt(x, y, radius),
        "ar_noaanum": None,
        "fl_goescls": "",
        "area_atdiskcenter": float(np.pi * radius**2 * 725**2 / 1e6),
    }


def _mask_centroid(mask: np.ndarray) -> tuple[float, float]:
    yy, xx = np.nonzero(mask)
    return float(xx.mean()), float(yy.mean())


def test_hek_outlines_of_one_method_are_drawn_and_rotated(aia_193_2012: tuple[Path, datetime], tmp_path: Path) -> None:
    aia, t = aia_193_2012
    records = [
        _hek_record("CH", "SPoCA", "SPoCA_v1.0_CH_00001001", t - timedelta(hours=1), 4, -300.0, 200.0, 150.0),
        _hek_record("CH", "SPoCA", "SPoCA_v1.0_CH_00001001", t - timedelta(hours=5), 4, -330.0, 200.0, 150.0),  # older record, same track
        _hek_record("CH", "CHIMERA", "", t - timedelta(hours=1), 4, 300.0, -200.0, 150.0),
        _hek_record("AR", "SPoCA", "SPoCA_v1.0_AR_00002002", t - timedelta(hours=1), 4, 400.0, 100.0, 100.0),
        _hek_record("CH", "SPoCA", "SPoCA_v1.0_CH_00001003", t + timedelta(hours=1), 4, 0.0, -400.0, 150.0),  # not yet
    ]
    raw = json.dumps({"result": records, "overmax": False}).encode()
    member = {"filter": {"event_type": "CH", "frm_name": "SPoCA"}, "match": "before", "tolerance_min": 1440.0,
              "card_tolerance_min": 120.0}
    mask = encode_label(raw, "mem://hek.json", _ctx("hek", aia, t, **member))
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8
    scale = read_rsun(aia) / (SIZE * DISK_RADIUS_FRACTION)  # registered arcsec per pixel
    centre = (SIZE - 1) / 2
    assert mask.sum() == pytest.approx(np.pi * (150 / scale) ** 2, rel=0.08)
    x, y = _mask_centroid(mask)
    assert (x, y) == pytest.approx((centre - 300 / scale, centre + 200 / scale), abs=0.7)

    # the same outline recorded a day before the image is rotated west to the image's time
    day_old = [_hek_record("CH", "SPoCA", "SPoCA_v1.0_CH_00001001", t - timedelta(hours=24), 30, -300.0, 200.0, 150.0)]
    raw_old = json.dumps({"result": day_old, "overmax": False}).encode()
    rotated = encode_label(raw_old, "mem://hek.json", _ctx("hek", aia, t, **member))
    from sunpy.coordinates import Helioprojective, get_earth
    from sunpy.physics.differential_rotation import solar_rotate_coordinate

    observed = t - timedelta(hours=24)
    native = grid_map("hek", _ctx("hek", aia, t, **member))
    centre_then = SkyCoord(-300 * u.arcsec, 200 * u.arcsec, frame=Helioprojective(observer=get_earth(observed), obstime=observed))
    now = solar_rotate_coordinate(centre_then, observer=native.observer_coordinate)
    x, y = _mask_centroid(rotated)
    assert x - centre == pytest.approx(now.Tx.to_value(u.arcsec) / scale, abs=1.0)
    assert x - centre > -300 / scale + 10  # about 13 degrees of rotation: well west of where it was drawn


def read_rsun(path: Path) -> float:
    """The apparent solar radius (arcsec) of an AIA file's header."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        return float(next(h.header["RSUN_OBS"] for h in hdul if "RSUN_OBS" in h.header))


@pytest.fixture(scope="module")
def aia_193_2012(tmp_path_factory) -> tuple[Path, datetime]:
    """A simulated AIA 193 frame and its time."""
    path = _aia_193(tmp_path_factory.mktemp("sim193h"), datetime(2012, 3, 4, 6, 0, 0, tzinfo=timezone.utc))
    from heliobench.archive.readers import read_header

    record = read_header(path.read_bytes(), str(path))
    return path, record.obs_time


# --- ingest → split → shard on the real archive -------------------------------------------------


@pytest.mark.realdata
def test_scss_archive_to_shards(realdata: Path, ray_session, tmp_path: Path) -> None:
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.shards import write_shards

    card = load_card("sdo_scss_ch")
    labels = [lb for lb in iter_scss_zip(_zip(realdata, "ch_custom.zip")) if len(lb.polygons) >= 2]
    chosen = [next(lb for lb in labels if lb.date.year == year and (year != 2014 or lb.date.month > 6))
              for year in (2012, 2013, 2014, 2015)]
    folder = tmp_path / "archive" / "aia"
    folder.mkdir(parents=True)
    for label in chosen:  # AIA 193 frames at the labels' times (the simulator writes every channel: keep one)
        aia = _aia_193(tmp_path / "sim", label.date, size=128)
        shutil.copy(aia, folder / aia.name)
    cat = str(tmp_path / "cat")
    ingest([str(folder), str(_zip(realdata, "ch_custom.zip"))], cat, progress=False)
    manifest, paired = make_manifest(load_catalog(cat), card, card.default_split_scheme)
    assert paired.samples.height == 4 and paired.unmatched == 0
    assert manifest.samples.group_by("split").len().sort("split").rows() == [("test", 1), ("train", 2), ("val", 1)]
    uri = str(tmp_path / "manifest.parquet")
    write_manifest(manifest, uri)
    summary = write_shards(uri, card, str(tmp_path / "shards"), size_px=64, progress=False)
    assert summary.samples == {"train": 2, "val": 1, "test": 1}
    disk = registered_disk_mask(64, 1 + 1.5 / (64 * DISK_RADIUS_FRACTION))
    for shard in sorted((tmp_path / "shards").glob("*/shard-*.parquet")):
        table = pq.read_table(shard)
        masks = table.column("ch_mask").combine_chunks().to_numpy()
        images = table.column("aia_193").combine_chunks().to_numpy()
        assert masks.dtype == np.uint8 and masks.shape[1:] == images.shape[1:] == (64, 64)
        for mask in masks:
            assert mask.any() and mask[~disk].sum() == 0

"""Every real file family of ``../shared/realdata`` through ingest → catalog → split → shard.

The image families (AIA, EIT, SWAP, MDI, HMI, TRACE in FITS; Helioviewer JPEG 2000; PNG
browse images) each pair into a one-member card and are registered onto 64² shards; the
label families (NOAA SRS, HEK, CHRONNOS masks, SCSS-Net polygons) are catalogued with
their time spans, and SRS and HEK are encoded on simulated magnetograms and AIA frames
of their own dates (no real co-temporal images exist here: see the realdata README).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from heliobench.catalog.ingest import ingest
from heliobench.catalog.sources import skipped_type
from heliobench.catalog.splits import make_manifest, write_manifest
from heliobench.catalog.summary import summarize
from heliobench.catalog.tables import load_catalog
from heliobench.engine.data import read_shards
from heliobench.prep.pipeline import registered_disk_mask
from heliobench.shards import write_shards
from heliobench.specs import DatasetCard, load_card

pytestmark = [pytest.mark.realdata, pytest.mark.usefixtures("ray_session")]

SIZE = 64
#: One wide scheme: every real image lands in some split (1996-2024).
WIDE = {"train": {"start": "1990-01-01", "end": "2011-12-31"}, "val": {"start": "2012-01-01", "end": "2013-12-31"},
        "test": {"start": "2014-01-01", "end": "2030-12-31"}}
#: (instrument, channel, formats expected) of every full-disk or partial-disk image family.
FAMILIES = [
    ("AIA", "171", {"fits"}),
    ("AIA", "193", {"jp2", "png"}),
    ("EIT", "195", {"fits"}),
    ("EIT", "171", {"fits", "jp2"}),
    ("SWAP", "174", {"fits"}),
    ("MDI", "magnetogram", {"fits"}),
    ("MDI", "continuum", {"fits"}),
    ("HMI", "continuum", {"fits", "jp2"}),
    ("HMI", "magnetogram", {"jp2"}),
    ("TRACE", "171", {"fits"}),
]


@pytest.fixture(scope="module")
def real_catalog(realdata: Path, tmp_path_factory) -> Path:
    cat = tmp_path_factory.mktemp("realcat")
    ingest([str(realdata)], str(cat), progress=False)
    return cat


def _card(instrument: str, channel: str) -> DatasetCard:
    key = f"{instrument}_{channel}".lower()
    steps = [{"step": "register", "size_px": SIZE, "radius_px": SIZE * 0.397}, {"step": "fill_nan", "value": 0.0}]
    return DatasetCard.model_validate({
        "name": key, "description": "one real image family", "source": "../shared/realdata", "license": "public",
        "reference": key, "tolerance_min": 1, "members": [{"key": key, "instrument": instrument, "channel": channel}],
        "split_schemes": {"wide": WIDE},
        # AIA and HMI take their default pipelines (exposure, aiapy degradation, field clip); the others a plain registration
        "preprocessing": {} if instrument in ("AIA", "HMI") else {key: steps},
    })


def test_every_real_file_is_catalogued_or_quarantined_once(realdata: Path, real_catalog: Path) -> None:
    files = sorted(p for p in realdata.rglob("*") if p.is_file())
    # the README and the checksum list are skipped by their names, never read
    assert {p.name: skipped_type(str(p)) for p in files if skipped_type(str(p))} == {
        "README.md": "document (.md)", "MANIFEST.sha256": "checksum list (.sha256)"}
    tables = load_catalog(str(real_catalog))
    uris = tables.observations["uri"].to_list() + tables.labels["uri"].to_list() + tables.quarantine["uri"].to_list()
    members = [u for u in uris if "::" in u]  # archives catalogued member by member name their archive after ::
    read = [str(p.resolve()) for p in files if not skipped_type(str(p))]
    assert sorted(set(u for u in uris if "::" not in u) | {u.split("::")[-1] for u in members}) == read
    assert len(set(uris)) == len(uris)
    reasons = dict(tables.quarantine.select("uri", "reason").iter_rows())
    # only the non-solar statistics table is quarantined
    assert {Path(u).name for u in reasons} <= {"kislovodsk_sunspot_groups.csv"}
    assert all(reason.strip() for reason in reasons.values())
    kinds = dict(tables.labels.group_by("kind").len().iter_rows())
    assert kinds["srs"] == 10 and kinds["hek"] == 1 and kinds["ch_mask"] == 15
    summary = summarize(tables)
    assert all(frame is not None for frame in summary.values())


@pytest.mark.parametrize("instrument,channel,formats", FAMILIES, ids=[f"{i}-{c}" for i, c, _ in FAMILIES])
def test_each_image_family_splits_and_shards(real_catalog: Path, tmp_path: Path, instrument: str, channel: str,
                                            formats: set[str]) -> None:
    tables = load_catalog(str(real_catalog))
    family = tables.observations.filter((pl.col("instrument") == instrument) & (pl.col("channel") == channel)
                                        & (pl.col("data_kind") != "cea_patch"))  # pairing leaves CEA patches out
    assert set(family["file_format"]) == formats
    card = _card(instrument, channel)
    manifest, paired = make_manifest(tables, card, "wide")
    assert sum(manifest.counts().values()) == family["obs_time"].n_unique() and paired.unmatched == 0
    write_manifest(manifest, str(tmp_path / "manifest.parquet"))
    summary = write_shards(str(tmp_path / "manifest.parquet"), card, str(tmp_path / "shards"), size_px=SIZE, progress=False)
    uris = [str(p) for p in sorted((tmp_path / "shards").rglob("shard-*.parquet"))]
    key = card.reference
    images = read_shards(uris, [key])[key]
    assert images.shape == (sum(summary.samples.values()), SIZE, SIZE) and np.isfinite(images).all()
    disk, outside = registered_disk_mask(SIZE, 0.9), ~registered_disk_mask(SIZE, 1.3)
    for image, kind in zip(images, manifest.samples.sort("time")["sample_id"]):
        assert image.std() > 0, f"{instrument} {channel} {kind}: a blank registered image"
        if channel != "magnetogram" and instrument != "TRACE":  # TRACE sees part of the disk, magnetograms are signed
            assert image[disk].mean() > image[outside].mean(), f"{instrument} {channel} {kind}: the disk is not where registration put it"


def test_cea_patches_are_catalogued_but_never_paired_as_disk_images(real_catalog: Path) -> None:
    tables = load_catalog(str(real_catalog))
    patches = tables.observations.filter(pl.col("data_kind") == "cea_patch")
    assert patches.height == 13 and set(patches["instrument"]) == {"HMI", "MDI"}
    manifest, paired = make_manifest(tables, _card("HMI", "magnetogram"), "wide")
    assert paired.references == 1  # the full-disk JP2 magnetogram, not the SHARP magnetogram patch
    assert "sharp" not in manifest.samples["hmi_magnetogram_uri"][0]


def test_a_cea_patch_cannot_be_registered(realdata: Path) -> None:
    from heliobench.archive.readers import read_map
    from heliobench.prep import default_pipeline
    from heliobench.prep.base import PrepError

    patch = next((realdata / "fits" / "hmi" / "sharp_377").glob("*.Br.fits"))
    with pytest.raises(PrepError, match="not helioprojective"):
        default_pipeline("HMI", SIZE).run(read_map(patch.read_bytes(), str(patch)))


def _simulated_images(out: Path, days: list[datetime], archive_part: str) -> None:
    """Simulated AIA/HMI files (no simulated labels) every 6 hours of each day."""
    from heliobench.archive.sim import simulate_archive

    for day in days:
        tmp = out.parent / f"sim-{day:%Y%m%d}"
        simulate_archive(str(tmp), day.strftime("%Y-%m-%d"), (day + timedelta(days=1)).strftime("%Y-%m-%d"),
                         "6h", size=SIZE, seed=1, progress=False)
        shutil.copytree(tmp / archive_part, out / archive_part, dirs_exist_ok=True)


def test_real_srs_regions_on_magnetograms_of_their_days(realdata: Path, tmp_path: Path) -> None:
    srs = sorted((realdata / "srs").glob("*SRS.txt"))[-3:]  # 2010-06-21, 2015-01-01, 2015-03-06
    archive = tmp_path / "archive"
    _simulated_images(archive, [datetime.strptime(p.name[:8], "%Y%m%d") for p in srs], "hmi")
    for p in srs:
        shutil.copy(p, archive / p.name)
    cat = tmp_path / "cat"
    ingest([str(archive)], str(cat), progress=False)
    card = DatasetCard.model_validate({**load_card("sdo_srs").model_dump(), "split_schemes": {"wide": WIDE}, "default_scheme": None})
    manifest, paired = make_manifest(load_catalog(str(cat)), card, "wide")
    assert sum(manifest.counts().values()) > 0 and paired.unmatched_by_member["srs"] < paired.references
    write_manifest(manifest, str(tmp_path / "manifest.parquet"))
    write_shards(str(tmp_path / "manifest.parquet"), card, str(tmp_path / "shards"), size_px=SIZE, progress=False)
    uris = [str(p) for p in sorted((tmp_path / "shards").rglob("shard-*.parquet"))]
    tables = read_shards(uris, ["srs"])["srs"]
    regions = tables[~np.isnan(tables[:, :, 0])]
    assert len(regions) > 0 and set(np.unique(regions[:, 0]).astype(int)) <= _noaa_numbers(srs)


def _noaa_numbers(files: list[Path]) -> set[int]:
    from heliobench.archive.readers import read_srs

    return {int(n) for p in files for n in read_srs(p.read_bytes(), str(p))["noaa_number"].to_list()}


def test_real_hek_active_regions_become_tracks_on_frames_of_their_days(realdata: Path, tmp_path: Path) -> None:
    hek = next((realdata / "hek").glob("*.json"))
    archive = tmp_path / "archive"
    _simulated_images(archive, [datetime(2017, 9, d) for d in (2, 5)], "aia")
    shutil.copy(hek, archive / hek.name)
    cat = tmp_path / "cat"
    ingest([str(archive)], str(cat), progress=False)
    card = load_card("sdo_hek_tracking")
    manifest, paired = make_manifest(load_catalog(str(cat)), card, card.default_split_scheme)
    assert manifest.counts()["test"] > 0, (manifest.counts(), paired.references, manifest.metadata)  # the 10-day HEK file covers frames of both days
    write_manifest(manifest, str(tmp_path / "manifest.parquet"))
    write_shards(str(tmp_path / "manifest.parquet"), card, str(tmp_path / "shards"), size_px=SIZE,
                 members=("aia_171", "aia_171_prev", "hek", "hek_prev"), progress=False)
    uris = [str(p) for p in sorted((tmp_path / "shards").rglob("shard-*.parquet"))]
    boxes = read_shards(uris, ["hek", "hek_prev"])
    current, previous = boxes["hek"], boxes["hek_prev"]
    noaa = {int(n) for n in current[:, :, 6][~np.isnan(current[:, :, 6])]}
    assert noaa and noaa <= set(range(12672, 12680))  # the SWPC regions of those days
    # a track seen in both frames of a pair is the same NOAA region 6 hours apart
    shared = set(current[0, :, 0][~np.isnan(current[0, :, 0])]) & set(previous[0, :, 0][~np.isnan(previous[0, :, 0])])
    assert shared

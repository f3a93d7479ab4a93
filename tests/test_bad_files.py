"""No single bad file stops a job: a simulated archive plus files damaged in every way
the readers must explain, through ``ingest``, ``inspect`` and ``shard`` (``predict``:
tests/test_engine.py).

Each damaged file is quarantined (or its sample skipped) with a reason that names the
problem; every good file is catalogued; a run whose bad share passes the limit exits
with status 1 after finishing, with the count; object types no reader takes are skipped
without being read; a file that vanishes after listing is quarantined.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fuzzing import malformed_images

from heliobench.catalog import ingest as ingest_module
from heliobench.catalog.ingest import ingest, read_one
from heliobench.catalog.splits import make_manifest, write_manifest
from heliobench.catalog.tables import load_catalog, read_parquet
from heliobench.cli import main
from heliobench.failures import TooManyFailures
from heliobench.shards import SKIPPED_TABLE, write_shards
from heliobench.specs import load_card

pytestmark = pytest.mark.usefixtures("ray_session")

SEG = ("aia_171", "aia_193", "ch_mask", "ar_mask")
#: Files of types no reader takes: skipped by name, never read.
FOREIGN = {"README.md": b"# notes\n", "cube.nc": b"CDF\x01" + bytes(100), "store.zarr/temp/0.0": bytes(64)}


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Path:
    """A simulated day of four time steps (64 px): AIA, HMI, H-alpha, masks and labels."""
    from heliobench.archive.sim.config import SimConfig
    from heliobench.archive.sim.day import simulate_day

    out = tmp_path_factory.mktemp("day")
    times = [f"2013-05-01T{h:02d}:00:00" for h in (0, 6, 12, 18)]
    simulate_day(str(out), "2013-05-01", times, SimConfig(size=64, seed=7, cadence_s=6 * 3600))
    return out


@pytest.fixture(scope="module")
def bad(day: Path) -> dict[str, tuple[bytes, str]]:
    return malformed_images(sorted(day.rglob("*.171.image_lev1.fits"))[0].read_bytes())


def _uri(path: Path) -> str:
    return str(path.resolve())


def test_ingest_catalogues_the_good_quarantines_the_bad_and_fails_after_finishing(day, bad, tmp_path, capsys):
    archive = tmp_path / "archive"
    shutil.copytree(day, archive)
    for name, (raw, _) in bad.items():
        (archive / "damaged" / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / "damaged" / name).write_bytes(raw)
    for name, raw in FOREIGN.items():
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / name).write_bytes(raw)
    cat = tmp_path / "catalog"
    assert main(["ingest", str(archive), "--catalog", str(cat), "--quiet"]) == 1
    out, err = capsys.readouterr()
    good_files = [p for p in day.rglob("*") if p.is_file()]
    read = len(good_files) + len(bad)
    assert f"{len(bad)} of {read} files read went to quarantine" in err.splitlines()[-1]
    assert "skipped by type, not read: 1 document (.md), 1 netCDF (.nc), 1 zarr chunk" in out

    tables = load_catalog(str(cat))
    catalogued = set(tables.observations["uri"]) | set(tables.labels["uri"])
    assert catalogued == {_uri(archive / p.relative_to(day)) for p in good_files}
    reasons = {Path(u).name: (stage, reason) for u, stage, reason in tables.quarantine.select("uri", "stage", "reason").iter_rows()}
    assert set(reasons) == set(bad)
    for name, (_, phrase) in bad.items():
        stage, reason = reasons[name]
        assert phrase in reason and stage in ("read", "header"), (name, stage, reason)
        assert not reason.startswith("unexpected")

    # the run finished: the catalog is complete, and a rerun (nothing new to read) succeeds
    assert main(["ingest", str(archive), "--catalog", str(cat), "--quiet"]) == 0
    assert "0 read" in capsys.readouterr().out


def test_the_share_of_quarantine_allowed_is_an_option(bad, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    name = "cdelt_zero.fits"
    (tmp_path / "a" / name).write_bytes(bad[name][0])
    assert main(["ingest", str(tmp_path / "a"), "--catalog", str(tmp_path / "c"), "--quiet", "--max-quarantine", "100%"]) == 0
    assert "1 quarantined" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ingest", str(tmp_path / "a"), "--catalog", str(tmp_path / "c"), "--max-quarantine", "half"])


def test_inspect_names_the_file_and_the_problem_in_one_line(bad, tmp_path, capsys):
    for name, (raw, phrase) in bad.items():
        path = tmp_path / name
        path.write_bytes(raw)
        assert main(["inspect", str(path)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"heliobench inspect: error: {path}: ") and phrase in err, err
    assert main(["inspect", str(tmp_path / "absent.fits")]) == 2
    assert capsys.readouterr().err.strip() == f"heliobench inspect: error: {tmp_path / 'absent.fits'}: no such file"


def test_a_browse_image_named_for_an_impossible_time_is_refused_in_one_line(realdata, tmp_path, capsys):
    """Found by make fuzz: year 1 in a PNG's name reached the ephemeris (ERFA warnings) before the date check."""
    png = sorted((realdata / "ch_reiss" / "images").glob("*.png"))[0]
    for stamp, why in (("0001_01_01T00_00_00", "before 1840"), ("2150_01_01T00_00_00", "in the future")):
        path = tmp_path / "images" / f"sdo_aia193_{stamp}.png"
        path.parent.mkdir(exist_ok=True)
        shutil.copy(png, path)
        assert main(["inspect", str(path)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.strip() == (f"heliobench inspect: error: {path}: the time '{stamp}' in the file name is an "
                                             f"impossible observation time ({why})"), err


def test_an_unexpected_exception_is_quarantined_with_its_type(day, monkeypatch):
    def broken(raw: bytes, uri: str):
        raise ZeroDivisionError("a bug in a reader")

    monkeypatch.setattr(ingest_module, "read_header", broken)
    path = sorted(day.rglob("*.193.image_lev1.fits"))[0]
    (row,) = read_one(str(path), path.stat().st_size, "stamp").to_pylist()
    assert (row["status"], row["stage"]) == ("quarantine", "header")
    assert row["reason"] == "unexpected ZeroDivisionError: a bug in a reader"
    assert row["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_that_vanishes_after_listing_is_quarantined(day, tmp_path, monkeypatch):
    archive = tmp_path / "archive"
    shutil.copytree(day / "hmi", archive)
    victim = sorted(archive.rglob("*.fits"))[0]
    listed = ingest_module.list_source

    def list_then_delete(*args, **kwargs):
        files = listed(*args, **kwargs)
        victim.unlink()
        return files

    monkeypatch.setattr(ingest_module, "list_source", list_then_delete)
    summary = ingest([str(archive)], str(tmp_path / "cat"), progress=False, max_quarantine=None)
    q = load_catalog(str(tmp_path / "cat")).quarantine
    assert summary.new_quarantined == 1 and summary.new_observations == 3
    assert q.row(0, named=True) | {"ingested_at": None} == q.row(0, named=True) | {
        "uri": str(victim), "stage": "read", "reason": "the file vanished after it was listed (deleted or moved during ingest)",
        "ingested_at": None}


def test_unknown_object_types_under_s3_are_skipped_without_reading(day, s3_bucket, tmp_path, monkeypatch):
    import s3fs

    fs = s3fs.S3FileSystem()
    good = sorted(day.rglob("*magnetogram.fits"))[0]
    fs.put(str(good), f"{s3_bucket}/archive/{good.name}")
    for name, raw in FOREIGN.items():
        fs.pipe(f"{s3_bucket}/archive/{name}", raw)
    fs.pipe(f"{s3_bucket}/archive/gone.fits", good.read_bytes())
    read_files = ingest_module.read_files
    asked: list[str] = []

    def spy(files, progress=True):
        asked.extend(f.uri for f in files)
        fs.rm(f"{s3_bucket}/archive/gone.fits")  # deleted between listing and reading: S3 answers 404
        return read_files(files, progress)

    monkeypatch.setattr(ingest_module, "read_files", spy)
    summary = ingest([f"{s3_bucket}/archive"], f"{s3_bucket}/catalog", progress=False, max_quarantine=None)
    assert sorted(asked) == [f"{s3_bucket}/archive/gone.fits", f"{s3_bucket}/archive/{good.name}"]
    assert summary.skipped == {"document (.md)": 1, "netCDF (.nc)": 1, "zarr chunk": 1}
    assert summary.files_seen == 5 and summary.new_observations == 1
    (reason,) = load_catalog(f"{s3_bucket}/catalog").quarantine["reason"]
    assert reason == "the file vanished after it was listed (deleted or moved during ingest)"


def test_shard_skips_samples_with_bad_members_and_leaves_the_manifest(day, bad, tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(day, archive)
    cat = tmp_path / "catalog"
    ingest([str(archive)], str(cat), progress=False)
    card = load_card("sdo_sim")
    manifest, _ = make_manifest(load_catalog(str(cat)), card, "park2019")
    manifest_uri = str(tmp_path / "manifest.parquet")
    write_manifest(manifest, manifest_uri)
    manifest_bytes = Path(manifest_uri).read_bytes()
    samples = manifest.samples.sort("time")
    assert samples.height == 4 and set(samples["split"]) == {"train"}
    # damaged after ingest: the first sample's AIA 171 file is replaced, the third's AIA 193 file deleted
    first, third = samples.row(0, named=True), samples.row(2, named=True)
    Path(first["aia_171_uri"]).write_bytes(bad["cdelt_zero.fits"][0])
    Path(third["aia_193_uri"]).unlink()
    out = tmp_path / "shards"
    with pytest.raises(TooManyFailures, match=r"2 of 4 samples prepared were skipped \(50.0%\)") as failed:
        write_shards(manifest_uri, card, str(out), size_px=64, splits=("train",), samples_per_shard=2, members=SEG, progress=False)
    summary = failed.value.result
    assert summary.samples == {"train": 2} and summary.skipped == {"train": 2}
    index = json.loads((out / "index.json").read_text())
    assert [s["sample_ids"] for s in index["shards"]] == [[samples["sample_id"][1]], [samples["sample_id"][3]]]
    assert index["skipped_samples"] == {"train": 2}
    skipped = read_parquet(str(out / SKIPPED_TABLE))
    assert skipped.select("sample_id", "uri", "stage").rows() == [
        (first["sample_id"], first["aia_171_uri"], "map"), (third["sample_id"], third["aia_193_uri"], "read")]
    assert skipped["reason"].to_list() == ["CDELT1 = 0: the pixel scale is missing", "no such file"]
    assert Path(manifest_uri).read_bytes() == manifest_bytes  # the manifest is untouched
    # a resumed run writes nothing new and still lists the skipped samples (recorded in the shards)
    (out / SKIPPED_TABLE).unlink()
    again = write_shards(manifest_uri, card, str(out), size_px=64, splits=("train",), samples_per_shard=2, members=SEG,
                         progress=False, max_skipped=None)
    assert again.shards_written == 0 and again.skipped == {"train": 2}
    assert read_parquet(str(out / SKIPPED_TABLE)).equals(skipped)


def test_an_axis_count_is_read_to_the_end_of_its_card():
    from heliobench.archive.readers.validation import check_axis_counts
    from heliobench.errors import ReaderError

    card = b"NAXIS   =" + b"1000".rjust(71)  # the count's last digit in the card's last column
    assert len(card) == 80
    with pytest.raises(ReaderError, match="NAXIS = 1000: a FITS image has 0 to 999 axes"):
        check_axis_counts(b"SIMPLE  =                    T".ljust(80) + card, "card.fits")
    check_axis_counts(b"SIMPLE  =                    T".ljust(80) + b"NAXIS   =" + b"999".rjust(71), "ok.fits")


def test_a_header_declaring_billions_of_axes_is_refused_at_once(day, tmp_path, capsys):
    """Found by make fuzz: astropy reads NAXIS1 ... NAXISn one by one, for hours at NAXIS = 2147483648."""
    raw = sorted(day.rglob("*.171.image_lev1.fits"))[0].read_bytes()
    at = raw.index(b"NAXIS   =")
    path = tmp_path / "naxis_huge.fits"
    path.write_bytes(raw[:at] + b"NAXIS   =           2147483648".ljust(80) + raw[at + 80:])
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (f"heliobench inspect: error: {path}: NAXIS = 2147483648: a FITS image has "
                                               "0 to 999 axes, the header is damaged")
    row = read_one(str(path), path.stat().st_size, "stamp").to_pylist()[0]
    assert (row["status"], row["stage"]) == ("quarantine", "header") and row["reason"].startswith("NAXIS = 2147483648")

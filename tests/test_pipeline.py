"""sim → ingest → catalog → split → audit → shard, on real processes (Ray, an S3 server)."""

from __future__ import annotations

import hashlib
import json
import shutil

import polars as pl
import pytest

from heliobench.catalog.audit import audit, label_spans
from heliobench.catalog.ingest import ingest
from heliobench.catalog.splits import make_manifest
from heliobench.catalog.summary import summarize
from heliobench.catalog.tables import load_catalog
from heliobench.cli import main
from heliobench.failures import TooManyFailures
from heliobench.shards import write_shards
from heliobench.specs import load_card

SEG = ("aia_171", "aia_193", "ch_mask", "ar_mask")


def test_ingest_catalogues_every_file(tiny_archive, tiny_catalog):
    tables = load_catalog(str(tiny_catalog))
    files = [p for p in tiny_archive.rglob("*") if p.is_file()]
    assert tables.observations.height + tables.labels.height + tables.quarantine.height == len(files)
    assert tables.quarantine.height == 0, tables.quarantine
    per = tables.observations.group_by("instrument").len().sort("instrument")
    assert set(per["instrument"]) == {"AIA", "HMI", "KSO"}
    aia = tables.observations.filter(pl.col("instrument") == "AIA")
    assert sorted(aia["channel"].unique().to_list(), key=int) == ["94", "131", "171", "193", "211", "304", "335", "1600", "1700"]
    assert set(tables.labels["kind"]) >= {"ch_mask", "ar_mask", "hek", "srs", "halpha_quality"}
    row = aia.row(0, named=True)
    assert len(row["checksum"]) == 64 and row["size_bytes"] > 0 and row["disk_radius_px"] > 0
    assert tables.observations["uri"].is_unique().all()
    frames = summarize(tables)
    hmi_years = frames["per_year"].filter(pl.col("instrument") == "HMI")["year"]
    # hmi.M_720s T_OBS is TAI-stamped: the 2011-01-01 00:00 TAI record is 2010-12-31 23:59:26 UTC
    assert hmi_years.min() == 2010 and hmi_years.max() == 2017


def test_reingest_is_idempotent_and_incremental(tiny_archive, tmp_path):
    archive = tmp_path / "a"
    shutil.copytree(tiny_archive / "hmi", archive / "hmi")
    cat = str(tmp_path / "cat")
    first = ingest([str(archive)], cat, progress=False)
    again = ingest([str(archive)], cat, progress=False)
    assert first.files_read > 0 and again.files_read == 0 and again.unchanged == first.files_seen
    before = load_catalog(cat).observations
    # a changed file is read again and replaces its own row; a new file is added
    victim = sorted((archive / "hmi").rglob("*.fits"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0" * 2880)
    extra = sorted((tiny_archive / "aia").rglob("*.fits"))[0]
    shutil.copy(extra, archive / extra.name)
    third = ingest([str(archive)], cat, progress=False)
    after = load_catalog(cat).observations
    assert third.files_read == 2 and after.height == before.height + 1
    assert after["uri"].is_unique().all()
    new_sum = after.filter(pl.col("uri") == str(victim))["checksum"][0]
    assert new_sum == hashlib.sha256(victim.read_bytes()).hexdigest()


def test_quarantine_names_every_bad_file(tiny_archive, tmp_path):
    archive = tmp_path / "bad"
    archive.mkdir()
    good = sorted((tiny_archive / "aia").rglob("*.fits"))[0]
    shutil.copy(good, archive / "good.fits")
    (archive / "truncated.fits").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (archive / "corrupt.fits").write_bytes(b"SIMPLE  =                    T" + b"\x00garbage" * 500)
    (archive / "notes.txt").write_text("this is not an observation\n")
    (archive / "empty.fits").write_bytes(b"")
    cat = str(tmp_path / "cat")
    with pytest.raises(TooManyFailures, match=r"4 of 5 files read went to quarantine \(80.0%\), more than the 5% allowed") as failed:
        ingest([str(archive)], cat, progress=False)  # the catalog is written first
    s = failed.value.result
    assert s.new_observations == 1 and s.new_quarantined == 4
    q = load_catalog(cat).quarantine
    reasons = dict(zip([u.rsplit("/", 1)[-1] for u in q["uri"]], q["reason"]))
    assert set(reasons) == {"truncated.fits", "corrupt.fits", "notes.txt", "empty.fits"}
    assert all(r for r in reasons.values())
    assert reasons["empty.fits"] == "empty file"
    assert dict(zip([u.rsplit("/", 1)[-1] for u in q["uri"]], q["stage"])) == {
        "truncated.fits": "header", "corrupt.fits": "header", "notes.txt": "header", "empty.fits": "read"}


def test_s3_round_trip(tiny_archive, tiny_catalog, s3_bucket, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.put(str(tiny_archive / "hmi"), f"{s3_bucket}/archive/hmi", recursive=True)
    cat = f"{s3_bucket}/catalog"
    s = ingest([f"{s3_bucket}/archive"], cat, progress=False)
    remote = load_catalog(cat).observations
    local = load_catalog(str(tiny_catalog)).observations.filter(pl.col("instrument") == "HMI")
    assert s.new_observations == local.height == remote.height
    assert sorted(remote["checksum"]) == sorted(local["checksum"])
    assert all(u.startswith(s3_bucket) for u in remote["uri"])
    assert ingest([f"{s3_bucket}/archive"], cat, progress=False).files_read == 0
    assert not [p for p in fs.find(cat) if "/.tmp-" in p]  # atomic writes leave no temporary keys


def test_shards_to_object_storage(tiny_catalog, tiny_shards, s3_bucket):
    import s3fs

    out = f"{s3_bucket}/shards"
    s = write_shards(str(tiny_catalog / "manifest.parquet"), load_card("sdo_sim"), out, size_px=64, members=SEG,
                     samples_per_shard=16, splits=("val",), progress=False)
    local = json.loads((tiny_shards / "index.json").read_text())
    remote = json.loads(s3fs.S3FileSystem().cat_file(f"{out}/index.json"))
    assert s.shards_written == len(remote["shards"]) > 0
    assert remote["preprocessing_hash"] == local["preprocessing_hash"]
    by_split = {x["sample_ids"][0]: x["sha256"] for x in local["shards"] if x["split"] == "val"}
    assert {x["sample_ids"][0]: x["sha256"] for x in remote["shards"]} == by_split  # byte-identical shards


def test_split_hash_stable_and_strict_audits_clean(tiny_catalog, capsys):
    card = load_card("sdo_sim")
    tables = load_catalog(str(tiny_catalog))
    m1, paired = make_manifest(tables, card, "park2019")
    m2, _ = make_manifest(load_catalog(str(tiny_catalog)), card, "park2019")
    assert m1.content_hash == m2.content_hash
    counts = m1.counts()
    assert all(counts[s] > 0 for s in ("train", "val", "test")), counts
    assert paired.unmatched == 0
    strict, _ = make_manifest(tables, card, "strict")
    report = audit(strict, tables, card)
    assert report.clean, report.summary()
    assert report.tracks_checked > 0 and report.regions_checked > 0
    spans = label_spans(tables)  # read once, shared by the audits of several manifests
    assert audit(strict, tables, card, spans).summary() == report.summary()
    assert audit(m1, tables, card, spans).summary() == audit(m1, tables, card).summary()
    assert main(["split", "sdo_sim", "--catalog", str(tiny_catalog), "--scheme", "strict", "--fail-on-leak"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["content_hash"] == strict.content_hash and out["leakage_audit"]["clean"]


def test_audit_finds_an_observation_in_two_splits(tiny_catalog):
    card = load_card("sdo_sim")
    tables = load_catalog(str(tiny_catalog))
    manifest, _ = make_manifest(tables, card, "park2019")
    # Label every sample of the manifest with one file: the same observation now lies in all splits.
    first = manifest.samples["ch_mask_uri"][0]
    leaky = manifest.samples.with_columns(pl.lit(first).alias("ch_mask_uri"))
    manifest.samples = leaky
    report = audit(manifest, tables, card)
    assert not report.clean and report.observations["uri"].to_list() == [first]


def test_shards_are_resumable(tiny_catalog, tiny_shards, tmp_path):
    index = json.loads((tiny_shards / "index.json").read_text())
    assert index["size_px"] == 64 and len(index["preprocessing_hash"]) == 64
    shard = tiny_shards / "train" / "shard-00000.parquet"
    import pyarrow.parquet as pq

    t = pq.read_table(shard)
    img = t.column("aia_193").combine_chunks().to_numpy()
    mask = t.column("ch_mask").combine_chunks().to_numpy()
    assert img.shape[1:] == (64, 64) and mask.dtype.name == "uint8" and set(mask.ravel()) <= {0, 1}
    # tensors byte-stream split without per-page statistics; text columns dictionary-encoded with them
    chunks = {c.path_in_schema.split(".")[0]: c for g in range(pq.ParquetFile(shard).metadata.num_row_groups)
              for c in (pq.ParquetFile(shard).metadata.row_group(g).column(i) for i in range(t.num_columns))}
    assert "BYTE_STREAM_SPLIT" in chunks["aia_193"].encodings and not chunks["aia_193"].is_stats_set
    assert "RLE_DICTIONARY" in chunks["sample_id"].encodings and chunks["sample_id"].is_stats_set
    digest = hashlib.sha256(shard.read_bytes()).hexdigest()
    shard.unlink()
    s = write_shards(str(tiny_catalog / "manifest.parquet"), load_card("sdo_sim"), str(tiny_shards), size_px=64, members=SEG, samples_per_shard=16, progress=False)
    assert s.shards_written == 1 and s.shards_skipped == len(index["shards"]) - 1
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == digest  # deterministic preprocessing


def test_a_one_map_job_runs_a_task_per_cpu_from_its_start(ray_session):
    """Ingest's reads and shard writing run in ``one_map_job``: Ray Data 2.60 alone gives an
    execution no CPUs for its first second and runs its tasks one at a time meanwhile."""
    import time

    import ray.data

    from heliobench.raysession import one_map_job

    def hold(row: dict) -> dict:
        start = time.time()
        time.sleep(0.4)
        return {"start": start, "end": time.time()}

    with one_map_job(progress=False):
        ran = ray.data.from_items([{"i": i} for i in range(4)], override_num_blocks=4).map(hold).take_all()
    first, second = sorted(ran, key=lambda r: r["start"])[:2]
    assert second["start"] < first["end"]  # the suite's 2 CPUs each took a task at once
    assert ray.data.DataContext.get_current().op_resource_reservation_enabled  # restored after the job


def test_freeze_imported_objects_collects_first_and_freezes_once_per_imports():
    """Ray workers freeze what their imports made (full collections no longer walk it), after
    collecting the garbage of the task that imported, and only when something new was imported."""
    import gc
    import sys
    import types
    import weakref

    from heliobench import raysession

    class Node:
        pass

    def garbage_cycle() -> weakref.ref:
        node = Node()
        node.self = node
        return weakref.ref(node)

    name = "_heliobench_freeze_probe"
    try:
        raysession.freeze_imported_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        raysession.freeze_imported_objects()  # nothing imported since: no collection, no freeze
        assert gc.get_freeze_count() == frozen
        dead = garbage_cycle()
        sys.modules[name] = types.ModuleType(name)  # as if a task had imported a module
        raysession.freeze_imported_objects()
        assert dead() is None  # collected, not frozen with the rest
        assert gc.get_freeze_count() > frozen
    finally:
        sys.modules.pop(name, None)
        gc.unfreeze()
        raysession._modules_frozen = 0


def test_cli_help_on_every_verb(capsys):
    from heliobench.cli import VERBS

    for name in VERBS:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        assert "usage: heliobench " + name in capsys.readouterr().out

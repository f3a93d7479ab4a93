"""Model-ready shards: preprocessed, registered arrays per split, written with Ray Data.

``OUT/<split>/shard-NNNNN.parquet`` holds up to ``samples_per_shard`` samples in time
order, one tensor column per card member (float32 images, uint8 masks), and
``OUT/index.json`` records the manifest hash, the preprocessing (steps and hash) and
each shard's samples and checksum. Shard files are written atomically, so a present
shard is complete: a rerun (``resume``) writes only the missing ones.

A sample one of whose member files cannot be read, validated or preprocessed is left out
of its shard and listed, with the file, the stage and the reason, in
``OUT/skipped_samples.parquet`` (the manifest is left as it is); each shard file also
records the samples it left out, so a resumed run lists them again. A run that skips more
than a share of the samples it prepared fails once the index is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from heliobench.catalog.splits import SPLITS, Manifest, read_manifest
from heliobench.catalog.tables import write_parquet
from heliobench.errors import HelioBenchError
from heliobench.failures import DEFAULT_MAX_SHARE, StageFailure, check_share, stage
from heliobench.prep import Pipeline, default_pipeline
from heliobench.raysession import ensure_ray, freeze_imported_objects, one_map_job
from heliobench.specs import DatasetCard
from heliobench.storage import filesystem, join, read_bytes, with_retries, write_bytes_atomic


@dataclass
class ShardSummary:
    """What a shard run wrote."""

    out: str
    shards_written: int
    shards_skipped: int
    samples: dict[str, int]
    preprocessing_hash: str
    manifest_hash: str
    seconds: float
    skipped: dict[str, int]  # samples left out, per split (listed in the skipped-samples table)
    skipped_table: str


#: The table beside the shards that lists the samples left out.
SKIPPED_TABLE = "skipped_samples.parquet"
SKIPPED_SCHEMA = pa.schema([(name, pa.string()) for name in ("sample_id", "split", "time", "uri", "stage", "reason")])
#: Parquet metadata key under which a shard file records the samples of its part of the plan it left out (JSON).
_SKIPPED_KEY = b"heliobench.skipped_samples"


def member_pipelines(card: DatasetCard, size_px: int) -> dict[str, Pipeline]:
    """The preprocessing pipeline of every member (labels use their grid's geometry)."""
    out = {}
    for m in card.members:
        key = m.key if m.key in card.preprocessing else (m.instrument or "")
        if key in card.preprocessing:
            out[m.key] = Pipeline.from_config(card.preprocessing[key], source=f"dataset card {card.name}: preprocessing.{key}")
        else:
            out[m.key] = default_pipeline(m.instrument or "AIA", size_px, m.channel)
    return out


def preprocessing_hash(pipelines: dict[str, Pipeline]) -> str:
    """One hash over every member's pipeline."""
    doc = {k: p.hash for k, p in sorted(pipelines.items())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def prepare_sample(card: DatasetCard, row: dict, pipelines: dict[str, Pipeline]) -> dict[str, np.ndarray]:
    """Every member of one manifest row, read and preprocessed.

    Observations become float32 registered images; label files are encoded by their
    kind's encoder (:mod:`heliobench.prep.labels`) on the registered grid of their
    ``grid`` member, at the sample time plus the member's offset. A member file that fails
    raises a :class:`~heliobench.failures.StageFailure` naming it and the stage.
    """
    from heliobench.prep.labels import LabelContext, encode_label

    images, out = {}, {}
    for m in card.members:
        if m.label is None:
            uri = row[f"{m.key}_uri"]
            with stage("read", uri):
                raw = read_bytes(uri)
            with stage("map", uri):
                image = pipelines[m.key].load(raw, uri)
            with stage("preprocess", uri):
                images[m.key] = pipelines[m.key].run(image)[0]
            out[m.key] = images[m.key].data.astype(np.float32)
    t = datetime.fromisoformat(row["time"]).replace(tzinfo=timezone.utc)
    for m in card.members:
        if m.label is not None:
            uri = row[f"{m.key}_uri"]
            ctx = LabelContext(m, t + timedelta(minutes=m.offset_min), pipelines[m.key], images.get(m.grid or ""),
                               row.get(f"{m.grid}_uri") if m.grid else None, m.tolerance_min or card.tolerance_min)
            with stage("read", uri):
                raw = read_bytes(uri)
            with stage("label", uri):
                out[m.key] = encode_label(raw, uri, ctx)
    return out


def _write_shard(task: dict, card: DatasetCard, pipelines: dict[str, Pipeline], out: str) -> dict:
    rows = json.loads(task["rows"])
    uri = join(out, task["split"], f"shard-{task['index']:05d}.parquet")
    columns: dict[str, list] = {m.key: [] for m in card.members}
    written, skipped = [], []
    for row in rows:
        try:
            sample = prepare_sample(card, row, pipelines)
        except StageFailure as failure:
            skipped.append({"sample_id": row["sample_id"], "split": task["split"], "time": row["time"], "uri": failure.uri,
                            "stage": failure.stage, "reason": failure.reason})
            continue
        written.append(row)
        for key, value in sample.items():
            columns[key].append(value)
    facts = {"split": task["split"], "index": task["index"], "sample_ids": json.dumps([r["sample_id"] for r in written]),
             "skipped": json.dumps(skipped)}
    if not written:
        return facts | {"uri": "", "sha256": ""}  # no shard file: a rerun tries these samples again
    data = encode_shard(task["split"], written, columns, facts["skipped"])
    write_bytes_atomic(uri, data)
    freeze_imported_objects()
    return facts | {"uri": uri, "sha256": hashlib.sha256(data).hexdigest()}


def encode_shard(split: str, rows: list[dict], columns: dict[str, list[np.ndarray]], skipped: str = "[]") -> bytes:
    """A shard file's bytes: the ``rows``' sample ids and times, one tensor column per member
    (``columns[key][i]`` is row i's array) and ``skipped`` (the JSON list of samples left out)
    in the file's metadata."""
    table = pa.table(
        {
            "sample_id": [r["sample_id"] for r in rows],
            "time": pa.array([r["time"] for r in rows], pa.string()),
            "split": [split] * len(rows),
            **{k: _tensor(np.stack(v)) for k, v in columns.items()},
        }
    ).replace_schema_metadata({_SKIPPED_KEY: skipped})
    buf = io.BytesIO()
    # Dictionary encoding and statistics only for the text columns: on float tensors parquet
    # builds a value dictionary, finds it too large and falls back (4x the write, a larger
    # file), and min/max per page say nothing about an image. Tensor values are written
    # byte-stream split (each byte of a float apart), which zstd compresses 13 % smaller.
    pq.write_table(table, buf, compression="zstd", use_dictionary=list(_TEXT_COLUMNS),
                   write_statistics=list(_TEXT_COLUMNS), use_byte_stream_split=True)
    return buf.getvalue()


def _shard_facts(uri: str) -> dict:
    """What :func:`_write_shard` returned for a shard file written by an earlier run."""
    data = read_bytes(uri)
    table = pq.read_table(io.BytesIO(data), columns=["sample_id"])
    skipped = (table.schema.metadata or {}).get(_SKIPPED_KEY, b"[]").decode()
    return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "sample_ids": json.dumps(table["sample_id"].to_pylist()),
            "skipped": skipped}


#: The shard columns that are not tensors.
_TEXT_COLUMNS = ("sample_id", "time", "split")


def _tensor(arr: np.ndarray) -> pa.ExtensionArray:
    from ray.data.extensions import ArrowTensorArray

    return ArrowTensorArray.from_numpy(arr)


def _plan(manifest: Manifest, splits: tuple[str, ...], samples_per_shard: int) -> list[dict]:
    tasks = []
    for split in splits:
        df = manifest.split(split).sort("time").with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S"))
        for i in range(0, df.height, samples_per_shard):
            chunk = df.slice(i, samples_per_shard)
            tasks.append({"split": split, "index": i // samples_per_shard, "rows": json.dumps(chunk.to_dicts()), "samples": chunk.height})
    return tasks


def write_shards(
    manifest_uri: str,
    card: DatasetCard,
    out: str,
    size_px: int = 256,
    splits: tuple[str, ...] = SPLITS,
    samples_per_shard: int = 32,
    members: tuple[str, ...] | None = None,
    progress: bool = True,
    max_skipped: float | None = DEFAULT_MAX_SHARE,
) -> ShardSummary:
    """Preprocess every sample of ``manifest_uri`` into shards under ``out`` (resumable).

    ``members`` restricts the shards to some of the card's member keys (default: all). A
    manifest keeps samples without an ``optional`` member (null URI): writing shards with
    that member is an error naming the sample, raised before any work. Raises
    :class:`~heliobench.failures.TooManyFailures` (its ``result`` the summary), once the
    index is written, when more than ``max_skipped`` of the samples prepared were skipped
    (None: no limit).
    """
    import ray.data

    t0 = time.perf_counter()
    manifest = read_manifest(manifest_uri)
    if manifest.card != card.name:
        raise HelioBenchError(f"{manifest_uri}: manifest of card {manifest.card!r}, not {card.name!r}")
    if members:
        unknown = sorted(set(members) - {m.key for m in card.members})
        if unknown:
            raise HelioBenchError(f"dataset card {card.name}: no member(s) {', '.join(unknown)}")
        card = card.model_copy(update={"members": [m for m in card.members if m.key in members]})
    manifest.check_complete([m.key for m in card.members], splits)  # a missing optional member: an error, before any work
    pipelines = member_pipelines(card, size_px)
    prep_hash = preprocessing_hash(pipelines)
    fs, root = filesystem(out)
    index_uri = join(out, "index.json")
    if with_retries(lambda: fs.exists(join(root, "index.json")), out):
        old = json.loads(read_bytes(index_uri))
        if (old["manifest_hash"], old["preprocessing_hash"]) != (manifest.content_hash, prep_hash):
            raise HelioBenchError(
                f"{out}: holds shards of another manifest or preprocessing "
                f"(manifest {old['manifest_hash'][:12]}, prep {old['preprocessing_hash'][:12]}); choose a new folder"
            )
    tasks = _plan(manifest, splits, samples_per_shard)
    existing = set(with_retries(lambda: fs.glob(join(root, "*", "shard-*.parquet")), out))
    todo = [t for t in tasks if join(root, t["split"], f"shard-{t['index']:05d}.parquet") not in existing]
    results: list[dict] = []
    if todo:
        ensure_ray()
        with one_map_job(progress):
            ds = ray.data.from_items([{k: t[k] for k in ("split", "index", "rows")} for t in todo], override_num_blocks=len(todo))
            ds = ds.map(_write_shard, fn_kwargs={"card": card, "pipelines": pipelines, "out": out})
            results = ds.take_all()
    by_key = {(r["split"], r["index"]): r for r in results}
    shards, skipped = [], []
    for t in tasks:
        facts = by_key.get((t["split"], t["index"])) or _shard_facts(join(out, t["split"], f"shard-{t['index']:05d}.parquet"))
        skipped += json.loads(facts["skipped"])
        if facts["uri"]:
            shards.append({"split": t["split"], "uri": facts["uri"], "sha256": facts["sha256"], "sample_ids": json.loads(facts["sample_ids"])})
    samples = {s: sum(len(x["sample_ids"]) for x in shards if x["split"] == s) for s in splits}
    skipped_by_split = {s: sum(x["split"] == s for x in skipped) for s in splits}
    skipped_uri = join(out, SKIPPED_TABLE)
    write_parquet(pl.from_arrow(pa.Table.from_pylist(skipped, schema=SKIPPED_SCHEMA)), skipped_uri)
    index = {
        "card": card.name,
        "scheme": manifest.scheme,
        "manifest_hash": manifest.content_hash,
        "preprocessing_hash": prep_hash,
        "preprocessing": {k: p.describe() for k, p in pipelines.items()},
        "size_px": size_px,
        "members": [m.model_dump() for m in card.members],
        "samples": samples,
        "skipped_samples": skipped_by_split,
        "shards": shards,
    }
    write_bytes_atomic(index_uri, json.dumps(index, indent=1, default=str).encode())
    summary = ShardSummary(out, sum(bool(r["uri"]) for r in results), len(tasks) - len(results), samples, prep_hash,
                           manifest.content_hash, time.perf_counter() - t0, skipped_by_split, skipped_uri)
    skipped_now = sum(len(json.loads(r["skipped"])) for r in results)
    check_share(skipped_now, sum(t["samples"] for t in todo), max_skipped, "samples prepared were skipped", skipped_uri, summary)
    return summary

"""Ingest: archive files → catalog, labels and quarantine tables, read in parallel by Ray Data.

Idempotent and incremental: a file whose URI, size and modification stamp are already
catalogued is not read again; a changed file replaces its own row (never a duplicate).
Each file is read inside one boundary (:mod:`heliobench.failures`): whatever it raises,
at any stage, sends it to quarantine with the stage and the reason, and the run carries
on; a run that quarantines more than a share of the files it read fails after writing
the catalog. Files of types no reader takes (:func:`~heliobench.catalog.sources.skipped_type`)
are counted as skipped and never read.

An archive of label files (SCSS-Net ZIP) gives one row per file inside it, under the
member's URI ``zip://MEMBER::ARCHIVE`` with the member's checksum, and the archive's size
and stamp (what incremental ingest compares); a bad member is quarantined alone under its
own URI. :func:`source_uri` maps such a URI back to the file that was listed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pyarrow as pa

from heliobench.archive.labels import LabelFile, detect_labels
from heliobench.archive.readers import read_header
from heliobench.archive.observation import CATALOG_SCHEMA
from heliobench.catalog.sources import SourceFile, list_source, skipped_type
from heliobench.catalog.tables import LABELS_SCHEMA, CatalogTables, load_catalog, save_catalog, table_uri
from heliobench.errors import HelioBenchError, ReaderError
from heliobench.failures import DEFAULT_MAX_SHARE, StageFailure, check_share, stage
from heliobench.raysession import ensure_ray, freeze_imported_objects, one_map_job
from heliobench.storage import read_bytes

log = logging.getLogger(__name__)

#: One row per file read: the union of the three tables' columns plus where it goes.
_RESULT_SCHEMA = pa.schema(
    list(CATALOG_SCHEMA)
    + [f for f in LABELS_SCHEMA if f.name not in CATALOG_SCHEMA.names]
    + [pa.field("reason", pa.string()), pa.field("stage", pa.string()), pa.field("status", pa.string())]
)


@dataclass
class IngestSummary:
    """What one ingest run did."""

    files_seen: int
    files_read: int
    unchanged: int
    new_observations: int
    new_labels: int
    new_quarantined: int
    total_observations: int
    total_labels: int
    total_quarantined: int
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)  # files never read, per type (see skipped_type)

    @property
    def files_per_second(self) -> float:
        """Files read per second of wall time."""
        return self.files_read / self.seconds if self.seconds > 0 else 0.0


def source_uri(uri: str) -> str:
    """The listed file a catalog URI comes from: the archive of ``zip://MEMBER::ARCHIVE``, else ``uri``."""
    return uri.rsplit("::", 1)[-1]


def read_one(uri: str, size_bytes: int, stamp: str) -> pa.Table:
    """Read one file and classify it: an observation, label file(s), or quarantine; one row
    per label file it holds (an archive's members), else one row. Never raises: whatever
    goes wrong quarantines the file with the stage and the reason."""
    now = datetime.now(timezone.utc)
    row: dict = {"uri": uri, "size_bytes": size_bytes, "source_mtime": stamp, "ingested_at": now}
    try:
        rows = _classify(uri, row)
        with stage("catalog", uri):  # values the catalog's columns cannot hold
            return pa.Table.from_pylist(rows, schema=_RESULT_SCHEMA)
    except StageFailure as failure:
        quarantined = row | {"status": "quarantine", "stage": failure.stage, "reason": failure.reason}
        return pa.Table.from_pylist([quarantined], schema=_RESULT_SCHEMA)


def _classify(uri: str, row: dict) -> list[dict]:
    """The result rows of the file of ``row`` (which gains its size and checksum); a :class:`StageFailure` if it is bad."""
    with stage("read", uri):
        try:
            raw = read_bytes(uri)
        except FileNotFoundError:
            raise ReaderError(uri, "the file vanished after it was listed (deleted or moved during ingest)") from None
    row["size_bytes"] = len(raw)
    row["checksum"] = hashlib.sha256(raw).hexdigest()
    if not raw:
        raise StageFailure(uri, "read", "empty file")
    with stage("labels", uri):
        labels = detect_labels(raw, uri)
    if labels is not None:
        return [_label_row(row, label) for label in labels]
    with stage("header", uri):
        record = read_header(raw, uri)
    return [row | record.to_row() | {"status": "observation"}]


def _label_row(row: dict, label: LabelFile | ReaderError) -> dict:
    """The result row of one label file found in the file of ``row`` (its own URI and checksum when inside an archive)."""
    if isinstance(label, ReaderError):
        return row | {"uri": label.uri, "checksum": None, "status": "quarantine", "stage": "labels", "reason": label.reason}
    return row | {"uri": label.uri or row["uri"], "checksum": label.checksum or row["checksum"], "status": "label",
                  "kind": label.kind, "time_start": label.time_start, "time_end": label.time_end}


def _read_batch(batch: dict[str, np.ndarray]) -> pa.Table:
    table = pa.concat_tables([read_one(str(u), int(s), str(m)) for u, s, m in zip(batch["uri"], batch["size_bytes"], batch["stamp"])])
    freeze_imported_objects()
    return table


def read_files(files: list[SourceFile], progress: bool = True) -> pl.DataFrame:
    """Read ``files`` in parallel with Ray Data; one result row per file (per label file of an archive)."""
    import ray
    import ray.data

    if not files:
        return pl.from_arrow(_RESULT_SCHEMA.empty_table())  # type: ignore[return-value]
    ensure_ray()
    items = [{"uri": f.uri, "size_bytes": f.size_bytes, "stamp": f.stamp} for f in files]
    with one_map_job(progress):
        ds = ray.data.from_items(items, override_num_blocks=_blocks(len(items), int(ray.cluster_resources().get("CPU", 1))))
        ds = ds.map_batches(_read_batch, batch_size=None, batch_format="numpy")  # one task reads one block
        tables = [ray.get(ref) for ref in ds.to_arrow_refs()]
    return pl.from_arrow(pa.concat_tables(tables).cast(_RESULT_SCHEMA))  # type: ignore[return-value]


#: Most files one read task takes (seconds of work: a task lost with its node costs little to redo).
FILES_PER_TASK = 256


def _blocks(files: int, cpus: int) -> int:
    """How many read tasks ``files`` make: four per CPU so that the last ones finish together,
    more where a task would take over :data:`FILES_PER_TASK` files. Ray's overhead per task
    (the driver's scheduling, one result table) is about that of reading a few 1024² headers,
    so tasks of 8 files spent about a quarter of the CPU time on Ray."""
    return max(1, min(files, max(4 * max(cpus, 1), -(-files // FILES_PER_TASK))))


def _read_files_surviving_node_loss(files: list[SourceFile], progress: bool, attempts: int = 3) -> pl.DataFrame:
    """:func:`read_files`, run again from the start if the cluster loses what it needs.

    Ray Data already reruns the tasks of a lost node and rebuilds lost blocks from their
    lineage; should that fail (an object lost with no way back, a worker that died holding
    one), the read, which writes nothing, is simply repeated: the catalog is only written
    once every file has a row.
    """
    import ray.exceptions

    lost = (ray.exceptions.ObjectLostError, ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError,
            ray.exceptions.RaySystemError, ray.exceptions.ActorDiedError)
    for attempt in range(attempts):
        try:
            return read_files(files, progress)
        except lost as exc:
            if attempt == attempts - 1:
                raise HelioBenchError(f"ingest of {len(files)} files: the Ray cluster kept losing work ({type(exc).__name__}); rerun ingest (it is incremental)") from None
            log.warning("ingest: %s on the cluster; reading again (attempt %d of %d)", type(exc).__name__, attempt + 2, attempts)
    raise AssertionError("unreachable")


def _replace(old: pl.DataFrame, new: pl.DataFrame, reread: set[str], sort: list[str]) -> pl.DataFrame:
    """``old`` without the rows of the files read again (archive members too), plus ``new``."""
    kept = old.filter(~pl.col("uri").str.split("::").list.last().is_in(list(reread)))
    return pl.concat([kept, new.select(old.columns).cast(old.schema)], how="vertical").sort(sort, nulls_last=True)


def ingest(sources: list[str], catalog: str, download_dir: str | None = None, progress: bool = True,
           max_quarantine: float | None = DEFAULT_MAX_SHARE) -> IngestSummary:
    """Catalogue every file of ``sources`` into the catalog folder ``catalog``.

    Raises :class:`~heliobench.failures.TooManyFailures` (its ``result`` the summary), once
    the catalog is written, when more than ``max_quarantine`` of the files read went to
    quarantine (None: no limit).
    """
    t0 = time.perf_counter()
    listed: dict[str, SourceFile] = {f.uri: f for source in sources for f in list_source(source, download_dir, progress)}
    kinds = {uri: skipped_type(uri) for uri in listed}
    files = {uri: f for uri, f in listed.items() if kinds[uri] is None}
    skipped = Counter(kind for kind in kinds.values() if kind is not None)
    tables = load_catalog(catalog, must_exist=False)
    known: dict[str, tuple[int, str]] = {}
    for df in (tables.observations, tables.labels, tables.quarantine):
        for uri, size, stamp in df.select("uri", "size_bytes", "source_mtime").iter_rows():
            known[source_uri(uri)] = (size, stamp)
    todo = [f for f in files.values() if known.get(f.uri) != (f.size_bytes, f.stamp)]
    result = _read_files_surviving_node_loss(todo, progress)
    reread = {f.uri for f in todo}
    obs = result.filter(pl.col("status") == "observation")
    labels = result.filter(pl.col("status") == "label")
    quarantine = result.filter(pl.col("status") == "quarantine")
    if todo:
        tables = CatalogTables(
            observations=_replace(tables.observations, obs, reread, ["obs_time", "uri"]),
            labels=_replace(tables.labels, labels, reread, ["kind", "time_start", "uri"]),
            quarantine=_replace(tables.quarantine, quarantine, reread, ["uri"]),
        )
        save_catalog(catalog, tables)
    elif not known:
        save_catalog(catalog, tables)
    summary = IngestSummary(
        files_seen=len(listed),
        files_read=len(todo),
        unchanged=len(files) - len(todo),
        new_observations=obs.height,
        new_labels=labels.height,
        new_quarantined=quarantine.height,
        total_observations=tables.observations.height,
        total_labels=tables.labels.height,
        total_quarantined=tables.quarantine.height,
        seconds=time.perf_counter() - t0,
        skipped=dict(skipped),
    )
    check_share(quarantine.height, result.height, max_quarantine, "files read went to quarantine",
                f"{table_uri(catalog, 'quarantine')} or `heliobench catalog {catalog}`", summary)
    return summary

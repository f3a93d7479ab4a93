"""Frozen temporal splits: split manifests, their content hash, and the leakage audit.

A manifest is a parquet table of paired samples with their split. Its hash covers the
card's sample definition, the scheme, and every sample's id, split and member checksums
(not URIs: the same archive moved to object storage keeps its hash), so the same
inputs always give the same hash.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from heliobench.catalog.pairing import PairingResult, pair
from heliobench.catalog.tables import CatalogTables
from heliobench.errors import HelioBenchError
from heliobench.specs import DatasetCard, SplitScheme
from heliobench.storage import read_bytes, write_bytes_atomic

SPLITS = ("train", "val", "test")


@dataclass
class Manifest:
    """A frozen split: samples with their split, and what made them."""

    samples: pl.DataFrame  # sample_id, time, split, <member>_uri/_checksum/_dt_s
    card: str
    scheme: str
    content_hash: str
    metadata: dict

    def split(self, name: str) -> pl.DataFrame:
        """Samples of one split."""
        return self.samples.filter(pl.col("split") == name)

    def counts(self) -> dict[str, int]:
        """Samples per split."""
        return {s: self.split(s).height for s in SPLITS}

    def check_complete(self, keys: list[str], splits: tuple[str, ...] = SPLITS) -> None:
        """Raise naming the first sample of ``splits`` without member ``keys`` (an optional
        member that was not found: its ``<key>_uri`` is null)."""
        rows = self.samples.filter(pl.col("split").is_in(list(splits)))
        for key in keys:
            missing = rows.filter(pl.col(f"{key}_uri").is_null())
            if missing.height:
                raise HelioBenchError(
                    f"sample {missing['sample_id'][0]}: optional member {key!r} is missing ({missing.height} samples "
                    f"of card {self.card} lack it); leave it out with --members, or use a card where it is required"
                )


def assign_splits(samples: pl.DataFrame, scheme: SplitScheme) -> tuple[pl.DataFrame, int, int]:
    """Samples with a ``split`` column; also how many fell in buffers and outside all splits."""
    expr = pl.lit(None, dtype=pl.String)
    for name, (start, end) in scheme.ranges().items():
        expr = pl.when((pl.col("time") >= start) & (pl.col("time") < end)).then(pl.lit(name)).otherwise(expr)
    labelled = samples.with_columns(expr.alias("split"))
    outer_start = scheme.train.start_time
    outer_end = scheme.test.end_time
    inside = (pl.col("time") >= outer_start) & (pl.col("time") < outer_end)
    # counted, not filtered out: filtering copies every column of the rows it keeps
    in_buffer, outside = labelled.select((inside & pl.col("split").is_null()).sum().alias("b"), (~inside).sum().alias("o")).row(0)
    return labelled.drop_nulls("split"), int(in_buffer), int(outside)


def _hash(card: DatasetCard, scheme_name: str, samples: pl.DataFrame) -> str:
    h = hashlib.sha256()
    definition = {
        # fields added since (optional, require) enter only when set: older manifests keep their hash
        "members": [m.model_dump(exclude=None if m.optional else {"optional"}) for m in card.members],
        "reference": card.reference,
        "tolerance_min": card.tolerance_min,
        "scheme": scheme_name,
        "ranges": {k: [a.isoformat(), b.isoformat()] for k, (a, b) in card.scheme(scheme_name).ranges().items()},
    }
    if card.require:
        definition["require"] = {k: r.model_dump(exclude_none=True) for k, r in card.require.items()}
    h.update(json.dumps(definition, sort_keys=True).encode())
    cols = ["sample_id", "split"] + [f"{m.key}_checksum" for m in card.members]
    for row in samples.sort("sample_id").select(cols).iter_rows():
        h.update(("\x1f".join(str(v) for v in row) + "\n").encode())
    return h.hexdigest()


def make_manifest(tables: CatalogTables, card: DatasetCard, scheme_name: str) -> tuple[Manifest, PairingResult]:
    """Pair the catalog's observations for ``card`` and freeze them into ``scheme_name``."""
    scheme = card.scheme(scheme_name)
    paired = pair(tables, card)
    samples, in_buffer, outside = assign_splits(paired.samples, scheme)
    samples = samples.select("sample_id", "time", "split", *[c for c in samples.columns if c not in ("sample_id", "time", "split")])
    metadata = {
        "card": card.name,
        "scheme": scheme_name,
        "references": paired.references,
        "unmatched_by_member": paired.unmatched_by_member,
        "removed_by_rule": paired.removed_by_rule,
        "dropped_in_buffer": in_buffer,
        "outside_splits": outside,
        "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    manifest = Manifest(samples, card.name, scheme_name, _hash(card, scheme_name, samples), metadata)
    return manifest, paired


def write_manifest(manifest: Manifest, uri: str) -> None:
    """Write the manifest parquet (hash and provenance in the file's metadata), atomically."""
    table = manifest.samples.to_arrow()
    meta = {b"heliobench": json.dumps(manifest.metadata | {"content_hash": manifest.content_hash}).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_bytes_atomic(uri, buf.getvalue())


def read_manifest(uri: str) -> Manifest:
    """Read a manifest written by :func:`write_manifest`."""
    try:
        table = pq.read_table(io.BytesIO(read_bytes(uri)))
    except FileNotFoundError:
        raise HelioBenchError(f"{uri}: no such manifest (run `heliobench split`)") from None
    except pa.ArrowInvalid as exc:
        raise HelioBenchError(f"{uri}: not a parquet manifest ({exc})") from None
    raw = (table.schema.metadata or {}).get(b"heliobench")
    if raw is None:
        raise HelioBenchError(f"{uri}: parquet without HelioBench manifest metadata")
    meta = json.loads(raw)
    return Manifest(
        samples=pl.from_arrow(table),  # type: ignore[arg-type]
        card=meta["card"],
        scheme=meta["scheme"],
        content_hash=meta.pop("content_hash"),
        metadata=meta,
    )

"""The catalog folder: observations, label files and quarantine as parquet tables.

A catalog is a folder (local or ``s3://``) holding ``catalog.parquet`` (one row per
observation), ``labels.parquet`` (one row per label file) and ``quarantine.parquet``
(files that could not be understood, with the reason). Tables are written atomically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from heliobench.archive.observation import CATALOG_SCHEMA, QUARANTINE_SCHEMA
from heliobench.errors import HelioBenchError
from heliobench.storage import filesystem, join, read_bytes, with_retries, write_bytes_atomic

LABELS_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("time_start", pa.timestamp("us", tz="UTC")),
        pa.field("time_end", pa.timestamp("us", tz="UTC")),
        pa.field("checksum", pa.string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("source_mtime", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)

TABLES = {"catalog": CATALOG_SCHEMA, "labels": LABELS_SCHEMA, "quarantine": QUARANTINE_SCHEMA}


def empty_frame(schema: pa.Schema) -> pl.DataFrame:
    """An empty polars frame with ``schema``."""
    return pl.from_arrow(schema.empty_table())  # type: ignore[return-value]


def read_parquet(uri: str) -> pl.DataFrame:
    """A parquet table from a local path or URI, with a clear error when unreadable."""
    try:
        return pl.read_parquet(io.BytesIO(read_bytes(uri)))
    except FileNotFoundError:
        raise HelioBenchError(f"{uri}: no such table") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise HelioBenchError(f"{uri}: not a readable parquet table ({exc})") from None


def write_parquet(df: pl.DataFrame, uri: str) -> None:
    """Write ``df`` to ``uri`` atomically."""
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", statistics=True)
    write_bytes_atomic(uri, buf.getvalue())


@dataclass
class CatalogTables:
    """The three tables of one catalog folder."""

    observations: pl.DataFrame
    labels: pl.DataFrame
    quarantine: pl.DataFrame


def table_uri(catalog: str, name: str) -> str:
    """URI of table ``name`` (catalog, labels, quarantine) inside a catalog folder."""
    return join(catalog, f"{name}.parquet")


def load_catalog(catalog: str, must_exist: bool = True) -> CatalogTables:
    """Read a catalog folder; a missing folder is an error unless ``must_exist`` is False."""
    fs, path = filesystem(catalog)
    present = with_retries(lambda: fs.exists(join(path, "catalog.parquet")), catalog)
    if not present and must_exist:
        raise HelioBenchError(f"{catalog}: no catalog here (run `heliobench ingest ... --catalog {catalog}`)")
    frames = {}
    for name, schema in TABLES.items():
        uri = table_uri(catalog, name)
        frames[name] = read_parquet(uri) if present and fs.exists(join(path, f"{name}.parquet")) else empty_frame(schema)
    return CatalogTables(frames["catalog"], frames["labels"], frames["quarantine"])


def save_catalog(catalog: str, tables: CatalogTables) -> None:
    """Write the three tables of a catalog folder (each atomically)."""
    write_parquet(tables.labels, table_uri(catalog, "labels"))
    write_parquet(tables.quarantine, table_uri(catalog, "quarantine"))
    write_parquet(tables.observations, table_uri(catalog, "catalog"))

"""The catalog folder: observations, label files and quarantine as parquet tables.

A catalog is a folder (local or ``s3://``) holding ``catalog.parquet`` (one row per
observation), ``labels.parquet`` (one row per label file) and ``quarantine.parquet``
(files that could not be understood, with the reason). Tables are written atomically.
"""

from __future__ import annotations

import io
import weakref

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


def read_parquet(uri: str, columns: list[str] | None = None) -> pl.DataFrame:
    """A parquet table (or some of its ``columns``) from a local path or URI, with a clear error when unreadable."""
    try:
        if _is_local(uri):
            return pl.read_parquet(_local_path(uri), columns=columns)  # polars reads the file: no copy of its bytes
        return pl.read_parquet(io.BytesIO(read_bytes(uri)), columns=columns)
    except FileNotFoundError:
        raise HelioBenchError(f"{uri}: no such table") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise HelioBenchError(f"{uri}: not a readable parquet table ({exc})") from None


def write_parquet(df: pl.DataFrame, uri: str) -> None:
    """Write ``df`` to ``uri`` atomically."""
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", statistics=True)
    write_bytes_atomic(uri, buf.getvalue())


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> str:
    return uri.removeprefix("file://")


class _ParquetSnapshot:
    """A local parquet file held open, so that every read sees the file as it was when opened
    (tables are replaced atomically, by a rename: the open file keeps the old one)."""

    def __init__(self, uri: str):
        self.uri = uri
        self._file = open(_local_path(uri), "rb")  # noqa: SIM115 - closed by the finalizer
        weakref.finalize(self, self._file.close)

    def scan(self) -> pl.LazyFrame:
        self._file.seek(0)
        return pl.scan_parquet(self._file)

    def read(self) -> pl.DataFrame:
        try:
            return self.scan().collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise HelioBenchError(f"{self.uri}: not a readable parquet table ({exc})") from None


class CatalogTables:
    """The three tables of one catalog folder.

    ``observations`` is a polars frame. A catalog loaded from a local folder reads it on
    first use only, and :meth:`scan_observations` (what pairing uses) reads just the
    columns and rows a query needs: ``heliobench split`` over millions of observations
    never holds the whole table.
    """

    def __init__(
        self,
        observations: pl.DataFrame | None,
        labels: pl.DataFrame,
        quarantine: pl.DataFrame,
        observations_file: _ParquetSnapshot | None = None,
    ):
        if observations is None and observations_file is None:
            raise ValueError("CatalogTables needs the observations frame or the file holding it")
        self._observations = observations
        self._observations_file = observations_file
        self.labels = labels
        self.quarantine = quarantine

    @property
    def observations(self) -> pl.DataFrame:
        """The observations table (read in full on first use when the catalog was loaded lazily)."""
        if self._observations is None:
            assert self._observations_file is not None
            self._observations = self._observations_file.read()
        return self._observations

    @observations.setter
    def observations(self, frame: pl.DataFrame) -> None:
        self._observations, self._observations_file = frame, None

    def scan_observations(self) -> pl.LazyFrame:
        """The observations as a LazyFrame; while the table is unread, filters and column
        choices go down into the parquet reader."""
        if self._observations is None and self._observations_file is not None:
            return self._observations_file.scan()
        return self.observations.lazy()

    def __repr__(self) -> str:
        obs = "not read yet" if self._observations is None else f"{self._observations.height} rows"
        return f"CatalogTables(observations: {obs}, labels: {self.labels.height} rows, quarantine: {self.quarantine.height} rows)"


def table_uri(catalog: str, name: str) -> str:
    """URI of table ``name`` (catalog, labels, quarantine) inside a catalog folder."""
    return join(catalog, f"{name}.parquet")


def _with_columns(df: pl.DataFrame, schema: pa.Schema) -> pl.DataFrame:
    """``df`` with the columns of ``schema`` it lacks (a catalog written by an older version) as nulls."""
    if set(schema.names) <= set(df.columns):
        return df
    return pl.concat([empty_frame(schema), df], how="diagonal_relaxed")


def load_catalog(catalog: str, must_exist: bool = True) -> CatalogTables:
    """Read a catalog folder; a missing folder is an error unless ``must_exist`` is False.

    In a local folder the observations table is opened, not read (see :class:`CatalogTables`).
    """
    fs, path = filesystem(catalog)
    present = with_retries(lambda: fs.exists(join(path, "catalog.parquet")), catalog)
    if not present and must_exist:
        raise HelioBenchError(f"{catalog}: no catalog here (run `heliobench ingest ... --catalog {catalog}`)")
    frames: dict[str, pl.DataFrame | None] = {}
    snapshot = None
    for name, schema in TABLES.items():
        uri = table_uri(catalog, name)
        if not (present and fs.exists(join(path, f"{name}.parquet"))):
            frames[name] = empty_frame(schema)
        elif name == "catalog" and _is_local(uri):
            try:
                snapshot, frames[name] = _ParquetSnapshot(uri), None
            except FileNotFoundError:
                raise HelioBenchError(f"{uri}: no such table") from None
        else:
            frames[name] = _with_columns(read_parquet(uri), schema)
    labels, quarantine = frames["labels"], frames["quarantine"]
    assert labels is not None and quarantine is not None
    return CatalogTables(frames["catalog"], labels, quarantine, observations_file=snapshot)


def save_catalog(catalog: str, tables: CatalogTables) -> None:
    """Write the three tables of a catalog folder (each atomically)."""
    write_parquet(tables.labels, table_uri(catalog, "labels"))
    write_parquet(tables.quarantine, table_uri(catalog, "quarantine"))
    write_parquet(tables.observations, table_uri(catalog, "catalog"))

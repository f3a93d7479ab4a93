"""The leakage audit: anything that falls into two splits of a manifest.

Three kinds of leak are checked: an observation file used by samples of two splits; a
HEK event track (``frm_specificid``, or the NOAA number where a source leaves it empty)
whose events overlap the kept time ranges of two splits; a NOAA region whose SRS
reports or HEK events do. Tracks and regions are judged by their time spans against
the split ranges (not only the sampled times), so a sparse sample cadence cannot hide
a region that lives across a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from heliobench.catalog.splits import Manifest
from heliobench.catalog.tables import CatalogTables
from heliobench.specs import DatasetCard
from heliobench.storage import read_bytes


@dataclass
class LeakageReport:
    """Leaks found by :func:`audit`; each table lists an identifier and its splits."""

    observations: pl.DataFrame
    tracks: pl.DataFrame
    regions: pl.DataFrame
    tracks_checked: int
    regions_checked: int

    @property
    def clean(self) -> bool:
        """True when nothing falls into two splits."""
        return self.observations.is_empty() and self.tracks.is_empty() and self.regions.is_empty()

    def summary(self) -> dict:
        """Counts and the first few offenders of each kind (JSON-serialisable)."""
        def first(df: pl.DataFrame, col: str) -> list:
            return [f"{r[col]} ({'/'.join(r['splits'])})" for r in df.head(10).iter_rows(named=True)]

        return {
            "clean": self.clean,
            "observations_in_two_splits": self.observations.height,
            "tracks_checked": self.tracks_checked,
            "tracks_in_two_splits": self.tracks.height,
            "regions_checked": self.regions_checked,
            "regions_in_two_splits": self.regions.height,
            "examples": {
                "observations": first(self.observations, "uri"),
                "tracks": first(self.tracks, "track_id"),
                "regions": first(self.regions, "noaa_number"),
            },
        }


def _multi_split(df: pl.DataFrame, key: str) -> pl.DataFrame:
    return (
        df.group_by(key)
        .agg(pl.col("split").unique().sort().alias("splits"))
        .filter(pl.col("splits").list.len() > 1)
        .sort(key)
    )


def _by_range(intervals: pl.DataFrame, key: str, manifest_ranges: dict) -> pl.DataFrame:
    """Which splits each (key, start, end) interval overlaps."""
    ranges = pl.DataFrame(
        {
            "split": list(manifest_ranges),
            "range_start": [a for a, _ in manifest_ranges.values()],
            "range_end": [b for _, b in manifest_ranges.values()],
        }
    )
    hits = intervals.join(ranges, how="cross").filter(
        (pl.col("start") < pl.col("range_end")) & (pl.col("end") >= pl.col("range_start"))
    )
    return hits.select(key, "split")


@dataclass(frozen=True)
class LabelSpans:
    """When each HEK event and SRS report of a catalog's label files lives, read once.

    ``events``: track_id, ar_noaanum, start, end; ``reports``: noaa_number, start, end (the
    issue day). Both carry their label file's ``file_start``/``file_end``, so that one
    reading serves the audits of every manifest of the catalog (:func:`audit`'s ``spans``).
    """

    events: pl.DataFrame
    reports: pl.DataFrame

    def overlapping(self, lo: datetime, hi: datetime) -> LabelSpans:
        """The rows of the label files that overlap ``[lo, hi)``."""
        def keep(df: pl.DataFrame) -> pl.DataFrame:
            return df.filter((pl.col("file_end") >= lo) & (pl.col("file_start") < hi))

        return LabelSpans(keep(self.events), keep(self.reports))


_FILE_SPAN = {"file_start": pl.Datetime("us", "UTC"), "file_end": pl.Datetime("us", "UTC")}
_EVENT_SCHEMA = {"track_id": pl.String, "ar_noaanum": pl.Int64, "start": pl.Datetime("us", "UTC"),
                 "end": pl.Datetime("us", "UTC"), **_FILE_SPAN}
_REPORT_SCHEMA = {"noaa_number": pl.Int64, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"), **_FILE_SPAN}


def label_spans(tables: CatalogTables, lo: datetime | None = None, hi: datetime | None = None) -> LabelSpans:
    """Read the catalog's HEK and SRS files (those overlapping ``[lo, hi)`` when given) into :class:`LabelSpans`."""
    from heliobench.archive.readers import read_hek, read_srs

    files = tables.labels.filter(pl.col("kind").is_in(["hek", "srs"]))
    if lo is not None:
        files = files.filter((pl.col("time_end") >= lo) & (pl.col("time_start") < hi))
    events, reports = [], []
    for kind, uri, first, last in files.select("kind", "uri", "time_start", "time_end").iter_rows():
        raw = read_bytes(uri)
        span = [pl.lit(first).alias("file_start"), pl.lit(last).alias("file_end")]
        if kind == "hek":
            events.append(read_hek(raw, uri).select(
                "track_id", "ar_noaanum", pl.col("start_time").alias("start"), pl.col("end_time").alias("end"), *span))
        else:
            issued = pl.col("issued").cast(pl.Datetime("us", "UTC"))
            reports.append(read_srs(raw, uri).filter(pl.col("section").is_in(["I", "IA"])).select(
                pl.col("noaa_number").cast(pl.Int64), issued.alias("start"), (issued + timedelta(days=1)).alias("end"), *span))
    return LabelSpans(
        pl.concat([e.cast(_EVENT_SCHEMA) for e in events]) if events else pl.DataFrame(schema=_EVENT_SCHEMA),
        pl.concat([r.cast(_REPORT_SCHEMA) for r in reports]) if reports else pl.DataFrame(schema=_REPORT_SCHEMA),
    )


def audit(manifest: Manifest, tables: CatalogTables, card: DatasetCard, spans: LabelSpans | None = None) -> LeakageReport:
    """Audit ``manifest`` for observations, HEK tracks and NOAA regions in two splits.

    ``spans``: the catalog's label spans read once by :func:`label_spans` (for auditing
    several manifests of one catalog); by default the label files are read here.
    """
    obs = pl.concat(
        [manifest.samples.select(pl.col(f"{m.key}_uri").alias("uri"), "split") for m in card.members]
    ).drop_nulls("uri")  # a missing optional member is no file
    ranges = card.scheme(manifest.scheme).ranges()
    lo = min(a for a, _ in ranges.values())
    hi = max(b for _, b in ranges.values())
    spans = (spans if spans is not None else label_spans(tables, lo, hi)).overlapping(lo, hi)
    ev = spans.events
    tracks = _by_range(ev.filter(pl.col("track_id").is_not_null() & (pl.col("track_id") != "")), "track_id", ranges)
    region_spans = pl.concat([
        ev.filter(pl.col("ar_noaanum").is_not_null() & (pl.col("ar_noaanum") > 0)).select(
            pl.col("ar_noaanum").alias("noaa_number"), "start", "end"),
        spans.reports.select("noaa_number", "start", "end"),
    ])
    regions = _by_range(region_spans, "noaa_number", ranges)
    return LeakageReport(
        observations=_multi_split(obs, "uri"),
        tracks=_multi_split(tracks, "track_id"),
        regions=_multi_split(regions, "noaa_number"),
        tracks_checked=int(ev["track_id"].n_unique()) if ev.height else 0,
        regions_checked=int(region_spans["noaa_number"].n_unique()),
    )

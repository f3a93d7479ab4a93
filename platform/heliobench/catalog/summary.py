"""Catalog summaries with polars: what an archive holds, and what was quarantined."""

from __future__ import annotations

import polars as pl

from heliobench.catalog.tables import CatalogTables


def summarize(tables: CatalogTables) -> dict[str, pl.DataFrame]:
    """Counts per instrument/channel/year, label files per kind, quarantine per reason."""
    obs = tables.observations
    return {
        "observations": obs.group_by("instrument", "channel")
        .agg(
            pl.len().alias("files"),
            pl.col("obs_time").min().alias("first"),
            pl.col("obs_time").max().alias("last"),
            (pl.col("quality") != 0).sum().alias("quality_flagged"),
            (pl.col("size_bytes").sum() / 2**20).round(1).alias("MiB"),
        )
        .sort("instrument", "channel"),
        "per_year": obs.group_by(pl.col("obs_time").dt.year().alias("year"), "instrument")
        .agg(pl.len().alias("files"))
        .sort("year", "instrument"),
        "labels": tables.labels.group_by("kind")
        .agg(pl.len().alias("files"), pl.col("time_start").min().alias("first"), pl.col("time_end").max().alias("last"))
        .sort("kind"),
        "quarantine": tables.quarantine.group_by("reason").agg(pl.len().alias("files"), pl.col("uri").first().alias("example")).sort("files", descending=True),
    }

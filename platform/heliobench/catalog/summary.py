"""Catalog summaries with polars: what an archive holds, and what was quarantined."""

from __future__ import annotations

import polars as pl

from heliobench.catalog.pairing import rule_passes
from heliobench.catalog.tables import CatalogTables
from heliobench.specs import DatasetCard


def removed_by_rule(obs: pl.DataFrame, card: DatasetCard) -> pl.DataFrame:
    """Per observation member of ``card`` with selection rules, and per rule: the member's
    files (``files``) and how many the rule removes (``removed``; a file failing two rules
    counts under both), as pairing counts them."""
    rows = []
    for m in card.members:
        if m.label is not None or m.instrument not in card.require:
            continue
        passes = rule_passes(card.require[m.instrument])
        counts = obs.lazy().filter(
            (pl.col("instrument") == m.instrument) & (pl.col("channel") == m.channel) & pl.col("obs_time").is_not_null()
        ).select(pl.len().alias("files"), *[(~p).sum().alias(name) for name, p in passes.items()]).collect().row(0, named=True)
        files = counts.pop("files")
        rows += [{"member": m.key, "instrument": m.instrument, "channel": m.channel, "rule": name, "files": files,
                  "removed": removed} for name, removed in counts.items()]
    schema = {"member": pl.String, "instrument": pl.String, "channel": pl.String, "rule": pl.String,
              "files": pl.UInt32, "removed": pl.UInt32}
    return pl.DataFrame(rows, schema=schema)


def summarize(tables: CatalogTables, card: DatasetCard | None = None) -> dict[str, pl.DataFrame]:
    """Counts per instrument/channel/year, label files per kind, quarantine per stage and reason; with a
    ``card``, also what its selection rules remove (:func:`removed_by_rule`)."""
    obs = tables.observations
    frames = {
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
        "quarantine": tables.quarantine.group_by("stage", "reason")
        .agg(pl.len().alias("files"), pl.col("uri").first().alias("example"))
        .sort("files", "stage", "reason", descending=[True, False, False]),
    }
    if card is not None:
        frames["removed_by_rule"] = removed_by_rule(obs, card)
    return frames

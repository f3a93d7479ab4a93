"""Pairing: time-aligned multi-instrument samples from the catalog.

Each observation of the card's reference member starts a sample; every other member
(an instrument channel, or a label kind) joins with its nearest observation in time
(or the latest one before, for label files covering a period) at the reference time
plus the member's offset, within the member's or the card's tolerance. References missing any member are counted as unmatched,
per member, and left out: nothing is filled in from another time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from heliobench.catalog.tables import CatalogTables
from heliobench.specs import DatasetCard, Member


@dataclass
class PairingResult:
    """Paired samples, and how many references each member failed to match."""

    samples: pl.DataFrame
    references: int
    unmatched_by_member: dict[str, int] = field(default_factory=dict)

    @property
    def unmatched(self) -> int:
        """References dropped because at least one member had no match."""
        return self.references - self.samples.height


def _member_rows(tables: CatalogTables, member: Member) -> pl.DataFrame:
    if member.label is not None:
        df = tables.labels.filter(pl.col("kind") == member.label).select(
            pl.col("time_start").alias("time"), "uri", "checksum"
        )
    else:
        df = tables.observations.filter(
            (pl.col("instrument") == member.instrument) & (pl.col("channel") == member.channel)
        ).select(pl.col("obs_time").alias("time"), "uri", "checksum")
    return df.drop_nulls("time").sort("time")


def pair(tables: CatalogTables, card: DatasetCard) -> PairingResult:
    """Samples of ``card`` from a catalog: one row per matched reference observation.

    Columns: ``sample_id`` (reference time, ``YYYYMMDDTHHMMSS``), ``time``, and for each
    member ``<key>_uri``, ``<key>_checksum`` and ``<key>_dt_s`` (member minus reference).
    """
    ref = card.member(card.reference)
    base = _member_rows(tables, ref).unique("time", keep="first", maintain_order=True)
    samples = base.select(
        pl.col("time").dt.strftime("%Y%m%dT%H%M%S").alias("sample_id"),
        "time",
        pl.col("uri").alias(f"{ref.key}_uri"),
        pl.col("checksum").alias(f"{ref.key}_checksum"),
        pl.lit(0.0).alias(f"{ref.key}_dt_s"),
    )
    tolerance = timedelta(minutes=card.tolerance_min)
    unmatched: dict[str, int] = {}
    for member in card.members:
        if member.key == ref.key:
            continue
        rows = _member_rows(tables, member).select(
            pl.col("time").alias(f"{member.key}_time"),
            pl.col("uri").alias(f"{member.key}_uri"),
            pl.col("checksum").alias(f"{member.key}_checksum"),
        )
        offset = timedelta(minutes=member.offset_min)
        joined = (
            samples.with_columns((pl.col("time") + offset).alias("_target"))
            .join_asof(
                rows,
                left_on="_target",
                right_on=f"{member.key}_time",
                strategy="nearest" if member.match == "nearest" else "backward",
                tolerance=timedelta(minutes=member.tolerance_min) if member.tolerance_min else tolerance,
            )
        )
        missing = joined[f"{member.key}_uri"].is_null()
        unmatched[member.key] = int(missing.sum())
        samples = joined.with_columns(
            ((pl.col(f"{member.key}_time") - pl.col("time")).dt.total_microseconds() / 1e6).alias(f"{member.key}_dt_s")
        ).drop(f"{member.key}_time", "_target")
    complete = samples.drop_nulls([f"{m.key}_uri" for m in card.members])
    return PairingResult(samples=complete, references=base.height, unmatched_by_member=unmatched)

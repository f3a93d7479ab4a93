"""Pairing: time-aligned multi-instrument samples from the catalog.

Each observation of the card's reference member starts a sample; every other member joins
at the reference time plus the member's offset (the target), within the member's or the
card's tolerance:

- an observation member with its nearest observation (``match: before``: the latest at or
  before the target). Observations failing the card's ``require`` rules for their
  instrument are dropped first, so the nearest *good* observation is used; how many each
  rule removed is reported per member.
- a label member with the label file whose ``[time_start, time_end]`` contains the target
  (a multi-day HEK file matches every day it covers), the latest starting one among
  several (the most specific: a day's file before a month's). Where no file contains the
  target, the nearest one within the tolerance: for a point-in-time label (a mask,
  ``time_start == time_end``) this is the nearest file, as for observations, and on a tie
  the later one. ``match: before`` never takes a file starting after the target.

References missing a required member are counted as unmatched, per member, and left out;
an ``optional`` member that is missing leaves its ``<key>_uri``, ``_checksum`` and
``_dt_s`` null. Nothing is filled in from another time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from heliobench.catalog.tables import CatalogTables
from heliobench.specs import DatasetCard, Member, ObservationRule


@dataclass
class PairingResult:
    """Paired samples; how many references each member failed to match (optional members
    included: their samples are kept); how many observations each rule removed, per member."""

    samples: pl.DataFrame
    references: int
    unmatched_by_member: dict[str, int] = field(default_factory=dict)
    removed_by_rule: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def unmatched(self) -> int:
        """References dropped because at least one required member had no match."""
        return self.references - self.samples.height


def rule_passes(rule: ObservationRule) -> dict[str, pl.Expr]:
    """Per rule set in ``rule``, an expression true where an observation passes it.

    A missing value (null, or a NaN exposure) fails: it never passes a rule silently.
    """
    out: dict[str, pl.Expr] = {}
    if rule.quality is not None:
        out["quality"] = pl.col("quality") == rule.quality
    if rule.exposure_s is not None:
        exposure = pl.col("exposure_s")
        ok = exposure.is_not_null() & exposure.is_not_nan()
        if rule.exposure_s.min is not None:
            ok &= exposure >= rule.exposure_s.min
        if rule.exposure_s.max is not None:
            ok &= exposure <= rule.exposure_s.max
        out["exposure_s"] = ok
    if rule.image_type is not None:
        out["image_type"] = pl.col("image_type") == rule.image_type
    return {name: expr.fill_null(False) for name, expr in out.items()}


def _rule_failures(card: DatasetCard) -> dict[str, pl.Expr]:
    """Per rule name, an expression true where an observation fails that rule of its instrument."""
    by_rule: dict[str, list[tuple[str, pl.Expr]]] = {}
    for instrument, rule in card.require.items():
        for name, passes in rule_passes(rule).items():
            by_rule.setdefault(name, []).append((instrument, passes))
    out = {}
    for name, cases in by_rule.items():
        expr = pl.lit(False)
        for instrument, passes in cases:
            expr = pl.when(pl.col("instrument") == instrument).then(~passes).otherwise(expr)
        out[name] = expr
    return out


def _removed_by_member(card: DatasetCard, channels: list[tuple[str, str]], failed: pl.DataFrame) -> dict[str, dict[str, int]]:
    """``{member: {rule: observations removed}}`` for the observation members with rules,
    from per-channel failure counts (``_channel`` and one count column per rule)."""
    counts = {row.pop("_channel"): row for row in failed.iter_rows(named=True)}
    out = {}
    for m in card.members:
        if m.label is None and m.instrument in card.require:
            row = counts.get(channels.index((m.instrument, m.channel)), {})
            out[m.key] = {name: int(row.get(name) or 0) for name in card.require[m.instrument].rules()}
    return out


def _label_rows(tables: CatalogTables, member: Member) -> pl.DataFrame:
    """The member's label files sorted by ``start`` (ties in table order): ``start``, ``end``
    (``time_start`` where it is null), ``uri``, ``checksum``, and the same four of its reach
    file (``reach_*``): of the files starting at or before it, the one ending last (on a tie the
    later row), which covers a time after this file's end if any earlier file does."""
    rows = (
        tables.labels.lazy()
        .filter(pl.col("kind") == member.label)
        .select(pl.col("time_start").alias("start"), pl.coalesce("time_end", "time_start").alias("end"), "uri", "checksum")
        .drop_nulls("start")
        .sort("start", maintain_order=True)
        .with_columns(pl.col("end").cum_max().alias("_reach_end"))
        .collect()
    )
    index = pl.int_range(pl.len(), dtype=pl.UInt32)
    reach = rows.select(pl.when(pl.col("end") == pl.col("_reach_end")).then(index).forward_fill().alias("i"))["i"]
    rows = rows.drop("_reach_end")
    return pl.concat([rows, rows[reach].rename(lambda c: f"reach_{c}")], how="horizontal")


def _join_label(samples: pl.DataFrame, rows: pl.DataFrame, member: Member, tolerance: timedelta) -> pl.DataFrame:
    """``samples`` with the member's label file (rules in the module docstring) as
    ``<key>_uri``, ``<key>_checksum`` and ``<key>_time`` (the file's ``time_start``).

    Two asof joins on ``start``: backward (the latest file starting at or before the target,
    and its reach file) and, unless ``match: before``, forward (the first starting after)."""
    key = member.key
    target = pl.col("_target")
    joined = samples.with_columns((pl.col("time") + timedelta(minutes=member.offset_min)).alias("_target")).join_asof(
        rows.rename(lambda c: f"_b_{c}"), left_on="_target", right_on="_b_start", strategy="backward"
    )
    choices = [
        (pl.col("_b_end") >= target, "_b_"),  # the latest starting file contains the target
        (pl.col("_b_reach_end") >= target, "_b_reach_"),  # an earlier, longer file does
    ]
    back_gap = target - pl.col("_b_reach_end")  # else: the gap since the latest end
    if member.match == "nearest":
        ahead = rows.select(pl.col("start").alias("_f_start"), pl.col("uri").alias("_f_uri"), pl.col("checksum").alias("_f_checksum"))
        joined = joined.join_asof(
            ahead.unique("_f_start", keep="last", maintain_order=True),
            left_on="_target", right_on="_f_start", strategy="forward", allow_exact_matches=False,
        )
        ahead_gap = pl.col("_f_start") - target
        choices.append(((ahead_gap <= tolerance) & (back_gap.is_null() | (ahead_gap <= back_gap)), "_f_"))
    choices.append((back_gap <= tolerance, "_b_reach_"))

    def chosen(column: str) -> pl.Expr:
        expr = pl.lit(None, dtype=rows.schema[column])
        for condition, prefix in reversed(choices):
            expr = pl.when(condition.fill_null(False)).then(pl.col(f"{prefix}{column}")).otherwise(expr)
        return expr

    return joined.with_columns(
        chosen("start").alias(f"{key}_time"), chosen("uri").alias(f"{key}_uri"), chosen("checksum").alias(f"{key}_checksum")
    ).select(*samples.columns, f"{key}_time", f"{key}_uri", f"{key}_checksum")


def _observation_rows(tables: CatalogTables, card: DatasetCard) -> tuple[dict[str, pl.DataFrame], dict[str, dict[str, int]]]:
    """``time``, ``uri`` and ``checksum`` of each observation member's files that pass the
    card's rules, sorted by time (ties in table order); and how many each rule removed.

    The members come from one pass over the catalog that keeps only these three columns,
    a channel number and the columns the rules test: on a catalog loaded from disk the
    parquet reader never materialises the other columns or the rows of other channels.
    That frame is split by channel in one linear pass (``partition_by``, rows in table
    order; the rows failing a rule go to a partition of their own) and dropped, so its
    strings are held twice only while splitting, as a sort would; each channel's rows are
    sorted by time unless, as in a catalog written by ``ingest``, they already are. (A
    stable sort by channel followed by slices cost O(n log n) and scattered string moves,
    which made 10M rows take 1.3-1.7x the time of ten times 1M.)
    """
    members = [m for m in card.members if m.label is None]
    channels = list(dict.fromkeys((m.instrument, m.channel) for m in members))
    number = pl.lit(None, pl.Int32)
    for i, (instrument, channel) in reversed(list(enumerate(channels))):
        # a CEA patch (SHARP/SMARP) shares its channel name with full-disk images but is no view of the disk
        same = (pl.col("instrument") == instrument) & (pl.col("channel") == channel) & pl.col("data_kind").ne_missing("cea_patch")
        number = pl.when(same).then(pl.lit(i, pl.Int32)).otherwise(number)
    failures = _rule_failures(card)
    rows = (
        tables.scan_observations()
        .select(number.alias("_channel"), pl.col("obs_time").alias("time"), "uri", "checksum",
                *[expr.alias(f"_fails_{name}") for name, expr in failures.items()])
        .filter(pl.col("_channel").is_not_null() & pl.col("time").is_not_null())
        .collect()
    )
    removed: dict[str, dict[str, int]] = {}
    if failures:
        flags = [f"_fails_{name}" for name in failures]
        failed = rows.group_by("_channel").agg(pl.col(flags).sum().name.map(lambda c: c.removeprefix("_fails_")))
        removed = _removed_by_member(card, channels, failed)
        rejected = pl.when(pl.any_horizontal(flags)).then(pl.lit(len(channels), pl.Int32)).otherwise("_channel")
        rows = rows.with_columns(rejected.alias("_channel")).drop(flags)
    parts = rows.partition_by("_channel", maintain_order=True, include_key=False, as_dict=True)
    empty = rows.clear().drop("_channel")
    del rows
    by_channel = []
    for i in range(len(channels)):
        part = parts.pop((i,), empty)
        # a catalog written by ingest is in time order already: sorting is then skipped
        by_channel.append(part if part["time"].is_sorted() else part.sort("time", maintain_order=True))
    return {m.key: by_channel[channels.index((m.instrument, m.channel))] for m in members}, removed


def pair(tables: CatalogTables, card: DatasetCard) -> PairingResult:
    """Samples of ``card`` from a catalog: one row per matched reference observation.

    Columns: ``sample_id`` (reference time, ``YYYYMMDDTHHMMSS``), ``time``, and for each
    member ``<key>_uri``, ``<key>_checksum`` and ``<key>_dt_s`` (member minus reference; for
    a label file its ``time_start``), null for a missing optional member.
    """
    ref = card.member(card.reference)
    member_rows, removed = _observation_rows(tables, card)
    base = member_rows.pop(ref.key).unique("time", keep="first", maintain_order=True)
    samples = base.select(
        pl.col("time").dt.strftime("%Y%m%dT%H%M%S").alias("sample_id"),
        "time",
        pl.col("uri").alias(f"{ref.key}_uri"),
        pl.col("checksum").alias(f"{ref.key}_checksum"),
        pl.lit(0.0).alias(f"{ref.key}_dt_s"),
    )
    unmatched: dict[str, int] = {}
    for member in card.members:
        if member.key == ref.key:
            continue
        tolerance = timedelta(minutes=member.tolerance_min or card.tolerance_min)
        if member.label is not None:
            samples = _join_label(samples, _label_rows(tables, member), member, tolerance)
        else:
            rows = member_rows.pop(member.key).select(
                pl.col("time").alias(f"{member.key}_time"),
                pl.col("uri").alias(f"{member.key}_uri"),
                pl.col("checksum").alias(f"{member.key}_checksum"),
            )
            samples = (
                samples.with_columns((pl.col("time") + timedelta(minutes=member.offset_min)).alias("_target"))
                .join_asof(rows, left_on="_target", right_on=f"{member.key}_time",
                           strategy="nearest" if member.match == "nearest" else "backward", tolerance=tolerance)
                .drop("_target")
            )
        unmatched[member.key] = int(samples[f"{member.key}_uri"].is_null().sum())
        samples = samples.with_columns(
            ((pl.col(f"{member.key}_time") - pl.col("time")).dt.total_microseconds() / 1e6).alias(f"{member.key}_dt_s")
        ).drop(f"{member.key}_time")
    complete = samples.drop_nulls([f"{m.key}_uri" for m in card.members if not m.optional])
    return PairingResult(samples=complete, references=base.height, unmatched_by_member=unmatched, removed_by_rule=removed)

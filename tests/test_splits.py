"""Dataset cards, pairing, frozen split manifests, hashes and the leakage audit (no Ray)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from heliobench.catalog.pairing import pair
from heliobench.catalog.splits import assign_splits, make_manifest, read_manifest, write_manifest
from heliobench.catalog.tables import LABELS_SCHEMA, CatalogTables, empty_frame
from heliobench.archive.observation import CATALOG_SCHEMA
from heliobench.errors import ConfigError
from heliobench.specs import DatasetCard, load_card, resolve_in_root

UTC = timezone.utc


def _card(**overrides) -> DatasetCard:
    base = load_card("sdo_sim").model_dump()
    base["members"] = [
        {"key": "hmi", "instrument": "HMI", "channel": "magnetogram"},
        {"key": "aia_193", "instrument": "AIA", "channel": "193"},
        {"key": "ch_mask", "label": "ch_mask"},
    ]
    base["reference"] = "hmi"
    base.update(overrides)
    return DatasetCard.model_validate(base)


def _obs(instrument: str, channel: str, times: list[datetime]) -> pl.DataFrame:
    rows = [
        {"uri": f"/a/{instrument}_{channel}_{t:%Y%m%d%H%M%S}.fits", "instrument": instrument, "channel": channel,
         "obs_time": t, "checksum": f"{instrument}{channel}{t.isoformat()}", "size_bytes": 1, "quality": 0,
         "file_format": "fits", "data_kind": "full_disk", "nx": 8, "ny": 8}
        for t in times
    ]
    return pl.DataFrame(rows).select(
        [pl.col(c) if c in rows[0] else pl.lit(None).alias(c) for c in CATALOG_SCHEMA.names]
    ).cast(pl.from_arrow(CATALOG_SCHEMA.empty_table()).schema)


def _tables(times: list[datetime], aia_offset: timedelta = timedelta(seconds=4)) -> CatalogTables:
    obs = pl.concat([_obs("HMI", "magnetogram", times), _obs("AIA", "193", [t + aia_offset for t in times])])
    labels = pl.DataFrame(
        [{"uri": f"/l/ch_{t:%Y%m%d%H}.fits", "kind": "ch_mask", "time_start": t, "time_end": t, "checksum": f"m{t}",
          "size_bytes": 1, "source_mtime": "", "ingested_at": t} for t in times]
    ).cast(empty_frame(LABELS_SCHEMA).schema)
    return CatalogTables(obs, labels, empty_frame(CATALOG_SCHEMA).head(0).select("uri"))


def _days(start: str, end: str, step_days: float) -> list[datetime]:
    t = datetime.fromisoformat(start).replace(tzinfo=UTC)
    stop = datetime.fromisoformat(end).replace(tzinfo=UTC)
    out = []
    while t <= stop:
        out.append(t)
        t += timedelta(days=step_days)
    return out


def test_card_errors_name_file_and_key(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    bad = tmp_path / "datasets" / "bad.yaml"
    bad.write_text("name: bad\ndescription: x\nsource: x\nlicense: x\nreference: a\ntolerance_min: -1\n"
                   "members: [{key: a, instrument: AIA, channel: '171'}]\n"
                   "split_schemes: {s: {train: {start: 2011-01-01, end: 2010-01-01}, val: {start: 2017-01-01, end: 2017-02-01}, test: {start: 2017-03-01, end: 2017-04-01}}}\n")
    monkeypatch.setenv("HELIOBENCH_ROOT", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        load_card("bad")
    text = str(err.value)
    assert "bad.yaml: tolerance_min" in text
    assert "split_schemes.s.train" in text and "before start" in text


def test_card_paths_cannot_leave_their_root(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="outside"):
        resolve_in_root("../../../../etc/passwd.yaml", "datasets")
    with pytest.raises(ConfigError, match="no such file.*known: .*sdo_sim"):
        load_card("nope")


def test_standard_schemes_boundaries():
    card = load_card("sdo_sim")
    park = card.scheme("park2019").ranges()
    assert park["train"] == (datetime(2011, 1, 1, tzinfo=UTC), datetime(2017, 1, 1, tzinfo=UTC))
    assert park["val"] == (datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 7, 1, tzinfo=UTC))
    assert park["test"] == (datetime(2017, 7, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC))
    strict = card.scheme("strict").ranges()
    assert strict["train"][1] == datetime(2017, 1, 1, tzinfo=UTC) - timedelta(days=27.2753)
    assert strict["val"][1] == datetime(2017, 7, 1, tzinfo=UTC) - timedelta(days=27.2753)
    assert strict["test"] == park["test"]  # the test set is the same under both schemes
    with pytest.raises(ConfigError, match="known: park2019, strict"):
        card.scheme("random")


def test_pairing_nearest_within_tolerance_counts_unmatched():
    times = _days("2016-12-01", "2016-12-10", 1)
    tables = _tables(times)
    # One AIA image 10 minutes off (beyond the 6-minute tolerance): that sample is unmatched.
    obs = tables.observations.with_columns(
        pl.when((pl.col("instrument") == "AIA") & (pl.col("obs_time") == times[3] + timedelta(seconds=4)))
        .then(pl.col("obs_time") + timedelta(minutes=10)).otherwise(pl.col("obs_time")).alias("obs_time")
    )
    res = pair(CatalogTables(obs, tables.labels, tables.quarantine), _card())
    assert res.references == 10
    assert res.unmatched == 1 and res.unmatched_by_member == {"aia_193": 1, "ch_mask": 0}
    assert res.samples.height == 9
    assert set(res.samples["aia_193_dt_s"].to_list()) == {4.0}
    assert res.samples["sample_id"][0] == "20161201T000000"


def test_split_assignment_and_buffer():
    times = _days("2016-11-01", "2018-01-10", 1)
    samples = pair(_tables(times), _card()).samples
    park, buf, outside = assign_splits(samples, _card().scheme("park2019"))
    assert buf == 0 and outside == 10  # 2018-01-01..10 lie after the test split
    strict, buf_s, _ = assign_splits(samples, _card().scheme("strict"))
    # 27.2753 days before 2017-01-01 is 2016-12-04 17:23: daily samples Dec 5..31 (27), likewise Jun 4..30 (27)
    assert buf_s == 2 * 27
    assert strict.filter(pl.col("split") == "test").height == park.filter(pl.col("split") == "test").height


def test_manifest_hash_is_stable_and_content_addressed(tmp_path):
    times = _days("2016-12-01", "2017-12-31", 3)
    card = _card()
    m1, _ = make_manifest(_tables(times), card, "park2019")
    m2, _ = make_manifest(_tables(list(reversed(times))), card, "park2019")
    assert m1.content_hash == m2.content_hash
    # URIs do not enter the hash (the same archive moved to s3 keeps it); checksums do.
    moved = _tables(times)
    moved = CatalogTables(moved.observations.with_columns(("s3://b" + pl.col("uri")).alias("uri")), moved.labels, moved.quarantine)
    assert make_manifest(moved, card, "park2019")[0].content_hash == m1.content_hash
    changed = _tables(times)
    changed = CatalogTables(changed.observations.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("different")).otherwise(pl.col("checksum")).alias("checksum")), changed.labels, changed.quarantine)
    assert make_manifest(changed, card, "park2019")[0].content_hash != m1.content_hash
    assert make_manifest(_tables(times), card, "strict")[0].content_hash != m1.content_hash
    write_manifest(m1, str(tmp_path / "m.parquet"))
    back = read_manifest(str(tmp_path / "m.parquet"))
    assert back.content_hash == m1.content_hash and back.counts() == m1.counts()
    assert back.samples.equals(m1.samples)

"""Pairing rules of dataset cards: label files over their validity interval, optional
members, and selection rules on observations (``require``). Small polars catalogs, no Ray."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from heliobench.archive.observation import CATALOG_SCHEMA, QUARANTINE_SCHEMA
from heliobench.catalog.audit import audit
from heliobench.catalog.pairing import pair
from heliobench.catalog.splits import make_manifest
from heliobench.catalog.summary import summarize
from heliobench.catalog.tables import LABELS_SCHEMA, CatalogTables, empty_frame, save_catalog
from heliobench.cli import main
from heliobench.errors import ConfigError, HelioBenchError
from heliobench.specs import DatasetCard, load_card

UTC = timezone.utc
T0 = datetime(2017, 7, 10, 12, tzinfo=UTC)  # in park2019's test split


def _card(members: list[dict], **overrides) -> DatasetCard:
    base = load_card("sdo_sim").model_dump() | {"require": {}}
    base["members"] = [{"key": "hmi", "instrument": "HMI", "channel": "magnetogram"}, *members]
    base["reference"] = "hmi"
    return DatasetCard.model_validate(base | overrides)


def _obs(rows: list[dict]) -> pl.DataFrame:
    """Catalog rows: each dict gives instrument, channel, obs_time and any other column."""
    full = [{"uri": f"/a/{r['instrument']}_{r['channel']}_{i}.fits", "checksum": f"c{i}", "quality": 0, "size_bytes": 1,
             "file_format": "fits", "data_kind": "full_disk", "nx": 8, "ny": 8} | r for i, r in enumerate(rows)]
    names = {k for r in full for k in r}
    return pl.DataFrame(full).select(
        [pl.col(c) if c in names else pl.lit(None).alias(c) for c in CATALOG_SCHEMA.names]
    ).cast(empty_frame(CATALOG_SCHEMA).schema)


def _hmi(times: list[datetime]) -> list[dict]:
    return [{"instrument": "HMI", "channel": "magnetogram", "obs_time": t} for t in times]


def _labels(rows: list[tuple[str, str, datetime, datetime]]) -> pl.DataFrame:
    """Label rows (uri, kind, time_start, time_end)."""
    return pl.DataFrame(
        [{"uri": uri, "kind": kind, "time_start": a, "time_end": b, "checksum": f"l{uri}", "size_bytes": 1,
          "source_mtime": "", "ingested_at": a} for uri, kind, a, b in rows]
    ).cast(empty_frame(LABELS_SCHEMA).schema)


def _tables(obs_rows: list[dict], label_rows: list[tuple[str, str, datetime, datetime]] = ()) -> CatalogTables:
    labels = _labels(list(label_rows)) if label_rows else empty_frame(LABELS_SCHEMA)
    return CatalogTables(_obs(obs_rows), labels, empty_frame(QUARANTINE_SCHEMA))


def _matched(result, key: str) -> dict[str, str | None]:
    return dict(result.samples.select("sample_id", f"{key}_uri").iter_rows())


# --- label files over their validity interval ------------------------------------------------


@pytest.mark.parametrize("match", ["nearest", "before"])
def test_a_three_day_label_file_matches_days_one_to_three_not_four(match):
    days = [T0 + timedelta(days=d) for d in range(4)]  # 12:00 of days 1..4
    start = T0.replace(hour=0)
    hek = [("/l/hek_3days.json", "hek", start, start + timedelta(days=3) - timedelta(seconds=1))]
    card = _card([{"key": "hek", "label": "hek", "match": match, "tolerance_min": 60}])
    result = pair(_tables(_hmi(days), hek), card)
    assert result.references == 4 and result.unmatched_by_member == {"hek": 1}
    assert sorted(_matched(result, "hek")) == [f"{t:%Y%m%dT%H%M%S}" for t in days[:3]]
    assert set(result.samples["hek_dt_s"].to_list()) == {-(12 + 24 * d) * 3600.0 for d in range(3)}


def test_the_latest_starting_file_containing_the_target_wins():
    """A day's file inside a 3-day file is the more specific one on its day; after it ends,
    the 3-day file (which started earlier) still covers the next day."""
    days = [T0 + timedelta(days=d) for d in range(3)]
    start = T0.replace(hour=0)
    hek = [("/l/hek_3days.json", "hek", start, start + timedelta(days=3, seconds=-1)),
           ("/l/hek_day2.json", "hek", start + timedelta(days=1), start + timedelta(days=2, seconds=-1))]
    card = _card([{"key": "hek", "label": "hek", "match": "before", "tolerance_min": 1440}])
    matched = _matched(pair(_tables(_hmi(days), hek), card), "hek")
    assert list(matched.values()) == ["/l/hek_3days.json", "/l/hek_day2.json", "/l/hek_3days.json"]


def test_point_labels_keep_the_tolerance_and_the_nearest_file():
    times = [T0 + timedelta(days=d) for d in range(4)]
    masks = [
        ("/l/m0_before.fits", "ch_mask", times[0] - timedelta(minutes=3), times[0] - timedelta(minutes=3)),
        ("/l/m0_after.fits", "ch_mask", times[0] + timedelta(minutes=2), times[0] + timedelta(minutes=2)),  # nearer
        ("/l/m1.fits", "ch_mask", times[1] + timedelta(minutes=5), times[1] + timedelta(minutes=5)),  # within 6 min
        ("/l/m2.fits", "ch_mask", times[2] + timedelta(minutes=7), times[2] + timedelta(minutes=7)),  # beyond
        ("/l/m3_before.fits", "ch_mask", times[3] - timedelta(minutes=4), times[3] - timedelta(minutes=4)),
        ("/l/m3_after.fits", "ch_mask", times[3] + timedelta(minutes=4), times[3] + timedelta(minutes=4)),  # a tie: the later
    ]
    tables = _tables(_hmi(times), masks)
    result = pair(tables, _card([{"key": "ch_mask", "label": "ch_mask"}]))  # the card's 6 minutes
    assert list(_matched(result, "ch_mask").values()) == ["/l/m0_after.fits", "/l/m1.fits", "/l/m3_after.fits"]
    assert result.samples["ch_mask_dt_s"].to_list() == [120.0, 300.0, 240.0]
    # match: before never takes a file from after the target
    before = pair(tables, _card([{"key": "ch_mask", "label": "ch_mask", "match": "before"}]))
    assert list(_matched(before, "ch_mask").values()) == ["/l/m0_before.fits", "/l/m3_before.fits"]


# --- optional members ------------------------------------------------------------------------


def test_an_optional_member_keeps_the_sample_with_nulls_and_shards_refuse_it():
    times = [T0 + timedelta(days=d) for d in range(3)]
    aia = [{"instrument": "AIA", "channel": "193", "obs_time": t + timedelta(seconds=4)} for t in times[:2]]
    tables = _tables(_hmi(times) + aia)
    card = _card([{"key": "aia_193", "instrument": "AIA", "channel": "193", "optional": True}])
    result = pair(tables, card)
    assert result.samples.height == 3 and result.unmatched == 0 and result.unmatched_by_member == {"aia_193": 1}
    last = result.samples.row(2, named=True)
    assert last["aia_193_uri"] is None and last["aia_193_checksum"] is None and last["aia_193_dt_s"] is None
    required = pair(tables, _card([{"key": "aia_193", "instrument": "AIA", "channel": "193"}]))
    assert required.samples.height == 2

    manifest, _ = make_manifest(tables, card, "park2019")
    assert audit(manifest, tables, card).clean  # a missing file is no file in two splits
    manifest.check_complete(["hmi"])
    with pytest.raises(HelioBenchError, match=r"sample 20170712T120000: optional member 'aia_193' is missing"):
        manifest.check_complete(["hmi", "aia_193"])


def test_the_reference_cannot_be_optional():
    card = _card([]).model_dump()
    card["members"][0]["optional"] = True
    with pytest.raises(ValueError, match="reference member 'hmi' cannot be optional"):
        DatasetCard.model_validate(card)


# --- selection rules -------------------------------------------------------------------------


def _rule_catalog() -> tuple[CatalogTables, list[datetime]]:
    """Four references; for each an AIA 193 frame 4 s after it that fails one rule (or none),
    and a good one 60 s after."""
    times = [T0 + timedelta(days=d) for d in range(5)]
    good = {"instrument": "AIA", "channel": "193", "quality": 0, "exposure_s": 2.0, "image_type": "LIGHT"}
    near = [{}, {"quality": 4}, {"exposure_s": 0.5}, {"image_type": "DARK"}, {"image_type": None, "quality": 1}]
    rows = _hmi(times)
    for t, bad in zip(times, near):
        rows.append(good | {"obs_time": t + timedelta(seconds=4), "uri": f"/a/near_{t:%d}.fits"} | bad)
        rows.append(good | {"obs_time": t + timedelta(seconds=60), "uri": f"/a/good_{t:%d}.fits"})
    return _tables(rows), times


RULES = {"AIA": {"quality": 0, "exposure_s": {"min": 1.0, "max": 3.0}, "image_type": "light"}}


def test_rules_remove_failing_frames_before_pairing_so_the_nearest_good_one_is_used():
    tables, times = _rule_catalog()
    member = [{"key": "aia_193", "instrument": "AIA", "channel": "193"}]
    plain = pair(tables, _card(member))
    assert all(uri.startswith("/a/near_") for uri in plain.samples["aia_193_uri"]) and plain.removed_by_rule == {}

    result = pair(tables, _card(member, require=RULES))
    uris = result.samples["aia_193_uri"].to_list()
    assert uris == ["/a/near_10.fits"] + [f"/a/good_{t:%d}.fits" for t in times[1:]]
    assert result.samples["aia_193_dt_s"].to_list() == [4.0, 60.0, 60.0, 60.0, 60.0]
    # the frame with no IMG_TYPE fails the image_type rule (a missing value never passes) and quality
    assert result.removed_by_rule == {"aia_193": {"quality": 2, "exposure_s": 1, "image_type": 2}}


def test_rules_apply_to_the_instruments_they_name_and_are_reported():
    tables, _ = _rule_catalog()
    members = [{"key": "aia_193", "instrument": "AIA", "channel": "193"},
               {"key": "aia_193_prev", "instrument": "AIA", "channel": "193", "offset_min": -1, "tolerance_min": 2}]
    card = _card(members, require={"HMI": {"quality": 0}, "AIA": {"exposure_s": {"max": 1.0}}})
    result = pair(tables, card)
    assert result.removed_by_rule == {"hmi": {"quality": 0}, "aia_193": {"exposure_s": 9},
                                      "aia_193_prev": {"exposure_s": 9}}
    assert result.samples.height == 1 and result.samples["aia_193_uri"].to_list() == ["/a/near_12.fits"]

    manifest, _ = make_manifest(tables, card, "park2019")
    assert manifest.metadata["removed_by_rule"] == result.removed_by_rule
    frame = summarize(tables, card)["removed_by_rule"]
    assert frame.select("member", "rule", "files", "removed").rows() == [
        ("hmi", "quality", 5, 0), ("aia_193", "exposure_s", 10, 9), ("aia_193_prev", "exposure_s", 10, 9)]
    assert "removed_by_rule" not in summarize(tables)


def test_rules_change_the_manifest_hash_and_cards_without_them_keep_theirs():
    tables, _ = _rule_catalog()
    member = [{"key": "aia_193", "instrument": "AIA", "channel": "193"}]
    plain = make_manifest(tables, _card(member), "park2019")[0]
    ruled = make_manifest(tables, _card(member, require={"HMI": {"quality": 0}}), "park2019")[0]  # same samples
    assert ruled.samples.equals(plain.samples) and ruled.content_hash != plain.content_hash


def test_split_and_catalog_verbs_report_what_each_rule_removed(tmp_path, monkeypatch, capsys):
    tables, _ = _rule_catalog()
    save_catalog(str(tmp_path / "cat"), tables)
    (tmp_path / "datasets").mkdir()
    card = _card([{"key": "aia_193", "instrument": "AIA", "channel": "193"}], require=RULES, name="ruled")
    (tmp_path / "datasets" / "ruled.yaml").write_text(json.dumps(card.model_dump(mode="json")))
    monkeypatch.setenv("HELIOBENCH_ROOT", str(tmp_path))
    assert main(["split", "ruled", "--catalog", str(tmp_path / "cat"), "--scheme", "park2019"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed_by_rule"] == {"aia_193": {"quality": 2, "exposure_s": 1, "image_type": 2}}
    assert out["samples"]["test"] == 5
    assert main(["catalog", str(tmp_path / "cat"), "--card", "ruled", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["removed_by_rule"]
    assert {r["rule"]: r["removed"] for r in rows} == {"quality": 2, "exposure_s": 1, "image_type": 2}


@pytest.mark.parametrize(
    ("require", "message"),
    [
        ("{AIA: {quality: nominal}}", "ruled.yaml: require.AIA.quality: Input should be a valid integer"),
        ("{AIA: {exposure_s: {min: 3, max: 1}}}", "ruled.yaml: require.AIA.exposure_s: Value error, max 1.0 is below min 3.0"),
        ("{AIA: {exposure_s: 2.0}}", "ruled.yaml: require.AIA.exposure_s: Input should be a valid dictionary"),
        ("{AIA: {qualty: 0}}", "ruled.yaml: require.AIA.qualty: Extra inputs are not permitted"),
        ("{EIT: {quality: 0}}", "require.EIT: no observation member of instrument 'EIT' (members: AIA, HMI)"),
        ("{AIA: {}}", "require.AIA: no rule given"),
    ],
)
def test_bad_rules_name_the_card_file_and_key(tmp_path: Path, monkeypatch, require: str, message: str):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "ruled.yaml").write_text(
        "name: ruled\ndescription: x\nsource: x\nlicense: x\nreference: hmi\ntolerance_min: 6\n"
        "members: [{key: hmi, instrument: HMI, channel: magnetogram}, {key: aia, instrument: AIA, channel: '193'}]\n"
        f"require: {require}\n"
        "split_schemes: {s: {train: {start: 2011-01-01, end: 2016-12-31}, val: {start: 2017-01-01, end: 2017-06-30}, "
        "test: {start: 2017-07-01, end: 2017-12-31}}}\n"
    )
    monkeypatch.setenv("HELIOBENCH_ROOT", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        load_card("ruled")
    assert message in str(err.value) and "ruled.yaml" in str(err.value)

"""H-alpha quality labels from users' own tables: ingest catalogues any CSV / JSON table with a
time per row as kind ``table``; the card's ``table:`` says how to read it (the ``kso_halpha``
card); the simulator's tables keep kind ``halpha_quality``.

A simulated KSO archive (three one-day windows, one per split of ``kso_halpha``'s ``years``
scheme) has its quality tables rewritten into a user's CSV (``filename;date_obs;grade``,
good/bad, CRLF) and into per-day JSON lists (``time``/``q``/``kind``, no file column); ingest →
split → shard must give back the simulator's labels.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

from heliobench.archive.labels import detect_label
from heliobench.errors import ConfigError, ReaderError
from heliobench.prep import Pipeline
from heliobench.prep.labels import LabelContext, encode_label
from heliobench.prep.labels.quality import DEGRADATION_KINDS
from heliobench.specs import DatasetCard, Member, load_card, load_yaml_model, project_root

#: One day per split of the kso_halpha card (train 2012-2017, val 2018, test 2019), 6-hourly.
WINDOWS = ("2016-03-01", "2018-03-01", "2019-03-01")
GRADES = {1: "good", 2: "bad"}


@pytest.fixture(scope="module")
def kso_archive(tmp_path_factory, ray_session) -> Path:
    """The simulated archive (64 px H-alpha, 16 px SDO images the tests never read)."""
    from datetime import date, timedelta

    from heliobench.archive.sim import simulate_archive

    out = tmp_path_factory.mktemp("kso")
    for day in WINDOWS:
        end = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        simulate_archive(str(out), day, end, "6h", size=16, halpha_size=64, seed=5, progress=False)
    return out


@pytest.fixture(scope="module")
def sim_rows(kso_archive: Path) -> list[dict[str, str]]:
    """The simulator's quality rows (file, obs_time, quality, degradation), in time order."""
    rows = [r for p in sorted((kso_archive / "labels/halpha_quality").rglob("*.csv"))
            for r in csv.DictReader(p.open())]
    assert {r["quality"] for r in rows} == {"1", "2"}  # both classes, so the mapping is exercised
    return sorted(rows, key=lambda r: r["obs_time"])


def _sample_id(obs_time: str) -> str:
    return datetime.fromisoformat(obs_time).strftime("%Y%m%dT%H%M%S")


def _user_csv(rows: list[dict[str, str]], folder: Path, grade=lambda r: GRADES[int(r["quality"])]) -> Path:
    """One table for the whole archive as a user writes it: other names, ``;``, good/bad, CRLF."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["filename;date_obs;grade"] + [f"{Path(r['file']).name};{r['obs_time']};{grade(r)}" for r in rows]
    path = folder / "kso_quality.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def _user_json(rows: list[dict[str, str]], folder: Path) -> None:
    """One JSON list per day: times with ``Z``, classes Q1/Q2, the degradation kind, no file column."""
    folder.mkdir(parents=True, exist_ok=True)
    for day in WINDOWS:
        records = [{"time": r["obs_time"] + "Z", "q": f"Q{r['quality']}", "kind": r["degradation"]}
                   for r in rows if r["obs_time"].startswith(day)]
        (folder / f"quality_{day}.json").write_text(json.dumps(records, indent=1))


def _json_card() -> DatasetCard:
    """kso_halpha with the JSON layout (rows found by time only), one table per day."""
    data = yaml.safe_load((project_root() / "datasets" / "kso_halpha.yaml").read_text())
    data["members"][1].update(tolerance_min=1440, table={"time": "time", "quality": "q", "degradation": "kind",
                                                         "classes": {"Q1": 1, "Q2": 2}})
    return DatasetCard.model_validate(data)


def _ingest_split_shard(sources: list[Path], card: DatasetCard, tmp_path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Ingest → manifest (the card's default scheme) → shards; the shards' labels by sample id and the split counts."""
    from heliobench.catalog.ingest import ingest
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.engine.data import read_shards
    from heliobench.shards import write_shards

    cat = tmp_path / "cat"
    summary = ingest([str(s) for s in sources], str(cat), progress=False)
    assert summary.new_quarantined == 0
    tables = load_catalog(str(cat))
    assert set(tables.labels["kind"]) == {"table"}
    manifest, paired = make_manifest(tables, card, card.default_split_scheme)
    assert paired.unmatched == 0
    write_manifest(manifest, str(tmp_path / "manifest.parquet"))
    write_shards(str(tmp_path / "manifest.parquet"), card, str(tmp_path / "shards"), samples_per_shard=8, progress=False)
    uris = [str(p) for p in sorted((tmp_path / "shards").rglob("shard-*.parquet"))]
    data = read_shards(uris, ["sample_id", "halpha", "halpha_quality"])
    assert data["halpha"].shape[1:] == (256, 256)
    return dict(zip(data["sample_id"].tolist(), data["halpha_quality"])), manifest.counts()


# --- end to end -------------------------------------------------------------------------------

def test_user_csv_through_the_real_card(kso_archive: Path, sim_rows: list[dict[str, str]], tmp_path: Path) -> None:
    table = _user_csv(sim_rows, tmp_path / "labels")
    label = detect_label(table.read_bytes(), str(table))
    assert (label.kind, label.time_start, label.time_end) == (
        "table", *(datetime.fromisoformat(sim_rows[i]["obs_time"]).replace(tzinfo=timezone.utc) for i in (0, -1)))
    labels, counts = _ingest_split_shard([kso_archive / "halpha", table.parent], load_card("kso_halpha"), tmp_path)
    assert counts == {"train": 4, "val": 4, "test": 4}
    assert sorted(labels) == sorted(_sample_id(r["obs_time"]) for r in sim_rows)
    for r in sim_rows:
        quality, code = labels[_sample_id(r["obs_time"])]
        assert quality == float(r["quality"]) and math.isnan(code)  # the user's table has no degradation column


def test_user_json_matched_by_time(kso_archive: Path, sim_rows: list[dict[str, str]], tmp_path: Path) -> None:
    _user_json(sim_rows, tmp_path / "labels")
    labels, counts = _ingest_split_shard([kso_archive / "halpha", tmp_path / "labels"], _json_card(), tmp_path)
    assert counts == {"train": 4, "val": 4, "test": 4}
    expected = {_sample_id(r["obs_time"]): [float(r["quality"]), float(DEGRADATION_KINDS.index(r["degradation"]))]
                for r in sim_rows}
    assert {k: v.tolist() for k, v in labels.items()} == expected


def test_simulator_tables_unchanged(kso_archive: Path, sim_rows: list[dict[str, str]], tmp_path: Path) -> None:
    from heliobench.catalog.ingest import ingest
    from heliobench.catalog.splits import make_manifest
    from heliobench.catalog.tables import load_catalog

    cat = tmp_path / "cat"
    ingest([str(kso_archive / "halpha"), str(kso_archive / "labels/halpha_quality")], str(cat), progress=False)
    tables = load_catalog(str(cat))
    assert tables.labels["kind"].to_list() == ["halpha_quality"] * len(WINDOWS)
    card = load_card("kso_halpha_sim")
    manifest, paired = make_manifest(tables, card, "park2019")
    assert paired.unmatched == 0 and manifest.counts()["train"] == 4  # 2016; park2019 ends in 2017
    for row in manifest.samples.iter_rows(named=True):
        ctx = LabelContext(card.member("halpha_quality"), row["time"], Pipeline([]), None, row["halpha_uri"])
        got = encode_label(Path(row["halpha_quality_uri"]).read_bytes(), row["halpha_quality_uri"], ctx)
        sim = next(r for r in sim_rows if Path(r["file"]).name == Path(row["halpha_uri"]).name)
        assert got.tolist() == [float(sim["quality"]), float(DEGRADATION_KINDS.index(sim["degradation"]))]


# --- errors -------------------------------------------------------------------------------------

def _ctx(member: Member, grid_uri: str | None, time: str) -> LabelContext:
    return LabelContext(member, datetime.fromisoformat(time).replace(tzinfo=timezone.utc), Pipeline([]), None, grid_uri)


def test_unmapped_grade_names_file_row_and_value(sim_rows: list[dict[str, str]], tmp_path: Path) -> None:
    table = _user_csv(sim_rows, tmp_path, grade=lambda r: "meh" if r is sim_rows[2] else GRADES[int(r["quality"])])
    member = load_card("kso_halpha").member("halpha_quality")
    name = Path(sim_rows[2]["file"]).name
    with pytest.raises(ReaderError, match=rf"kso_quality\.csv: row 3 \({name}\): grade 'meh', expected good \(Q1\), "
                                          r"Q1 \(Q1\), bad \(Q2\) or Q2 \(Q2\)"):
        encode_label(table.read_bytes(), str(table), _ctx(member, f"/a/{name}", sim_rows[2]["obs_time"]))
    # the other rows are fine; a file without a row is an error, never a default
    first = Path(sim_rows[0]["file"]).name
    assert encode_label(table.read_bytes(), str(table), _ctx(member, f"/a/{first}", "2000-01-01T00:00:00"))[0] == 1
    with pytest.raises(ReaderError, match="no row for kanz_halph_fd_20190301_999999"):
        encode_label(table.read_bytes(), str(table), _ctx(member, "/a/kanz_halph_fd_20190301_999999.fts", "2000-01-01"))
    with pytest.raises(ReaderError, match=r"without column\(s\) grade .*it has filename, date_obs, q"):
        encode_label(b"filename;date_obs;q\nx.fts;2019-03-01T00:00:05;good\n", "t.csv", _ctx(member, "/a/x.fts", "2019-03-01"))


def test_file_only_table_and_time_only_json() -> None:
    # no time column: ingest takes the times in the file names, the encoder matches by name
    # (without directory and extensions: the table names .fts, the archive holds .fts.gz)
    raw = b"image,grade\nq1/kanz_halph_fd_20170105_080012.fts,Q1\nq2/kanz_halph_fd_20170106_091500.fts,Q2\n"
    label = detect_label(raw, "grades.csv")
    assert (label.kind, label.time_start.isoformat(), label.time_end.isoformat()) == (
        "table", "2017-01-05T08:00:12+00:00", "2017-01-06T09:15:00+00:00")
    member = Member(key="q", label="table", grid="halpha", table={"file": "image", "quality": "grade",
                                                                    "classes": {"Q1": 1, "Q2": 2}})
    got = encode_label(raw, "grades.csv", _ctx(member, "/kso/kanz_halph_fd_20170106_091500.fts.gz", "2017-01-06T09:15:00"))
    assert got[0] == 2 and math.isnan(got[1])
    with pytest.raises(ReaderError, match="no row for an observation at 2017-01-06T09:15:00"):
        encode_label(raw, "grades.csv", _ctx(member, None, "2017-01-06T09:15:00"))
    # JSON with numbers as classes (YAML integer keys), matched by time within 1 s
    doc = json.dumps([{"time": "2017-01-05T08:00:12.400", "q": 2}, {"time": "2017-01-05T08:10:00", "q": 1}]).encode()
    member = Member(key="q", label="table", table={"time": "time", "quality": "q", "classes": {1: 1, 2: 2}})
    assert encode_label(doc, "q.json", _ctx(member, None, "2017-01-05T08:00:12"))[0] == 2
    assert encode_label(doc, "q.json", _ctx(member, None, "2017-01-05T08:10:01"))[0] == 1


# --- ingest's rules -----------------------------------------------------------------------------

def test_what_ingest_takes_for_a_table(kso_archive: Path) -> None:
    # a HEK result stays HEK, as an object with "result" or as a bare list of events
    hek = next((kso_archive / "labels").rglob("*.json"))
    events = json.loads(hek.read_text())["result"]
    assert events and detect_label(hek.read_bytes(), str(hek)).kind == "hek"
    assert detect_label(json.dumps(events).encode(), "list.json").kind == "hek"
    assert detect_label(b"[]", "empty.json").kind == "hek"  # an empty HEK result, as before
    # names are tried in order, case-insensitively; a named column must hold ISO times
    label = detect_label(b"DATE-OBS\tTime\tgrade\n2017-01-05T08:00:12\t2018-01-01\tgood\n", "tab.tsv")
    assert label.time_start.isoformat() == "2017-01-05T08:00:12+00:00"
    with pytest.raises(ReaderError, match=r"d\.csv: row 2: date '06\.01\.2017' is not an ISO 8601 time"):
        detect_label(b"date,grade\n2017-01-05,good\n06.01.2017,bad\n", "d.csv")
    with pytest.raises(ReaderError, match="n.csv: a table with no time column"):
        detect_label(b"name,grade\nx,good\n", "n.csv")
    with pytest.raises(ReaderError, match="x.json: a table with no time column"):
        detect_label(b'[{"name": "x", "grade": "good"}]', "x.json")
    # text that is not a table is left to the observation readers (quarantined as before)
    assert detect_label(b"# Notes\n\nsome | words\nand more\n", "README.md") is None
    assert detect_label(b"a,b\n1,2,3\n", "ragged.csv") is None


@pytest.mark.realdata
def test_a_real_csv_is_catalogued_as_a_table(realdata: Path) -> None:
    """The Kislovodsk sunspot-group table (``date`` column, ``YYYY-MM-DD HH:MM:SS``) spans 2010-2020."""
    path = realdata / "tables" / "kislovodsk_sunspot_groups.csv"
    label = detect_label(path.read_bytes(), str(path))
    assert label.kind == "table"
    assert (label.time_start.isoformat(), label.time_end.year) == ("2010-07-23T04:52:00+00:00", 2020)


def test_table_config_errors_name_the_card_and_key(tmp_path: Path) -> None:
    data = yaml.safe_load((project_root() / "datasets" / "kso_halpha.yaml").read_text())

    def load(table: dict | None, label: str = "table") -> DatasetCard:
        members = [data["members"][0], {"key": "halpha_quality", "label": label, "grid": "halpha",
                                        **({"table": table} if table is not None else {})}]
        path = tmp_path / "card.yaml"
        path.write_text(yaml.safe_dump({**data, "members": members}))
        return load_yaml_model(path, DatasetCard)

    good = {"file": "filename", "quality": "grade", "classes": {"good": 1, "bad": 2}}
    assert load(good).member("halpha_quality").table.classes == {"good": 1, "bad": 2}
    with pytest.raises(ConfigError, match=r"card\.yaml: members\.1\.table\.classes\.bad: Input should be 1 or 2"):
        load({**good, "classes": {"good": 1, "bad": 3}})
    with pytest.raises(ConfigError, match=r"card\.yaml: members\.1\.table: .*give the column of file names"):
        load({"quality": "grade", "classes": {"good": 1}})
    with pytest.raises(ConfigError, match=r"card\.yaml: members\.1\.table\.colour: Extra inputs"):
        load({**good, "colour": "red"})
    with pytest.raises(ConfigError, match=r"card\.yaml: members\.1: .*label: table needs `table:`"):
        load(None)

"""The materialised leaderboard table, ranking, formats and the static HTML page (no Ray)."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from mlflow.entities import Metric, Param

from heliobench.errors import HelioBenchError
from heliobench.specs import BenchmarkSpec, load_benchmark
from heliobench.tracking import runs
from heliobench.tracking.html import LOCAL_MLFLOW_UI, TITLE, write_leaderboard_html
from heliobench.tracking.leaderboard import (
    PUBLISHED_LABEL,
    TABLE_WIDTH,
    LeaderboardEntry,
    LeaderboardTable,
    entry_from_run,
    format_leaderboard,
    rank,
)

CHROMIUM = Path("/usr/bin/chromium")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: Student-t quantile t(0.975, 2 degrees of freedom), from a printed table.
T_975_2 = 4.3027


def _spec(name: str = "ch_segmentation", direction: str = "maximize") -> BenchmarkSpec:
    base = load_benchmark("ch_segmentation").model_dump()
    title = base["title"] if name == "ch_segmentation" else f"Benchmark {name}"
    return BenchmarkSpec.model_validate({**base, "name": name, "title": title, "direction": direction})


def _entry(entry_id: str, model: str, config: str, primary: float, seed: int | None = 0, benchmark: str = "ch_segmentation",
           **extra: float) -> LeaderboardEntry:
    return LeaderboardEntry(
        benchmark=benchmark, entry_id=entry_id, kind="run", model=model, config_key=config, seed=seed,
        metrics={"iou_pooled_05": primary, **extra}, n_parameters=1000, worker_hours=0.5, dataset_hash="abc123",
        submitter="alice", created=T0 + timedelta(hours=len(entry_id)), dataset="sdo_sim",
    )


def _log_run(client, spec: BenchmarkSpec, model: str, seed: int, lr: float, iou: float, on_board: bool = True) -> str:
    """A finished, evaluated training run as ``heliobench train`` + ``evaluate`` leave it."""
    tags = {runs.TAG_BENCHMARK: spec.name, runs.TAG_KIND: "train", "heliobench.model": model,
            "heliobench.manifest_hash": "m" * 64, "mlflow.user": "dave"}
    if on_board:
        tags["heliobench.leaderboard"] = "1"
    run = client.create_run(runs.experiment_id(client, spec.name), tags=tags)
    rid, now = run.info.run_id, int(time.time() * 1000)
    client.log_batch(rid, params=[Param("training.seed", str(seed)), Param("training.lr", str(lr)), Param("n_parameters", "4242")],
                     metrics=[Metric("test_iou_pooled_05", iou, now, 0), Metric("test_iou_pooled_05_ci_low", iou - 0.02, now, 0),
                              Metric("test_iou_pooled_05_ci_high", iou + 0.02, now, 0), Metric("test_dice_pooled_05", iou + 0.1, now, 0),
                              Metric("worker_hours", 0.25, now, 0), Metric("val_loss", 0.3, now, 0)])
    client.set_terminated(rid)
    return rid


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("entry_id")


def test_add_replace_and_rebuild_from_mlflow(client, tmp_path, monkeypatch):
    spec = _spec()
    ids = [_log_run(client, spec, "scss_net", seed, 1e-3, 0.70 + seed / 100) for seed in range(3)]
    ids.append(_log_run(client, spec, "scss_net", 0, 1e-2, 0.60))
    ids.append(_log_run(client, spec, "unet", 0, 1e-3, 0.65))
    _log_run(client, spec, "scss_net", 5, 1e-3, 0.99, on_board=False)
    table = LeaderboardTable()
    assert table.uri == str(tmp_path / "leaderboard.parquet")
    entries = [entry_from_run(client, rid, spec) for rid in ids]
    for e in entries:
        table.add_entry(e)
    first = entries[0]
    assert (first.kind, first.model, first.seed, first.n_parameters, first.worker_hours) == ("run", "scss_net", 0, 4242, 0.25)
    assert first.metrics == pytest.approx({"iou_pooled_05": 0.70, "iou_pooled_05_ci_low": 0.68, "iou_pooled_05_ci_high": 0.72,
                                           "dice_pooled_05": 0.80})
    assert (first.dataset_hash, first.submitter) == ("m" * 64, "dave")
    assert len({e.config_key for e in entries[:3]}) == 1, "seeds of one configuration share a key"
    assert len({e.config_key for e in entries}) == 3, "another lr or model is another configuration"

    table.add_entry(first)
    replaced = LeaderboardEntry(**{**first.__dict__, "metrics": {"iou_pooled_05": 0.1}})
    table.add_entry(replaced)
    df = table.read()
    assert df.height == 5 and df["entry_id"].n_unique() == 5
    assert df.filter(pl.col("entry_id") == first.entry_id)["metrics"].to_list() == [[{"name": "iou_pooled_05", "value": 0.1}]]
    table.add_entry(first)

    other = _entry("other-bench-entry", "m", "c", 0.5, benchmark="other_bench")
    table.add_entry(other)
    search = client.search_runs
    pages = []

    def small_pages(*args, **kwargs):
        page = search(*args, **{**kwargs, "max_results": 2})
        pages.append(len(page))
        return page

    monkeypatch.setattr(client, "search_runs", small_pages)
    fresh = LeaderboardTable(str(tmp_path / "rebuilt" / "leaderboard.parquet"))
    assert fresh.rebuild_from_mlflow(client, [spec]) == 5
    assert pages == [2, 2, 1], "the rebuild follows the page tokens"
    assert _sorted(fresh.read()).equals(_sorted(table.read().filter(pl.col("benchmark") == spec.name)))

    assert table.rebuild_from_mlflow(client, [spec]) == 5
    rebuilt = table.read()
    assert rebuilt.height == 6 and other.entry_id in rebuilt["entry_id"].to_list(), "other benchmarks' rows are kept"


def test_entry_from_run_errors(client):
    spec = _spec()
    rid = _log_run(client, spec, "scss_net", 0, 1e-3, 0.7)
    with pytest.raises(HelioBenchError, match="not 'elsewhere'"):
        entry_from_run(client, rid, _spec("elsewhere"))
    bare = client.create_run(runs.experiment_id(client, spec.name), tags={runs.TAG_BENCHMARK: spec.name, "heliobench.model": "x",
                                                                        "heliobench.manifest_hash": "m"}).info.run_id
    with pytest.raises(HelioBenchError, match=f"run {bare}: no test_iou_pooled_05 metric"):
        entry_from_run(client, bare, spec)
    with pytest.raises(HelioBenchError, match="no run 0123456789abcdef"):
        entry_from_run(client, "0123456789abcdef", spec)


def test_unreadable_table_names_file(tmp_path):
    path = tmp_path / "leaderboard.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(HelioBenchError, match=f"{path}: unreadable leaderboard table"):
        LeaderboardTable(str(path)).read()


def test_seeds_group_into_one_row(tmp_path):
    table = LeaderboardTable(str(tmp_path / "lb.parquet"))
    table.add_entries([
        _entry("s0", "scss_net", "cfgA", 0.70, seed=0, dice_pooled_05=0.80),
        _entry("s1x", "scss_net", "cfgA", 0.74, seed=1, dice_pooled_05=0.82),
        _entry("s2xx", "scss_net", "cfgA", 0.75, seed=2, dice_pooled_05=0.87),
        _entry("one", "unet", "cfgB", 0.60, seed=0, iou_pooled_05_ci_low=0.55, iou_pooled_05_ci_high=0.66),
        _entry("elsewhere", "unet", "cfgB", 0.99, benchmark="other_bench"),
    ])
    df = rank(table, _spec())
    assert df.height == 2
    top = df.row(0, named=True)
    # By hand: mean (0.70 + 0.74 + 0.75) / 3 = 0.73; deviations -0.03, 0.01, 0.02;
    # std = sqrt((0.0009 + 0.0001 + 0.0004) / 2) = sqrt(0.0007) = 0.0264575.
    assert top["model"] == "scss_net" and top["n_seeds"] == 3 and top["rank"] == 1
    assert top["iou_pooled_05"] == pytest.approx(0.73)
    assert top["iou_pooled_05_std"] == pytest.approx(0.0264575, abs=1e-7)
    half = T_975_2 * 0.0264575 / math.sqrt(3)  # 0.065724
    assert (top["iou_pooled_05_ci_low"], top["iou_pooled_05_ci_high"]) == pytest.approx((0.73 - half, 0.73 + half), abs=1e-5)
    assert top["dice_pooled_05"] == pytest.approx(0.83)
    assert top["worker_hours"] == pytest.approx(1.5) and top["n_parameters"] == 1000
    assert top["date"] == T0 + timedelta(hours=4) and top["submitters"] == "alice"
    single = df.row(1, named=True)
    assert (single["n_seeds"], single["iou_pooled_05_std"]) == (1, 0.0)
    assert (single["iou_pooled_05_ci_low"], single["iou_pooled_05_ci_high"]) == (0.55, 0.66), "one seed: its bootstrap bounds"
    assert single["dice_pooled_05"] is None


@pytest.mark.parametrize("direction, order", [("maximize", ["b", "a", "c"]), ("minimize", ["c", "a", "b"])])
def test_ranking_direction(tmp_path, direction, order):
    table = LeaderboardTable(str(tmp_path / "lb.parquet"))
    table.add_entries([_entry("1", "a", "ka", 0.5), _entry("2", "b", "kb", 0.9), _entry("3", "c", "kc", 0.1)])
    df = rank(table, _spec(direction=direction))
    assert df["model"].to_list() == order
    assert df["rank"].to_list() == [1, 2, 3]


def test_formats(tmp_path):
    table = LeaderboardTable(str(tmp_path / "lb.parquet"))
    table.add_entries([_entry("1", "a,comma", "ka", 0.5), _entry("2", "b", "kb", 0.9)])
    spec = _spec()
    df = rank(table, spec)
    rows = json.loads(format_leaderboard(df, "json", spec))
    assert [(r["rank"], r["model"]) for r in rows] == [(1, "b"), (2, "a,comma")]
    assert rows[0]["date"].startswith("2026-01-01T01:00:00") and rows[0]["runs"] == "2"
    parsed = list(csv.DictReader(io.StringIO(format_leaderboard(df, "csv", spec))))
    assert [r["model"] for r in parsed] == ["b", "a,comma"] and float(parsed[1]["iou_pooled_05"]) == 0.5
    text = format_leaderboard(df, "table", spec, wide=True)
    assert "a,comma" in text and "iou_pooled_05_ci_low" in text and "2026-01-01 01:00" in text
    with pytest.raises(HelioBenchError, match="--format 'xml': expected one of table, json, csv"):
        format_leaderboard(df, "xml", spec)


def test_terminal_table_fits_120_columns_with_published_rows_apart(tmp_path):
    table = LeaderboardTable(str(tmp_path / "lb.parquet"))
    long_name = "a-model-with-a-name-far-longer-than-the-model-column-allows"
    table.add_entries([
        _entry("r0", "scss_net", "k1", 0.71, seed=0, iou_pooled_05_ci_low=0.6, iou_pooled_05_ci_high=0.8),
        _entry("r1x", "scss_net", "k1", 0.75, seed=1),
        replace(_entry("p0", "my_module:build", "k2", 0.8, iou_pooled_05_ci_low=0.7, iou_pooled_05_ci_high=0.9), kind="plugin"),
        replace(_entry("s0", long_name, "k3", 0.65), kind="submission", submitter="a-submitter-with-a-long-name", worker_hours=None),
    ])
    spec = load_benchmark("ch_segmentation")
    text = format_leaderboard(rank(table, spec), "table", spec)
    lines = text.splitlines()
    print(text)
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    assert lines[2].split() == ["rank", "model", "source", "iou_pooled_05", "[95%", "CI]", "seeds", "worker-h", "date", "by"]
    first, second, third = lines[3:6]
    assert first.split()[:4] == ["1", "my_module:build", "plug-in", "0.800"] and "[0.700, 0.900]" in first
    # two seeds: mean 0.73, Student-t interval over the seeds, one row
    assert second.split()[:5] == ["2", "scss_net", "reference", "0.730", "[0.476,"] and second.split()[6] == "2"
    assert third.split()[0] == "3" and "…" in third and "submission" in third and "–" in third
    assert lines[6] == f"{PUBLISHED_LABEL} (not ranked against the rows above):"
    assert lines[7].split()[:2] == ["–", "SCSS-Net"] and "0.7835" in lines[7] and "Mackovjak" in lines[7]
    empty = format_leaderboard(rank(LeaderboardTable(str(tmp_path / "none.parquet")), spec), "table", spec)
    assert "no entries yet" in empty and PUBLISHED_LABEL in empty


def test_rank_10000_entries_is_fast(tmp_path):
    spec = _spec()
    others = {m: 0.5 for m in spec.metrics if m != spec.primary_metric}
    entries = [
        _entry(f"run{i:05d}", f"model{i // 3 % 7}", f"cfg{i // 3}", (i * 7919 % 10007) / 10007, seed=i % 3,
               iou_pooled_05_ci_low=0.1, iou_pooled_05_ci_high=0.9, n_images=60.0, **others)
        for i in range(10_000)
    ]
    table = LeaderboardTable(str(tmp_path / "lb.parquet"))
    table.add_entries(entries)
    t0 = time.perf_counter()
    df = rank(table, spec)
    elapsed = time.perf_counter() - t0
    print(f"rank of 10,000 entries: {elapsed:.3f} s")
    assert elapsed < 2.0
    assert df.height == 3334 and df["n_seeds"].sum() == 10_000
    assert df["iou_pooled_05"].is_sorted(descending=True) and df["rank"].is_sorted()


def test_table_on_s3(s3_bucket):
    table = LeaderboardTable(f"{s3_bucket}/boards/leaderboard.parquet")
    table.add_entries([_entry("1", "a", "ka", 0.5), _entry("2", "b", "kb", 0.9)])
    table.add_entry(_entry("1", "a", "ka", 0.95))
    assert rank(table, _spec())["model"].to_list() == ["a", "b"]


_WRITER = """
import sys, time
from datetime import datetime, timezone
from pathlib import Path
from heliobench.tracking.leaderboard import LeaderboardEntry, LeaderboardTable
uri, who, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
table = LeaderboardTable(uri)
(folder / f"ready-{who}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
for i in range(8):
    table.add_entry(LeaderboardEntry("b", f"{who}-{i}", "run", who, who, i, {"x": float(i)}, None, None, "h", who,
                                     datetime.now(timezone.utc), "sdo_sim"))
"""


def test_concurrent_add_entry_loses_nothing(tmp_path):
    uri = str(tmp_path / "lb.parquet")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, uri, f"w{n}", str(tmp_path)]) for n in range(4)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()  # all writers start together, so their writes overlap
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    ids = LeaderboardTable(uri).read()["entry_id"].to_list()
    assert sorted(ids) == sorted(f"w{n}-{i}" for n in range(4) for i in range(8))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium (apt-get install -y chromium)")
def test_html_page_renders_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    nasty = "<script>alert(1)</script> $x$ & co"
    table = LeaderboardTable(str(tmp_path / "lb.parquet"))
    table.add_entries([
        _entry("a0", "scss_net", "k1", 0.71, seed=0), _entry("a1x", "scss_net", "k1", 0.74, seed=1),
        _entry("b0", nasty, "k2", 0.65, iou_pooled_05_ci_low=0.6, iou_pooled_05_ci_high=0.7),
        _entry("c0", "unet", "k3", 0.69),
        replace(_entry("u0", "untimed", "k4", 0.5, benchmark="untimed_bench"), worker_hours=None),
    ])
    specs = [_spec("ch_segmentation"), _spec("empty_bench", direction="minimize"), _spec("untimed_bench")]
    page_path = write_leaderboard_html(table, specs, tmp_path / "site", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert {p.name for p in page_path.parent.iterdir()} == {
        "index.html", "ch_segmentation_compute.png", "ch_segmentation_intervals.png", "untimed_bench_intervals.png"}

    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            assert page.title() == TITLE
            section = page.locator("section#bench-ch_segmentation")
            ranked = section.locator("table.ranked tbody tr")
            assert ranked.count() == 3
            links = [[a.get_attribute("href") for a in ranked.nth(i).locator("a.run").all()] for i in range(3)]
            assert links == [[f"{LOCAL_MLFLOW_UI}/#/runs/{i}" for i in ids] for ids in (["a0", "a1x"], ["c0"], ["b0"])]
            assert ranked.nth(0).locator("a.run").all_inner_texts() == ["run 1", "run 2"]
            assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db" in page.locator("body > p").inner_text()
            about = section.locator("dl.about").inner_text()
            assert "sdo_sim" in about and "park2019: train 2011-01-01..2016-12-31" in about and "abc123" in about
            published = section.locator("table.published tbody tr")
            assert published.count() == 1 and "SCSS-Net" in published.inner_text() and "0.7835" in published.inner_text()
            assert PUBLISHED_LABEL in section.inner_text().lower() and "never ranked" in section.inner_text()
            assert "heliobench submit ch_segmentation --predictions preds.npz" in section.locator(".submit pre").inner_text()
            assert page.locator("section#bench-empty_bench table.ranked").count() == 0
            assert "No entries yet" in page.locator("section#bench-empty_bench .empty").inner_text()
            assert page.locator("script").count() == 0, "user text must not become markup"
            assert ranked.nth(2).locator("td").nth(1).inner_text() == nasty
            assert "no compute plot" in page.locator("section#bench-untimed_bench").inner_text()
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) == 3 and all(w > 0 for w in widths)
            page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000

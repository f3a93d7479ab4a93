"""``heliobench demo``: the whole data flow on a small simulated archive, with a summary."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import polars as pl

from heliobench.archive.sim import simulate_archive
from heliobench.catalog.audit import audit
from heliobench.catalog.ingest import ingest
from heliobench.catalog.splits import make_manifest, write_manifest
from heliobench.catalog.summary import summarize
from heliobench.catalog.tables import load_catalog
from heliobench.engine.data import default_shards
from heliobench.engine.evaluate import evaluate
from heliobench.engine.train import train
from heliobench.engine.tune import tune_benchmark
from heliobench.shards import write_shards
from heliobench.specs import BenchmarkSpec, SearchDimension, load_benchmark, load_card, load_search_space
from heliobench.tracking.html import write_leaderboard_html
from heliobench.tracking.leaderboard import LeaderboardTable, format_leaderboard, rank

#: Members sharded by the demo (the coronal-hole and active-region segmentation inputs).
DEMO_SHARD_MEMBERS = ("aia_171", "aia_193", "ch_mask", "ar_mask")
#: Benchmarks on the demo's leaderboard page.
DEMO_BENCHMARKS = ("ch_segmentation",)
#: The demo trains a narrow SCSS-Net (same architecture, fewer filters) to fit a CPU budget.
DEMO_TRAIN_OVERRIDES = ["model.params.base_filters=8", "training.epochs=3", "training.batch_size=8"]
#: The demo's search: the benchmark's space with narrow networks, 4 trials of at most 2 epochs.
DEMO_TUNE_FILTERS = [4, 8]


def _train_tune_rank(bench: BenchmarkSpec, shard_dir: str, work: Path, t0: float) -> dict:
    """Train, evaluate, a small ASHA search, the leaderboard and its page."""
    spec = bench.with_overrides(DEMO_TRAIN_OVERRIDES)
    result = train(spec, shard_dir, workers=2, run_name=f"demo-{spec.name}")
    _step("train", t0)
    test = evaluate(spec, result.run_id, shard_dir)
    _step("evaluate", t0)
    space = load_search_space(spec.name)
    narrow = {**space.space, "model.params.base_filters": SearchDimension(type="choice", values=DEMO_TUNE_FILTERS),
              "training.batch_size": SearchDimension(type="choice", values=[8])}
    space = space.model_copy(update={"max_epochs": 2, "num_samples": 4, "space": narrow})
    search = tune_benchmark(spec, space, shard_dir, name=f"demo-tune-{time.strftime('%Y%m%d-%H%M%S')}")
    _step("tune", t0)
    table = LeaderboardTable()
    html = write_leaderboard_html(table, [load_benchmark(n) for n in DEMO_BENCHMARKS], str(work / "leaderboard"))
    return {
        "run_id": result.run_id, "train_seconds": result.seconds, "test": test, "tune": search.__dict__,
        "leaderboard": format_leaderboard(rank(table, spec), "table"), "html": str(html),
    }


def _step(name: str, t0: float) -> None:
    print(f"[demo] {name} done at {time.perf_counter() - t0:.0f} s", flush=True)


def run_demo(workdir: str, start: str, end: str, cadence: str, size: int, seed: int) -> dict:
    """sim → ingest → split → audit → shard → train → evaluate → tune → leaderboard; prints a summary."""
    t0 = time.perf_counter()
    work = Path(workdir).resolve()
    os.environ["HELIOBENCH_WORKSPACE"] = str(work)
    archive, catalog = str(work / "archive"), str(work / "catalog")
    sim = simulate_archive(archive, start, end, cadence, size=size, seed=seed, progress=True)
    _step("sim", t0)
    ing = ingest([archive], catalog, progress=True)
    _step("ingest", t0)
    tables = load_catalog(catalog)
    card = load_card("sdo_sim")
    splits = {}
    for scheme in ("park2019", "strict"):
        manifest, paired = make_manifest(tables, card, scheme)
        uri = str(work / f"manifest-{card.name}-{scheme}.parquet")
        write_manifest(manifest, uri)
        report = audit(manifest, tables, card)
        splits[scheme] = {"manifest": uri, "hash": manifest.content_hash, "samples": manifest.counts(), "unmatched": paired.unmatched, "audit": report.summary()}
    _step("split + audit", t0)
    bench = load_benchmark("ch_segmentation").model_copy(update={"resolution_px": size})
    shard_dir = default_shards(bench)
    shards = write_shards(splits["park2019"]["manifest"], card, shard_dir, size_px=size, members=DEMO_SHARD_MEMBERS, progress=True)
    _step("shard", t0)
    engine = _train_tune_rank(bench, shard_dir, work, t0)
    frames = summarize(tables)
    with pl.Config(tbl_rows=40, tbl_hide_dataframe_shape=True, fmt_str_lengths=60):
        print("\n=== HelioBench demo summary ===")
        print(f"archive: {archive} ({sim})")
        print(f"ingest: {ing.files_read} files in {ing.seconds:.1f} s = {ing.files_per_second:.1f} files/s; "
              f"{ing.total_observations} observations, {ing.total_labels} label files, {ing.total_quarantined} quarantined")
        print(frames["observations"].select("instrument", "channel", "files", "first", "last"))
        for scheme, s in splits.items():
            a = s["audit"]
            print(f"split {scheme}: samples {s['samples']}, unmatched references {s['unmatched']}, manifest hash {s['hash']}")
            print(f"  leakage audit: {'clean' if a['clean'] else 'LEAKS'} — observations {a['observations_in_two_splits']}, "
                  f"tracks {a['tracks_in_two_splits']}/{a['tracks_checked']}, regions {a['regions_in_two_splits']}/{a['regions_checked']}")
        print(f"shards: {shards.out} samples {shards.samples}, preprocessing hash {shards.preprocessing_hash}")
        print(f"train: run {engine['run_id']} ({' '.join(DEMO_TRAIN_OVERRIDES)}) in {engine['train_seconds']:.0f} s; "
              f"test IoU (pooled, p>0.5) {engine['test']['iou_pooled_05']:.3f} "
              f"[{engine['test']['iou_pooled_05_ci_low']:.3f}, {engine['test']['iou_pooled_05_ci_high']:.3f}], "
              f"Dice {engine['test']['dice_pooled_05']:.3f}")
        print(f"tune: {engine['tune']['trials']} trials (ASHA), best {engine['tune']['metric']} = {engine['tune']['best_metric']:.3f} "
              f"with {engine['tune']['best_config']}")
        print(engine["leaderboard"])
        print(f"leaderboard page: {engine['html']}")
        print(f"wall time: {time.perf_counter() - t0:.0f} s")
    summary = {"ingest": ing.__dict__, "splits": splits, "shards": shards.__dict__, "engine": engine, "seconds": time.perf_counter() - t0}
    (work / "demo_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary

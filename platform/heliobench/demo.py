"""``heliobench demo``: the whole data flow and a short run of every benchmark, with a summary.

sim → ingest → split + audit (every card) → shard → per benchmark: train, evaluate,
leaderboard → an ASHA search, the channel-selection grid subset, the tracking baselines
→ the leaderboard page. The runs are short (narrow networks, one or two epochs at the
demo's size) so that the whole demo fits a laptop's CPU; their metrics show the platform
working, not the published skill.

The archive, catalog, manifests and pages go to the demo's folder; runs, shards and the
leaderboard table to the workspace (``$HELIOBENCH_WORKSPACE``, default ``./work``), where every
other verb looks: ``heliobench leaderboard`` run from the same folder shows the demo's table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from heliobench.archive.sim import simulate_archive
from heliobench.catalog.audit import audit, label_spans
from heliobench.catalog.ingest import ingest
from heliobench.catalog.splits import make_manifest, write_manifest
from heliobench.catalog.summary import summarize
from heliobench.catalog.tables import load_catalog
from heliobench.engine.data import default_shards
from heliobench.engine.evaluate import evaluate, evaluate_transfer
from heliobench.engine.train import train
from heliobench.realism.report import demo_report
from heliobench.engine.tune import tune_benchmark
from heliobench.shards import write_shards
from heliobench.specs import BenchmarkSpec, SearchDimension, load_benchmark, load_card, load_search_space
from heliobench.tasks.tracking.baseline_entries import score_baselines
from heliobench.tasks.translation.channel_selection import channel_selection_report
from heliobench.logfile import log_path
from heliobench.tracking.html import write_leaderboard_html
from heliobench.tracking.leaderboard import LeaderboardTable, format_leaderboard, rank
from heliobench.workspace import workspace


#: A narrow pix2pix (same architecture, fewer filters), one epoch.
_NARROW_PIX2PIX = ("training.epochs=1", "training.batch_size=8", "training.lr=0.002", "model.params.base_features=8",
                   "model.params.max_features=64", "model.params.disc_features=8")


@dataclass(frozen=True)
class DemoRun:
    """A benchmark's short demo run: ``--set`` overrides of its spec, at the demo's size unless
    the card's preprocessing fixes another (``resolution_px``)."""

    benchmark: str
    overrides: tuple[str, ...]
    resolution_px: int | None = None


#: A narrow SCSS-Net for a hundred steps: batch-norm statistics that settle within them (the
#: published Keras momentum needs hundreds), a higher rate, no dropout and no augmentation.
_SHORT_SCSS_NET = ("model.params.base_filters=8", "model.params.bn_momentum=0.1", "model.params.dropout=0.0",
                   "training.augment=false", "training.lr=0.003")

#: Every benchmark's short run (narrow networks, few epochs) — same verbs, same specs.
DEMO_RUNS = (
    # batches of 8 per worker: steadier batch-norm statistics, which the model's transfer to real
    # (display-scaled) images depends on; ten epochs: with six, the transfer fell below 0.45 in
    # two of six demos (0.38, 0.38), with ten it was 0.48-0.58 in four runs
    DemoRun("ch_segmentation", (*_SHORT_SCSS_NET, "training.batch_size=8", "training.epochs=10")),
    DemoRun("ar_segmentation", (*_SHORT_SCSS_NET, "training.batch_size=4", "training.epochs=4")),
    # scored by the content loss alone: the classifier head of classifier mode needs far more than
    # two epochs before its vote means anything
    DemoRun("halpha_quality", ("training.epochs=2", "training.batch_size=4", "model.params.base_filters=8",
                               "model.params.res_blocks=2", "model.params.critic_filters=8",
                               "model.params.classifier_mode=false"), resolution_px=256),
    DemoRun("event_tracking", ("model.params.crop_size=32", "model.params.channels=[8, 16, 32]", "model.params.hidden=64",
                               "model.params.dropout=0.0", "training.params.examples_per_pair=4", "training.epochs=3",
                               "training.batch_size=2", "training.lr=0.001")),
    DemoRun("hmi_to_aia", ("targets=[aia_171, aia_193, aia_304, aia_1600]", *_NARROW_PIX2PIX)),
    # the paper's grid (a cell is 4 pixels of the 128-pixel magnetogram here); no dropout; twelve
    # epochs, the best validation epoch kept: test AP 0.000 (DIGITS' grid, 2 epochs) -> 0.31-0.38
    DemoRun("ar_detection", ("model.params.width=0.125", "model.params.dropout=0.0", "training.epochs=12",
                             "training.batch_size=4", "training.lr=0.003")),
    # ten epochs: about 200 steps, which the classifier needs to leave the majority class (β)
    DemoRun("ar_classification", ("model.params.width=0.125", "model.params.input_px=64", "training.epochs=10",
                                  "training.lr=0.001", "training.params.optimizer=adam", "training.batch_size=8")),
)
#: Dense windows (6-hour cadence, end-exclusive) added to the archive for event tracking:
#: frame pairs need consecutive frames, which the archive's 10-day cadence does not have.
TRACKING_WINDOWS = (("2016-12-01", "2016-12-09"), ("2017-03-01", "2017-03-05"), ("2017-09-01", "2017-09-05"))
TRACKING_CADENCE = "6h"
#: The ASHA search: ch_segmentation's space with narrow networks, 4 trials of at most 2 epochs.
DEMO_TUNE_FILTERS = [4, 8]
#: Channel-selection models run by the demo (4 of the 170 in the grid), one epoch each.
DEMO_CHANNEL_SELECTION = (
    {"inputs": ["aia_131"], "targets": ["aia_171"]},
    {"inputs": ["aia_131"], "targets": ["aia_193"]},
    {"inputs": ["aia_171"], "targets": ["aia_193"]},
    {"inputs": ["aia_131", "aia_1600"], "targets": ["aia_171"]},
)


def _step(name: str, t0: float) -> None:
    print(f"[demo] {name} done at {time.perf_counter() - t0:.0f} s", flush=True)


def _specs(size: int) -> dict[str, BenchmarkSpec]:
    """The demo's benchmark specs at the demo's resolution, with their short-run overrides."""
    return {r.benchmark: load_benchmark(r.benchmark).model_copy(update={"resolution_px": r.resolution_px or size})
            .with_overrides(list(r.overrides)) for r in DEMO_RUNS}


def _split_all(tables, specs: dict[str, BenchmarkSpec], work: Path) -> dict[str, dict]:
    """A manifest and leakage audit per (card, scheme) the benchmarks use, plus sdo_sim's strict scheme."""
    wanted = sorted({(s.dataset, s.split_scheme) for s in specs.values()} | {("sdo_sim", "strict")})
    spans = label_spans(tables)  # every audit draws on the same label files: read them once
    splits = {}
    for card_name, scheme in wanted:
        card = load_card(card_name)
        manifest, paired = make_manifest(tables, card, scheme)
        uri = str(work / f"manifest-{card.name}-{scheme}.parquet")
        write_manifest(manifest, uri)
        splits[f"{card_name}/{scheme}"] = {"manifest": uri, "hash": manifest.content_hash, "samples": manifest.counts(),
                                          "unmatched": paired.unmatched, "audit": audit(manifest, tables, card, spans).summary()}
    return splits


def _channel_selection_spec(size: int) -> BenchmarkSpec:
    return load_benchmark("aia_channel_selection").model_copy(update={"resolution_px": size}).with_overrides(list(_NARROW_PIX2PIX))


def _shard_all(specs: dict[str, BenchmarkSpec], splits: dict[str, dict], size: int) -> dict[str, dict]:
    """One shard set per (card, scheme) holding the members of every benchmark (and search) on it."""
    groups: dict[tuple[str, str], set[str]] = {}
    for s in specs.values():
        groups.setdefault((s.dataset, s.split_scheme), set()).update(s.inputs + s.targets)
    cs = _channel_selection_spec(size)
    groups[(cs.dataset, cs.split_scheme)].update(k for trial in DEMO_CHANNEL_SELECTION for k in trial["inputs"] + trial["targets"])
    out = {}
    for (card_name, scheme), members in sorted(groups.items()):
        spec = next(s for s in specs.values() if (s.dataset, s.split_scheme) == (card_name, scheme))
        card = load_card(card_name)
        keep = tuple(m.key for m in card.members if m.key in members or _grid_of(card, members, m.key))
        summary = write_shards(splits[f"{card_name}/{scheme}"]["manifest"], card, default_shards(spec),
                               size_px=spec.resolution_px, members=keep, progress=True)
        out[f"{card_name}/{scheme}"] = summary.__dict__
    return out


def _grid_of(card, members: set[str], key: str) -> bool:
    """Whether ``key`` is the grid of a label member in ``members`` (labels are encoded on it)."""
    return any(card.member(k).grid == key for k in members)


def _run_benchmarks(specs: dict[str, BenchmarkSpec], t0: float) -> dict[str, dict]:
    results = {}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name, spec in specs.items():
        started = time.perf_counter()
        result = train(spec, default_shards(spec), workers=2, run_name=f"demo-{name}-{stamp}", progress=True)
        test = evaluate(spec, result.run_id, default_shards(spec))
        if spec.task == "tracking":
            score_baselines(spec, default_shards(spec))
        results[name] = {"run_id": result.run_id, "train_seconds": result.seconds, "seconds": time.perf_counter() - started,
                         "test": test, "primary": spec.primary_metric}
        _step(f"{name} (train + evaluate)", t0)
    return results


def _searches(specs: dict[str, BenchmarkSpec], work: Path, t0: float) -> dict[str, dict]:
    """A 4-trial ASHA search of ch_segmentation and a subset of the channel-selection grid."""
    spec = specs["ch_segmentation"]
    space = load_search_space(spec.name)
    # The short run's batch and no dropout, so that 2 epochs are enough steps to learn something.
    narrow = {**space.space, "model.params.base_filters": SearchDimension(type="choice", values=DEMO_TUNE_FILTERS),
              "training.batch_size": SearchDimension(type="choice", values=[4]),
              "model.params.dropout": SearchDimension(type="choice", values=[0.0])}
    space = space.model_copy(update={"max_epochs": 2, "num_samples": 4, "space": narrow})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = {"ch_segmentation": tune_benchmark(spec, space, default_shards(spec), name=f"demo-tune-{stamp}", progress=True).__dict__}
    _step("tune ch_segmentation", t0)
    cs = _channel_selection_spec(spec.resolution_px)
    grid = load_search_space(cs.name)
    grid = grid.model_copy(update={"max_epochs": 1, "grace_period": 1, "num_samples": 1,
                                   "space": {"channels": SearchDimension(type="grid", values=list(DEMO_CHANNEL_SELECTION))}})
    search = tune_benchmark(cs, grid, default_shards(cs), name=f"demo-channels-{stamp}", scheduler="fifo", progress=True)
    table = channel_selection_report(search.parent_run_id, work / "channel_selection")
    out["aia_channel_selection"] = search.__dict__ | {"table": table.to_dicts(), "heatmap": str(work / "channel_selection" / "channel_selection_cc.png")}
    _step("channel selection grid", t0)
    return out


#: Real images with labels that the demo's simulator-trained models are scored on, where the
#: real data is present: (benchmark, dataset card, folder under the real-data root).
TRANSFER_CHECKS = (("ch_segmentation", "aia193_ch_pairs", "ch_reiss"),)


def _transfer_to_real(specs: dict[str, BenchmarkSpec], runs: dict[str, dict], work: Path) -> dict[str, dict]:
    """Score the simulator-trained models on real images (``TRANSFER_CHECKS``), where present."""
    from heliobench.realism.reference import default_realdata

    out = {}
    for name, card_name, folder in TRANSFER_CHECKS:
        source = default_realdata() / folder
        if not source.is_dir():
            print(f"[demo] {name}: no real images at {source} (set HELIOBENCH_REALDATA): transfer to real data not scored")
            continue
        card, catalog = load_card(card_name), str(work / f"catalog-{card_name}")
        ingest([str(source)], catalog, progress=True)
        manifest, _ = make_manifest(load_catalog(catalog), card, card.default_split_scheme)
        uri = str(work / f"manifest-{card_name}.parquet")
        write_manifest(manifest, uri)
        size = specs[name].resolution_px
        shards = str(work / "shards" / f"{card_name}-{size}")
        write_shards(uri, card, shards, size_px=size, progress=True)
        metrics = evaluate_transfer(specs[name], runs[name]["run_id"], shards)
        out[name] = {"dataset": card_name, "source": str(source), "samples": sum(manifest.counts().values()),
                     "primary": specs[name].primary_metric, "metrics": metrics}
    return out


def run_demo(workdir: str, start: str, end: str, cadence: str, size: int, seed: int) -> dict:
    """The demo end to end; prints a summary and writes ``demo_summary.json``."""
    t0 = time.perf_counter()
    work = Path(workdir).resolve()
    archive, catalog = str(work / "archive"), str(work / "catalog")
    sim = simulate_archive(archive, start, end, cadence, size=size, seed=seed, progress=True)
    for first, stop in TRACKING_WINDOWS:
        simulate_archive(archive, first, stop, TRACKING_CADENCE, size=size, seed=seed, progress=True)
    _step("sim", t0)
    ing = ingest([archive], catalog, progress=True)
    _step("ingest", t0)
    tables = load_catalog(catalog)
    specs = _specs(size)
    splits = _split_all(tables, specs, work)
    _step("split + audit", t0)
    shards = _shard_all(specs, splits, size)
    _step("shard", t0)
    runs = _run_benchmarks(specs, t0)
    transfer = _transfer_to_real(specs, runs, work)
    _step("transfer to real data", t0)
    searches = _searches(specs, work, t0)
    realism_page, realism_rows = demo_report(work, archive)
    _step("realism report", t0)
    table = LeaderboardTable()
    html = write_leaderboard_html(table, list(specs.values()), str(work / "leaderboard"))
    frames = summarize(tables)
    with pl.Config(tbl_rows=40, tbl_hide_dataframe_shape=True, fmt_str_lengths=60):
        print("\n=== HelioBench demo summary ===")
        print(f"archive: {archive} ({sim}; plus {TRACKING_CADENCE} windows {TRACKING_WINDOWS} for tracking)")
        print(f"ingest: {ing.files_read} files in {ing.seconds:.1f} s = {ing.files_per_second:.1f} files/s; "
              f"{ing.total_observations} observations, {ing.total_labels} label files, {ing.total_quarantined} quarantined")
        print(frames["observations"].select("instrument", "channel", "files", "first", "last"))
        for key, s in splits.items():
            a = s["audit"]
            print(f"split {key}: samples {s['samples']}, unmatched references {s['unmatched']}, manifest hash {s['hash'][:16]}")
            print(f"  leakage audit: {'clean' if a['clean'] else 'LEAKS'} — observations {a['observations_in_two_splits']}, "
                  f"tracks {a['tracks_in_two_splits']}/{a['tracks_checked']}, regions {a['regions_in_two_splits']}/{a['regions_checked']}")
        for key, s in shards.items():
            print(f"shards {key}: {s['out']} samples {s['samples']} in {s['seconds']:.0f} s, preprocessing hash {s['preprocessing_hash'][:16]}")
        print(f"\n{'benchmark':<20} {'primary test metric':<34} {'train s':>8} {'total s':>8}  run")
        for name, r in runs.items():
            metric = f"{r['primary']} = {r['test'][r['primary']]:.3f}"
            print(f"{name:<20} {metric:<34} {r['train_seconds']:>8.0f} {r['seconds']:>8.0f}  {r['run_id']}")
        for name, t in transfer.items():
            print(f"{name} trained on the simulator, on {t['samples']} real images ({t['dataset']}, {t['source']}): "
                  f"{t['primary']} = {t['metrics'][t['primary']]:.3f}")
        for name, s in searches.items():
            print(f"tune {name}: {s['trials']} trials, best {s['metric']} = {s['best_metric']:.3f} (first trial "
                  f"{s['first_metric']:.3f}) with {s['best_config']}")
        close = sum(r.close for r in realism_rows if r.distance is not None)
        print(f"realism of the simulated archive: {close} of {sum(r.distance is not None for r in realism_rows)} statistics "
              f"close to the real data; report: {realism_page}")
        for spec in specs.values():
            print("\n" + format_leaderboard(rank(table, spec), "table", spec))
        print(f"\nwall time: {time.perf_counter() - t0:.0f} s; leaderboard page: {html}")
        if log_path():
            print(f"Ray's and MLflow's own log lines: {log_path()}")
        default = workspace() == (Path.cwd() / "work").resolve()
        print(f"the demo's leaderboard again: {'' if default else f'HELIOBENCH_WORKSPACE={workspace()} '}heliobench leaderboard")
    summary = {"ingest": ing.__dict__, "splits": splits, "shards": shards, "runs": runs, "transfer": transfer, "searches": searches,
               "realism": str(realism_page),
               "html": str(html), "seconds": time.perf_counter() - t0}
    (work / "demo_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary

"""The ``heliobench`` command: one verb per stage of the data flow.

Thin by design: it parses arguments, calls the package's public functions, and prints.
Errors a user can cause are printed as one clear line (exit status 2), not a traceback; a
job that finished but failed on more than the allowed share of its files exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import polars as pl

from heliobench import __version__, logfile
from heliobench.errors import ConfigError, HelioBenchError, ReaderError, StorageError
from heliobench.failures import DEFAULT_MAX_SHARE, TooManyFailures
from heliobench.tracking.submission_format import SUBMISSION_FORMAT
from heliobench.workspace import log_file

VERBS: dict[str, Callable[[argparse.Namespace], int]] = {}

#: Where a verb's result goes: the caller's standard output. While a verb runs, the process's
#: standard output is standard error, so that Ray's worker and raylet log lines never mix
#: into the JSON or table a verb prints (``heliobench train ... | jq .run_id`` works).
_result_stream = sys.stdout


def emit(*values: object) -> None:
    """Print a verb's result (to the standard output the command was started with)."""
    print(*values, file=_result_stream, flush=True)


def verb(name: str) -> Callable:
    """Register a handler for ``heliobench NAME``."""

    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        VERBS[name] = fn
        return fn

    return deco


def inclusive_end(end: str) -> str:
    """The exclusive end time of a range whose last day ``end`` (YYYY-MM-DD) is included."""
    from datetime import date, timedelta

    try:
        return (date.fromisoformat(end) + timedelta(days=1)).isoformat()
    except ValueError:
        return end  # a full time stamp is taken as the exclusive end


def _print_frames(frames: dict[str, pl.DataFrame]) -> None:
    with pl.Config(tbl_rows=60, tbl_cols=12, fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
        for title, df in frames.items():
            emit(f"\n{title}:")
            emit(df if df.height else "  (none)")


def _share(text: str) -> float:
    """A share of files given as a fraction (``0.05``) or a percentage (``5%``)."""
    try:
        share = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a share between 0 and 1, or a percentage such as 5%")
    return share


def _completed(run: Callable[[], Any], report: Callable[[Any], None]) -> int:
    """Run a job and report its result, also when the job failed for having too many bad
    files after finishing (:class:`TooManyFailures`, re-raised for :func:`main` to report)."""
    try:
        result = run()
    except TooManyFailures as exc:
        report(exc.result)
        raise
    report(result)
    return 0


@verb("sim")
def _sim(a: argparse.Namespace) -> int:
    from heliobench.archive.sim import simulate_archive

    s = simulate_archive(a.out, a.start, inclusive_end(a.end), a.cadence, size=a.size, seed=a.seed, halpha_size=a.halpha_size, progress=not a.quiet)
    emit(json.dumps(s.__dict__ if hasattr(s, "__dict__") else s, indent=1, default=str))
    return 0


@verb("sim-report")
def _sim_report(a: argparse.Namespace) -> int:
    from heliobench.realism import ReportSettings, format_table, realism_report
    from heliobench.realism.report import parse_day

    try:
        settings = ReportSettings(size=a.size, seed=a.seed, days=tuple(parse_day(d) for d in a.days or ()),
                                  cycle_cadence_days=a.cycle_cadence, magnetogram_steps=a.magnetogram_steps,
                                  real_limit=a.real_limit)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    rows = realism_report(a.out, realdata=a.realdata, settings=settings, archive=a.archive, progress=not a.quiet)
    emit(format_table(rows))
    emit(f"\nreport: {os.path.join(a.out, 'index.html')} (table as JSON: {os.path.join(a.out, 'realism.json')})")
    return 0


@verb("ingest")
def _ingest(a: argparse.Namespace) -> int:
    from heliobench.catalog.ingest import ingest

    def report(s) -> None:
        skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(s.skipped.items()))
        emit(
            f"ingest: {s.files_seen} files seen, {s.files_read} read ({s.unchanged} unchanged), "
            f"{s.new_observations} observations, {s.new_labels} label files, {s.new_quarantined} quarantined "
            f"in {s.seconds:.1f} s ({s.files_per_second:.1f} files/s)\n"
            + (f"skipped by type, not read: {skipped}\n" if skipped else "")
            + f"catalog {a.catalog}: {s.total_observations} observations, {s.total_labels} label files, "
            f"{s.total_quarantined} in quarantine"
        )

    return _completed(lambda: ingest(a.sources, a.catalog, download_dir=a.download_dir, progress=not a.quiet,
                                     max_quarantine=a.max_quarantine), report)


@verb("catalog")
def _catalog(a: argparse.Namespace) -> int:
    from heliobench.catalog.summary import summarize
    from heliobench.catalog.tables import load_catalog
    from heliobench.specs import load_card

    frames = summarize(load_catalog(a.catalog), load_card(a.card) if a.card else None)
    if a.json:
        emit(json.dumps({k: v.to_dicts() for k, v in frames.items()}, indent=1, default=str))
    else:
        _print_frames(frames)
    return 0


@verb("split")
def _split(a: argparse.Namespace) -> int:
    from heliobench.catalog.audit import audit
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.specs import load_card
    from heliobench.storage import join

    card = load_card(a.card)
    scheme = a.scheme or card.default_split_scheme
    tables = load_catalog(a.catalog)
    manifest, paired = make_manifest(tables, card, scheme)
    out = a.out or join(a.catalog, f"manifest-{card.name}-{scheme}.parquet")
    write_manifest(manifest, out)
    report = audit(manifest, tables, card)
    result = {
        "manifest": out,
        "content_hash": manifest.content_hash,
        "samples": manifest.counts(),
        "references": paired.references,
        "unmatched_by_member": paired.unmatched_by_member,
        "removed_by_rule": paired.removed_by_rule,
        "dropped_in_buffer": manifest.metadata["dropped_in_buffer"],
        "outside_splits": manifest.metadata["outside_splits"],
        "leakage_audit": report.summary(),
    }
    emit(json.dumps(result, indent=1, default=str))
    return 0 if report.clean or not a.fail_on_leak else 1


@verb("shard")
def _shard(a: argparse.Namespace) -> int:
    from heliobench.shards import write_shards
    from heliobench.specs import load_card

    return _completed(lambda: write_shards(a.manifest, load_card(a.card), a.out, size_px=a.size, splits=tuple(a.split),
                                           samples_per_shard=a.samples_per_shard, members=tuple(a.members) if a.members else None,
                                           progress=not a.quiet, max_skipped=a.max_quarantine),
                      lambda s: emit(json.dumps(s.__dict__, indent=1)))


@verb("inspect")
def _inspect(a: argparse.Namespace) -> int:
    from heliobench.archive.readers import format_inspection, inspect_uri

    info = inspect_uri(a.uri)
    emit(json.dumps(info, indent=1, default=str) if a.json else format_inspection(info))
    return 0


@verb("demo")
def _demo(a: argparse.Namespace) -> int:
    from heliobench.demo import run_demo

    run_demo(a.workdir, start=a.start, end=inclusive_end(a.end), cadence=a.cadence, size=a.size, seed=a.seed)
    return 0


def _bench(a: argparse.Namespace, plugin: bool = False):
    """The verb's benchmark spec: on ``--dataset``, with the ``--model`` plug-in (``plugin``) and ``--set`` overrides."""
    from heliobench.specs import load_benchmark

    spec = load_benchmark(a.benchmark).on_dataset(a.dataset)
    if plugin and a.model:
        from heliobench.models import with_plugin

        spec = with_plugin(spec, a.model)
    return spec.with_overrides(a.set) if getattr(a, "set", None) else spec


def _shards(a: argparse.Namespace, spec) -> str:
    from heliobench.engine.data import default_shards

    return a.shards or default_shards(spec)


@verb("train")
def _train(a: argparse.Namespace) -> int:
    from heliobench.engine.train import train

    spec = _bench(a, plugin=True)
    if a.epochs:
        spec = spec.with_overrides([f"training.epochs={a.epochs}"])
    workers = a.workers or spec.training.workers
    print(f"train {spec.name}: model {spec.model.name} ({'plug-in' if spec.model.factory else 'reference'}), "
          f"{workers} worker(s), {spec.training.epochs} epoch(s), dataset {spec.dataset}/{spec.split_scheme} at {spec.resolution_px} px")
    r = train(spec, _shards(a, spec), workers=workers, use_gpu=a.gpu, tracking_uri=a.tracking_uri, storage=a.storage,
              run_name=a.run_name, resume=a.resume, progress=not a.quiet)
    val = {k: round(v, 4) for k, v in r.metrics.items() if k.startswith("val_") or k in ("train_loss", "worker_hours")}
    emit(json.dumps({"run_id": r.run_id, "run_name": r.run_name, "seconds": round(r.seconds, 1), "metrics": val}, indent=1))
    return 0


@verb("evaluate")
def _evaluate(a: argparse.Namespace) -> int:
    from heliobench.engine.evaluate import evaluate, evaluate_transfer

    spec = _bench(a)
    if a.transfer:
        metrics = evaluate_transfer(spec, a.run, a.transfer, tracking_uri=a.tracking_uri, n_boot=a.bootstrap, model_ref=a.model)
        emit(json.dumps({"run_id": a.run, "transfer": a.transfer, "metrics": {k: round(v, 4) for k, v in metrics.items()}}, indent=1))
        return 0
    metrics = evaluate(spec, a.run, _shards(a, spec), tracking_uri=a.tracking_uri, n_boot=a.bootstrap, model_ref=a.model)
    emit(json.dumps({"run_id": a.run, "test": {k: round(v, 4) for k, v in metrics.items()}}, indent=1))
    return 0


@verb("predict")
def _predict(a: argparse.Namespace) -> int:
    from heliobench.engine.predict import predict_files

    options = {}
    for item in a.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = value.strip()

    def report(records: list[dict]) -> None:
        for r in records:
            emit(json.dumps({k: v for k, v in r.items() if isinstance(v, (str, int, float, list))}, default=str))

    return _completed(lambda: predict_files(_bench(a), a.run, a.inputs, a.out, tracking_uri=a.tracking_uri, options=options,
                                            max_failed=a.max_quarantine), report)


@verb("tune")
def _tune(a: argparse.Namespace) -> int:
    from heliobench.engine.tune import tune_benchmark
    from heliobench.specs import load_search_space

    spec = _bench(a, plugin=True)
    s = tune_benchmark(spec, load_search_space(a.space or spec.name), _shards(a, spec), num_samples=a.num_samples,
                       scheduler=a.scheduler, resume=a.resume, tracking_uri=a.tracking_uri, storage=a.storage, name=a.name,
                       use_gpu=a.gpu, progress=not a.quiet)
    emit(json.dumps(s.__dict__, indent=1, default=str))
    return 0


@verb("leaderboard")
def _leaderboard(a: argparse.Namespace) -> int:
    from heliobench.specs import load_benchmark, project_root
    from heliobench.tracking.html import write_leaderboard_html
    from heliobench.tracking.leaderboard import LeaderboardTable, datasets_ranked, format_leaderboard, rank

    table = LeaderboardTable()
    names = [a.benchmark] if a.benchmark else sorted(p.stem for p in (project_root() / "benchmarks").glob("*.yaml"))
    specs = [load_benchmark(n) for n in names]
    if a.rebuild:
        from heliobench.tracking.runs import connect

        emit(f"leaderboard: {table.rebuild_from_mlflow(connect(a.tracking_uri), specs)} entries rebuilt from MLflow into {table.uri}")
    if a.html:
        emit(f"leaderboard page: {write_leaderboard_html(table, specs, a.html, tracking_uri=a.tracking_uri)}")
        return 0
    for base in specs:
        for card in [a.dataset] if a.dataset else datasets_ranked(table, base):
            spec = base.on_dataset(card)
            emit(("\n" if a.format == "table" else "") + format_leaderboard(rank(table, spec), a.format, spec, wide=a.wide))
    return 0


@verb("submit")
def _submit(a: argparse.Namespace) -> int:
    from heliobench.engine.submit import submit

    spec = _bench(a)
    entry = submit(spec, a.predictions, a.name, _shards(a, spec), tracking_uri=a.tracking_uri)
    emit(json.dumps({"entry": entry.entry_id, "model": entry.model, "metrics": entry.metrics}, indent=1, default=str))
    return 0


def _max_quarantine_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--max-quarantine", type=_share, default=DEFAULT_MAX_SHARE, metavar="SHARE",
                        help=f"exit with status 1, after finishing, when more than this share {what} "
                             f"(a fraction or a percentage; default {DEFAULT_MAX_SHARE * 100:g}%%, 1 for no limit)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb (each with its own ``--help``)."""
    p = argparse.ArgumentParser(prog="heliobench", description="HelioBench: solar-physics deep-learning benchmarks on Ray and MLflow.")
    p.add_argument("--version", action="version", version=f"heliobench {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", help="Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray on 127.0.0.1)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--verbose", action="store_true", help="show Ray's and MLflow's own log lines and the Ray workers' output "
                                                                "(default: written to WORKSPACE/logs/heliobench.log)")

    s = sub.add_parser("sim", parents=[common], help="write a simulated SDO/AIA, SDO/HMI and Kanzelhöhe H-alpha archive with labels",
                       description="Simulate an archive format-identical to JSOC exports (AIA level 1, hmi.M_720s) and Kanzelhöhe H-alpha, with coronal-hole/active-region masks, HEK events, NOAA SRS files and H-alpha quality labels. Deterministic by seed; parallel on Ray.")
    s.add_argument("out", help="output folder or s3:// prefix")
    s.add_argument("--start", default="2011-01-01", help="first time step (UTC, default 2011-01-01)")
    s.add_argument("--end", default="2017-12-31", help="last day, included (UTC, default 2017-12-31); a full time stamp is an exclusive end")
    s.add_argument("--cadence", default="6h", help="time between steps, e.g. 12min, 6h, 7d (default 6h)")
    s.add_argument("--size", type=int, default=512, help="AIA/HMI image size in pixels (default 512; real data is 4096)")
    s.add_argument("--halpha-size", type=int, default=None, help="H-alpha image size in pixels (default: --size)")
    s.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same Sun (default 0)")

    s = sub.add_parser("sim-report", parents=[common], help="how close the simulated archive is to real data: a table of distances and an HTML page",
                       description="Simulate what the comparison needs (each real image's own date and time, SRS reports across the "
                       "Kislovodsk years and magnetograms for tilts) and compare it with the real files: on-disk intensity "
                       "histograms, limb profiles and power spectra per channel against AIA, EIT, SWAP and JP2/PNG images; "
                       "coronal-hole area and contrast against the CHRONNOS masks; sunspot-group areas, latitudes (Spörer), "
                       "tilts (Joy) and spot counts against the Kislovodsk table; Mount Wilson classes against NOAA SRS; "
                       "HMI fields against HMI and MDI magnetograms. Published values stand in where real files are absent. "
                       "Prints the table and writes OUT/index.html, the figures and OUT/realism.json. The simulation runs as "
                       "Ray tasks writing to a temporary local folder: with a remote --address, simulate with `heliobench sim` "
                       "to shared storage and pass --archive.")
    s.add_argument("--out", default="work/sim_report", help="report folder (default work/sim_report)")
    s.add_argument("--realdata", default=None, help="folder of real files laid out as ../shared/realdata (default "
                   "$HELIOBENCH_REALDATA, else ../shared/realdata beside the project); absent: published values only")
    s.add_argument("--size", type=int, default=512, help="simulated AIA/HMI image size in pixels (default 512); real images "
                   "are compared at the coarser resolution of the two")
    s.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    s.add_argument("--days", nargs="+", metavar="DAY", help="simulate these UTC days or times (2014-07-15, "
                   "2014-07-15T12:00) for the image statistics instead of each real file's own date and time")
    s.add_argument("--cycle-cadence", type=int, default=10, metavar="DAYS", help="an SRS report every DAYS days over the "
                   "Kislovodsk years 2010-2020 for the sunspot-group statistics (default 10)")
    s.add_argument("--magnetogram-steps", type=int, default=40, metavar="N", help="full time steps spread over those "
                   "years whose HMI magnetograms give the tilts for Joy's law (default 40)")
    s.add_argument("--real-limit", type=int, default=None, metavar="N", help="use at most N real images of each kind "
                   "(default all)")
    s.add_argument("--archive", help="measure this simulated archive (written by `heliobench sim`) instead of simulating; "
                   "--size, --seed, --days, --cycle-cadence and --magnetogram-steps are then unused")

    s = sub.add_parser("ingest", parents=[common], help="catalogue archive files (folders, s3:// prefixes, JSOC queries) into parquet",
                       description="Read every file's header in parallel with Ray Data into CATALOG/catalog.parquet (observations), labels.parquet (label files) and quarantine.parquet (unreadable or invalid files with the stage and reason; one bad file never stops the run). Files of types no reader takes (netCDF, HDF5, zarr chunks, READMEs, checksum lists) are counted as skipped and never downloaded. Incremental: unchanged files are not read again.")
    s.add_argument("sources", nargs="+", metavar="SOURCE", help="a local path, s3://bucket/prefix (endpoint from AWS_ENDPOINT_URL), jsoc:SERIES[RECORDSET], hek:AR,CH[START/END][@FRM] (HEK events, a JSON file per day), srs:START/END (NOAA SRS reports), helioviewer:AIA_193[START/END@CADENCE] (Helioviewer JP2) or kso:START/END (Kanzelhöhe H-alpha); START/END in ISO 8601 UTC, a date-only END included; service URLs from HELIOBENCH_{JSOC,HEK,SRS,HELIOVIEWER,KSO}_URL")
    s.add_argument("--catalog", required=True, help="catalog folder (local or s3://) to create or update")
    s.add_argument("--download-dir", help="where fetched files are downloaded (needed for jsoc:, hek:, srs:, helioviewer: and kso: sources)")
    _max_quarantine_option(s, "of the files read go to quarantine")

    s = sub.add_parser("catalog", parents=[common], help="summarise a catalog: counts per instrument, channel, year; labels; quarantine")
    s.add_argument("catalog", help="catalog folder written by `heliobench ingest`")
    s.add_argument("--json", action="store_true", help="print JSON instead of tables")
    s.add_argument("--card", help="dataset card whose selection rules (require:) to count: observations each rule removes, per member")

    s = sub.add_parser("split", parents=[common], help="pair observations and freeze a temporal split manifest, with a leakage audit",
                       description="Pair the card's members in time, assign samples to train/val/test by the named split scheme, write a frozen manifest (parquet) and print its content hash and a leakage audit (observations, HEK tracks and NOAA regions in two splits).")
    s.add_argument("card", help="dataset card: a name in datasets/ (e.g. sdo_sim) or a path inside it")
    s.add_argument("--catalog", required=True, help="catalog folder")
    s.add_argument("--scheme", help="split scheme of the card (default: the card's default_scheme, else its first; the SDO cards' "
                                    "park2019 is Park et al. 2019's split, strict adds a Carrington-rotation buffer)")
    s.add_argument("--out", help="manifest path (default CATALOG/manifest-CARD-SCHEME.parquet)")
    s.add_argument("--fail-on-leak", action="store_true", help="exit with status 1 when the audit finds a leak")

    s = sub.add_parser("shard", parents=[common], help="preprocess a manifest's samples into model-ready shards (resumable)",
                       description="Read, preprocess (versioned steps, recorded with their hash) and register every sample of a manifest, writing parquet tensor shards per split with Ray Data. A sample with a bad member file is left out and listed in OUT/skipped_samples.parquet with the file, stage and reason. Rerunning writes only missing shards.")
    s.add_argument("manifest", help="manifest written by `heliobench split`")
    s.add_argument("--card", required=True, help="the manifest's dataset card")
    s.add_argument("--out", required=True, help="shard folder (local or s3://)")
    s.add_argument("--size", type=int, default=256, help="output resolution in pixels (default 256)")
    s.add_argument("--split", nargs="+", default=["train", "val", "test"], choices=["train", "val", "test"], help="splits to shard (default all)")
    s.add_argument("--samples-per-shard", type=int, default=32, help="samples per shard file (default 32)")
    s.add_argument("--members", nargs="+", metavar="KEY", help="only these member keys of the card (default all)")
    _max_quarantine_option(s, "of the samples prepared are skipped for a bad member file, listed in OUT/skipped_samples.parquet")

    s = sub.add_parser("inspect", parents=[common], help="show what HelioBench's readers understand of a file")
    s.add_argument("uri", help="a FITS, .fts.gz, JP2, SRS, HEK JSON or SCSS label file (local or s3://)")
    s.add_argument("--json", action="store_true", help="print JSON")

    eng = argparse.ArgumentParser(add_help=False)
    eng.add_argument("benchmark", help="benchmark spec: a name in benchmarks/ (e.g. ch_segmentation) or a path inside it")
    eng.add_argument("--dataset", metavar="CARD", help="run the benchmark on another dataset card (e.g. aia193_ch_pairs): its split "
                                                     "scheme and the spec's settings for it (`datasets:` in the spec); default: the spec's own")
    eng.add_argument("--shards", help="shard folder (default WORKSPACE/shards/DATASET-SCHEME-RESOLUTION)")
    eng.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite in the workspace $HELIOBENCH_WORKSPACE)")

    plug = argparse.ArgumentParser(add_help=False)
    plug.add_argument("--model", metavar="MODULE:CALLABLE", help="a model of your own instead of the reference one: a factory "
                      "(package.module:callable, or path/to/file.py:callable) returning a torch.nn.Module with the task's inputs "
                      "and the reference model's outputs; called with the benchmark spec if it takes an argument (model.params from "
                      "--set model.params.K=V). The run records its name, source SHA-256 and parameter count; its leaderboard row "
                      "says plug-in")

    s = sub.add_parser("train", parents=[common, eng, plug], help="train a benchmark's reference model (or --model yours) on Ray Train, tracked in MLflow",
                       description="Train with Ray Train's TorchTrainer: train split streamed from the shards with Ray Data and split across workers (a split small enough is kept in each worker's memory after the first epoch), a checkpoint every epoch, retries from the last checkpoint on failure. Logs parameters, per-epoch metrics, provenance hashes, the model (safetensors) and a validation figure to MLflow.")
    s.add_argument("--workers", type=int, help="training workers (default: the spec's training.workers)")
    s.add_argument("--gpu", action="store_true", help="one GPU per worker (mixed precision is up to the task)")
    s.add_argument("--epochs", type=int, help="epochs (shortcut for --set training.epochs=E)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value, e.g. training.lr=3e-4, model.params.base_filters=16 or resolution_px=128 (repeatable)")
    s.add_argument("--storage", help="checkpoint storage: folder or s3://bucket/prefix (default WORKSPACE/ray_results)")
    s.add_argument("--run-name", help="run name (default BENCH-MODEL-sSEED-TIME); with --resume, the run to continue")
    s.add_argument("--resume", action="store_true", help="continue the run named by --run-name from its latest checkpoint")

    s = sub.add_parser("evaluate", parents=[common, eng], help="score a run's model on the frozen test split and add it to the leaderboard")
    s.add_argument("--run", required=True, help="MLflow run id of a training run")
    s.add_argument("--model", metavar="MODULE:CALLABLE", help="for a run of a plug-in: load the plug-in from here instead of "
                   "the reference recorded at training (moved files, another machine); its source must hash as at training")
    s.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals (default 1000)")
    s.add_argument("--transfer", metavar="SHARDS", help="instead of the test split, score every sample of SHARDS: shards of another "
                   "dataset with the benchmark's members at its resolution (e.g. real images with masks for a model trained on the "
                   "simulated archive); logs transfer_CARD_* metrics on the run and adds nothing to the leaderboard")

    s = sub.add_parser("predict", parents=[common, eng], help="run a trained model on your files (FITS, JP2, PNG)")
    s.add_argument("--run", required=True, help="MLflow run id whose model to use")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="input files (local or s3://)")
    s.add_argument("--out", required=True, help="output folder (masks, boxes and cut-outs, translated channels or quality maps, with figures)")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="task option, repeatable: segmentation threshold=0.5; event_tracking box=X0,Y0,X1,Y1 (pixels on the "
                        "registered grid of the first input); ar_detection coverage=0.5; halpha_quality threshold=SCORE")
    _max_quarantine_option(s, "of the inputs cannot be read or preprocessed (each gets an error record)")

    s = sub.add_parser("tune", parents=[common, eng, plug], help="hyperparameter search with Ray Tune (ASHA), trials as MLflow child runs")
    s.add_argument("--space", help="search space YAML in tune_spaces/ (default: the benchmark's name)")
    s.add_argument("--num-samples", type=int, help="trials to sample (default: the space's num_samples)")
    s.add_argument("--scheduler", choices=["asha", "fifo"], default="asha", help="trial scheduler (default asha)")
    s.add_argument("--resume", action="store_true", help="resume the interrupted search named by --name")
    s.add_argument("--name", help="search name (default tune-BENCH)")
    s.add_argument("--storage", help="trial storage: folder or s3://bucket/prefix (default WORKSPACE/ray_results)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed overrides of the spec for every trial")
    s.add_argument("--gpu", action="store_true", help="one GPU per trial (default: one CPU per trial)")

    s = sub.add_parser("leaderboard", parents=[common], help="rank models per benchmark (table, JSON, CSV or an HTML page)")
    s.add_argument("benchmark", nargs="?", help="one benchmark (default: all)")
    s.add_argument("--dataset", metavar="CARD", help="only the rows scored on this dataset card (default: every card, each ranked apart)")
    s.add_argument("--split", default="test", choices=["test"], help="the split ranked (only the frozen test split is ranked)")
    s.add_argument("--format", default="table", choices=["table", "json", "csv"], help="output format (default table: rank, model, "
                   "source, primary metric with its 95%% interval, seeds, compute, date, submitters; then the published results)")
    s.add_argument("--wide", action="store_true", help="the table with every column (all metrics, parameters, hashes)")
    s.add_argument("--html", metavar="DIR", help="write a static page for all benchmarks with plots into DIR")
    s.add_argument("--rebuild", action="store_true", help="first rebuild the table from the MLflow runs marked for the leaderboard (the source of truth)")
    s.add_argument("--tracking-uri", help="MLflow tracking URI for --rebuild and the page's run links (default $MLFLOW_TRACKING_URI, else the workspace's sqlite store)")

    s = sub.add_parser("submit", parents=[common, eng], help="score an outside model's test predictions and record them on the leaderboard",
                       description=SUBMISSION_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--predictions", required=True, help="the .npz file described above")
    s.add_argument("--name", required=True, help="model name shown on the leaderboard")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="spec overrides the shards were made "
                   "with, e.g. resolution_px=128 for the demo's shards (repeatable)")

    s = sub.add_parser("demo", parents=[common], help="run the whole pipeline on a small simulated archive",
                       description="The whole platform on a small simulated archive under WORKDIR: sim → ingest → split and "
                       "leakage audit of every card → shards → a short train, evaluate and leaderboard run of every "
                       "benchmark → an ASHA search, four channel-selection models and the tracking baselines; "
                       "prints each benchmark's test metric and wall time and writes WORKDIR/demo_summary.json. Runs, shards and "
                       "the leaderboard table go to the workspace ($HELIOBENCH_WORKSPACE, default ./work), so that "
                       "`heliobench leaderboard` from the same folder shows the demo's table.")
    s.add_argument("--workdir", default="work/demo", help="the demo's archive, catalog, manifests and pages (default work/demo)")
    s.add_argument("--start", default="2011-01-01", help="archive start (default 2011-01-01)")
    s.add_argument("--end", default="2017-12-31", help="archive end (default 2017-12-31)")
    s.add_argument("--cadence", default="10d", help="archive cadence (default 10d)")
    s.add_argument("--size", type=int, default=128, help="image and shard size (default 128, to fit a CPU; the benchmark's own is 256)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``heliobench`` command."""
    args = build_parser().parse_args(argv)
    if args.address:
        os.environ["RAY_ADDRESS"] = args.address
    log = None if args.verbose else logfile.quiet(log_file(), " ".join(sys.argv[1:] if argv is None else argv))
    global _result_stream
    _result_stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return VERBS[args.verb](args)
    except TooManyFailures as exc:
        print(f"heliobench {args.verb}: {exc}", file=sys.stderr)
        return 1
    except HelioBenchError as exc:
        about_input = isinstance(exc, (ReaderError, StorageError, ConfigError))  # the file or setting is the whole story
        hint = f" (Ray's and MLflow's log lines: {log})" if log and log.exists() and not about_input else ""
        print(f"heliobench {args.verb}: error: {exc}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

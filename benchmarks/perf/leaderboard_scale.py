"""Leaderboard scale: :func:`heliobench.tracking.leaderboard.rank` over a LeaderboardTable of
10,000 entries, against a naive ``mlflow.search_runs`` over 10,000 runs in a sqlite store.

Entries and runs describe the same thing: the ``ch_segmentation`` benchmark, 2,500
configurations x 4 seeds, each with the benchmark's 8 test metrics plus the primary
metric's bootstrap bounds, 12 parameters and the identity tags a HelioBench run carries.

* rank(): reads the parquet table and ranks it (as ``heliobench leaderboard`` does); median
  of 5 calls after a warm-up.
* naive: ``mlflow.search_runs(filter_string="tags.`heliobench.leaderboard` = '1'")`` into a
  pandas frame, then group the seeds of a configuration, mean of the primary metric and
  rank (the same answer); after a warm-up query on the store, fastest of 2.

The MLflow store is created once and cached (``work/bench/mlflow-N/``): the first
``API_RUNS`` runs with ``MlflowClient.create_run`` + ``log_batch``, the rest written straight
into the store's tables with the rows those calls write (the first API run's row as the
template for the ``runs`` table; tags, params, metrics and latest metrics of each run), which
takes seconds instead of the ~25 ms of CPU that each API run costs here. The bulk runs are
checked against an API run (the same tags, params and metrics keys; ``get_run`` reads them).
Should that check fail (another MLflow schema), every run goes through the API (2 processes);
when the first 100 then project the creation to more than 5 minutes, it creates 2,000 runs
instead, times the naive query at 1,000 and 2,000 runs and extrapolates linearly to 10,000
(the row says so).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import common
from common import row

SIZES = {"full": {"entries": 10_000, "seeds": 4, "fallback": 2_000, "procs": 2},
         "tiny": {"entries": 40, "seeds": 4, "fallback": 20, "procs": 1}}
BENCHMARK = "ch_segmentation"
CREATE_BUDGET_S = 300.0
#: Runs created through the MLflow API before the rest are written in bulk.
API_RUNS = 100
TIME_TARGET_S = 2.0
SPEEDUP_TARGET = 10.0
MODELS = ("scss_net", "unet", "deeplabv3", "segformer", "cnn_baseline")


def _run_content(i: int, seeds: int, spec) -> dict[str, Any]:
    """Tags, params and test metrics of the i-th run (configuration i // seeds, seed i % seeds)."""
    import numpy as np

    config, seed = divmod(i, seeds)
    rng = np.random.default_rng(i)
    model = MODELS[config % len(MODELS)]
    quality = 0.55 + 0.3 * ((config * 7919) % 1000) / 1000
    metrics = {f"test_{m}": float(quality + rng.normal(0, 0.01)) for m in spec.metrics}
    p = spec.primary_metric
    metrics[f"test_{p}_ci_low"] = metrics[f"test_{p}"] - 0.02
    metrics[f"test_{p}_ci_high"] = metrics[f"test_{p}"] + 0.02
    params = {
        "benchmark": spec.name, "task": spec.task, "dataset": spec.dataset, "split_scheme": spec.split_scheme,
        "resolution_px": "256", "model": model, "training.epochs": str(10 + config % 5),
        "training.batch_size": str(8 * (1 + config % 3)), "training.lr": f"{1e-3 * (1 + config % 11):.4g}",
        "training.seed": str(seed), "n_parameters": str(1_000_000 + config), "workers": "2",
    }
    tags = {
        "heliobench.benchmark": spec.name, "heliobench.kind": "train", "heliobench.model": model,
        "heliobench.manifest_hash": "f" * 64, "heliobench.leaderboard": "1", "mlflow.user": f"user{config % 37}",
    }
    return {"config": config, "seed": seed, "model": model, "metrics": metrics, "params": params, "tags": tags}


def build_table(uri: str, entries: int, seeds: int) -> int:
    """A LeaderboardTable at ``uri`` with ``entries`` entries (written in one go)."""
    from heliobench.specs import load_benchmark
    from heliobench.tracking.leaderboard import LeaderboardEntry, LeaderboardTable, config_key

    spec = load_benchmark(BENCHMARK)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(entries):
        c = _run_content(i, seeds, spec)
        identity = {k: v for k, v in c["params"].items() if k != "training.seed"} | {"tag:heliobench.model": c["model"]}
        rows.append(LeaderboardEntry(
            benchmark=spec.name, entry_id=f"run{i:06d}", kind="run", model=c["model"], config_key=config_key(identity),
            seed=c["seed"], metrics={k.removeprefix("test_"): v for k, v in c["metrics"].items()},
            n_parameters=int(c["params"]["n_parameters"]), worker_hours=0.5, dataset_hash="f" * 64,
            submitter=c["tags"]["mlflow.user"], created=start + timedelta(minutes=i), dataset=spec.dataset))
    if Path(uri).exists():
        Path(uri).unlink()
    LeaderboardTable(uri).add_entries(rows)
    return entries


def rank_child(uri: str, repeats: int = 5) -> dict[str, Any]:
    """Median seconds of ``rank()`` over the table at ``uri`` (after a warm-up call)."""
    from heliobench.specs import load_benchmark
    from heliobench.tracking.leaderboard import LeaderboardTable, rank

    spec = load_benchmark(BENCHMARK)
    table = LeaderboardTable(uri)
    ranked = rank(table, spec)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ranked = rank(table, spec)
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "all_s": times, "rows_ranked": ranked.height,
            "entries": table.read().height}


def _create_runs(db: str, experiment_id: str, indices: list[int], seeds: int) -> float:
    """Create the runs ``indices`` (tags at creation, then one ``log_batch``); seconds taken."""
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from heliobench.specs import load_benchmark

    spec = load_benchmark(BENCHMARK)
    client = MlflowClient(f"sqlite:///{db}")
    t0 = time.perf_counter()
    for i in indices:
        c = _run_content(i, seeds, spec)
        run = client.create_run(experiment_id, run_name=f"run{i:06d}", tags=c["tags"])
        ts = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, ts, 0) for k, v in c["metrics"].items()],
                         params=[Param(k, v) for k, v in c["params"].items()])
    return time.perf_counter() - t0


def _bulk_runs(db: str, experiment_id: str, indices: list[int], seeds: int) -> None:
    """Write runs ``indices`` straight into the sqlite store, as ``create_run`` + ``log_batch`` would.

    The ``runs`` row copies the store's first run (the template: source, status, lifecycle,
    experiment) with this run's id, name, user, start time and artifact URI; tags, params
    and metrics (and latest metrics) are this run's content.
    """
    import sqlite3
    import uuid

    from heliobench.specs import load_benchmark

    spec = load_benchmark(BENCHMARK)
    con = sqlite3.connect(db)
    try:
        cur = con.execute("SELECT * FROM runs WHERE experiment_id = ? ORDER BY start_time LIMIT 1", (experiment_id,))
        columns = [d[0] for d in cur.description]
        template = dict(zip(columns, cur.fetchone()))
        extra_tags = [row for row in con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (template["run_uuid"],))
                      if row[0] not in _run_content(0, seeds, spec)["tags"] and row[0] != "mlflow.runName"]
        runs, tags, params, metrics = [], [], [], []
        t0 = int(time.time() * 1000)
        for i in indices:
            c = _run_content(i, seeds, spec)
            run_id, name, ts = uuid.uuid4().hex, f"run{i:06d}", t0 + i
            runs.append(template | {"run_uuid": run_id, "name": name, "user_id": c["tags"]["mlflow.user"],
                                    "start_time": ts,
                                    "artifact_uri": template["artifact_uri"].replace(template["run_uuid"], run_id)})
            tags += [(k, v, run_id) for k, v in {**c["tags"], "mlflow.runName": name}.items()]
            tags += [(k, v, run_id) for k, v in extra_tags]
            params += [(k, v, run_id) for k, v in c["params"].items()]
            metrics += [(k, v, ts, run_id) for k, v in c["metrics"].items()]
        with con:
            con.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            [tuple(r[c] for c in columns) for r in runs])
            con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
            con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
            con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, 0, 0)",
                            metrics)
            con.executemany("INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan) "
                            "VALUES (?, ?, ?, ?, 0, 0)", metrics)
    finally:
        con.close()


def _same_shape(db: str, api_run: str, bulk_run: str) -> bool:
    """Whether a bulk-written run reads back like an API-made one (the same tag, param and metric keys)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    a, b = client.get_run(api_run).data, client.get_run(bulk_run).data
    return (set(a.tags), set(a.params), set(a.metrics)) == (set(b.tags), set(b.params), set(b.metrics))


def _in_parallel(pool, db: str, experiment_id: str, indices: list[int], seeds: int, procs: int) -> None:
    """Create runs ``indices`` split over the ``pool``'s processes (here when ``pool`` is None)."""
    if pool is None:
        _create_runs(db, experiment_id, indices, seeds)
        return
    pool.starmap(_create_runs, [(db, experiment_id, indices[k::procs], seeds) for k in range(procs)])


def create_store_child(folder: str, entries: int, seeds: int, fallback: int, budget_s: float = CREATE_BUDGET_S,
                       procs: int = 2) -> dict[str, Any]:
    """A sqlite MLflow store with ``entries`` runs, created by ``procs`` processes; ``fallback`` runs
    instead when the first 100 project the creation beyond ``budget_s``. Cached in ``folder``."""
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    import json

    from mlflow.tracking import MlflowClient

    params_key = {"entries": entries, "seeds": seeds, "fallback": fallback, "version": 2}

    def build(path: Path) -> None:
        db = str(path / "mlflow.db")
        client = MlflowClient(f"sqlite:///{db}")
        exp = client.create_experiment(f"heliobench/{BENCHMARK}", artifact_location=str(path / "artifacts"))
        t0 = time.perf_counter()
        api = min(API_RUNS, entries)
        _create_runs(db, exp, list(range(api)), seeds)
        _bulk_runs(db, exp, list(range(api, entries)), seeds)
        runs = {r.info.run_name: r.info.run_id for r in client.search_runs([exp], max_results=entries + 1)}
        if len(runs) == entries and (api == entries or _same_shape(db, runs["run000000"], runs[f"run{entries - 1:06d}"])):
            info = {"runs": entries, "create_s": time.perf_counter() - t0, "api_runs": api, "bulk_runs": entries - api,
                    "processes": 1, "experiment_id": exp}
            (path / "store.json").write_text(json.dumps(info))
            return
        del client
        common.fresh(path)  # the bulk runs do not read back as API runs: every run through the API
        client = MlflowClient(f"sqlite:///{db}")
        exp = client.create_experiment(f"heliobench/{BENCHMARK}", artifact_location=str(path / "artifacts"))
        del client
        import multiprocessing

        t0 = time.perf_counter()
        pool = multiprocessing.get_context("spawn").Pool(procs) if procs > 1 else None
        try:
            probe = min(100, entries)
            _in_parallel(pool, db, exp, list(range(probe)), seeds, procs)
            projected = (time.perf_counter() - t0) / probe * entries
            target = fallback if projected > budget_s and entries > fallback else entries
            _in_parallel(pool, db, exp, list(range(probe, target)), seeds, procs)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        info = {"runs": target, "create_s": time.perf_counter() - t0, "projected_s": projected, "processes": procs,
                "api_runs": target, "bulk_runs": 0, "experiment_id": exp}
        (path / "store.json").write_text(json.dumps(info))

    common.cached(Path(folder), params_key, build)
    return json.loads((Path(folder) / "store.json").read_text())


def naive_child(folder: str, experiment_id: str, limits: list[int | None], seeds: int, repeats: int = 2) -> dict[str, Any]:
    """Seconds of the naive leaderboard (search_runs → pandas group/rank) for each run limit."""
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    import mlflow

    from heliobench.specs import load_benchmark

    spec = load_benchmark(BENCHMARK)
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
    p = f"metrics.test_{spec.primary_metric}"
    mlflow.search_runs(experiment_ids=[experiment_id], max_results=1)  # warm-up: engine, schema check

    def leaderboard(limit: int | None):
        df = mlflow.search_runs(experiment_ids=[experiment_id], filter_string="tags.`heliobench.leaderboard` = '1'",
                                max_results=limit or 100_000)
        config_cols = [c for c in df.columns if c.startswith("params.") and c != "params.training.seed"]
        config_cols.append("tags.heliobench.model")
        grouped = df.groupby(config_cols, dropna=False).agg(mean=(p, "mean"), std=(p, "std"), n_seeds=(p, "size")).reset_index()
        grouped["rank"] = grouped["mean"].rank(method="min", ascending=spec.direction != "maximize")
        return len(df), grouped.sort_values("rank")

    out = {}
    for limit in limits:
        times = []
        for _ in range(repeats):  # the fastest counts (the machine may be shared)
            t0 = time.perf_counter()
            n, ranked = leaderboard(limit)
            times.append(time.perf_counter() - t0)
        out[str(limit)] = {"seconds": min(times), "all_s": times, "runs": n, "configs": len(ranked)}
    return out


def run(size: str = "full", workdir: str | Path | None = None, isolate: bool = True) -> dict[str, Any]:
    """Leaderboard-scale benchmark: rows for the table and the raw measurements."""
    cfg = SIZES[size]
    root = common.workdir(workdir)
    n = cfg["entries"]
    table_uri = str(root / f"leaderboard-{n}.parquet")
    common.call(isolate, "leaderboard_scale", "build_table", {"uri": table_uri, "entries": n, "seeds": cfg["seeds"]})
    ranked = common.call(isolate, "leaderboard_scale", "rank_child", {"uri": table_uri})["result"]
    store = common.call(isolate, "leaderboard_scale", "create_store_child",
                        {"folder": str(root / f"mlflow-{n}"), "entries": n, "seeds": cfg["seeds"],
                         "fallback": cfg["fallback"], "procs": cfg["procs"]})["result"]
    runs = store["runs"]
    limits = [None] if runs >= n else [runs // 2, None]
    naive = common.call(isolate, "leaderboard_scale", "naive_child",
                        {"folder": str(root / f"mlflow-{n}"), "experiment_id": store["experiment_id"], "limits": limits,
                         "seeds": cfg["seeds"]})["result"]
    full = naive["None"]
    if runs >= n:
        naive_s, how = full["seconds"], f"{runs:,} runs"
    else:
        half = naive[str(runs // 2)]
        per_run = (full["seconds"] - half["seconds"]) / (full["runs"] - half["runs"])
        naive_s = full["seconds"] + per_run * (n - full["runs"])
        how = f"extrapolated from {half['runs']:,} and {full['runs']:,} runs"
    rows = [
        row(f"leaderboard: rank() over {n:,} entries", ranked["seconds"], "s", target=f"value < {TIME_TARGET_S:.0f} s",
            ok=ranked["seconds"] < TIME_TARGET_S),
        row(f"leaderboard: rank() vs naive mlflow.search_runs + pandas rank ({how})", ranked["seconds"], "s", naive_s,
            naive_s / ranked["seconds"], f"ratio >= {SPEEDUP_TARGET:.0f}", naive_s / ranked["seconds"] >= SPEEDUP_TARGET),
    ]
    return {"rows": rows, "details": {"rank": ranked, "store": store, "naive": naive, "naive_seconds": naive_s,
                                      "naive_basis": how, "size": size}}


if __name__ == "__main__":
    common.main_for(run)

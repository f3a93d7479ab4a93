"""Driver of the multi-node tests (run by ``tests/test_cluster.py`` in a process of its own).

A real Ray cluster on 127.0.0.1 (``ray.cluster_utils.Cluster``: a head and two worker
nodes of one CPU each, every node its own raylet and object store) runs, in turn:

1. ingest of the test archive while worker node A is killed in the middle of its tasks;
2. sharding of the same manifest while node A's replacement is killed mid-task;
3. an undisturbed 2-epoch training run with its two workers on two nodes;
4. the same run, the node of a training worker killed during epoch 1 (after the epoch-0
   checkpoint) and a node added back: Ray Train restores the group from the checkpoint;
5. a Tune search whose trials spread over the nodes.

Killed nodes are replaced by fresh ones (Ray Train waits for its full worker group).
Training and tuning run on a copy of the shards without the test split's files, and log
to the shared tracking server as the user of the tracking URI, with the workers on the
cluster's service account. The results (timings, rows and checksums compared, metrics,
node ids, what was found in the logs) go to a JSON file for the tests to check.

Usage: python tests/cluster_run.py CONFIG.json   (keys: see ``main``)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELIOBENCH = str(Path(sys.executable).parent / "heliobench")


def log(msg: str) -> None:
    print(f"[cluster_run {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Lab:
    """The cluster, its nodes, the drivers it ran, and the markers of the instrumented node.

    Nodes are added and removed from the main thread only (Ray's node start-up installs
    signal handlers); workloads run as driver processes joined with ``--address``/``RAY_ADDRESS``.
    """

    def __init__(self, work: Path, env: dict[str, str]):
        from ray.cluster_utils import Cluster

        self.work = work
        self.env = env
        self.markers = work / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)
        self.logs: list[Path] = []
        t0 = time.time()
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        })
        self.nodes = [self.add_node(), self.add_node()]
        log(f"cluster of 3 nodes up in {time.time() - t0:.1f} s at {self.cluster.address}")

    def add_node(self, slow_reads_s: float | None = None):
        env = {}
        if slow_reads_s is not None:
            env = {
                "PYTHONPATH": os.pathsep.join([str(HERE / "cluster_hooks"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "HELIOBENCH_TEST_MARKERS": str(self.markers),
                "HELIOBENCH_TEST_SLOW_READ_S": str(slow_reads_s),
            }
        return self.cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", env_vars=env or None)

    def replace(self, node, slow_reads_s: float | None = None) -> tuple[float, float]:
        """Kill ``node`` (every process of it, at once: SIGKILL) and add a fresh one."""
        t0 = time.time()
        self.cluster.remove_node(node, allow_graceful=False)
        self.nodes.remove(node)
        killed = time.time() - t0
        self.nodes.append(self.add_node(slow_reads_s))
        return killed, time.time() - t0

    def instrument(self, slow_reads_s: float):
        """Replace worker node A by one whose processes read slowly and leave markers."""
        for f in self.markers.glob("*"):
            f.unlink()
        self.replace(self.nodes[0], slow_reads_s)
        return self.nodes[-1]

    def marked_reads(self) -> int:
        return sum(len(f.read_text().splitlines()) for f in self.markers.glob("reads-*"))

    def driver(self, name: str, args: list[str]) -> subprocess.Popen:
        """A driver process on the cluster (its output in ``WORK/<name>.log``)."""
        path = self.work / f"{name}.log"
        self.logs.append(path)
        env = dict(self.env, RAY_ADDRESS=self.cluster.address)
        return subprocess.Popen(args, stdout=open(path, "w"), stderr=subprocess.STDOUT, env=env, cwd=str(HERE.parent))

    def finish(self, proc: subprocess.Popen, name: str, timeout_s: float = 900) -> None:
        code = proc.wait(timeout_s)
        if code != 0:
            raise RuntimeError(f"{name} driver exited with {code}:\n" + (self.work / f"{name}.log").read_text()[-3000:])

    def kill_when_busy(self, proc: subprocess.Popen, node, min_reads: int, timeout_s: float = 600) -> dict:
        """Kill ``node`` once its processes have read ``min_reads`` objects, add a node back."""
        deadline = time.time() + timeout_s
        while self.marked_reads() < min_reads and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        info = {"reads_before_kill": self.marked_reads()}
        if info["reads_before_kill"] < min_reads:
            info["error"] = f"the instrumented node read {info['reads_before_kill']} objects only"
            return info
        info["killed_at"] = time.time()
        info["kill_seconds"], info["kill_and_replace_seconds"] = self.replace(node)
        info["driver_still_running"] = proc.poll() is None
        log(f"killed node {node.node_id[:8]} after {info['reads_before_kill']} reads; replacement up")
        return info


def node_ids_of_placement_groups(min_bundles: int = 1) -> dict[str, set[str]]:
    """Node ids of the bundles of every live placement group (by placement group id)."""
    from ray.util.placement_group import placement_group_table

    out = {}
    for pg_id, pg in placement_group_table().items():
        if pg.get("state") == "CREATED" and len(pg.get("bundles", {})) >= min_bundles:
            out[pg_id] = set(pg.get("bundles_to_node_id", {}).values())
    return out


def catalog_rows(catalog: str, prefixes: list[str]) -> dict:
    """The catalog's rows of files under ``prefixes``, sorted, without the time of ingest."""
    from heliobench.catalog.tables import load_catalog

    tables = load_catalog(catalog)
    out = {}
    for name in ("observations", "labels", "quarantine"):
        df = getattr(tables, name)
        df = df.drop([c for c in df.columns if c == "ingested_at"])
        rows = [r for r in df.to_dicts() if any(str(r["uri"]).startswith(p) for p in prefixes)]
        out[name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return out


def phase_ingest(lab: Lab, cfg: dict, res: dict) -> None:
    sources = [str(Path(cfg["archive"]) / s) for s in cfg["ingest_sources"]]
    node = lab.instrument(slow_reads_s=0.05)
    catalog = str(lab.work / "catalog")
    t0 = time.time()
    proc = lab.driver("ingest", [HELIOBENCH, "ingest", *sources, "--catalog", catalog, "--quiet",
                                  "--address", lab.cluster.address])
    info = lab.kill_when_busy(proc, node, min_reads=10)
    lab.finish(proc, "ingest")
    seconds = time.time() - t0
    expected, got = catalog_rows(cfg["catalog"], sources), catalog_rows(catalog, [""])
    res.update(info, seconds=seconds, recovered_seconds=time.time() - info["killed_at"] if "killed_at" in info else None,
               rows={k: len(v) for k, v in got.items()}, expected_rows={k: len(v) for k, v in expected.items()},
               equal=expected == got,
               checksums_equal=sorted(json.loads(r).get("checksum") for r in got["observations"] + got["labels"]) ==
                               sorted(json.loads(r).get("checksum") for r in expected["observations"] + expected["labels"]))


def phase_shard(lab: Lab, cfg: dict, res: dict) -> None:
    manifest_uri = cfg["manifest"]  # the undisturbed run's manifest: the shards must come out identical
    node = lab.instrument(slow_reads_s=0.1)
    out = lab.work / "shards"
    t0 = time.time()
    proc = lab.driver("shard", [HELIOBENCH, "shard", manifest_uri, "--card", "sdo_sim", "--out", str(out), "--size", "64",
                                "--samples-per-shard", "16", "--members", "aia_171", "aia_193", "ch_mask", "ar_mask", "--quiet",
                                "--address", lab.cluster.address])
    info = lab.kill_when_busy(proc, node, min_reads=6)
    lab.finish(proc, "shard")
    seconds = time.time() - t0
    got = json.loads((out / "index.json").read_text())
    expected = json.loads((Path(cfg["shards"]) / "index.json").read_text())

    def digest(index: dict) -> list:
        return sorted((s["split"], Path(s["uri"]).name, s["sha256"], tuple(s["sample_ids"])) for s in index["shards"])

    on_disk = sorted((p.parent.name, p.name) for p in out.glob("*/*.parquet"))
    res.update(info, seconds=seconds, recovered_seconds=time.time() - info["killed_at"] if "killed_at" in info else None,
               shards=len(got["shards"]), expected_shards=len(expected["shards"]),
               equal=digest(got) == digest(expected),
               files_match_index=on_disk == sorted((s["split"], Path(s["uri"]).name) for s in got["shards"]),
               leftover_tmp=[p.name for p in out.rglob(".tmp-*")])


def training_shards(lab: Lab, res: dict) -> str:
    """A copy of the shards without the test split's files (the index still lists them)."""
    src, dst = lab.work / "shards", lab.work / "shards-no-test"
    shutil.copytree(src, dst)
    index = json.loads((dst / "index.json").read_text())
    for s in index["shards"]:
        s["uri"] = s["uri"].replace(str(src), str(dst))
    (dst / "index.json").write_text(json.dumps(index))
    removed = [s["uri"] for s in index["shards"] if s["split"] == "test"]
    for uri in removed:
        Path(uri).unlink()
    res["test_shards_removed"] = len(removed)
    # Two train shards are enough to train on (epochs are short; the runs compare to each other).
    train = [s for s in index["shards"] if s["split"] == "train"]
    for s in train[2:]:
        Path(s["uri"]).unlink()
    index["shards"] = [s for s in index["shards"] if s not in train[2:]]
    index["samples"]["train"] = sum(len(s["sample_ids"]) for s in train[:2])
    (dst / "index.json").write_text(json.dumps(index))
    return str(dst)


TINY = (
    "from heliobench.specs import load_benchmark\n"
    "spec = load_benchmark('ch_segmentation').with_overrides(['training.epochs={epochs}', 'training.batch_size=4',"
    " 'model.params.base_filters=4', 'model.params.depth=3']).model_copy(update={{'resolution_px': 64}})\n"
)


class PlacementWatcher:
    """Records the nodes of the placement groups that live while it runs."""

    def __init__(self):
        self.seen: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                for pg, nodes in node_ids_of_placement_groups().items():
                    self.seen.setdefault(pg, set()).update(nodes)
            except Exception:  # noqa: BLE001 - a node just died; try again
                pass
            time.sleep(0.2)

    def stop(self) -> dict[str, set[str]]:
        self._stop.set()
        self._thread.join(5)
        return self.seen


def tracking_client(cfg: dict):
    """A client with this process's credentials (the cluster's account), the URI's left out."""
    from urllib.parse import urlsplit, urlunsplit

    from mlflow.tracking import MlflowClient

    uri = cfg["tracking_uri"]
    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return MlflowClient(uri)


def run_info(cfg: dict, run_id: str) -> dict:
    client = tracking_client(cfg)
    run = client.get_run(run_id)
    restarts = client.get_metric_history(run_id, "restarts")
    return {"metrics": run.data.metrics, "tags": {k: v for k, v in run.data.tags.items() if k.startswith("heliobench.")},
            "status": run.info.status, "experiment": client.get_experiment(run.info.experiment_id).name,
            "user": run.data.tags.get("mlflow.user"),
            "restored_at": [m.timestamp / 1000 for m in restarts],
            "steps": sorted(m.step for m in client.get_metric_history(run_id, "train_loss"))}


def train_driver(lab: Lab, cfg: dict, name: str, shards: str) -> subprocess.Popen:
    code = TINY.format(epochs=2) + (
        "import json, sys\n"
        "from heliobench.engine.train import train\n"
        f"r = train(spec, {shards!r}, workers=2, storage={str(lab.work / 'ray_results')!r}, run_name={name!r})\n"
        f"open({str(lab.work / (name + '.json'))!r}, 'w').write(json.dumps({{'run_id': r.run_id}}))\n"
    )
    return lab.driver(name, [sys.executable, "-c", code])


def phase_train(lab: Lab, cfg: dict, res: dict, shards: str) -> None:
    watcher = PlacementWatcher()
    t0 = time.time()
    proc = train_driver(lab, cfg, "cluster-undisturbed", shards)
    lab.finish(proc, "cluster-undisturbed")
    seen = watcher.stop()
    run_id = json.loads((lab.work / "cluster-undisturbed.json").read_text())["run_id"]
    res.update(seconds=time.time() - t0, run_id=run_id, worker_group_nodes=[sorted(n) for n in seen.values() if len(n) >= 2],
               **run_info(cfg, run_id))


def phase_train_fault(lab: Lab, cfg: dict, res: dict, shards: str) -> None:
    storage = lab.work / "ray_results" / "cluster-fault"
    head = lab.cluster.head_node.node_id
    t0 = time.time()
    proc = train_driver(lab, cfg, "cluster-fault", shards)
    snapshot = storage / "checkpoint_manager_snapshot.json"

    def registered() -> int:  # checkpoints Ray Train has registered (a folder alone may be incomplete)
        try:
            return len(json.loads(snapshot.read_text())["checkpoint_results"])
        except (OSError, ValueError, KeyError):
            return 0

    deadline = time.time() + 900
    while registered() < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    res["checkpoint_registered_after"] = time.time() - t0
    groups = list(node_ids_of_placement_groups(min_bundles=2).values())
    victims = [n for n in lab.nodes if any(n.node_id in g for g in groups) and n.node_id != head]
    res["worker_group_nodes"] = [sorted(g) for g in groups]
    if proc.poll() is not None or not victims:
        res["error"] = f"nothing to kill: driver exit {proc.poll()}, groups {groups}"
        lab.finish(proc, "cluster-fault")
        return
    res["killed_node"] = victims[0].node_id
    res["killed_at"] = time.time()
    res["kill_seconds"], res["kill_and_replace_seconds"] = lab.replace(victims[0])
    log(f"killed training node {victims[0].node_id[:8]} after the first checkpoint; replacement up")
    lab.finish(proc, "cluster-fault")
    run_id = json.loads((lab.work / "cluster-fault.json").read_text())["run_id"]
    info = run_info(cfg, run_id)
    res.update(seconds=time.time() - t0, run_id=run_id, finished_after_kill_seconds=time.time() - res["killed_at"], **info)
    if info["restored_at"]:
        res["restored_after_kill_seconds"] = info["restored_at"][0] - res["killed_at"]


def phase_tune(lab: Lab, cfg: dict, res: dict, shards: str) -> None:
    code = TINY.format(epochs=1) + (
        "import json\n"
        "from heliobench.engine.tune import tune_benchmark\n"
        "from heliobench.specs import load_search_space\n"
        "space = load_search_space('ch_segmentation').model_copy(update={'max_epochs': 1, 'num_samples': 3})\n"
        f"s = tune_benchmark(spec, space, {shards!r}, storage={str(lab.work / 'ray_results')!r},"
        " name='cluster-search', scheduler='fifo')\n"
        f"open({str(lab.work / 'tune.json')!r}, 'w').write(json.dumps({{'parent': s.parent_run_id, 'trials': s.trials}}))\n"
    )
    watcher = PlacementWatcher()
    t0 = time.time()
    proc = lab.driver("tune", [sys.executable, "-c", code])
    lab.finish(proc, "tune")
    seen = watcher.stop()
    out = json.loads((lab.work / "tune.json").read_text())
    client = tracking_client(cfg)
    parent = client.get_run(out["parent"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{out['parent']}'")
    res.update(seconds=time.time() - t0, trials=out["trials"], trial_nodes=sorted(set().union(*seen.values())) if seen else [],
               children=[{"status": c.info.status, "user": c.data.tags.get("mlflow.user"),
                          "steps": sorted(m.step for m in client.get_metric_history(c.info.run_id, "train_loss"))}
                         for c in children])


def grep_secrets(lab: Lab, cfg: dict, res: dict) -> None:
    """Where, if anywhere, the secrets appear: Ray's logs, the storage, run params and tags."""
    secrets = [s for s in cfg.get("secrets", []) if s]
    places = [Path(os.environ["RAY_TMPDIR"]), lab.work]
    found = []
    scanned = 0
    for place in places:
        for path in place.rglob("*"):
            if not path.is_file() or path.is_symlink() or path.stat().st_size > 50_000_000 or path.suffix in (".sock",):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            scanned += 1
            for i, s in enumerate(secrets):
                if s.encode() in data:
                    found.append(f"secret #{i} in {path}")
    client = tracking_client(cfg)
    run_ids = [r for r in (res.get("train", {}).get("run_id"), res.get("train_fault", {}).get("run_id")) if r]
    for run_id in run_ids:
        run = client.get_run(run_id)
        text = json.dumps({"params": run.data.params, "tags": run.data.tags})
        for i, s in enumerate(secrets):
            if s in text:
                found.append(f"secret #{i} in params/tags of run {run_id}")
    res.update(files_scanned=scanned, found=found)


def main() -> None:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    work = Path(cfg["work"])
    work.mkdir(parents=True, exist_ok=True)
    import ray

    results: dict = {}
    out = Path(cfg["out"])

    def save():
        out.write_text(json.dumps(results, indent=1, default=sorted))

    t_all = time.time()
    # The nodes log to MLflow with the cluster's service account (their environment);
    # the drivers as the user named in the tracking URI (user:password@, from their environment).
    os.environ.update(cfg.get("cluster_env", {}))
    driver_env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    driver_env["MLFLOW_TRACKING_URI"] = cfg["tracking_uri"]
    lab = Lab(work, driver_env)
    ray.init(address=lab.cluster.address, log_to_driver=True)
    results["nodes"] = {"head": lab.cluster.head_node.node_id, "count": len(ray.nodes())}
    phases = [("ingest", phase_ingest), ("shard", phase_shard)]
    for name, fn in phases:
        results[name] = {}
        log(f"phase {name}")
        try:
            fn(lab, cfg, results[name])
        except Exception:  # noqa: BLE001 - recorded for the test to report
            results[name]["error"] = traceback.format_exc()[-3000:]
        save()
    shards = None
    if "error" not in results["shard"]:
        results["labels"] = {}
        shards = training_shards(lab, results["labels"])
    for name, fn in (("train", phase_train), ("train_fault", phase_train_fault), ("tune", phase_tune)):
        results[name] = {}
        if shards is None:
            results[name]["error"] = "no shards (the shard phase failed)"
            continue
        log(f"phase {name}")
        try:
            fn(lab, cfg, results[name], shards)
        except Exception:  # noqa: BLE001
            results[name]["error"] = traceback.format_exc()[-3000:]
        save()
    results["secrets"] = {}
    try:
        grep_secrets(lab, cfg, results["secrets"])
    except Exception:  # noqa: BLE001
        results["secrets"]["error"] = traceback.format_exc()[-3000:]
    results["seconds"] = time.time() - t_all
    save()
    ray.shutdown()
    lab.cluster.shutdown()
    log(f"done in {time.time() - t_all:.0f} s")
    for path in lab.logs:  # the drivers' output, for the test's report
        print(f"----- {path.name} (last lines)\n" + "\n".join(path.read_text().splitlines()[-15:]), flush=True)


if __name__ == "__main__":
    # Keep this cluster to itself: loopback only, and its own temp folder, so that no other
    # Ray driver on the machine finds it through /tmp/ray/ray_current_cluster.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="hbc-", dir="/tmp"))
    os.environ.pop("RAY_ADDRESS", None)
    main()

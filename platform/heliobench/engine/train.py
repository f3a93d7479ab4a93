"""``heliobench train``: a benchmark's reference model on Ray Train, tracked in MLflow.

Workers stream the train split from the shards with Ray Data (split across workers)
and see the whole val split; the test split is never given to training. A worker keeps a
small split in memory after its first epoch (see :data:`WORKER_KEEP_BYTES`). Rank 0
checkpoints every epoch to the storage location; ``resume`` continues a named run from
its latest checkpoint and ``FailureConfig`` restarts a failed worker group from it.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param

from heliobench.engine.checkpoints import kept_weights_folder, load_weights, save_model
from heliobench.engine.data import KeptSplit, check_compatible, columns, ray_split, read_index, read_shards, split_uris
from heliobench.engine.loop import LoopContext, fit
from heliobench.errors import HelioBenchError
from heliobench.models import build_model, check_model, n_parameters, plugin_tags
from heliobench.raysession import ensure_ray
from heliobench.storage import arrow_storage, filesystem, join, redact, with_retries
from heliobench.specs import BenchmarkSpec
from heliobench.tasks import get_task
from heliobench.tasks.base import to_numpy
from heliobench.tracking import runs


@dataclass
class TrainResult:
    """A finished training run."""

    run_id: str
    run_name: str
    metrics: dict[str, float]
    seconds: float


class RayTrainContext(LoopContext):
    """Loop context on a Ray Train worker."""

    def __init__(self, config: dict):
        import ray.train

        self.config = config
        self.rank = ray.train.get_context().get_world_rank()
        self._train = ray.train.get_dataset_shard("train")
        self._val = ray.train.get_dataset_shard("val")
        self._kept = {split: KeptSplit(split in config["keep_splits"]) for split in ("train", "val")}
        self._client = runs.MlflowClient(config["tracking_uri"]) if self.rank == 0 else None

    def prepare(self, model, parallel_strategy="ddp"):
        import ray.train.torch

        return ray.train.torch.prepare_model(model, parallel_strategy=parallel_strategy)

    def device(self):
        import ray.train.torch

        return ray.train.torch.get_device()

    def train_batches(self, epoch, batch_size, seed):
        return self._kept["train"].batches(lambda: self._train.iter_batches(
            batch_size=batch_size, batch_format="numpy", local_shuffle_buffer_size=4 * batch_size, local_shuffle_seed=seed),
            batch_size, seed)

    def val_batches(self, batch_size):
        return self._kept["val"].batches(lambda: self._val.iter_batches(batch_size=batch_size, batch_format="numpy"), batch_size)

    def latest_checkpoint(self):
        import ray.train

        return ray.train.get_checkpoint()

    def report(self, metrics, checkpoint_dir):
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=ckpt)

    def log_epoch(self, metrics, step):
        runs.log_metrics_once(self._client, self.config["run_id"], metrics, step)

    def restored(self, epoch):
        if self.rank == 0:  # a restarted worker group, or --resume: the run records it
            runs.record_restore(self._client, self.config["run_id"], epoch)


def train_loop_per_worker(config: dict) -> None:
    """Ray Train entry point: the shared epoch loop on this worker."""
    fit(config, RayTrainContext(config))


#: Memory a worker may spend keeping a split it has read (its share of train, or all of val).
#: Starting a streaming read costs about 5 s per epoch and split on a 2-core machine,
#: whatever the split's size: half the time of a short run. Kept in the worker, the data
#: go with it when it fails, and the restarted worker group reads the shards again.
WORKER_KEEP_BYTES = 1 << 30


def keep_splits(index: dict, spec: BenchmarkSpec, workers: int) -> list[str]:
    """The splits small enough for every worker to keep after its first epoch.

    The size is an upper bound: every column a float32 image of the shards' size."""
    sample_bytes = len(columns(spec)) * int(index["size_px"]) ** 2 * 4
    share = {"train": -(-int(index["samples"].get("train", 0)) // workers), "val": int(index["samples"].get("val", 0))}
    return [split for split, n in share.items() if n * sample_bytes <= WORKER_KEEP_BYTES]


def _datasets(spec: BenchmarkSpec, shards: str) -> tuple[dict, dict]:
    """Ray Datasets streaming the train and val shards (never test)."""
    import ray.data

    index = read_index(shards)
    check_compatible(index, spec, shards)
    ray.data.DataContext.get_current().enable_progress_bars = False  # per-epoch streams: no bars
    return {split: ray_split(shards, index, spec, split) for split in ("train", "val")}, index


def _checked_model(spec: BenchmarkSpec, shards: str, index: dict):
    """The model to train, run once on two val samples (a plug-in that does not fit fails here)."""
    model = build_model(spec)
    if spec.model.factory is not None:
        check_model(spec, model, _val_samples(index, spec, 2))
    return model


def _val_samples(index: dict, spec: BenchmarkSpec, n: int) -> dict:
    """The first ``n`` samples of the val split (from its first shard), read in the driver."""
    return {k: v[:n] for k, v in read_shards(split_uris(index, "val")[:1], columns(spec)).items()}


def train(
    spec: BenchmarkSpec,
    shards: str,
    workers: int | None = None,
    use_gpu: bool = False,
    tracking_uri: str | None = None,
    storage: str | None = None,
    run_name: str | None = None,
    resume: bool = False,
    max_failures: int = 2,
    progress: bool = False,
) -> TrainResult:
    """Train ``spec``'s model (the reference model or its plug-in) on the shards; returns the
    MLflow run. ``progress``: a bar of the epochs logged so far."""
    import ray.train
    from ray.train.torch import TorchTrainer

    t0 = time.perf_counter()
    client = runs.connect(tracking_uri)
    exp = runs.experiment_id(client, spec.name)
    workers = workers or spec.training.workers
    run_name = run_name or f"{spec.name}-{spec.model.name}-s{spec.training.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage_uri = storage or str(runs.workspace() / "ray_results")
    storage_fs, storage_path = arrow_storage(storage_uri)
    if not resume and _exists(join(storage_uri, run_name)):
        # Ray Train would silently continue the old run's checkpoints under the same name.
        raise HelioBenchError(f"a run named {run_name!r} exists under {storage_uri}; use --resume to continue it or another --run-name")
    ensure_ray()
    datasets, index = _datasets(spec, shards)
    kept = keep_splits(index, spec, workers)
    existing = client.search_runs([exp], f"tags.mlflow.runName = '{run_name}'", max_results=1) if resume else []
    if resume and not existing:
        raise HelioBenchError(f"--resume: no run named {run_name!r} in experiment heliobench/{spec.name}")
    if existing:
        run = existing[0]
        client.update_run(run.info.run_id, status="RUNNING")
        client.set_tag(run.info.run_id, "heliobench.resumed", str(int(run.data.tags.get("heliobench.resumed", "0")) + 1))
    else:
        n_params = n_parameters(_checked_model(spec, shards, index))
        run = client.create_run(exp, run_name=run_name, tags={
            runs.TAG_BENCHMARK: spec.name, runs.TAG_KIND: "train", "heliobench.model": spec.model.name, "mlflow.user": runs.user(),
            "heliobench.dataset": spec.dataset,
            "heliobench.git_commit": runs.git_commit(), "heliobench.manifest_hash": index["manifest_hash"],
            "heliobench.preprocessing_hash": index["preprocessing_hash"], "heliobench.shards": shards, **plugin_tags(spec),
        })
        client.log_batch(run.info.run_id, params=[
            Param(k, str(v)[:500]) for k, v in _flat_params(spec).items()
        ] + [Param("workers", str(workers)), Param("n_parameters", str(n_params)), Param("kept_splits", ",".join(kept) or "none")])
    run_id = run.info.run_id
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec.model_dump(mode="json"), "run_id": run_id, "tracking_uri": client.tracking_uri,
                           "keep_splits": kept},
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                               resources_per_worker={"CPU": cpus_per_worker(workers)}),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    try:
        with _epoch_bar(client, run_id, spec, enabled=progress):
            result = trainer.fit()
    except Exception as exc:
        client.set_terminated(run_id, "FAILED")
        raise HelioBenchError(redact(f"training run {run_name} failed: {type(exc).__name__}: {str(exc)[:500]}")) from exc
    seconds = time.perf_counter() - t0
    _finish(client, run_id, spec, result.checkpoint, index, workers, seconds)
    metrics = client.get_run(run_id).data.metrics
    return TrainResult(run_id, run_name, metrics, seconds)


@contextlib.contextmanager
def _epoch_bar(client, run_id: str, spec: BenchmarkSpec, enabled: bool, every_s: float = 2.0) -> Iterator[None]:
    """A progress bar of the epochs the run has logged to MLflow, with the latest validation
    score (read every ``every_s`` seconds while the workers train)."""
    if not enabled:
        yield
        return
    from tqdm import tqdm

    stop = threading.Event()
    key = f"val_{spec.primary_metric}"

    def refresh(bar) -> None:
        try:
            history = client.get_metric_history(run_id, key)
        except Exception:  # noqa: BLE001 - a missed poll only delays the bar
            return
        done = len({m.step for m in history})
        if done > bar.n:
            bar.set_postfix({key: f"{max(history, key=lambda m: m.step).value:.3f}"}, refresh=False)
            bar.update(done - bar.n)

    def poll(bar) -> None:
        while not stop.wait(every_s):
            refresh(bar)

    with tqdm(total=spec.training.epochs, unit="epoch", desc=f"train {spec.name}") as bar:
        watcher = threading.Thread(target=poll, args=(bar,), daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            refresh(bar)


def cpus_per_worker(workers: int) -> float:
    """CPUs reserved per training worker, leaving at least one CPU of the cluster for Ray Data.

    With every CPU held by training workers, the tasks that stream the shards could never
    be scheduled; on a small cluster the workers therefore reserve a fraction of a CPU
    (PyTorch's threads are not bound by the reservation).
    """
    import ray

    total = ray.cluster_resources().get("CPU", 1.0)
    return min(1.0, max(0.1, (total - 1.0) / workers))


def _flat_params(spec: BenchmarkSpec) -> dict[str, object]:
    out: dict[str, object] = {"benchmark": spec.name, "task": spec.task, "dataset": spec.dataset, "split_scheme": spec.split_scheme,
                              "resolution_px": spec.resolution_px, "model": spec.model.name}
    for section in ("training", "model"):
        for k, v in spec.model_dump(mode="json")[section].items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    out[f"{section}.{k}.{k2}"] = json.dumps(v2) if isinstance(v2, (dict, list)) else v2
            elif k != "name":
                out[f"{section}.{k}"] = v
    return out


def _finish(client, run_id: str, spec: BenchmarkSpec, checkpoint, index: dict, workers: int, seconds: float) -> None:
    """Model artifact, a validation figure, compute used; the run is marked finished."""
    task = get_task(spec.task)
    model = build_model(spec)
    with checkpoint.as_directory() as folder:
        load_weights(model, kept_weights_folder(Path(folder), spec.training.keep))
        state = json.loads((Path(folder) / "state.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, spec.model_dump(mode="json"), Path(tmp) / "model")
        runs.log_model_folder(client, run_id, Path(tmp) / "model")
        batch = _val_samples(index, spec, 4)
        x, y = task.inputs(spec, batch), task.targets(spec, batch)
        pred = task.predict(model, x)
        fig = task.figure(spec, to_numpy(x), to_numpy(y), to_numpy(pred), list(batch["sample_id"]), Path(tmp) / "val_predictions.png")
        client.log_artifact(run_id, str(fig), "figures")
    client.log_batch(run_id, metrics=[
        Metric("worker_hours", workers * seconds / 3600, int(time.time() * 1000), 0),
        Metric("epochs_completed", state["epoch"] + 1, int(time.time() * 1000), 0),
        # the epoch whose weights are the run's model (training.keep)
        Metric("kept_epoch", (state.get("best") or state)["epoch"], int(time.time() * 1000), 0),
    ])
    client.set_terminated(run_id, "FINISHED")


def _exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return with_retries(lambda: fs.exists(path), uri)

"""``heliobench evaluate`` and the scoring of submissions on the frozen test split.

The test split's labels are read here and nowhere in training or tuning. Scores leave
this module; labels never do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from heliobench.engine.checkpoints import load_weights
from heliobench.engine.data import check_compatible, read_index, read_shards, split_uris
from heliobench.errors import HelioBenchError
from heliobench.specs import BenchmarkSpec
from heliobench.tasks import get_task
from heliobench.tasks.base import to_numpy
from heliobench.tracking import runs


def _batches(spec: BenchmarkSpec, shards: str, batch_size: int, splits: tuple[str, ...] = ("test",)) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``splits`` (the test split: shards of the benchmark's own dataset; every
    split: another dataset's shards, scored for transfer)."""
    index = read_index(shards)
    check_compatible(index, spec, shards, same_dataset=splits == ("test",))
    uris = [uri for split in splits for uri in split_uris(index, split, allow_test=True)]
    if not uris:
        raise HelioBenchError(f"{shards}: no {' or '.join(splits)} shards")
    for uri in uris:
        data = read_shards([uri], ["sample_id", *spec.inputs, *spec.targets])
        n = len(data["sample_id"])
        for i in range(0, n, batch_size):
            yield {k: v[i : i + batch_size] for k, v in data.items()}


def test_ids(spec: BenchmarkSpec, shards: str) -> list[str]:
    """The observation ids of the test split (the keys a submission must provide)."""
    index = read_index(shards)
    check_compatible(index, spec, shards)
    return [i for s in index["shards"] if s["split"] == "test" for i in s["sample_ids"]]


def score(spec: BenchmarkSpec, shards: str, predict: Callable[[dict[str, np.ndarray]], np.ndarray], n_boot: int = 1000) -> dict[str, float]:
    """The benchmark's metrics of ``predict`` (batch → predictions) on the test split."""
    return get_task(spec.task).score(spec, _batches(spec, shards, spec.training.batch_size), predict, n_boot=n_boot)


def load_run_model(client, run_id: str, spec: BenchmarkSpec) -> torch.nn.Module:
    """The trained model of an MLflow run, from its safetensors artifact."""
    task = get_task(spec.task)
    model = task.build_model(spec)
    load_weights(model, runs.download_model(client, run_id))
    model.eval()
    return model


def run_spec(client, run_id: str, spec: BenchmarkSpec) -> BenchmarkSpec:
    """The spec a run was trained with (its ``model.json``), checked to be this benchmark."""
    import json

    folder = runs.download_model(client, run_id)
    trained = BenchmarkSpec.model_validate(json.loads((folder / "model.json").read_text()))
    if trained.name != spec.name:
        raise HelioBenchError(f"run {run_id} trained benchmark {trained.name}, not {spec.name}")
    return trained


def evaluate(spec: BenchmarkSpec, run_id: str, shards: str, tracking_uri: str | None = None, n_boot: int = 1000) -> dict[str, float]:
    """Score a run's model on the test split, log ``test_*`` metrics and add it to the leaderboard."""
    from heliobench.tracking.leaderboard import LeaderboardTable, entry_from_run

    client = runs.connect(tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001
        raise HelioBenchError(f"no run {run_id} on {client.tracking_uri.split('@')[-1]}") from None
    trained = run_spec(client, run_id, spec)
    index = read_index(shards)
    if run.data.tags.get("heliobench.manifest_hash") not in (None, index["manifest_hash"]):
        raise HelioBenchError(f"{shards}: shards of manifest {index['manifest_hash'][:12]}, run {run_id} trained on {run.data.tags['heliobench.manifest_hash'][:12]}")
    task = get_task(trained.task)
    model = load_run_model(client, run_id, trained)
    metrics = score(trained, shards, lambda b: to_numpy(task.predict(model, task.inputs(trained, b))), n_boot=n_boot)
    runs.log_metrics_once(client, run_id, {f"test_{k}": v for k, v in metrics.items()}, step=0)
    client.set_tag(run_id, "heliobench.leaderboard", "1")
    LeaderboardTable().add_entry(entry_from_run(client, run_id, spec))
    return metrics


def evaluate_transfer(spec: BenchmarkSpec, run_id: str, shards: str, tracking_uri: str | None = None, n_boot: int = 1000) -> dict[str, float]:
    """Score a run's model on every sample of another dataset's shards (real images, say, for a
    model trained on the simulated archive) and log them on the run as ``transfer_CARD_*``.

    A transfer score answers whether what a model learned carries over; it is not a
    leaderboard entry (the samples are not that dataset's frozen test split).
    """
    client = runs.connect(tracking_uri)
    trained = run_spec(client, run_id, spec)
    card = read_index(shards)["card"]
    if card == trained.dataset:
        raise HelioBenchError(f"{shards}: shards of {card}, the dataset run {run_id} was trained on; score its test split with evaluate")
    task = get_task(trained.task)
    model = load_run_model(client, run_id, trained)
    batches = _batches(trained, shards, trained.training.batch_size, splits=("train", "val", "test"))
    metrics = task.score(trained, batches, lambda b: to_numpy(task.predict(model, task.inputs(trained, b))), n_boot=n_boot)
    runs.log_metrics_once(client, run_id, {f"transfer_{card}_{k}": v for k, v in metrics.items()}, step=0)
    return metrics

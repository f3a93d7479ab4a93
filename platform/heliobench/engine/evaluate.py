"""``heliobench evaluate`` and the scoring of submissions on the frozen test split.

The test split's labels are read here and nowhere in training or tuning. Scores leave
this module; labels never do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from heliobench.engine.checkpoints import load_weights
from heliobench.engine.data import check_compatible, columns, read_index, read_shards, split_uris
from heliobench.errors import HelioBenchError
from heliobench.models import build_model, resolve
from heliobench.specs import BenchmarkSpec
from heliobench.tasks import get_task
from heliobench.tasks.base import to_numpy
from heliobench.tracking import runs


def split_batches(spec: BenchmarkSpec, shards: str, split: str | tuple[str, ...], batch_size: int, targets: bool = True,
                  same_dataset: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """Shard batches of one split (or several) in time order (the test split's targets only for
    scoring here). ``same_dataset=False`` accepts another dataset's shards (transfer scores)."""
    index = read_index(shards)
    check_compatible(index, spec, shards, same_dataset=same_dataset)
    splits = (split,) if isinstance(split, str) else split
    uris = [uri for name in splits for uri in split_uris(index, name, allow_test=True)]
    if not uris:
        raise HelioBenchError(f"{shards}: no {' or '.join(splits)} shards")
    for uri in uris:
        data = read_shards([uri], columns(spec, targets))
        n = len(data["sample_id"])
        for i in range(0, n, batch_size):
            yield {k: v[i : i + batch_size] for k, v in data.items()}


def test_ids(spec: BenchmarkSpec, shards: str) -> list[str]:
    """The observation ids of the test split (the keys a submission must provide)."""
    index = read_index(shards)
    check_compatible(index, spec, shards)
    return [i for s in index["shards"] if s["split"] == "test" for i in s["sample_ids"]]


def score(spec: BenchmarkSpec, shards: str, predict: Callable[[dict[str, np.ndarray]], np.ndarray], n_boot: int = 1000,
          split: str = "test") -> dict[str, float]:
    """The benchmark's metrics of ``predict`` (batch → predictions) on a split (the test split by default)."""
    batches = split_batches(spec, shards, split, spec.training.batch_size)
    return get_task(spec.task).score(spec, batches, predict, n_boot=n_boot)


def load_run_model(client, run_id: str, spec: BenchmarkSpec) -> torch.nn.Module:
    """The trained model of an MLflow run, from its safetensors artifact."""
    model = build_model(spec)
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


def _relocated(trained: BenchmarkSpec, run, model_ref: str) -> BenchmarkSpec:
    """The run's spec with its plug-in loaded from ``model_ref`` (the same source, elsewhere)."""
    recorded = run.data.tags.get(runs.TAG_PLUGIN_SHA256)
    if trained.model.factory is None or recorded is None:
        raise HelioBenchError(f"run {run.info.run_id} trained the reference model {trained.model.name}; --model is for runs of a plug-in")
    plugin = resolve(model_ref)
    if plugin.sha256() != recorded:
        raise HelioBenchError(f"--model {model_ref!r}: source SHA-256 {plugin.sha256()[:12]} differs from the one run "
                              f"{run.info.run_id} trained ({recorded[:12]}); evaluate the code that was trained")
    return trained.model_copy(update={"model": trained.model.model_copy(update={"factory": plugin.ref})})


def _trained_model(client, run_id: str, spec: BenchmarkSpec, model_ref: str | None):
    """(run, the spec it trained, its model in eval mode)."""
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001
        raise HelioBenchError(f"no run {run_id} on {client.tracking_uri.split('@')[-1]}") from None
    trained = run_spec(client, run_id, spec)
    if model_ref is not None:
        trained = _relocated(trained, run, model_ref)
    return run, trained, load_run_model(client, run_id, trained)


def evaluate(spec: BenchmarkSpec, run_id: str, shards: str, tracking_uri: str | None = None, n_boot: int = 1000,
             model_ref: str | None = None) -> dict[str, float]:
    """Score a run's model on the test split, log ``test_*`` metrics and add it to the leaderboard.

    A run of a plug-in rebuilds it from the reference recorded at training; ``model_ref``
    loads the same plug-in from another place (its source must hash as at training).
    """
    from heliobench.tracking.leaderboard import LeaderboardTable, entry_from_run

    client = runs.connect(tracking_uri)
    run, trained, model = _trained_model(client, run_id, spec, model_ref)
    index = read_index(shards)
    if run.data.tags.get("heliobench.manifest_hash") not in (None, index["manifest_hash"]):
        raise HelioBenchError(f"{shards}: shards of manifest {index['manifest_hash'][:12]}, run {run_id} trained on {run.data.tags['heliobench.manifest_hash'][:12]}")
    task = get_task(trained.task)
    metrics = score(trained, shards, lambda b: to_numpy(task.predict(model, task.inputs(trained, b))), n_boot=n_boot)
    runs.log_metrics_once(client, run_id, {f"test_{k}": v for k, v in metrics.items()}, step=0)
    client.set_tag(run_id, "heliobench.leaderboard", "1")
    LeaderboardTable().add_entry(entry_from_run(client, run_id, spec))
    return metrics


def evaluate_transfer(spec: BenchmarkSpec, run_id: str, shards: str, tracking_uri: str | None = None, n_boot: int = 1000,
                      model_ref: str | None = None) -> dict[str, float]:
    """Score a run's model on every sample of another dataset's shards (real images, say, for a
    model trained on the simulated archive) and log them on the run as ``transfer_CARD_*``.

    A transfer score answers whether what a model learned carries over; it is not a
    leaderboard entry (the samples are not that dataset's frozen test split).
    """
    client = runs.connect(tracking_uri)
    _, trained, model = _trained_model(client, run_id, spec, model_ref)
    card = read_index(shards)["card"]
    if card == trained.dataset:
        raise HelioBenchError(f"{shards}: shards of {card}, the dataset run {run_id} was trained on; score its test split with evaluate")
    task = get_task(trained.task)
    batches = split_batches(trained, shards, ("train", "val", "test"), trained.training.batch_size, same_dataset=False)
    metrics = task.score(trained, batches, lambda b: to_numpy(task.predict(model, task.inputs(trained, b))), n_boot=n_boot)
    runs.log_metrics_once(client, run_id, {f"transfer_{card}_{k}": v for k, v in metrics.items()}, step=0)
    return metrics

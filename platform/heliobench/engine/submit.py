"""``heliobench submit``: an outside model's test predictions, validated, scored, recorded."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from heliobench.engine.data import read_index
from heliobench.engine.evaluate import score, test_ids
from heliobench.errors import HelioBenchError
from heliobench.specs import BenchmarkSpec
from heliobench.tracking import runs

#: Largest prediction file accepted (bytes): float32 masks of a 6-month test split at 256².
MAX_SUBMISSION_BYTES = 512 * 2**20


def check_submittable(spec: BenchmarkSpec) -> None:
    """Submissions are per-sample masks: segmentation benchmarks only."""
    if spec.task != "segmentation":
        raise HelioBenchError(f"benchmark {spec.name}: `heliobench submit` takes segmentation masks; "
                              f"{spec.task} predictions are scored through `heliobench evaluate` of a trained run")


def by_sample_id(predictions: Mapping[str, np.ndarray]) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A predict function (shard batch → (N, 1, H, W)) from masks keyed by ``sample_id``."""
    return lambda batch: np.stack([predictions[str(i)] for i in batch["sample_id"]])[:, None]


def submit(spec: BenchmarkSpec, predictions: str, name: str, shards: str, tracking_uri: str | None = None):
    """Validate ``predictions`` against the test ids, score them, and add a leaderboard entry."""
    from heliobench.tracking.submissions import record_submission, validate_submission

    check_submittable(spec)
    client = runs.connect(tracking_uri)
    ids = test_ids(spec, shards)
    preds = validate_submission(predictions, ids, shape=(spec.resolution_px, spec.resolution_px),
                                value_range=(0.0, 1.0), max_bytes=MAX_SUBMISSION_BYTES)
    metrics = score(spec, shards, by_sample_id(preds))
    return record_submission(client, spec, name, runs.user(), metrics, read_index(shards)["manifest_hash"], predictions)

"""The model-free baselines scored like a model (one-pass evaluation) and put on the leaderboard.

Each baseline is a shard-batch predictor with the output of ``TrackingTask.predict``:
``{"boxes": (B, K, 4)}``, one box per row of the batch's previous-frame table (NaN where
the row holds no tracked event). The static box answers the previous box; differential
rotation moves it from the previous frame's time to the sample's with
:func:`.baselines.rotate_boxes` on the registered frame geometry (:func:`.baselines.registered_map`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from heliobench.specs import BenchmarkSpec
from heliobench.tasks.tracking.evaluation import sample_time
from heliobench.tasks.tracking.layout import layout
from heliobench.tasks.tracking.tracks import BOX, TYPE, present

Predictor = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
#: Leaderboard submitter of the baseline entries.
SUBMITTER = "heliobench-baselines"


def _given_boxes(spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The previous table's boxes (B, K, 4) and the rows holding a tracked event."""
    lay = layout(spec)
    table = np.asarray(batch[lay.prev_boxes], dtype=np.float64)
    return table[..., BOX], present(table) & np.isin(table[..., TYPE], lay.event_types)


def static_predictor(spec: BenchmarkSpec) -> Predictor:
    """The box stays where it was."""

    def predict(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        boxes, tracked = _given_boxes(spec, batch)
        return {"boxes": np.where(tracked[..., None], boxes, np.nan)}

    return predict


def rotation_predictor(spec: BenchmarkSpec) -> Predictor:
    """The box moved by solar differential rotation from the previous frame's time to the sample's."""
    from heliobench.tasks.tracking.baselines import registered_map, rotate_boxes

    lay, size = layout(spec), spec.resolution_px

    def predict(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        boxes, tracked = _given_boxes(spec, batch)
        out = np.full(boxes.shape, np.nan)
        for b, sample_id in enumerate(batch["sample_id"]):
            rows = np.flatnonzero(tracked[b])
            if len(rows):
                t = sample_time(sample_id)
                start, end = registered_map(size, t + timedelta(minutes=lay.offset_min)), registered_map(size, t)
                out[b, rows] = rotate_boxes(boxes[b, rows], start, end)
        return {"boxes": out}

    return predict


def baselines(spec: BenchmarkSpec) -> dict[str, Predictor]:
    """The leaderboard's baselines by entry name."""
    return {"static-box": static_predictor(spec), "differential-rotation": rotation_predictor(spec)}


def score_baselines(spec: BenchmarkSpec, shards: str, tracking_uri: str | None = None, n_boot: int = 1000) -> dict:
    """Score every baseline on the test split (one-pass) and record each as a leaderboard entry.

    Returns the entries by name. The recorded predictions file is the baseline's boxes per
    test sample (an ``.npz`` keyed by sample id), of which MLflow keeps the SHA-256.
    """
    from heliobench.engine.data import read_index
    from heliobench.engine.evaluate import score
    from heliobench.tracking import runs
    from heliobench.tracking.submissions import record_submission

    client = runs.connect(tracking_uri)
    entries = {}
    for name, predictor in baselines(spec).items():
        answers: dict[str, np.ndarray] = {}

        def predict(batch: dict[str, np.ndarray], predictor: Predictor = predictor) -> dict[str, np.ndarray]:
            out = predictor(batch)
            answers.update({str(i): boxes for i, boxes in zip(batch["sample_id"], out["boxes"])})
            return out

        metrics = score(spec, shards, predict, n_boot=n_boot)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.npz"
            np.savez(path, **answers)
            entries[name] = record_submission(client, spec, name, SUBMITTER, metrics,
                                              read_index(shards)["manifest_hash"], path)
    return entries

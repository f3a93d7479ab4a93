"""Scoring trackers on shard batches: teacher-forced pairs (validation) and one-pass evaluation (test).

Both collect *sequences*, the frames of one track, each with the predicted and the true
box, and report the measures of :mod:`.metrics` as means over sequences, also per event
type (``<measure>_ar``, ``<measure>_ch``), with percentile-bootstrap intervals over
sequences (``<measure>_ci_low``/``_ci_high``).

- Validation (:class:`TrackingAccumulator`): each pair is predicted from the *true*
  previous box; a sequence is every validation frame of a track.
- One-pass evaluation (:func:`one_pass`, OTB's OPE): batches are read in time order. A
  track starts from its true box in the first frame where it is on the disk (that frame
  is not scored), and from then on the tracker is given its own previous answer. The
  sequence ends when the track's ground truth ends or leaves the disk, or after a gap in
  the frames; a track seen again later starts a new sequence.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from heliobench.tasks.base import MetricAccumulator
from heliobench.tasks.tracking.layout import Layout
from heliobench.tasks.tracking.metrics import REPORT_KEYS, sequence_scores, tracking_report
from heliobench.tasks.tracking.tracks import BOX, EVENT_NAMES, KEY, TYPE, ground_truth, match, present

#: Seed of the bootstrap over sequences.
BOOTSTRAP_SEED = 0


@dataclass
class Sequence:
    """The scored frames of one track: event type code, predicted and true boxes."""

    event_type: int
    pred: list[np.ndarray]
    true: list[np.ndarray]


def _bootstrap(sequences: list[Sequence], n_boot: int) -> dict[str, float]:
    scores = np.array([[sequence_scores(s.pred, s.true)[k] for k in REPORT_KEYS] for s in sequences])
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(scores), (n_boot, len(scores)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw may hold no defined value
        low, high = np.nanpercentile(np.nanmean(scores[draws], axis=1), [2.5, 97.5], axis=0)
    return {f"{k}_ci_low": float(lo) for k, lo in zip(REPORT_KEYS, low)} | \
           {f"{k}_ci_high": float(hi) for k, hi in zip(REPORT_KEYS, high)}


def sequence_report(sequences: list[Sequence], n_boot: int = 0) -> dict[str, float]:
    """Measures over ``sequences`` (NaN and ``n_sequences`` 0 when there are none)."""
    if not sequences:
        return {k: float("nan") for k in REPORT_KEYS} | {"n_sequences": 0.0}
    out = tracking_report([(s.pred, s.true) for s in sequences])
    for code, name in EVENT_NAMES.items():
        subset = [(s.pred, s.true) for s in sequences if s.event_type == code]
        if subset:
            out |= {f"{k}_{name.lower()}": v for k, v in tracking_report(subset).items()}
    if n_boot:
        out |= _bootstrap(sequences, n_boot)
    return out


class TrackingAccumulator(MetricAccumulator):
    """Teacher-forced measures: predictions ``{"boxes", "prev"}`` against true tables, one sequence per track.

    ``prev`` is the previous-frame table the prediction started from (the truth, in
    validation); a pair counts when that row is ground truth (:func:`.tracks.ground_truth`)
    and the track is in the current table.
    """

    def __init__(self, size: int, n_boot: int = 0) -> None:
        self.size, self.n_boot = size, n_boot
        self.sequences: dict[float, Sequence] = {}
        self.n_images = 0

    def update(self, predictions: dict[str, np.ndarray], targets: np.ndarray) -> None:
        prev = ground_truth(predictions["prev"], self.size)
        rows = match(prev, targets)
        for b, k in np.argwhere(present(prev) & (rows >= 0)):
            seq = self.sequences.setdefault(prev[b, k, KEY], Sequence(int(prev[b, k, TYPE]), [], []))
            seq.pred.append(predictions["boxes"][b, k])
            seq.true.append(targets[b, rows[b, k], BOX])
        self.n_images += len(targets)

    def compute(self) -> dict[str, float]:
        return sequence_report(list(self.sequences.values()), self.n_boot) | {"n_images": float(self.n_images)}


@dataclass
class _Live:
    """A track being followed: its sequence, the tracker's last box and that frame's time."""

    sequence: Sequence
    box: np.ndarray
    time: datetime


def sample_time(sample_id: str) -> datetime:
    """The reference time of a sample id (``YYYYMMDDTHHMMSS``)."""
    return datetime.strptime(str(sample_id), "%Y%m%dT%H%M%S")


def one_pass(batches: Iterable[dict[str, np.ndarray]], predict: Callable[[dict[str, np.ndarray]], dict],
             layout: Layout, size: int, n_boot: int = 0) -> dict[str, float]:
    """One-pass evaluation of ``predict`` over ``batches`` in time order (see the module docstring).

    ``layout`` names the shard columns of the previous and current true tables, the
    previous frame's offset and the tracked event types. ``predict`` is called one sample
    at a time, its previous table holding the tracker's own boxes for the tracks it
    follows, and returns ``{"boxes": (1, K, 4)}`` for the rows of that table (NaN: no answer).
    """
    prev_key, curr_key = layout.prev_boxes, layout.boxes
    step, slack = timedelta(minutes=layout.offset_min), timedelta(minutes=abs(layout.offset_min) / 2)
    live: dict[float, _Live] = {}
    sequences: list[Sequence] = []
    for batch in batches:
        for i in range(len(batch["sample_id"])):
            sample = {k: v[i : i + 1] for k, v in batch.items()}
            time = sample_time(sample["sample_id"][0])
            prev, curr = (ground_truth(sample[key][0], size, layout.event_types) for key in (prev_key, curr_key))
            given = prev.copy()
            following: dict[float, Sequence] = {}
            for r in np.flatnonzero(present(prev)):
                key, state = prev[r, KEY], live.get(prev[r, KEY])
                if state is not None and abs(time + step - state.time) <= slack:
                    given[r, BOX] = state.box
                    following[key] = state.sequence
            boxes = np.asarray(predict(sample | {prev_key: given[None]})["boxes"])[0]
            rows = match(given[None], curr[None])[0]
            live = {}
            for r in np.flatnonzero(np.isfinite(given[:, KEY]) & (rows >= 0)):
                key = given[r, KEY]
                if key not in following:
                    following[key] = Sequence(int(given[r, TYPE]), [], [])
                    sequences.append(following[key])
                following[key].pred.append(boxes[r])
                following[key].true.append(curr[rows[r], BOX])
                live[key] = _Live(following[key], boxes[r], time)
    return sequence_report(sequences, n_boot)

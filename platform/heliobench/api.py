"""The Python API: a benchmark's data, transforms and evaluator in your own training loop.

::

    import heliobench

    bench = heliobench.load_benchmark("ch_segmentation", shards="work/shards/sdo_sim-park2019-256")
    for batch in bench.dataloader("train", shuffle=True):      # dicts of numpy arrays
        x, y = bench.inputs(batch), bench.targets(batch)       # the reference task's transforms
        ...                                                    # your model, loss and optimiser
    bench.evaluator("val").score(model)                        # the benchmark's metrics, 95% intervals
    bench.write_submission(model, "preds.npz")                 # then: heliobench submit ... --predictions preds.npz

Layers, as in TorchGeo: :class:`ShardDataset` (one split of a shard folder as a
``torch.utils.data.Dataset``), :class:`ShardSampler` (shuffles shards, then samples within
them, so each shard file is read once an epoch), :func:`collate` (samples to a batch), and
:class:`Benchmark`, which ties them to the spec, the task's transforms and an
:class:`Evaluator`. ``Benchmark.ray_dataset`` gives the same splits as Ray Datasets.

The test split's targets are never handed out: its dataset holds ``sample_id`` and the
inputs alone, and evaluators score test predictions inside
:mod:`heliobench.engine.evaluate`, returning metrics only.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from heliobench import specs
from heliobench.engine.data import check_compatible, columns, default_shards, ray_split, read_index, read_shards, split_uris
from heliobench.engine.evaluate import score, split_batches
from heliobench.engine.submit import MAX_SUBMISSION_BYTES, by_sample_id, check_submittable
from heliobench.errors import HelioBenchError
from heliobench.models import build_model
from heliobench.tasks import get_task
from heliobench.tasks.base import Tensors, to_device, to_numpy

Split = Literal["train", "val", "test"]
SPLITS = ("train", "val", "test")
Sample = dict[str, np.ndarray]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise HelioBenchError(f"split {split!r}: expected one of {', '.join(SPLITS)}")


class ShardDataset(Dataset):
    """One split of a shard folder: sample ``i`` is a dict of numpy arrays (``sample_id``, the
    benchmark's input members and, except in the test split, its target members).

    ``transform`` is applied to each sample. Shard files are read whole and the last
    ``cache_shards`` are kept, so read in shard order or through :class:`ShardSampler`.
    """

    def __init__(self, shards: str, index: dict, keys: list[str], split: Split,
                 transform: Callable[[Sample], Any] | None = None, cache_shards: int = 2) -> None:
        self.shards, self.split, self.keys, self.transform = shards, split, keys, transform
        files = [s for s in index["shards"] if s["split"] == split]
        if not files:
            raise HelioBenchError(f"{shards}: no {split} shards")
        self._uris = [s["uri"] for s in files]
        self.sample_ids: list[str] = [i for s in files for i in s["sample_ids"]]
        self._starts = list(np.cumsum([0] + [len(s["sample_ids"]) for s in files[:-1]]))
        self._cache: OrderedDict[int, Sample] = OrderedDict()
        self._cache_size = max(1, cache_shards)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} of a {self.split} split of {len(self)}")
        i %= len(self)
        k = bisect.bisect_right(self._starts, i) - 1
        data = self._shard(k)
        sample = {key: value[i - self._starts[k]] for key, value in data.items()}
        return self.transform(sample) if self.transform else sample

    def shard_ranges(self) -> list[range]:
        """The sample indices of each shard file, in order."""
        ends = [*self._starts[1:], len(self)]
        return [range(a, b) for a, b in zip(self._starts, ends)]

    def _shard(self, k: int) -> Sample:
        if k not in self._cache:
            self._cache[k] = read_shards([self._uris[k]], self.keys)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(k)
        return self._cache[k]


class ShardSampler(Sampler[int]):
    """Indices of a :class:`ShardDataset`: the shards in random order, each shard's samples
    shuffled (each shard file is read once an epoch); in order without ``shuffle``."""

    def __init__(self, dataset: ShardDataset, shuffle: bool = True, seed: int = 0) -> None:
        self.ranges, self.shuffle = dataset.shard_ranges(), shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return sum(len(r) for r in self.ranges)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            for r in self.ranges:
                yield from r
            return
        for k in torch.randperm(len(self.ranges), generator=self.generator).tolist():
            r = self.ranges[k]
            yield from (r.start + j for j in torch.randperm(len(r), generator=self.generator).tolist())


def collate(samples: Sequence[Sample]) -> Sample:
    """Samples (dicts of numpy arrays) stacked into a batch, the form the task transforms take."""
    return {key: np.stack([np.asarray(s[key]) for s in samples]) for key in samples[0]}


class Evaluator:
    """Scores predictions on one split with the benchmark's own metrics and 95% bootstrap
    intervals (``<metric>_ci_low``/``_ci_high``, ``n_boot`` resamples).

    ``score`` takes a ``torch.nn.Module`` (run through the task's ``predict`` on the split's
    inputs, as ``heliobench evaluate`` does) or, for segmentation, a mapping of
    ``sample_id`` to an (H, W) array of probabilities. Targets are read inside; only the
    metrics come back.
    """

    def __init__(self, bench: Benchmark, split: Split, n_boot: int) -> None:
        _check_split(split)
        self.bench, self.split, self.n_boot = bench, split, n_boot

    def score(self, predictions: nn.Module | Mapping[str, np.ndarray]) -> dict[str, float]:
        """The benchmark's metrics of ``predictions`` on this split."""
        spec = self.bench.spec
        if isinstance(predictions, nn.Module):
            model = predictions
            return score(spec, self.bench.shards, lambda batch: self.bench.predict(model, batch), self.n_boot, self.split)
        if isinstance(predictions, Mapping):
            check_submittable(spec)
            self.bench.check_ids(predictions, self.split)
            return score(spec, self.bench.shards, by_sample_id(predictions), self.n_boot, self.split)
        raise HelioBenchError(f"score: expected a torch.nn.Module or a mapping of sample_id to array, not {type(predictions).__name__}")


class Benchmark:
    """A benchmark on a shard folder: its spec, splits, transforms, evaluator and submissions.

    Made by :func:`load_benchmark`; ``spec`` is the :class:`~heliobench.specs.BenchmarkSpec`
    (protocol, metrics, training settings of the reference model), ``index`` the shard
    folder's ``index.json`` (with ``manifest_hash`` and ``preprocessing_hash``).
    """

    def __init__(self, spec: specs.BenchmarkSpec, shards: str) -> None:
        self.spec, self.shards = spec, shards
        self.index = read_index(shards)
        check_compatible(self.index, spec, shards)
        self.task = get_task(spec.task)

    def __repr__(self) -> str:
        return f"Benchmark({self.spec.name!r}, dataset={self.spec.dataset!r}, shards={self.shards!r})"

    @property
    def manifest_hash(self) -> str:
        """Content hash of the frozen split manifest the shards were made from."""
        return self.index["manifest_hash"]

    def card(self) -> specs.DatasetCard:
        """The dataset card: members, sources, licence and split schemes."""
        return self.spec.card()

    def dataset(self, split: Split, transform: Callable[[Sample], Any] | None = None) -> ShardDataset:
        """A split as a ``torch.utils.data.Dataset`` (the test split without targets)."""
        _check_split(split)
        return ShardDataset(self.shards, self.index, columns(self.spec, targets=split != "test"), split, transform)

    def dataloader(self, split: Split, batch_size: int | None = None, shuffle: bool | None = None, seed: int = 0,
                   transform: Callable[[Sample], Any] | None = None, **kwargs: Any) -> DataLoader:
        """A ``DataLoader`` of collated batches (dicts of numpy arrays) of a split.

        ``batch_size`` defaults to the spec's ``training.batch_size``; ``shuffle`` (shards
        and samples within them, see :class:`ShardSampler`) to True for ``train``; other
        keyword arguments (``num_workers``, ...) go to ``DataLoader``.
        """
        data = self.dataset(split, transform)
        sampler = ShardSampler(data, shuffle=split == "train" if shuffle is None else shuffle, seed=seed)
        return DataLoader(data, batch_size=batch_size or self.spec.training.batch_size, sampler=sampler,
                          collate_fn=collate, **kwargs)

    def ray_dataset(self, split: Literal["train", "val"]):
        """The train or val split as a Ray Dataset (what ``heliobench train`` streams to its workers)."""
        from heliobench.raysession import ensure_ray

        split_uris(self.index, split)  # refuses the test split before Ray starts
        ensure_ray()
        return ray_split(self.shards, self.index, self.spec, split)

    def inputs(self, batch: Sample) -> Tensors:
        """Model inputs of a batch: the reference task's transform (as in training and ``predict``)."""
        return self.task.inputs(self.spec, batch)

    def targets(self, batch: Sample) -> Tensors:
        """Training targets of a batch (train and val batches: test batches have none)."""
        missing = [k for k in self.spec.targets if k not in batch]
        if missing:
            raise HelioBenchError(f"batch has no target member(s) {', '.join(missing)} (test batches never do)")
        return self.task.targets(self.spec, batch)

    def reference_model(self) -> nn.Module:
        """The benchmark's reference model with the spec's parameters, untrained."""
        return build_model(self.spec)

    def predict(self, model: nn.Module, batch: Sample) -> Any:
        """``model``'s predictions (numpy) on a batch, through the task's ``predict``."""
        device = next(model.parameters(), torch.empty(0)).device
        return to_numpy(self.task.predict(model, to_device(self.inputs(batch), device)))

    def evaluator(self, split: Split = "val", n_boot: int | None = None) -> Evaluator:
        """An :class:`Evaluator` of a split (``n_boot`` defaults to the spec's ``evaluation.bootstrap``)."""
        return Evaluator(self, split, self.spec.evaluation.get("bootstrap", 1000) if n_boot is None else n_boot)

    def check_ids(self, predictions: Mapping[str, Any], split: Split) -> None:
        """Predictions keyed by ``sample_id`` must cover the split's samples exactly."""
        ids = self.dataset(split).sample_ids
        missing, extra = sorted(set(ids) - set(predictions)), sorted(set(predictions) - set(ids))
        if missing or extra:
            raise HelioBenchError(f"predictions for the {split} split: {len(missing)} sample id(s) missing "
                                  f"{missing[:3]}, {len(extra)} not in the split {extra[:3]}")

    def write_submission(self, predictions: nn.Module | Mapping[str, np.ndarray], path: str | Path) -> Path:
        """Write the test split's predictions as a ``heliobench submit`` file (segmentation).

        ``predictions`` is a model (run here on the test inputs) or masks keyed by
        ``sample_id``; the file is checked against the submission format before it is kept.
        """
        from heliobench.tracking.submissions import validate_submission

        check_submittable(self.spec)
        if isinstance(predictions, nn.Module):
            masks = {}
            for batch in split_batches(self.spec, self.shards, "test", self.spec.training.batch_size, targets=False):
                out = self.predict(predictions, batch)
                masks.update({str(i): out[k, 0] for k, i in enumerate(batch["sample_id"])})
        else:
            masks = predictions
        self.check_ids(masks, "test")
        path = Path(path)
        np.savez_compressed(path, **{k: np.asarray(v, dtype=np.float32) for k, v in masks.items()})
        try:
            validate_submission(path, self.dataset("test").sample_ids, (self.spec.resolution_px,) * 2, (0.0, 1.0), MAX_SUBMISSION_BYTES)
        except HelioBenchError:
            path.unlink()
            raise
        return path


def load_benchmark(name: str, dataset: str | None = None, shards: str | None = None,
                   overrides: Sequence[str] = ()) -> Benchmark:
    """A benchmark handle: spec ``name`` (in ``benchmarks/``) on dataset card ``dataset``
    (default: the spec's own), over the shard folder ``shards`` (default: where ``heliobench
    shard`` puts them in the workspace). ``overrides`` are ``--set`` items, e.g.
    ``["resolution_px=128"]`` for the demo's shards."""
    spec = specs.load_benchmark(name).on_dataset(dataset)
    if overrides:
        spec = spec.with_overrides(list(overrides))
    return Benchmark(spec, shards or default_shards(spec))

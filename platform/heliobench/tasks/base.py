"""The interface between a task kind and the generic training engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch
from torch import nn

from heliobench.specs import BenchmarkSpec

if TYPE_CHECKING:
    from heliobench.prep.image import PrepImage

#: What ``Task.inputs``/``targets``/``predict`` return: a tensor, or a dict of tensors
#: for tasks whose samples are structured (frames plus boxes, images plus class labels).
Tensors = Union[torch.Tensor, dict[str, torch.Tensor]]


def to_device(value: Tensors, device: torch.device) -> Tensors:
    """A tensor, or a dict of tensors, moved to ``device``."""
    if isinstance(value, dict):
        return {k: v.to(device) for k, v in value.items()}
    return value.to(device)


def to_numpy(value: Tensors) -> np.ndarray | dict[str, np.ndarray]:
    """A tensor, or a dict of tensors, as numpy (on the CPU)."""
    if isinstance(value, dict):
        return {k: v.detach().cpu().numpy() for k, v in value.items()}
    return value.detach().cpu().numpy()


def average_gradients(module: nn.Module) -> None:
    """Average gradients over the data-parallel workers (tasks that train without DDP).

    Tasks with several networks and optimisers (GANs) step their networks separately,
    which DDP's single forward cannot express; they call this after each backward pass.
    A no-op outside a distributed process group.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


class OptimizerSet:
    """Several named optimisers that checkpoint as one (``state_dict``/``load_state_dict``)."""

    def __init__(self, **optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


@dataclass(frozen=True)
class InputImage:
    """One input file of ``heliobench predict``: the preprocessed pixels and, for FITS/JP2, their geometry."""

    stem: str
    data: np.ndarray  # the benchmark input member's registered pixels (ny, nx)
    image: PrepImage | None  # registered geometry (None for display-scaled PNG/JPEG inputs)


class MetricAccumulator(ABC):
    """Streams (prediction, target) batches; ``compute`` gives the benchmark's metrics.

    Predictions and targets arrive as numpy arrays, or dicts of them (see :data:`Tensors`).
    """

    @abstractmethod
    def update(self, predictions: Any, targets: Any) -> None:
        """Add one batch."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """Every metric, keyed as in the benchmark spec."""


class Task(ABC):
    """What the engine needs from a task kind; models are plain ``torch.nn.Module``s.

    ``parallel_strategy`` is what Ray Train's ``prepare_model`` wraps the model in:
    ``"ddp"``, or None for tasks that synchronise gradients themselves
    (:func:`average_gradients`), such as GANs with one optimiser per network.
    """

    parallel_strategy: str | None = "ddp"

    @abstractmethod
    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        """The reference model with the spec's parameters."""

    @abstractmethod
    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> Tensors:
        """Model inputs from shard columns (same transform in training and ``predict``)."""

    @abstractmethod
    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> Tensors:
        """Training/evaluation targets from shard columns."""

    @abstractmethod
    def train_step(self, spec: BenchmarkSpec, model: nn.Module, optimizer: Any,
                   inputs: Tensors, targets: Tensors, generator: torch.Generator) -> dict[str, float]:
        """One optimisation step (augmentation included); returns losses, ``loss`` among them."""

    @abstractmethod
    def predict(self, model: nn.Module, inputs: Tensors) -> Tensors:
        """Model predictions in evaluation mode (no gradient)."""

    @abstractmethod
    def loss(self, predictions: Tensors, targets: Tensors) -> float:
        """The validation loss of a batch."""

    @abstractmethod
    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        """A fresh metric accumulator."""

    @abstractmethod
    def figure(self, spec: BenchmarkSpec, inputs: Any, targets: Any, predictions: Any,
               ids: list[str], path: Path) -> Path:
        """A figure of predictions next to the truth on a few samples (numpy, as ``to_numpy`` gives)."""

    @abstractmethod
    def predict_files(self, spec: BenchmarkSpec, model: nn.Module, images: list[InputImage], out_dir: Path,
                      options: dict[str, str]) -> list[dict[str, Any]]:
        """``heliobench predict``: write outputs for the input images (in the order given).

        ``options`` are the verb's ``--option KEY=VALUE`` pairs. Returns one record per
        input (or per sequence) naming the files written under ``out_dir``.
        """

    def optimizer(self, spec: BenchmarkSpec, model: nn.Module) -> Any:
        """Adam with the spec's learning rate; tasks with several networks return an :class:`OptimizerSet`."""
        return torch.optim.Adam(model.parameters(), lr=spec.training.lr)

    def score(self, spec: BenchmarkSpec, batches: Iterable[dict[str, np.ndarray]],
              predict: Callable[[dict[str, np.ndarray]], Any], n_boot: int = 1000) -> dict[str, float]:
        """The benchmark's metrics of ``predict`` (shard batch → numpy predictions) over ``batches``.

        Batches come in time order. Tasks whose evaluation feeds predictions back (one-pass
        tracking) override this and may call ``predict`` on batches they altered.
        """
        acc = self.accumulator(spec, n_boot=n_boot)
        for batch in batches:
            acc.update(predict(batch), to_numpy(self.targets(spec, batch)))
        return acc.compute()

    def describe(self) -> dict[str, Any]:
        """Task facts for run parameters."""
        return {"task_class": type(self).__name__}

"""The interface between a task kind and the generic training engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from heliobench.specs import BenchmarkSpec


class MetricAccumulator(ABC):
    """Streams (prediction, target) batches; ``compute`` gives the benchmark's metrics."""

    @abstractmethod
    def update(self, predictions: np.ndarray, targets: np.ndarray) -> None:
        """Add one batch."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """Every metric, keyed as in the benchmark spec."""


class Task(ABC):
    """What the engine needs from a task kind; models are plain ``torch.nn.Module``s."""

    @abstractmethod
    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        """The reference model with the spec's parameters."""

    @abstractmethod
    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        """Model inputs from shard columns (same transform in training and ``predict``)."""

    @abstractmethod
    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        """Training/evaluation targets from shard columns."""

    @abstractmethod
    def train_step(self, spec: BenchmarkSpec, model: nn.Module, optimizer: torch.optim.Optimizer,
                   inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """One optimisation step (augmentation included); returns losses."""

    @abstractmethod
    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Model predictions in evaluation mode (no gradient)."""

    @abstractmethod
    def loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        """The validation loss of a batch."""

    @abstractmethod
    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        """A fresh metric accumulator."""

    @abstractmethod
    def figure(self, spec: BenchmarkSpec, inputs: np.ndarray, targets: np.ndarray, predictions: np.ndarray,
               ids: list[str], path: Path) -> Path:
        """A figure of predictions next to the truth on a few samples."""

    def optimizer(self, spec: BenchmarkSpec, model: nn.Module) -> torch.optim.Optimizer:
        """Adam with the spec's learning rate (tasks with several networks override this)."""
        return torch.optim.Adam(model.parameters(), lr=spec.training.lr)

    def describe(self) -> dict[str, Any]:
        """Task facts for run parameters."""
        return {"task_class": type(self).__name__}

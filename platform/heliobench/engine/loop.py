"""The epoch loop shared by Ray Train workers and Ray Tune trials.

The loop is a plain function of a :class:`LoopContext`, which says where batches come
from and how progress is reported; :mod:`heliobench.engine.train` runs it on Ray Train
workers (data streamed with Ray Data, DDP across workers) and
:mod:`heliobench.engine.tune` in Ray Tune trials.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from heliobench.engine.checkpoints import BEST, load_checkpoint, read_weights, save_checkpoint, unwrap, weights
from heliobench.errors import HelioBenchError
from heliobench.models import build_model
from heliobench.specs import BenchmarkSpec
from heliobench.tasks import get_task
from heliobench.tasks.base import to_device, to_numpy


class LoopContext(ABC):
    """Where a training loop gets data and sends progress."""

    rank: int = 0

    @abstractmethod
    def train_batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
        """This worker's training batches for one epoch."""

    @abstractmethod
    def val_batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """All validation batches (rank 0 evaluates)."""

    @abstractmethod
    def latest_checkpoint(self):
        """The latest ``ray.train.Checkpoint`` to resume from, or None."""

    @contextlib.contextmanager
    def restore_dir(self) -> Iterator[str | None]:
        """The latest checkpoint as a local folder (None when starting afresh)."""
        ckpt = self.latest_checkpoint()
        if ckpt is None:
            yield None
        else:
            with ckpt.as_directory() as folder:
                yield folder

    @abstractmethod
    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        """Report an epoch's metrics, with a checkpoint from rank 0."""

    def prepare(self, model: torch.nn.Module, parallel_strategy: str | None = "ddp") -> torch.nn.Module:
        """Move the model to this worker's device, wrapped for distributed training if needed."""
        return model.to(self.device())

    def device(self) -> torch.device:
        """Where this worker computes (a GPU when one is assigned)."""
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def log_epoch(self, metrics: dict[str, float], step: int) -> None:
        """Log metrics to tracking (rank 0)."""

    def restored(self, epoch: int) -> None:
        """Called after resuming from a checkpoint, before ``epoch`` (rank 0 records the restart)."""


def validate(spec: BenchmarkSpec, model: torch.nn.Module, ctx: LoopContext) -> dict[str, float]:
    """Validation loss and the benchmark's metrics (without bootstrap intervals).

    Runs on rank 0 alone, so it uses the module inside any DDP wrapper: DDP's forward
    would wait for the other ranks to join a buffer broadcast.
    """
    task = get_task(spec.task)
    model = unwrap(model)
    acc = task.accumulator(spec, n_boot=0)
    losses = []
    device = ctx.device()
    for batch in ctx.val_batches(spec.training.batch_size):
        x, y = to_device(task.inputs(spec, batch), device), to_device(task.targets(spec, batch), device)
        pred = task.predict(model, x)
        losses.append(task.loss(pred, y) * len(batch["sample_id"]))
        acc.update(to_numpy(pred), to_numpy(y))
    out = {f"val_{k}": v for k, v in acc.compute().items() if not k.endswith(("_ci_low", "_ci_high"))}
    n = out.pop("val_n_images", None)
    out["val_loss"] = float(np.sum(losses) / n) if n else float("nan")
    return out


def improves(value: float, best: dict | None, direction: str) -> bool:
    """Whether a validation value beats the best so far (the first always does; NaN never
    beats a number)."""
    if best is None:
        return True
    if math.isnan(value):
        return False
    return math.isnan(best["value"]) or (value > best["value"] if direction == "maximize" else value < best["value"])


def _val_primary(spec: BenchmarkSpec, metrics: dict[str, float]) -> float:
    key = f"val_{spec.primary_metric}"
    if key not in metrics:
        raise HelioBenchError(f"benchmark {spec.name}: training.keep is best_val, but validation gives no {key}")
    return float(metrics[key])


def fit(config: dict, ctx: LoopContext) -> None:
    """Train ``config['spec']`` for ``training.epochs`` epochs, resuming from a checkpoint."""
    spec = BenchmarkSpec.model_validate(config["spec"])
    task = get_task(spec.task)
    seed = spec.training.seed
    torch.manual_seed(seed)
    model = build_model(spec)
    model = ctx.prepare(model, task.parallel_strategy)
    device = ctx.device()
    optimizer = task.optimizer(spec, model)
    history: list[dict] = []
    start = 0
    best: dict | None = None  # epoch and value of the best validation primary metric (training.keep: best_val)
    best_weights = None
    with ctx.restore_dir() as folder:
        if folder is not None:
            state = load_checkpoint(Path(folder), model, optimizer)
            start, history, best = state["epoch"] + 1, state["history"], state.get("best")
            if best is not None:
                best_weights = read_weights(Path(folder) / BEST)
            ctx.restored(start)
    for epoch in range(start, spec.training.epochs):
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 101 + ctx.rank)
        t0 = time.perf_counter()
        waits: list[float] = []
        losses = []
        tick = time.perf_counter()
        for batch in ctx.train_batches(epoch, spec.training.batch_size, seed * 1000 + epoch):
            waits.append(time.perf_counter() - tick)
            x, y = to_device(task.inputs(spec, batch), device), to_device(task.targets(spec, batch), device)
            losses.append(task.train_step(spec, model, optimizer, x, y, generator)["loss"])
            tick = time.perf_counter()
        epoch_s = time.perf_counter() - t0
        startup = waits[0] if waits else 0.0
        steady_s = epoch_s - startup
        metrics = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "epoch_seconds": epoch_s,
            # Loader telemetry: the wait for the first batch (the streaming pipeline starting up)
            # apart from the waits between steps, whose share of the steady-state time is the
            # fraction that tells whether the model ever waits on data.
            "data_startup_seconds": startup,
            "data_wait_fraction": sum(waits[1:]) / steady_s if steady_s > 0 else 0.0,
        }
        if ctx.rank == 0:
            metrics |= validate(spec, model, ctx)
            history.append(metrics)
            ctx.log_epoch(metrics, epoch)
            if spec.training.keep == "best_val":
                value = _val_primary(spec, metrics)
                if improves(value, best, spec.direction):
                    best, best_weights = {"epoch": epoch, "value": value}, weights(model)
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(Path(tmp), model, optimizer, config["spec"], {"epoch": epoch, "history": history, "best": best},
                                best_weights)
                ctx.report(metrics, Path(tmp))
        else:
            ctx.report(metrics, None)

"""Checkpoints: model weights as safetensors, optimizer state and progress beside them.

Model weights never go through pickle: ``model.safetensors`` plus ``model.json`` (the
benchmark spec the model was built from) is also the format of the MLflow model
artifact, so a downloaded model can be loaded safely. Optimizer state is our own file,
read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from heliobench.errors import HelioBenchError


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


def save_model(model: nn.Module, spec: dict, folder: Path) -> None:
    """Write ``model.safetensors`` and ``model.json`` (the spec) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "model.json").write_text(json.dumps(spec, indent=1, default=str))


def load_weights(model: nn.Module, folder: Path) -> None:
    """Load ``model.safetensors`` from ``folder`` into ``model`` (strict)."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise HelioBenchError(f"{path}: no model weights")
    try:
        unwrap(model).load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError) as exc:
        raise HelioBenchError(f"{path}: weights do not fit the model ({exc})") from None


def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, spec: dict, state: dict) -> None:
    """A training checkpoint: weights, optimizer state and ``state.json`` (epoch, history)."""
    save_model(model, spec, folder)
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    (folder / "state.json").write_text(json.dumps(state, indent=1))


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore weights and optimizer from a checkpoint folder; returns its ``state.json``."""
    load_weights(model, folder)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    return json.loads((folder / "state.json").read_text())

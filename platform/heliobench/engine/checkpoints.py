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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from heliobench.errors import HelioBenchError


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


#: The folder, inside a training checkpoint, of the best validation epoch's weights.
BEST = "best"


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of a model's state dict."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in unwrap(model).state_dict().items()}


def save_weights(state: dict[str, torch.Tensor], spec: dict, folder: Path) -> None:
    """Write ``model.safetensors`` (``state``) and ``model.json`` (the spec) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    (folder / "model.json").write_text(json.dumps(spec, indent=1, default=str))


def save_model(model: nn.Module, spec: dict, folder: Path) -> None:
    """Write ``model.safetensors`` and ``model.json`` (the spec) into ``folder``."""
    save_weights(weights(model), spec, folder)


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``folder/model.safetensors``."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise HelioBenchError(f"{path}: no model weights")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise HelioBenchError(f"{path}: unreadable weights ({exc})") from None


def load_weights(model: nn.Module, folder: Path) -> None:
    """Load ``model.safetensors`` from ``folder`` into ``model`` (strict)."""
    state = read_weights(folder)
    try:
        unwrap(model).load_state_dict(state)
    except RuntimeError as exc:
        raise HelioBenchError(f"{folder / 'model.safetensors'}: weights do not fit the model ({exc})") from None


def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, spec: dict, state: dict,
                    best: dict[str, torch.Tensor] | None = None) -> None:
    """A training checkpoint: weights, optimizer state, ``state.json`` (epoch, history) and,
    when given, the best validation epoch's weights in ``BEST/``."""
    save_model(model, spec, folder)
    if best is not None:
        save_weights(best, spec, folder / BEST)
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    (folder / "state.json").write_text(json.dumps(state, indent=1))


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore weights and optimizer from a checkpoint folder; returns its ``state.json``."""
    load_weights(model, folder)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    return json.loads((folder / "state.json").read_text())


def kept_weights_folder(folder: Path, keep: str) -> Path:
    """Where in a training checkpoint the weights ``training.keep`` asks for are: the last
    epoch's (``last``) or the best validation epoch's (``best_val``)."""
    return folder / BEST if keep == "best_val" else folder

"""Where a benchmark's model comes from: the task's reference model, or a plug-in.

A plug-in is any importable factory that returns a ``torch.nn.Module`` taking the task's
inputs and giving the reference model's outputs (same shapes and meaning: for segmentation
probabilities in [0, 1] of shape (N, targets, H, W)). It is named ``module:callable``:

- ``package.module:callable``: imported by name (the current folder is searched first, as
  with ``python -m``); on a cluster the module must be importable on every node;
- ``path/to/file.py:callable``: the file is loaded by path (its folder goes on ``sys.path``
  so that it can import its neighbours); the path is stored absolute in the spec, so every
  process on the machine (Ray workers, ``evaluate``, ``predict``) finds it.

The factory is called with the :class:`~heliobench.specs.BenchmarkSpec` when it takes a
parameter (inputs, targets, resolution and ``model.params`` are there), else with none.
:func:`with_plugin` puts a plug-in into a spec; :func:`build_model` builds whichever model a
spec names. Runs record the plug-in's reference, the SHA-256 of its source file and its
parameter count (:func:`plugin_tags`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from heliobench.errors import ConfigError
from heliobench.specs import BenchmarkSpec, ModelSpec
from heliobench.tasks import get_task
from heliobench.tracking.runs import TAG_PLUGIN, TAG_PLUGIN_SHA256


@dataclass(frozen=True)
class Plugin:
    """A resolved plug-in: its reference (a file path made absolute), display name and source."""

    ref: str
    name: str
    source: Path | None

    def sha256(self) -> str:
        """SHA-256 of the plug-in's source file (of the factory's source where there is no file)."""
        if self.source is not None and self.source.is_file():
            return hashlib.sha256(self.source.read_bytes()).hexdigest()
        return hashlib.sha256(inspect.getsource(load_factory(self.ref)).encode()).hexdigest()


def _split(ref: str) -> tuple[str, str]:
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"--model {ref!r}: expected module:callable or path/to/file.py:callable")
    return module, attr


def _is_path(module: str) -> bool:
    return module.endswith(".py") or os.sep in module or "/" in module


def resolve(ref: str) -> Plugin:
    """The plug-in ``ref`` names, checked to load; a file path becomes absolute."""
    module, attr = _split(ref)
    if _is_path(module):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"--model {ref!r}: no such file {path}")
        plugin = Plugin(f"{path}:{attr}", f"{path.stem}:{attr}", path)
    else:
        loaded = _import(module, ref)
        source = inspect.getsourcefile(loaded) if hasattr(loaded, "__file__") else None
        plugin = Plugin(ref, f"{module.rpartition('.')[2]}:{attr}", Path(source) if source else None)
    load_factory(plugin.ref)
    return plugin


def _import(module: str, ref: str):
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"--model {ref!r}: cannot import {module!r} ({exc})") from None


def _load_file(path: Path, ref: str):
    name = f"heliobench_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--model {ref!r}: {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"--model {ref!r}: {path} failed to load ({type(exc).__name__}: {exc})") from None
    return module


def load_factory(ref: str) -> Callable:
    """The callable ``ref`` names."""
    module, attr = _split(ref)
    loaded = _load_file(Path(module), ref) if _is_path(module) else _import(module, ref)
    target = loaded
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"--model {ref!r}: {module} has no {attr!r}")
    if not callable(target):
        raise ConfigError(f"--model {ref!r}: {attr} is not callable")
    return target


def _takes_an_argument(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def build_model(spec: BenchmarkSpec) -> nn.Module:
    """The model of ``spec``: its plug-in's, else the task's reference model."""
    if spec.model.factory is None:
        return get_task(spec.task).build_model(spec)
    factory = load_factory(spec.model.factory)
    model = factory(spec) if _takes_an_argument(factory) else factory()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec.model.factory!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def with_plugin(spec: BenchmarkSpec, ref: str) -> BenchmarkSpec:
    """``spec`` with the plug-in ``ref`` as its model (no parameters: ``--set model.params.K=V`` adds them)."""
    plugin = resolve(ref)
    return spec.model_copy(update={"model": ModelSpec(name=plugin.name, factory=plugin.ref)})


def plugin_tags(spec: BenchmarkSpec) -> dict[str, str]:
    """Run tags naming a spec's plug-in and its source hash (none for the reference model)."""
    if spec.model.factory is None:
        return {}
    return {TAG_PLUGIN: spec.model.factory, TAG_PLUGIN_SHA256: resolve(spec.model.factory).sha256()}


def n_parameters(model: nn.Module) -> int:
    """Number of parameters of a model."""
    return sum(p.numel() for p in model.parameters())


def check_model(spec: BenchmarkSpec, model: nn.Module, batch: dict) -> None:
    """Run ``model`` on one shard batch through the task's ``predict`` and ``loss``, so that a
    plug-in whose outputs do not fit the task fails at once, before any worker starts."""
    task = get_task(spec.task)
    try:
        task.loss(task.predict(model, task.inputs(spec, batch)), task.targets(spec, batch))
    except Exception as exc:  # noqa: BLE001 - any failure here is the model's misfit
        raise ConfigError(f"model {spec.model.name}: its outputs do not fit task {spec.task} "
                          f"({type(exc).__name__}: {str(exc)[:300]})") from None

"""Task kinds: each binds shard columns to model inputs/targets, the model, loss and metrics.

The engine only sees the :class:`~heliobench.tasks.base.Task` interface; a benchmark's
``task`` key selects one from :data:`TASKS` (imported on first use: each pulls in its
own models and metrics).
"""

from __future__ import annotations

import importlib

from heliobench.errors import ConfigError
from heliobench.tasks.base import Task

#: Task key → ``module:class``.
TASKS = {
    "segmentation": "heliobench.tasks.segmentation.task:SegmentationTask",
    "quality": "heliobench.tasks.quality.task:QualityTask",
    "tracking": "heliobench.tasks.tracking.task:TrackingTask",
    "translation": "heliobench.tasks.translation.task:TranslationTask",
    "detection": "heliobench.tasks.detection.task:DetectionTask",
    "classification": "heliobench.tasks.detection.task:ClassificationTask",
}


def get_task(kind: str) -> Task:
    """The task implementation for a benchmark's ``task`` key."""
    if kind not in TASKS:
        raise ConfigError(f"unknown task {kind!r} (known: {', '.join(sorted(TASKS))})")
    module, name = TASKS[kind].split(":")
    return getattr(importlib.import_module(module), name)()

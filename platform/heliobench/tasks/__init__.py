"""Task kinds: each binds shard columns to model inputs/targets, the model, loss and metrics.

The engine only sees the :class:`~heliobench.tasks.base.Task` interface; a benchmark's
``task`` key selects one from :data:`TASKS`.
"""

from __future__ import annotations

from heliobench.errors import ConfigError
from heliobench.tasks.base import Task


def get_task(kind: str) -> Task:
    """The task implementation for a benchmark's ``task`` key."""
    from heliobench.tasks.segmentation.task import SegmentationTask

    tasks: dict[str, type[Task]] = {"segmentation": SegmentationTask}
    if kind not in tasks:
        raise ConfigError(f"unknown task {kind!r} (known: {', '.join(sorted(tasks))})")
    return tasks[kind]()

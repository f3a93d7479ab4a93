"""The local workspace: the folder of the tracking store, artifacts, checkpoints, shards,
the leaderboard table and the log file (``$HELIOBENCH_WORKSPACE``, default ``./work``)."""

from __future__ import annotations

import os
from pathlib import Path


def workspace() -> Path:
    """The local workspace folder (tracking store, artifacts, checkpoints, leaderboard, logs)."""
    return Path(os.environ.get("HELIOBENCH_WORKSPACE", "work")).resolve()


def log_file() -> Path:
    """Where quiet commands write Ray's and MLflow's own log lines (:mod:`heliobench.logfile`)."""
    return workspace() / "logs" / "heliobench.log"

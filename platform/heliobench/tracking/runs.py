"""MLflow runs: where they are stored, what every run records, and model artifacts.

Embedded default: a sqlite tracking store and local artifacts in the workspace
(``$HELIOBENCH_WORKSPACE``, default ``./work``). Shared mode: ``--tracking-uri
http://host:port`` of an ``mlflow server`` (credentials from
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, never logged).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from heliobench.errors import HelioBenchError

#: Tags every HelioBench run carries.
TAG_BENCHMARK = "heliobench.benchmark"
TAG_KIND = "heliobench.kind"  # train | tune | trial | submission
MODEL_ARTIFACT = "model"


def workspace() -> Path:
    """The local workspace folder (tracking store, artifacts, checkpoints, leaderboard)."""
    return Path(os.environ.get("HELIOBENCH_WORKSPACE", "work")).resolve()


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI: the argument, ``MLFLOW_TRACKING_URI``, or the workspace's sqlite store."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    ws = workspace()
    ws.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{ws / 'mlflow.db'}"


def connect(uri: str | None = None) -> MlflowClient:
    """Point MLflow at the tracking store and check it answers (a clear error at start)."""
    resolved = tracking_uri(uri)
    if resolved.startswith(("http://", "https://")):
        _check_health(resolved)
    mlflow.set_tracking_uri(resolved)
    client = MlflowClient(resolved)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types for an unreachable server
        raise HelioBenchError(f"tracking server {resolved.split('@')[-1]} unreachable or refusing: {type(exc).__name__}: {str(exc)[:200]}") from None
    return client


def _check_health(uri: str, attempts: int = 3) -> None:
    """Fail at start, within seconds, when a tracking server does not answer ``/health``."""
    import urllib.error
    import urllib.request

    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (an auth proxy may guard /health); requests will tell the rest
        except OSError as exc:
            if attempt == attempts - 1:
                raise HelioBenchError(f"tracking server {uri} unreachable ({exc.__class__.__name__}: {getattr(exc, 'reason', exc)})") from None
            time.sleep(1.0 * 2**attempt)


def experiment_id(client: MlflowClient, benchmark: str) -> str:
    """The experiment of a benchmark (created with local artifacts under the workspace if needed)."""
    name = f"heliobench/{benchmark}"
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if client.tracking_uri.startswith("sqlite:"):
        location = (workspace() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        exp = client.get_experiment_by_name(name)  # created concurrently by another process
        if exp is None:
            raise
        return exp.experiment_id


def user() -> str:
    """Who is running: the tracking user name in shared mode, else the login name."""
    import getpass

    return os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()


def git_commit() -> str:
    """The project's git commit (``-dirty`` when the tree has changes).

    Outside a checkout (an installed image) it is ``$HELIOBENCH_GIT_COMMIT``, else ``unknown``.
    """
    if os.environ.get("HELIOBENCH_GIT_COMMIT"):
        return os.environ["HELIOBENCH_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log_metrics_once(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int) -> None:
    """Log metrics at ``step``, skipping keys already logged at that step (resume-safe)."""
    now = int(time.time() * 1000)
    fresh = []
    for key, value in metrics.items():
        if any(m.step == step for m in client.get_metric_history(run_id, key)):
            continue
        fresh.append(Metric(key, float(value), now, step))
    for i in range(0, len(fresh), 500):
        client.log_batch(run_id, metrics=fresh[i : i + 500])


def log_model_folder(client: MlflowClient, run_id: str, folder: Path) -> None:
    """Upload a model folder (``model.safetensors`` + ``model.json``) as the run's model artifact."""
    client.log_artifacts(run_id, str(folder), MODEL_ARTIFACT)


def download_model(client: MlflowClient, run_id: str) -> Path:
    """Download a run's model artifact into a temporary folder."""
    dest = Path(tempfile.mkdtemp(prefix="heliobench-model-"))
    try:
        return Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(dest)))
    except Exception as exc:  # noqa: BLE001
        raise HelioBenchError(f"run {run_id}: no model artifact ({type(exc).__name__})") from None

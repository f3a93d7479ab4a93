"""MLflow runs: where they are stored, what every run records, and model artifacts.

Embedded default: a sqlite tracking store and local artifacts in the workspace
(``$HELIOBENCH_WORKSPACE``, default ``./work``). Shared mode: ``--tracking-uri
http://host:port`` of an ``mlflow server`` (credentials from
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, or ``http://user:password@host``
— moved out of the URI at once; never logged, never in a parameter or an error message).

Experiments: ``heliobench/<benchmark>``; on a server with accounts (a user name is set),
each user logs into ``heliobench/<benchmark>/<user>``, which they create and manage, so
that with the server's ``default_permission = READ`` nobody else can change their runs.
Leaderboards read every one of a benchmark's experiments.

Metric logging survives short tracking-server outages: :func:`log_metrics_once` retries
with backoff for ``HELIOBENCH_TRACKING_RETRY_S`` seconds (default 300; on top of the MLflow
client's own retries) and is idempotent by step, so nothing is lost or logged twice.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heliobench import logfile
from heliobench.errors import HelioBenchError
from heliobench.storage import redact
from heliobench.workspace import workspace

logger = logging.getLogger(__name__)

#: Tags every HelioBench run carries.
TAG_BENCHMARK = "heliobench.benchmark"
TAG_KIND = "heliobench.kind"  # train | tune | trial | submission
#: A run of a plug-in model (:mod:`heliobench.models`): its reference and source SHA-256.
TAG_PLUGIN = "heliobench.plugin"
TAG_PLUGIN_SHA256 = "heliobench.plugin_sha256"
MODEL_ARTIFACT = "model"


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI: the argument, ``MLFLOW_TRACKING_URI``, or the workspace's sqlite store.

    Credentials in an ``http(s)://user:password@host`` URI are moved into this process's
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` and the URI is returned
    without them, so that it can be passed to workers, stored and printed safely.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return _move_credentials(uri)
    ws = workspace()
    ws.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{ws / 'mlflow.db'}"


def _move_credentials(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    if user:
        os.environ["MLFLOW_TRACKING_USERNAME"] = urllib.parse.unquote(user)
    if sep:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = urllib.parse.unquote(password)
    return urllib.parse.urlunsplit(parts._replace(netloc=hostport))


def connect(uri: str | None = None) -> MlflowClient:
    """Point MLflow at the tracking store and check it answers (a clear error at start)."""
    logfile.route("mlflow", "alembic")
    resolved = tracking_uri(uri)
    if resolved.startswith(("http://", "https://")):
        _check_health(resolved)
    mlflow.set_tracking_uri(resolved)
    client = MlflowClient(resolved)
    try:
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        status = _http_status(exc)
        if status == 401:
            who = os.environ.get("MLFLOW_TRACKING_USERNAME")
            raise HelioBenchError(
                f"tracking server {resolved}: not authenticated (HTTP 401) "
                + (f"as {who!r}: wrong password?" if who else "- set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
            ) from None
        if status == 403:
            raise HelioBenchError(f"tracking server {resolved}: permission denied (HTTP 403) for {user()!r}") from None
        raise HelioBenchError(redact(f"tracking server {resolved} unreachable or refusing: {type(exc).__name__}: {str(exc)[:200]}")) from None
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types for an unreachable server
        raise HelioBenchError(redact(f"tracking server {resolved} unreachable or refusing: {type(exc).__name__}: {str(exc)[:200]}")) from None
    return client


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an MLflow error stands for (401, 403, ...), None for a connection error."""
    if not isinstance(exc, MlflowException) or "failed with exception" in str(exc):
        return None
    try:
        return exc.get_http_status_code()
    except Exception:  # noqa: BLE001
        return None


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
                raise HelioBenchError(redact(
                    f"tracking server {uri} unreachable after {attempts} attempts "
                    f"({exc.__class__.__name__}: {getattr(exc, 'reason', exc)}); is `mlflow server` running there?"
                )) from None
            time.sleep(1.0 * 2**attempt)


def account(client: MlflowClient) -> str | None:
    """The user name on a tracking server with accounts, else None (local store, open server)."""
    if client.tracking_uri.startswith(("http://", "https://")):
        return os.environ.get("MLFLOW_TRACKING_USERNAME") or None
    return None


def experiment_name(client: MlflowClient, benchmark: str) -> str:
    """``heliobench/<benchmark>``, or ``heliobench/<benchmark>/<user>`` on a server with accounts."""
    owner = account(client)
    return f"heliobench/{benchmark}/{owner}" if owner else f"heliobench/{benchmark}"


def experiment_owner(name: str, benchmark: str) -> str | None:
    """The user of a per-user experiment name (``heliobench/<benchmark>/<user>``), else None."""
    prefix = f"heliobench/{benchmark}/"
    return name[len(prefix):] if name.startswith(prefix) and name[len(prefix):] else None


def benchmark_experiments(client: MlflowClient, benchmark: str) -> list:
    """Every experiment of a benchmark: the shared one and the users' own."""
    base = f"heliobench/{benchmark}"
    found, token = [], None
    while True:
        page = client.search_experiments(filter_string=f"name LIKE '{base}%'", max_results=1000, page_token=token)
        found += [e for e in page if e.name == base or e.name.startswith(base + "/")]
        token = page.token
        if not token:
            return found


def experiment_id(client: MlflowClient, benchmark: str) -> str:
    """The experiment of a benchmark (created with local artifacts under the workspace if needed)."""
    name = experiment_name(client, benchmark)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if client.tracking_uri.startswith("sqlite:"):
        location = (workspace() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException as exc:
        exp = client.get_experiment_by_name(name)  # created concurrently by another process
        if exp is None:
            if _http_status(exc) in (401, 403):
                raise HelioBenchError(f"tracking server {client.tracking_uri}: {user()!r} may not create experiment {name!r}") from None
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


def log_metrics_once(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int,
                     retry_s: float | None = None) -> None:
    """Log metrics at ``step``, skipping keys already logged at that step (resume-safe).

    When the tracking server is unreachable or answers 5xx, the whole call is retried
    with exponential backoff (1 s doubling, at most 15 s apart) for ``retry_s`` seconds
    (default ``$HELIOBENCH_TRACKING_RETRY_S``, else 300): the metrics of a short outage
    arrive late, once, and none is lost. Then, or at once for a refusal (401, 403, bad
    request), a :class:`HelioBenchError` names the server and run.
    """
    budget = retry_s if retry_s is not None else float(os.environ.get("HELIOBENCH_TRACKING_RETRY_S", "300"))
    deadline = time.monotonic() + budget
    now = int(time.time() * 1000)
    delay = 1.0
    while True:
        try:
            _log_missing(client, run_id, metrics, step, now)
            return
        except Exception as exc:  # noqa: BLE001 - sorted by _transient_tracking_error
            transient = _transient_tracking_error(exc)
            if not transient or time.monotonic() + delay > deadline:
                why = "unreachable for too long" if transient else "refused"
                raise HelioBenchError(redact(
                    f"tracking server {client.tracking_uri} {why}: metrics of run {run_id} at step {step} not logged "
                    f"({type(exc).__name__}: {str(exc)[:200]})"
                )) from None
            logger.warning("tracking server %s unreachable; retrying metrics of step %d in %.0f s", client.tracking_uri, step, delay)
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def _log_missing(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int, now: int) -> None:
    # One request finds each key's highest step so far; a key's history is read only when
    # this step may already be there (a replayed epoch after a restart or a retry).
    objs = getattr(client.get_run(run_id).data, "_metric_objs", None)
    latest = {m.key: m.step for m in objs} if objs is not None else None
    fresh = []
    for key, value in metrics.items():
        maybe_there = latest is None or latest.get(key, -1) >= step
        if maybe_there and any(m.step == step for m in client.get_metric_history(run_id, key)):
            continue
        fresh.append(Metric(key, float(value), now, step))
    for i in range(0, len(fresh), 500):
        client.log_batch(run_id, metrics=fresh[i : i + 500])


def _transient_tracking_error(exc: BaseException) -> bool:
    """Connection refused or reset, timeouts, 5xx and 429: worth retrying."""
    import requests

    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, MlflowException):
        text = str(exc)
        if "failed with exception" in text or "timeout" in text.lower() or "Max retries exceeded" in text:
            return True  # the REST client's wrapping of a connection-level error
        if any(f"error code {c} " in text for c in (429, 500, 502, 503, 504)):
            return True
    return False


def record_restore(client: MlflowClient, run_id: str, epoch: int) -> int:
    """Record that a run resumed from a checkpoint at ``epoch`` (a worker-group restart or
    ``--resume``): tag ``heliobench.restored`` and metric ``restarts`` (the count so far,
    at step = count), metric ``restored_at_epoch`` at the same step. Returns the count."""
    count = len(client.get_metric_history(run_id, "restarts")) + 1
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("restarts", count, now, count), Metric("restored_at_epoch", epoch, now, count)])
    client.set_tag(run_id, "heliobench.restored", str(count))
    return count


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

"""Shared fixtures: real data location, one Ray session for the whole suite, servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("HELIOBENCH_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real solar files of ``../shared/realdata``; skips the test where they are absent."""
    if not (REALDATA / "README.md").is_file():
        pytest.skip(
            f"real solar data not found at {REALDATA} (a checkout without ../shared/realdata; "
            "CI has it, or set HELIOBENCH_REALDATA)"
        )
    return REALDATA


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The S3-compatible server's address and test credentials are fixed before any Ray worker
# starts, so workers inherit them (Ray workers copy the driver's environment at init).
S3_PORT = _free_port()
os.environ.update(
    {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
        "AWS_ACCESS_KEY_ID": "heliobench-test",
        "AWS_SECRET_ACCESS_KEY": "heliobench-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module: small CPU models run several times faster on
    a busy 2-core machine without OpenMP spin-waiting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A fresh HelioBench workspace (``HELIOBENCH_WORKSPACE``) for one test module."""
    ws = tmp_path_factory.mktemp("ws")
    old = os.environ.get("HELIOBENCH_WORKSPACE")
    os.environ["HELIOBENCH_WORKSPACE"] = str(ws)
    yield ws
    if old is None:
        os.environ.pop("HELIOBENCH_WORKSPACE")
    else:
        os.environ["HELIOBENCH_WORKSPACE"] = old


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray session (2 CPUs, loopback) shared by the whole suite."""
    import ray

    from heliobench.raysession import ensure_ray

    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto_server) on 127.0.0.1; yields its endpoint URL."""
    import shutil
    import subprocess
    import time
    import urllib.request

    exe = shutil.which("moto_server") or str(Path(os.sys.executable).parent / "moto_server")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(S3_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = os.environ["AWS_ENDPOINT_URL"]
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the test S3 server; yields ``s3://NAME``."""
    import uuid

    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    name = f"hb-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    yield f"s3://{name}"


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory, ray_session) -> Path:
    """A small simulated archive spanning the park2019 splits (64 px, 30-day cadence)."""
    from heliobench.archive.sim import simulate_archive

    out = tmp_path_factory.mktemp("archive")
    simulate_archive(str(out), "2011-01-01", "2017-12-31", "30d", size=64, seed=3, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory, tiny_archive) -> Path:
    """The tiny archive ingested into a catalog folder."""
    from heliobench.catalog.ingest import ingest

    cat = tmp_path_factory.mktemp("catalog")
    ingest([str(tiny_archive)], str(cat), progress=False)
    return cat


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory, tiny_catalog) -> Path:
    """park2019 shards of the segmentation members at 64 px."""
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.shards import write_shards
    from heliobench.specs import load_card

    card = load_card("sdo_sim")
    manifest, _ = make_manifest(load_catalog(str(tiny_catalog)), card, "park2019")
    uri = str(tiny_catalog / "manifest.parquet")
    write_manifest(manifest, uri)
    out = tmp_path_factory.mktemp("shards")
    write_shards(uri, card, str(out), size_px=64, members=("aia_171", "aia_193", "ch_mask", "ar_mask"), samples_per_shard=16, progress=False)
    return out


@pytest.fixture(scope="session")
def mlflow_server(s3_server, tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 (sqlite store) with its artifacts in the S3 server.

    Yields ``(tracking_uri, artifact_bucket)``.
    """
    import shutil
    import subprocess
    import time
    import urllib.request

    import s3fs

    bucket = "mlflow-artifacts"
    s3fs.S3FileSystem(endpoint_url=s3_server).mkdir(bucket)
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    exe = shutil.which("mlflow") or str(Path(os.sys.executable).parent / "mlflow")
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_S3_ENDPOINT_URL=s3_server)
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", f"s3://{bucket}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url, bucket
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """An empty sqlite tracking store, migrated once per session (migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def client(tmp_path, monkeypatch, migrated_db):
    """A tracking client on a fresh copy of the migrated store, the workspace in ``tmp_path``."""
    import shutil

    from heliobench.tracking import runs

    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    monkeypatch.setenv("HELIOBENCH_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("HELIOBENCH_LEADERBOARD", raising=False)
    return runs.connect(f"sqlite:///{tmp_path}/mlflow.db")


# --------------------------------------------------------------------------------------
# Shared lab services: PostgreSQL and an MLflow server with basic-auth (infra/local/services.py)
# --------------------------------------------------------------------------------------


def load_lab_services():
    """``infra/local/services.py`` as the module ``heliobench_lab_services`` (loaded once)."""
    import importlib.util
    import sys

    name = "heliobench_lab_services"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "infra" / "local" / "services.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def lab_services():
    """The module ``infra/local/services.py`` (what ``make services`` runs)."""
    return load_lab_services()


@pytest.fixture(scope="session")
def postgres(lab_services):
    """A PostgreSQL cluster of its own on 127.0.0.1 (a free port, a random password)."""
    import secrets
    import shutil
    import tempfile

    # Outside pytest's temporary folder: PostgreSQL runs as the `postgres` user when we are root.
    data = Path(tempfile.mkdtemp(prefix="hb-pg-", dir="/tmp"))
    os.chmod(data, 0o755)
    pg = lab_services.Postgres(data / "data", _free_port(), secrets.token_urlsafe(16))
    pg.start()
    yield pg
    pg.stop()
    shutil.rmtree(data, ignore_errors=True)


class SharedTracking:
    """The secured shared tracking server: URL, accounts, and the server to stop and restart."""

    def __init__(self, server, admin_password: str, users: dict[str, str], bucket: str):
        self.server = server
        self.url = server.url
        self.admin_password = admin_password
        self.users = users  # name -> password; "raycluster" has EDIT on every experiment
        self.bucket = bucket

    def uri(self, user: str) -> str:
        """The tracking URI with ``user``'s credentials in it (``http://user:password@host:port``)."""
        return self.url.replace("http://", f"http://{user}:{self.users[user]}@")

    def env(self, user: str) -> dict[str, str]:
        return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": self.users[user]}


@pytest.fixture(scope="session")
def shared_tracking(lab_services, postgres, s3_server, tmp_path_factory):
    """``mlflow server --app-name basic-auth``: runs and users in PostgreSQL, artifacts in the
    S3 server, ``default_permission = READ``; users ``alice`` and ``bob``, and ``raycluster``
    (the Ray nodes' service account, EDIT on every experiment)."""
    import secrets

    bucket = "mlflow-shared"
    lab_services.create_buckets(s3_server, [bucket])
    admin = secrets.token_urlsafe(16)
    server = lab_services.auth_server(tmp_path_factory.mktemp("shared-tracking"), postgres, s3_server, bucket, admin)
    server.start()
    users = {name: f"{name}-{secrets.token_urlsafe(12)}" for name in ("alice", "bob", "raycluster")}
    for name, password in users.items():
        lab_services.create_user(server.url, admin, name, password, edit_all=name == "raycluster")
    yield SharedTracking(server, admin, users, bucket)
    server.stop()

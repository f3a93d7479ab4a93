#!/usr/bin/env python3
"""The shared lab services on one machine, without Docker: PostgreSQL, an S3-compatible
server (moto) and an ``mlflow server`` with basic-auth, its run data in PostgreSQL and its
artifacts in the S3 server. Everything listens on 127.0.0.1.

    make services                                   # = python infra/local/services.py up
    set -a; . work/services/lab.env; set +a          # then: heliobench ... (as admin)
    make services-down                              # = python infra/local/services.py down

``up`` writes ``DIR/lab.env`` (mode 600; the generated admin and S3 credentials, the
tracking URI) and keeps every service's data and log under ``DIR`` (default
``work/services``); a second ``up`` reuses the data. The test suite starts the same
services through the functions of this module (``tests/conftest.py``).

Passwords never appear on a command line (visible to every local user in ``ps``):
PostgreSQL's reaches MLflow through ``PGPASSWORD``, the admin's through
``MLFLOW_AUTH_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "mlflow"
TRACKING_DB = "mlflow"
AUTH_DB = "mlflow_auth"
ADMIN_USER = "admin"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    """An executable beside this Python (the venv), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    exe = shutil.which(name)
    if exe:
        return exe
    raise RuntimeError(f"PostgreSQL's {name} not found: install Debian's postgresql (make system-deps)")


def _wait(what: str, check, proc: subprocess.Popen | None, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.time() + timeout_s
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode}\n{tail}")
        if time.time() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} not ready after {timeout_s:.0f} s\n{tail}")
        time.sleep(0.3)


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1:``port``."""

    data_dir: Path
    port: int
    password: str

    @property
    def _as_postgres(self) -> bool:
        return os.geteuid() == 0  # initdb and postgres refuse to run as root

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, check=True, capture_output=True, text=True, **kw)

    def url(self, database: str) -> str:
        """SQLAlchemy URL without the password (give it through ``PGPASSWORD``)."""
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            os.chmod(self.data_dir, 0o700)
            shutil.chown(self.data_dir, "postgres", "postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            pwfile = self.data_dir.parent / f".{self.data_dir.name}.pw"
            pwfile.write_text(self.password + "\n")
            os.chmod(pwfile, 0o600)
            if self._as_postgres:
                shutil.chown(pwfile, "postgres", "postgres")
            try:
                self._run([_pg_bin("initdb"), "-D", str(self.data_dir), "-U", PG_USER, "--auth-local=trust",
                           "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions"])
            finally:
                pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=200"
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-o", opts, "-l", str(self.data_dir / "server.log"), "-w", "-t", "60", "start"])
        self.create_databases()

    def create_databases(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, password=self.password, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in (TRACKING_DB, AUTH_DB):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run([_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])


# --------------------------------------------------------------------------------------
# S3-compatible server (moto) and MLflow
# --------------------------------------------------------------------------------------


def start_moto(port: int, log: Path) -> subprocess.Popen:
    """``moto_server`` on 127.0.0.1:``port`` (in-memory: it forgets everything when stopped)."""
    out = open(log, "a")
    proc = subprocess.Popen([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait(f"moto_server on {url}", lambda: urllib.request.urlopen(url, timeout=1).status == 200, proc, 30, log)
    return proc


def create_buckets(endpoint: str, names: list[str]) -> None:
    """Create the buckets that do not exist yet (S3 credentials from the environment)."""
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    for name in names:
        if not fs.exists(name):
            fs.mkdir(name)


@dataclass
class MlflowServer:
    """An ``mlflow server`` process; ``url`` is its tracking URI."""

    port: int
    backend_store_uri: str
    artifacts_destination: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    auth_config: Path | None = None
    workers: int = 1
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180) -> None:
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **self.env)
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(key, None)
        cmd = [_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
               "--backend-store-uri", self.backend_store_uri, "--artifacts-destination", self.artifacts_destination]
        if self.auth_config is not None:
            cmd += ["--app-name", "basic-auth"]
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(self.auth_config)
        out = open(self.log, "a")
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(f"mlflow server on {self.url}", self.healthy, self.proc, timeout_s, self.log)

    def healthy(self) -> bool:
        try:
            return urllib.request.urlopen(f"{self.url}/health", timeout=2).status == 200
        except urllib.error.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the whole server tree (``mlflow`` and its uvicorn workers)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def write_auth_config(path: Path, database_uri: str, default_permission: str = "READ") -> Path:
    """The basic-auth app's configuration (no secret in it: the admin password comes from
    ``MLFLOW_AUTH_ADMIN_PASSWORD``, PostgreSQL's from ``PGPASSWORD``)."""
    path.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Each request otherwise pays a PBKDF2 password check (about 0.3 s here): cache a
        # successful check for a minute (a changed password is honoured within that minute).
        "auth_cache_ttl_seconds = 60\n"
    )
    os.chmod(path, 0o600)
    return path


def auth_server(root: Path, pg: Postgres, s3_endpoint: str, bucket: str, admin_password: str, port: int | None = None,
                workers: int = 1) -> MlflowServer:
    """An MLflow server with basic-auth: runs and users in PostgreSQL, artifacts in S3 (not started)."""
    root.mkdir(parents=True, exist_ok=True)
    config = write_auth_config(root / "basic_auth.ini", pg.url(AUTH_DB))
    env = {
        "PGPASSWORD": pg.password,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(24),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        if key in os.environ:
            env[key] = os.environ[key]
    return MlflowServer(port or free_port(), pg.url(TRACKING_DB), f"s3://{bucket}/mlflow", root / "mlflow.log", env, config, workers)


def create_user(url: str, admin_password: str, username: str, password: str, edit_all: bool = False) -> None:
    """Create an MLflow user (as admin); ``edit_all`` grants EDIT on every experiment (service accounts)."""
    from mlflow.server import get_app_client

    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=ADMIN_USER, MLFLOW_TRACKING_PASSWORD=admin_password)
    try:
        auth = get_app_client("basic-auth", tracking_uri=url)
        auth.create_user(username=username, password=password)
        if edit_all:
            auth.grant_user_permission(username=username, resource_type="experiment", resource_id="*", permission="EDIT")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------------------
# `make services`: up / down / status
# --------------------------------------------------------------------------------------


def _state(root: Path) -> dict:
    path = root / "services.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def up(root: Path, mlflow_port: int, s3_port: int, pg_port: int) -> None:
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    state = _state(root)
    if state and any(_alive(state[k]) for k in ("moto_pid", "mlflow_pid")):
        print(f"services already running (see {root / 'lab.env'}); `make services-down` first")
        return
    secrets_file = root / "secrets.json"
    if secrets_file.exists():
        creds = json.loads(secrets_file.read_text())
    else:
        creds = {"pg": secrets.token_urlsafe(18), "admin": secrets.token_urlsafe(18),
                 "s3_key": f"lab-{secrets.token_hex(4)}", "s3_secret": secrets.token_urlsafe(24)}
        secrets_file.write_text(json.dumps(creds))
        os.chmod(secrets_file, 0o600)
    os.environ.update(AWS_ACCESS_KEY_ID=creds["s3_key"], AWS_SECRET_ACCESS_KEY=creds["s3_secret"], AWS_DEFAULT_REGION="us-east-1")
    pg_dir = Path(f"/tmp/heliobench-pg-{pg_port}") if os.geteuid() == 0 else root / "postgres"
    pg = Postgres(pg_dir, pg_port, creds["pg"])
    pg.start()
    s3 = f"http://127.0.0.1:{s3_port}"
    moto = start_moto(s3_port, root / "moto.log")
    create_buckets(s3, ["mlflow-artifacts", "heliobench"])
    server = auth_server(root / "mlflow", pg, s3, "mlflow-artifacts", creds["admin"], port=mlflow_port, workers=2)
    server.start()
    (root / "services.json").write_text(json.dumps({"pg_dir": str(pg_dir), "pg_port": pg_port, "moto_pid": moto.pid,
                                                     "mlflow_pid": server.proc.pid}))
    env = root / "lab.env"
    env.write_text(
        "# HelioBench lab services on this machine (python infra/local/services.py up). Secrets: keep private.\n"
        f"MLFLOW_TRACKING_URI={server.url}\nMLFLOW_TRACKING_USERNAME={ADMIN_USER}\nMLFLOW_TRACKING_PASSWORD={creds['admin']}\n"
        f"AWS_ENDPOINT_URL={s3}\nAWS_ACCESS_KEY_ID={creds['s3_key']}\nAWS_SECRET_ACCESS_KEY={creds['s3_secret']}\n"
        "AWS_DEFAULT_REGION=us-east-1\nHELIOBENCH_BUCKET=s3://heliobench\n"
    )
    os.chmod(env, 0o600)
    print(f"PostgreSQL 127.0.0.1:{pg_port}, S3 {s3} (moto; in memory), MLflow {server.url} (basic-auth)")
    print(f"credentials and addresses: {env}  (set -a; . {env}; set +a)")
    print(f"add users: python infra/local/services.py add-user NAME --dir {root}")


def down(root: Path) -> None:
    root = root.resolve()
    state = _state(root)
    if not state:
        print("no services recorded under", root)
        return
    for key in ("mlflow_pid", "moto_pid"):
        pid = state.get(key)
        if pid and _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)  # the whole tree: mlflow and its uvicorn workers
            except ProcessLookupError:
                pass
            deadline = time.time() + 30
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.2)
    creds = json.loads((root / "secrets.json").read_text())
    Postgres(Path(state["pg_dir"]), state["pg_port"], creds["pg"]).stop()
    (root / "services.json").unlink()
    print("services stopped (PostgreSQL data kept in", state["pg_dir"] + ")")


def add_user(root: Path, name: str, edit_all: bool) -> None:
    import getpass

    root = root.resolve()
    creds = json.loads((root / "secrets.json").read_text())
    url = next(line.split("=", 1)[1] for line in (root / "lab.env").read_text().splitlines() if line.startswith("MLFLOW_TRACKING_URI="))
    password = getpass.getpass(f"new password for {name}: ")
    create_user(url, creds["admin"], name, password, edit_all=edit_all)
    print(f"user {name} created" + (" (EDIT on every experiment)" if edit_all else ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("up", "down", "add-user"):
        p = sub.add_parser(name)
        p.add_argument("--dir", type=Path, default=Path("work/services"))
        if name == "up":
            p.add_argument("--mlflow-port", type=int, default=int(os.environ.get("MLFLOW_PORT", 5000)))
            p.add_argument("--s3-port", type=int, default=int(os.environ.get("S3_PORT", 9000)))
            p.add_argument("--pg-port", type=int, default=int(os.environ.get("PG_PORT", 5433)))
        if name == "add-user":
            p.add_argument("name")
            p.add_argument("--service-account", action="store_true", help="EDIT on every experiment (the Ray cluster's account)")
    a = parser.parse_args(argv)
    if a.cmd == "up":
        up(a.dir, a.mlflow_port, a.s3_port, a.pg_port)
    elif a.cmd == "down":
        down(a.dir)
    else:
        add_user(a.dir, a.name, a.service_account)


if __name__ == "__main__":
    main()

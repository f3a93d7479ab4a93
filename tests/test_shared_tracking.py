"""Shared, secured tracking against real servers: ``mlflow server --app-name basic-auth`` with
its runs and users in PostgreSQL and its artifacts in the S3-compatible server (the
``shared_tracking`` fixture; ``make services`` starts the same thing).

- an unauthenticated client can neither write runs nor record submissions;
- a user cannot change another user's runs; everybody can read them;
- leaderboard entries record who submitted them (the owner of the experiment, which only
  that user can write into, whatever the submitter name claims);
- eight clients logging at once lose no metric;
- credentials (in the tracking URI, in the environment) stay out of logs, parameters,
  tags and error messages;
- the server stopped and restarted while metrics are being logged: none is lost, none
  logged twice; while it is down a new client fails at start, within seconds, clearly.

The restart test comes last: it stops the session's server.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heliobench.errors import HelioBenchError, StorageError
from heliobench.specs import load_benchmark
from heliobench.tracking import runs
from heliobench.tracking.leaderboard import LeaderboardTable, rank
from heliobench.tracking.submissions import record_submission

BENCH = "ch_segmentation"

pytestmark = pytest.mark.slow  # real servers stopped and restarted (`make test-fast` leaves them out)


@pytest.fixture(autouse=True)
def _own_credentials(monkeypatch):
    """Each test chooses its user; whatever it sets is undone afterwards."""
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)


def as_user(monkeypatch, shared, name: str | None) -> MlflowClient:
    if name is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    else:
        for key, value in shared.env(name).items():
            monkeypatch.setenv(key, value)
    return MlflowClient(shared.url)


def _status(exc: MlflowException) -> int:
    return exc.get_http_status_code()


def _predictions(tmp_path, name: str):
    path = tmp_path / f"{name}.npz"
    np.savez(path, a=np.zeros((4, 4), np.float32))
    return path


def test_unauthenticated_client_cannot_write_runs_or_submissions(shared_tracking, monkeypatch, tmp_path):
    anonymous = as_user(monkeypatch, shared_tracking, None)
    with pytest.raises(HelioBenchError, match=r"not authenticated \(HTTP 401\).*MLFLOW_TRACKING_USERNAME"):
        runs.connect(shared_tracking.url)
    with pytest.raises(MlflowException) as err:
        anonymous.create_experiment("heliobench/anonymous")
    assert _status(err.value) == 401
    spec = load_benchmark(BENCH)
    with pytest.raises((MlflowException, HelioBenchError)):
        record_submission(anonymous, spec, "anonymous-model", "nobody", {spec.primary_metric: 0.9}, "h" * 64,
                          _predictions(tmp_path, "anon"), table=LeaderboardTable(str(tmp_path / "lb.parquet")))
    assert not (tmp_path / "lb.parquet").exists()
    # A wrong password: refused at start, and the message does not repeat it.
    wrong = shared_tracking.url.replace("http://", "http://alice:not-her-password@")
    with pytest.raises(HelioBenchError) as err:
        runs.connect(wrong)
    assert "HTTP 401" in str(err.value) and "'alice'" in str(err.value) and "not-her-password" not in str(err.value)
    admin = as_user(monkeypatch, shared_tracking, None)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", shared_tracking.admin_password)
    found = [r for e in runs.benchmark_experiments(admin, BENCH) for r in admin.search_runs([e.experiment_id])
             if r.info.run_name == "submission-anonymous-model"]
    assert not found


def test_users_cannot_change_each_others_runs(shared_tracking, monkeypatch):
    alice = runs.connect(shared_tracking.uri("alice"))  # credentials in the URI, moved out of it
    assert alice.tracking_uri == shared_tracking.url and runs.user() == "alice"
    exp = runs.experiment_id(alice, BENCH)
    assert alice.get_experiment(exp).name == f"heliobench/{BENCH}/alice"
    run = alice.create_run(exp, run_name="alice-run", tags={runs.TAG_KIND: "train", "mlflow.user": "alice"})
    run_id = run.info.run_id
    runs.log_metrics_once(alice, run_id, {"val_loss": 0.5}, step=0)

    bob = as_user(monkeypatch, shared_tracking, "bob")
    assert bob.get_run(run_id).data.metrics == {"val_loss": 0.5}  # everybody reads
    attempts = {
        "log_metric": lambda: bob.log_metric(run_id, "val_loss", 0.01, step=0),
        "log_batch": lambda: bob.log_batch(run_id, params=[], metrics=[], tags=[]) or bob.set_tag(run_id, "x", "y"),
        "log_param": lambda: bob.log_param(run_id, "lr", "1"),
        "set_tag": lambda: bob.set_tag(run_id, "mlflow.user", "bob"),
        "rename": lambda: bob.update_run(run_id, name="bob-was-here"),
        "terminate": lambda: bob.set_terminated(run_id, "FAILED"),
        "delete": lambda: bob.delete_run(run_id),
        "new run in her experiment": lambda: bob.create_run(exp),
        "helio log_metrics_once": lambda: runs.log_metrics_once(bob, run_id, {"val_loss": 0.01}, step=1),
    }
    for what, attempt in attempts.items():
        with pytest.raises((MlflowException, HelioBenchError)) as err:
            attempt()
        assert "403" in str(err.value) or (isinstance(err.value, MlflowException) and _status(err.value) == 403), what
    # Bob's own runs go into his own experiment.
    bob_exp = runs.experiment_id(bob, BENCH)
    assert bob.get_experiment(bob_exp).name == f"heliobench/{BENCH}/bob"
    bob.create_run(bob_exp)
    after = alice.get_run(run_id)
    assert after.data.metrics == {"val_loss": 0.5} and after.info.status == "RUNNING" and after.info.lifecycle_stage == "active"
    assert after.data.params == {} and after.data.tags["mlflow.user"] == "alice" and after.info.run_name == "alice-run"


def test_leaderboard_records_who_submitted(shared_tracking, monkeypatch, tmp_path):
    spec = load_benchmark(BENCH)
    table = LeaderboardTable(str(tmp_path / "leaderboard.parquet"))
    p = spec.primary_metric
    alice = as_user(monkeypatch, shared_tracking, "alice")
    entry_a = record_submission(alice, spec, "alice-unet", runs.user(), {p: 0.61}, "m" * 64, _predictions(tmp_path, "a"), table=table)
    assert entry_a.submitter == "alice"
    bob = as_user(monkeypatch, shared_tracking, "bob")
    # Bob claims to be Alice: the entry says who could write it.
    entry_b = record_submission(bob, spec, "bob-unet", "alice", {p: 0.64}, "m" * 64, _predictions(tmp_path, "b"), table=table)
    assert entry_b.submitter == "bob"
    ranked = rank(table, spec)
    assert dict(zip(ranked["model"], ranked["submitters"])) == {"alice-unet": "alice", "bob-unet": "bob"}
    # Rebuilt from MLflow by anyone who can read: the same attribution.
    rebuilt = LeaderboardTable(str(tmp_path / "rebuilt.parquet"))
    rebuilt.rebuild_from_mlflow(bob, [spec])
    df = rebuilt.read()
    mine = df.filter(df["entry_id"].is_in([entry_a.entry_id, entry_b.entry_id]))
    assert dict(zip(mine["model"], mine["submitter"])) == {"alice-unet": "alice", "bob-unet": "bob"}


def test_eight_concurrent_clients_lose_no_metric(shared_tracking, monkeypatch):
    as_user(monkeypatch, shared_tracking, "raycluster")  # the account Tune trials log with
    owner = MlflowClient(shared_tracking.url)
    exp = runs.experiment_id(owner, BENCH)
    steps, keys = 10, ("train_loss", "val_loss", "val_iou")
    run_ids, errors = [None] * 8, []

    def trial(i: int) -> None:
        try:
            client = MlflowClient(shared_tracking.url)
            run_ids[i] = client.create_run(exp, run_name=f"concurrent-{i}").info.run_id
            for step in range(steps):
                runs.log_metrics_once(client, run_ids[i], {k: i + step / 100 for k in keys}, step)
                if step % 3 == 0:  # a replayed epoch (a resumed trial) must not log twice
                    runs.log_metrics_once(client, run_ids[i], {k: -1.0 for k in keys}, step)
            client.set_terminated(run_ids[i])
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    t0 = time.time()
    threads = [threading.Thread(target=trial, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    print(f"\n[shared] 8 concurrent clients x {steps} steps x {len(keys)} metrics in {time.time() - t0:.1f} s")
    assert not errors, errors
    for i, run_id in enumerate(run_ids):
        for key in keys:
            history = owner.get_metric_history(run_id, key)
            assert sorted(m.step for m in history) == list(range(steps)), (i, key)
            assert all(m.value == pytest.approx(i + m.step / 100) for m in history)


def test_credentials_stay_out_of_logs_params_and_errors(shared_tracking, monkeypatch, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    password = shared_tracking.users["alice"]
    aws_secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    client = runs.connect(shared_tracking.uri("alice"))
    assert password not in client.tracking_uri and password not in runs.tracking_uri(shared_tracking.uri("alice"))
    spec = load_benchmark(BENCH)
    entry = record_submission(client, spec, "secret-check", runs.user(), {spec.primary_metric: 0.5}, "s" * 64,
                              _predictions(tmp_path, "s"), table=LeaderboardTable(str(tmp_path / "lb.parquet")))
    runs.log_metrics_once(client, entry.entry_id, {"x": 1.0}, 0)
    run = client.get_run(entry.entry_id)
    stored = json.dumps({"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics})
    # Errors: a dead server named by a URI with a password; storage that does not answer.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    messages = []
    with pytest.raises(HelioBenchError) as err:
        runs.connect(f"http://alice:{password}@127.0.0.1:{dead}")
    messages.append(str(err.value))
    assert f"127.0.0.1:{dead}" in messages[-1] and "unreachable" in messages[-1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("HELIOBENCH_STORAGE_ATTEMPTS", "1")
    from heliobench import storage

    with pytest.raises(StorageError) as err:
        storage.read_bytes("s3://bucket/key")
    messages.append(str(err.value))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the client's own retries would take minutes
    with pytest.raises(HelioBenchError) as err:
        runs.log_metrics_once(MlflowClient(f"http://127.0.0.1:{dead}"), entry.entry_id, {"x": 2.0}, 1, retry_s=0)
    messages.append(str(err.value))
    out, errtext = capfd.readouterr()
    everything = "\n".join([stored, caplog.text, out, errtext, *messages])
    assert password not in everything and aws_secret not in everything
    assert "storage unreachable" in messages[1] and f"127.0.0.1:{dead}" in messages[2]


def test_metrics_logged_through_a_tracking_server_restart_are_not_lost(shared_tracking, monkeypatch):
    """Stops and restarts the session's server (kept last in this module)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # only HelioBench's retries count here
    client = as_user(monkeypatch, shared_tracking, "alice")
    exp = runs.experiment_id(client, BENCH)
    run_id = client.create_run(exp, run_name="through-an-outage").info.run_id
    steps = 16
    progress: dict = {"step": -1, "times": {}}
    failures: list = []

    def logger_thread():
        try:
            for step in range(steps):
                t0 = time.time()
                runs.log_metrics_once(client, run_id, {"train_loss": 1.0 / (step + 1), "val_loss": 2.0 / (step + 1)}, step, retry_s=300)
                progress["times"][step] = time.time() - t0
                progress["step"] = step
                time.sleep(0.2)
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    thread = threading.Thread(target=logger_thread)
    thread.start()
    deadline = time.time() + 120
    while progress["step"] < 4 and time.time() < deadline and not failures:
        time.sleep(0.05)
    assert progress["step"] >= 4, failures
    down_at = time.time()
    shared_tracking.server.stop()
    # While it is down, a command starting now fails at once, clearly.
    t0 = time.time()
    with pytest.raises(HelioBenchError, match=f"tracking server {shared_tracking.url} unreachable"):
        runs.connect(shared_tracking.url)
    fail_fast_s = time.time() - t0
    time.sleep(2)
    shared_tracking.server.start()
    up_at = time.time()
    thread.join(400)
    assert not failures, failures
    longest = max(progress["times"].values())
    print(f"\n[fault] MLflow server down {up_at - down_at:.1f} s (stop + restart); the step in flight waited {longest:.1f} s; "
          f"connect() failed in {fail_fast_s:.1f} s while it was down")
    assert fail_fast_s < 15
    for key in ("train_loss", "val_loss"):
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == list(range(steps)), key

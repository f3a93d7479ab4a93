"""Multi-node for real: a three-node Ray cluster on 127.0.0.1, nodes killed mid-work.

``tests/cluster_run.py`` runs in a process of its own (a Ray cluster needs its own Ray
instance, and this suite shares one local session): a ``ray.cluster_utils.Cluster`` with
a head and two worker nodes, the workloads as driver processes joined with
``--address``/``RAY_ADDRESS`` (``heliobench ingest``, ``heliobench shard``, ``train``,
``tune_benchmark``), nodes killed with SIGKILL in the middle of them and replaced. The
runs log to the secured shared tracking server (PostgreSQL, basic-auth, S3 artifacts) as
``alice`` through a tracking URI with her password in it, the workers with the cluster's
service account. This module checks what the driver recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[1]
#: Ingested while a node dies: a part of the archive (all of it takes minutes on 2 cores).
INGEST_SOURCES = ["hmi", "aia/2017", "labels/masks"]


@pytest.fixture(scope="module")
def cluster_results(tiny_archive, tiny_catalog, tiny_shards, shared_tracking, tmp_path_factory):
    work = tmp_path_factory.mktemp("cluster")
    sources = [s for s in INGEST_SOURCES if (tiny_archive / s).is_dir()]
    assert sources, f"none of {INGEST_SOURCES} in the test archive"
    cfg = {
        "archive": str(tiny_archive), "ingest_sources": sources, "catalog": str(tiny_catalog),
        "manifest": str(tiny_catalog / "manifest.parquet"), "shards": str(tiny_shards),
        "work": str(work / "run"), "out": str(work / "results.json"),
        "tracking_uri": shared_tracking.uri("alice"),
        "cluster_env": shared_tracking.env("raycluster"),
        "secrets": [shared_tracking.users["alice"], shared_tracking.users["raycluster"], os.environ["AWS_SECRET_ACCESS_KEY"]],
    }
    (work / "config.json").write_text(json.dumps(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "MLFLOW_TRACKING_"))}
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="hbc-", dir="/tmp")  # short: Ray's socket paths live there
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    log = work / "cluster_run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "cluster_run.py"), str(work / "config.json")],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(REPO), start_new_session=True)
        try:
            code = proc.wait(2200)
        finally:
            try:  # the driver, its Ray nodes and their workers share its process group
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)  # the cluster's logs (grepped by the driver)
    text = log.read_text()
    print("\n".join(line for line in text.splitlines() if line.startswith("[cluster_run") or line.startswith("-----")))
    results_path = Path(cfg["out"])
    assert results_path.exists(), f"cluster_run.py exited with {code} before writing results:\n{text[-5000:]}"
    results = json.loads(results_path.read_text())
    results["_exit_code"] = code
    results["_log_tail"] = text[-4000:]
    print(json.dumps({k: v for k, v in results.items() if not k.startswith("_")}, indent=1)[:6000])
    return results


def _phase(results: dict, name: str) -> dict:
    phase = results.get(name)
    assert phase is not None, f"phase {name} did not run:\n{results['_log_tail']}"
    assert "error" not in phase, f"phase {name} failed:\n{phase['error']}"
    return phase


def test_the_cluster_has_three_nodes(cluster_results):
    assert cluster_results["nodes"]["count"] == 3
    assert cluster_results["_exit_code"] == 0, cluster_results["_log_tail"]


def test_ingest_survives_a_worker_node_killed_mid_run(cluster_results):
    r = _phase(cluster_results, "ingest")
    assert r["reads_before_kill"] >= 10 and r["driver_still_running"], "the node was not killed mid-ingest"
    assert r["rows"]["observations"] + r["rows"]["labels"] > 0
    assert r["rows"] == r["expected_rows"]
    assert r["equal"] and r["checksums_equal"], "catalog differs from the undisturbed run's"


def test_sharding_survives_a_worker_node_killed_mid_run(cluster_results):
    r = _phase(cluster_results, "shard")
    assert r["reads_before_kill"] >= 6 and r["driver_still_running"], "the node was not killed mid-shard"
    assert r["shards"] == r["expected_shards"] and r["equal"], "shards differ from the undisturbed run's (rows or checksums)"
    assert r["files_match_index"] and not r["leftover_tmp"]


def test_training_spans_two_nodes(cluster_results):
    r = _phase(cluster_results, "train")
    assert r["status"] == "FINISHED" and r["steps"] == [0, 1]
    assert any(len(nodes) == 2 for nodes in r["worker_group_nodes"]), r["worker_group_nodes"]
    assert "restarts" not in r["metrics"]


def test_training_restores_from_checkpoint_after_a_node_dies(cluster_results):
    base = _phase(cluster_results, "train")
    r = _phase(cluster_results, "train_fault")
    assert r["status"] == "FINISHED", r
    assert r["steps"] == [0, 1], "an epoch missing or logged twice"
    assert r["metrics"]["restarts"] >= 1 and r["tags"]["heliobench.restored"] == str(int(r["metrics"]["restarts"]))
    assert r["metrics"]["restored_at_epoch"] == 1, "not restored from the epoch-0 checkpoint"
    assert r["metrics"]["epochs_completed"] == base["metrics"]["epochs_completed"] == 2
    for key in ("val_loss", "val_iou_pooled_05"):
        assert abs(r["metrics"][key] - base["metrics"][key]) <= 0.1 * max(1.0, abs(base["metrics"][key])), key


def test_tune_search_runs_across_the_cluster(cluster_results):
    r = _phase(cluster_results, "tune")
    assert r["trials"] == 3 and len(r["children"]) == 3
    assert all(c["status"] == "FINISHED" and c["steps"] == [0] for c in r["children"])
    assert {c["user"] for c in r["children"]} == {"alice"}  # the searching user, not the cluster's account
    assert len(r["trial_nodes"]) >= 2, r["trial_nodes"]


def test_training_and_tuning_never_read_test_labels(cluster_results):
    """They ran on shards whose test-split files were deleted (the index still lists them)."""
    assert cluster_results["labels"]["test_shards_removed"] >= 1
    for name in ("train", "train_fault", "tune"):
        _phase(cluster_results, name)


def test_runs_are_the_users_and_no_secret_leaks(cluster_results):
    for name in ("train", "train_fault"):
        r = _phase(cluster_results, name)
        assert r["experiment"] == "heliobench/ch_segmentation/alice" and r["user"] == "alice"
    s = _phase(cluster_results, "secrets")
    assert s["files_scanned"] > 50
    assert s["found"] == [], s["found"]

"""Train (Ray Train), resume, evaluate, predict, submit and tune (Ray Tune) with MLflow tracking."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from heliobench.engine.data import KeptSplit, iter_batches
from heliobench.engine.evaluate import evaluate
from heliobench.engine.loop import LoopContext
from heliobench.engine.predict import predict_files
from heliobench.engine.submit import submit
from heliobench.engine.train import WORKER_KEEP_BYTES, keep_splits, train
from heliobench.cli import main
from heliobench.errors import HelioBenchError
from heliobench.failures import TooManyFailures
from heliobench.specs import load_benchmark, load_search_space


def tiny_spec(epochs: int = 2):
    spec = load_benchmark("ch_segmentation").with_overrides([
        f"training.epochs={epochs}", "training.batch_size=4", "model.params.base_filters=4", "model.params.depth=3",
    ])
    return spec.model_copy(update={"resolution_px": 64})


@pytest.fixture(scope="module")
def trained(workspace, tiny_shards):
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    result = train(tiny_spec(2), str(tiny_shards), workers=2, tracking_uri=uri, run_name="tiny-run")
    return result, uri


def test_training_logs_everything(trained):
    result, uri = trained
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(result.run_id, "val_iou_pooled_05")) == 2
    assert [m.step for m in client.get_metric_history(result.run_id, "train_loss")] == [0, 1]
    for tag in ("heliobench.manifest_hash", "heliobench.preprocessing_hash", "heliobench.git_commit"):
        assert run.data.tags[tag]
    assert int(run.data.params["n_parameters"]) > 0 and run.data.params["workers"] == "2"
    assert run.data.params["kept_splits"] == "train,val"  # tiny splits: read once, kept by the workers
    assert run.data.metrics["worker_hours"] > 0 and 0 <= run.data.metrics["data_wait_fraction"] <= 1
    assert run.data.metrics["kept_epoch"] == 1  # training.keep: last
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "model")} | {a.path for a in client.list_artifacts(result.run_id, "figures")}
    assert artifacts == {"model/model.safetensors", "model/model.json", "figures/val_predictions.png"}


def test_workers_keep_only_splits_that_fit():
    spec = tiny_spec()  # 3 columns (sample_id counted as one) of 64² float32: 48 KiB a sample
    fits = WORKER_KEEP_BYTES // (3 * 64 * 64 * 4)
    index = {"size_px": 64, "samples": {"train": 2 * fits, "val": fits}}
    assert keep_splits(index, spec, workers=2) == ["train", "val"]
    assert keep_splits(index, spec, workers=1) == ["val"]  # all of train on one worker is too much
    assert keep_splits({"size_px": 64, "samples": {"train": 2 * fits + 2, "val": fits + 1}}, spec, workers=2) == []


def test_a_kept_split_is_read_once_and_reshuffled_every_pass():
    reads = []

    def stream():
        reads.append(1)
        for start in range(0, 10, 4):
            yield {"sample_id": np.arange(start, min(start + 4, 10)), "x": np.arange(start, min(start + 4, 10)) * 10.0}

    kept = KeptSplit(keep=True)
    stopped = kept.batches(stream, 4, seed=1)
    next(stopped)  # a pass stopped early keeps nothing
    assert kept.rows is None
    first = []
    for batch in kept.batches(stream, 4, seed=1):
        first.append(batch["sample_id"].tolist())
        batch["x"][:] = -1  # a consumer that changes its batch does not change the kept rows
    assert first == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(reads) == 2
    passes = [[b["sample_id"].tolist() for b in kept.batches(stream, 4, seed=s)] for s in (2, 3)]
    assert len(reads) == 2  # later passes never read the stream
    for p in passes:
        assert sorted(i for b in p for i in b) == list(range(10)) and [len(b) for b in p] == [4, 4, 2]
    assert passes[0] != passes[1]  # shuffled anew each pass
    assert kept.rows["x"].tolist() == [i * 10.0 for i in range(10)]
    streamed = KeptSplit(keep=False)
    for _ in range(2):
        list(streamed.batches(stream, 4))
    assert streamed.rows is None and len(reads) == 4


def test_training_workers_do_not_import_sunpy_map():
    """What a Ray Train worker imports (the training loop, every task) leaves out sunpy.map,
    whose import takes seconds that each worker of every training run would pay."""
    code = ("import sys, heliobench.engine.train\n"
            "from heliobench.tasks import TASKS, get_task\n"
            "for kind in TASKS: get_task(kind)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[:2] == ['sunpy', 'map']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_training_reads_shards_with_the_driver_listing_reader(tiny_shards, ray_session, capsys):
    import ray.data

    from heliobench.engine.data import ray_split, read_index

    context = ray.data.DataContext.get_current()
    default = context.use_datasource_v2
    index = read_index(str(tiny_shards))
    ds = ray_split(str(tiny_shards), index, tiny_spec(), "train")
    assert context.use_datasource_v2 == default  # the setting is the caller's again
    ds.explain()
    plan = capsys.readouterr().out
    assert "ReadParquet" in plan and "ListFiles" not in plan  # no listing task in the plan
    assert ds.count() == index["samples"]["train"]


def test_resume_continues_from_the_last_checkpoint(trained, tiny_shards):
    result, uri = trained
    again = train(tiny_spec(3), str(tiny_shards), workers=2, tracking_uri=uri, run_name="tiny-run", resume=True)
    client = MlflowClient(uri)
    assert again.run_id == result.run_id
    assert [m.step for m in client.get_metric_history(result.run_id, "train_loss")] == [0, 1, 2]
    assert client.get_run(result.run_id).data.metrics["epochs_completed"] == 3
    assert client.get_run(result.run_id).data.tags["heliobench.resumed"] == "1"
    with pytest.raises(HelioBenchError, match="no run named"):
        train(tiny_spec(3), str(tiny_shards), workers=1, tracking_uri=uri, run_name="never-ran", resume=True)
    with pytest.raises(HelioBenchError, match="a run named 'tiny-run' exists under .*; use --resume"):
        train(tiny_spec(3), str(tiny_shards), workers=1, tracking_uri=uri, run_name="tiny-run")  # not silently continued


class InProcessContext(LoopContext):
    """The training loop in this process on numpy splits, keeping a copy of every checkpoint."""

    def __init__(self, data: dict, out, restore=None) -> None:
        self.data, self.out, self.restore, self.reported = data, out, restore, []

    def train_batches(self, epoch, batch_size, seed):
        return iter_batches(self.data["train"], batch_size, seed)

    def val_batches(self, batch_size):
        return iter_batches(self.data["val"], batch_size)

    def latest_checkpoint(self):
        return None

    @contextlib.contextmanager
    def restore_dir(self):
        yield self.restore

    def report(self, metrics, checkpoint_dir):
        self.reported.append(metrics)
        shutil.copytree(checkpoint_dir, self.out / f"epoch-{metrics['epoch']}")


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_keep_best_val_keeps_the_best_validation_epochs_weights(tiny_shards, tmp_path, direction):
    from heliobench.engine.checkpoints import read_weights
    from heliobench.engine.data import read_index, read_shards, split_uris
    from heliobench.engine.loop import fit

    index = read_index(str(tiny_shards))
    # selected on the soft IoU, which changes every epoch (the tiny model's thresholded IoU stays put)
    spec = tiny_spec(3).with_overrides(["training.keep=best_val"]).model_copy(
        update={"primary_metric": "iou_pooled_soft", "direction": direction})
    data = {s: read_shards(split_uris(index, s), ["sample_id", *spec.inputs, *spec.targets]) for s in ("train", "val")}
    first = InProcessContext(data, tmp_path)
    fit({"spec": spec.model_dump(mode="json")}, first)
    values = [m["val_iou_pooled_soft"] for m in first.reported]
    best = int(np.argmax(values) if direction == "maximize" else np.argmin(values))
    assert len(set(values)) > 1  # the epochs differ, so the choice means something
    state = json.loads((tmp_path / "epoch-2" / "state.json").read_text())
    assert state["best"] == {"epoch": best, "value": values[best]}
    kept, chosen = read_weights(tmp_path / "epoch-2" / "best"), read_weights(tmp_path / f"epoch-{best}")
    assert kept.keys() == chosen.keys() and all(torch.equal(kept[k], chosen[k]) for k in kept)
    # resumed, the best so far travels on: one more epoch either beats it or leaves it
    again = InProcessContext(data, tmp_path / "resumed", restore=tmp_path / "epoch-2")
    fit({"spec": spec.with_overrides(["training.epochs=4"]).model_dump(mode="json")}, again)
    state = json.loads((tmp_path / "resumed" / "epoch-3" / "state.json").read_text())
    values.append(again.reported[0]["val_iou_pooled_soft"])
    best = int(np.argmax(values) if direction == "maximize" else np.argmin(values))
    assert state["best"]["epoch"] == best and [m["epoch"] for m in again.reported] == [3]


def test_evaluate_scores_the_test_split(trained, tiny_shards):
    result, uri = trained
    metrics = evaluate(load_benchmark("ch_segmentation"), result.run_id, str(tiny_shards), tracking_uri=uri, n_boot=200)
    assert 0 <= metrics["iou_pooled_05"] <= 1
    assert metrics["iou_pooled_05_ci_low"] <= metrics["iou_pooled_05_ci_high"]
    logged = MlflowClient(uri).get_run(result.run_id).data.metrics
    assert logged["test_iou_pooled_05"] == pytest.approx(metrics["iou_pooled_05"])


def test_predict_writes_masks_with_wcs(trained, tiny_archive, tmp_path):
    import sunpy.map
    from PIL import Image

    result, uri = trained
    fits_in = sorted(tiny_archive.rglob("*.193.image_lev1.fits"))[0]
    png_in = tmp_path / "disk.png"
    Image.fromarray((np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)).save(png_in)
    records = predict_files(load_benchmark("ch_segmentation"), result.run_id, [str(fits_in), str(png_in)], str(tmp_path / "out"), tracking_uri=uri)
    assert len(records) == 2
    maps = sunpy.map.Map(records[0]["mask_fits"])
    m = maps[0] if isinstance(maps, list) else maps
    assert m.data.shape == (64, 64) and m.coordinate_frame.name == "helioprojective"
    for r in records:
        for key in ("mask_png", "mask_fits", "overlay"):
            assert os.path.getsize(r[key]) > 0


def test_predict_gives_an_error_record_for_each_bad_input(trained, tiny_archive, tmp_path, capsys):
    from fuzzing import malformed_images

    result, uri = trained
    good = sorted(tiny_archive.rglob("*.193.image_lev1.fits"))[0]
    bad, broken, absent = tmp_path / "cdelt_zero.fits", tmp_path / "broken.png", tmp_path / "absent.fits"
    bad.write_bytes(malformed_images(good.read_bytes())["cdelt_zero.fits"][0])
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    inputs = [str(bad), str(good), str(broken), str(absent)]
    with pytest.raises(TooManyFailures, match=r"3 of 4 inputs failed \(75.0%\)") as failed:
        predict_files(load_benchmark("ch_segmentation"), result.run_id, inputs, str(tmp_path / "out"), tracking_uri=uri)
    records = failed.value.result
    assert os.path.getsize(records[0]["mask_fits"]) > 0 and len(records) == 4
    assert [(r["input"], r["stage"]) for r in records[1:]] == [(str(bad), "map"), (str(broken), "decode"), (str(absent), "read")]
    assert records[1]["error"] == "CDELT1 = 0: the pixel scale is missing" and records[3]["error"] == "no such file"
    assert records[2]["error"].startswith("not a readable PNG/JPEG image")
    args = ["predict", "ch_segmentation", "--run", result.run_id, "--tracking-uri", uri, "--out", str(tmp_path / "cli"), *inputs]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4 and "3 of 4 inputs failed" in err.splitlines()[-1]
    assert main([*args, "--max-quarantine", "0.8"]) == 0


def test_submissions_valid_and_invalid(trained, tiny_shards, tmp_path):
    from heliobench.engine.evaluate import test_ids

    result, uri = trained
    spec = load_benchmark("ch_segmentation").model_copy(update={"resolution_px": 64})
    ids = test_ids(spec, str(tiny_shards))
    good = tmp_path / "good.npz"
    np.savez(good, **{i: np.full((64, 64), 0.25, np.float32) for i in ids})
    entry = submit(spec, str(good), "constant-0.25", str(tiny_shards), tracking_uri=uri)
    assert entry.model == "constant-0.25" and "iou_pooled_05" in entry.metrics
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{i: np.zeros((64, 64), np.float32) for i in ids[1:]})
    with pytest.raises(HelioBenchError, match="missing"):
        submit(spec, str(missing), "x", str(tiny_shards), tracking_uri=uri)
    nan = tmp_path / "nan.npz"
    np.savez(nan, **{i: np.full((64, 64), np.nan, np.float32) for i in ids})
    with pytest.raises(HelioBenchError, match="NaN"):
        submit(spec, str(nan), "x", str(tiny_shards), tracking_uri=uri)
    shape = tmp_path / "shape.npz"
    np.savez(shape, **{i: np.zeros((32, 32), np.float32) for i in ids})
    with pytest.raises(HelioBenchError, match="shape"):
        submit(spec, str(shape), "x", str(tiny_shards), tracking_uri=uri)


def test_tune_resumes_after_interruption(workspace, tiny_shards, ray_session):
    from heliobench.engine.tune import tune_benchmark

    uri = f"sqlite:///{workspace / 'mlflow-tune.db'}"
    spec = tiny_spec(2)
    space = load_search_space("ch_segmentation").model_copy(update={"max_epochs": 2, "num_samples": 2})
    # First attempt in a separate driver process, killed once a trial has checkpointed.
    code = (
        "import os,sys; sys.argv=['x'];"
        "from heliobench.engine.tune import tune_benchmark; from heliobench.specs import load_benchmark, load_search_space;"
        "spec=load_benchmark('ch_segmentation').with_overrides(['training.epochs=2','training.batch_size=4','model.params.base_filters=4','model.params.depth=3']).model_copy(update={'resolution_px':64});"
        "space=load_search_space('ch_segmentation').model_copy(update={'max_epochs':2,'num_samples':2});"
        f"tune_benchmark(spec, space, {str(tiny_shards)!r}, tracking_uri={uri!r}, name='tiny-search')"
    )
    env = dict(os.environ, RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    storage = workspace / "ray_results" / "tiny-search"
    deadline = time.time() + 300
    while not list(storage.glob("*/checkpoint_*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(1)
    assert list(storage.glob("*/checkpoint_*")), "no trial checkpointed before the deadline"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.raises(HelioBenchError, match="--resume"):
        tune_benchmark(spec, space, str(tiny_shards), tracking_uri=uri, name="tiny-search")
    summary = tune_benchmark(spec, space, str(tiny_shards), tracking_uri=uri, name="tiny-search", resume=True)
    assert summary.trials == 2
    client = MlflowClient(uri)
    children = client.search_runs([client.get_experiment_by_name("heliobench/ch_segmentation").experiment_id],
                                  f"tags.mlflow.parentRunId = '{summary.parent_run_id}'")
    assert len(children) == 2
    assert all(c.info.status in ("FINISHED", "FAILED") for c in children)
    for c in children:
        steps = [m.step for m in client.get_metric_history(c.info.run_id, "train_loss")]
        assert steps == sorted(set(steps))  # no epoch logged twice after the resume


def test_shared_tracking_server_with_s3_artifacts_and_checkpoints(mlflow_server, tiny_shards, s3_bucket):
    import s3fs

    url, bucket = mlflow_server
    result = train(tiny_spec(1), str(tiny_shards), workers=2, tracking_uri=url, storage=f"{s3_bucket}/checkpoints", run_name="shared-run")
    client = MlflowClient(url)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert client.get_run(result.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    fs = s3fs.S3FileSystem()
    stored = fs.find(bucket)
    assert any(p.endswith("model/model.safetensors") for p in stored)
    assert fs.find(f"{s3_bucket}/checkpoints/shared-run"), "no checkpoint in object storage"


def test_unreachable_tracking_server_fails_fast(tiny_shards):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    with pytest.raises(HelioBenchError, match="unreachable"):
        train(tiny_spec(1), str(tiny_shards), workers=1, tracking_uri=f"http://127.0.0.1:{port}")
    assert time.time() - t0 < 120

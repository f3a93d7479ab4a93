"""Bring your own model: a plug-in trained with ``heliobench train --model`` on Ray Train and
evaluated, a model trained in a plain PyTorch loop through the Python API and submitted with
``heliobench submit`` (examples/plain_loop.py), both on the leaderboard marked as theirs; the
commands stay quiet (Ray's log lines go to the workspace log file)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from heliobench import logfile
from heliobench.cli import main
from heliobench.errors import ConfigError, HelioBenchError
from heliobench.tracking import runs
from heliobench.tracking.leaderboard import TABLE_WIDTH, LeaderboardTable

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()
PLUGIN = f"{HERE}:tiny_net"
AT_64 = ("--set", "resolution_px=64")


class TinyNet(nn.Module):
    """This test's own model: one 3x3 convolution and a sigmoid, inputs to mask probabilities."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


def tiny_net(spec) -> TinyNet:
    """The plug-in factory ``heliobench train --model tests/test_byo_model.py:tiny_net``."""
    return TinyNet(len(spec.inputs), len(spec.targets))


def three_channel_net(spec) -> nn.Module:
    """A plug-in whose outputs do not fit the task (three channels for one target)."""
    return nn.Conv2d(len(spec.inputs), 3, 1)


def not_a_module(spec) -> str:
    return "a string"


def cli(*argv: str) -> str:
    """``heliobench ARGV`` in this process (the suite's Ray session); returns what it printed as its result."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    assert status == 0, err.getvalue()[-2000:]
    return out.getvalue()


@pytest.fixture(scope="module")
def tracking(workspace) -> str:
    return f"sqlite:///{workspace / 'mlflow.db'}"


@pytest.fixture(scope="module")
def plugin_run(tracking, tiny_shards, ray_session, one_torch_thread) -> tuple[str, dict]:
    """The test's model trained by ``heliobench train --model`` (1 epoch, 2 workers), then evaluated."""
    where = ("--shards", str(tiny_shards), "--tracking-uri", tracking, "--quiet")
    trained = json.loads(cli("train", "ch_segmentation", "--model", PLUGIN, *AT_64, "--epochs", "1", "--workers", "2",
                             "--run-name", "byo-plugin", *where))
    test = json.loads(cli("evaluate", "ch_segmentation", "--run", trained["run_id"], "--bootstrap", "100", *where))["test"]
    return trained["run_id"], test


@pytest.fixture(scope="module")
def api_submission(tracking, tiny_shards, workspace, one_torch_thread) -> dict:
    """examples/plain_loop.py (Python API, plain PyTorch loop) and ``heliobench submit`` of its test predictions."""
    spec = importlib.util.spec_from_file_location("plain_loop_example", REPO / "examples" / "plain_loop.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    preds = example.main(["--shards", str(tiny_shards), *AT_64, "--epochs", "1", "--out", str(workspace / "preds.npz")])
    return json.loads(cli("submit", "ch_segmentation", "--shards", str(tiny_shards), *AT_64, "--predictions", str(preds),
                          "--name", "small-unet-plain-loop", "--tracking-uri", tracking))


def test_plugin_trains_on_ray_train_is_evaluated_and_recorded(plugin_run, tracking) -> None:
    run_id, test = plugin_run
    run = MlflowClient(tracking).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["heliobench.model"] == "test_byo_model:tiny_net"
    assert run.data.tags["heliobench.plugin"] == PLUGIN
    assert run.data.tags["heliobench.plugin_sha256"] == hashlib.sha256(HERE.read_bytes()).hexdigest()
    assert int(run.data.params["n_parameters"]) == 3 * 3 + 1  # one 3x3 filter and its bias
    assert run.data.params["model.factory"] == PLUGIN
    assert 0 <= test["iou_pooled_05"] <= 1 and test["iou_pooled_05_ci_low"] <= test["iou_pooled_05_ci_high"]
    assert run.data.metrics["test_iou_pooled_05"] == pytest.approx(test["iou_pooled_05"], abs=1e-4)
    row = LeaderboardTable().read().filter(pl.col("entry_id") == run_id)
    assert row.select("kind", "model").row(0) == ("plugin", "test_byo_model:tiny_net")


def test_api_plain_loop_model_is_submitted(api_submission, tiny_shards) -> None:
    assert api_submission["model"] == "small-unet-plain-loop"
    assert 0 <= api_submission["metrics"]["iou_pooled_05"] <= 1
    row = LeaderboardTable().read().filter(pl.col("entry_id") == api_submission["entry"])
    assert row.select("kind", "submitter").row(0) == ("submission", runs.user())


def test_api_never_hands_out_test_targets_and_scores_like_the_engine(tiny_shards, workspace) -> None:
    import heliobench

    bench = heliobench.load_benchmark("ch_segmentation", shards=str(tiny_shards), overrides=["resolution_px=64"])
    train, test = bench.dataset("train"), bench.dataset("test")
    assert set(train[0]) == {"sample_id", "aia_193", "ch_mask"} and set(test[0]) == {"sample_id", "aia_193"}
    assert len(train) == sum(len(r) for r in train.shard_ranges())
    assert sorted(bench.dataloader("train", batch_size=3, shuffle=True).sampler) == list(range(len(train)))
    with pytest.raises(HelioBenchError, match="test batches never do"):
        bench.targets(next(iter(bench.dataloader("test", batch_size=2))))
    with pytest.raises(HelioBenchError, match="may not read the test split"):
        bench.ray_dataset("test")
    # a constant mask scores the same through the evaluator's two forms (a mapping, a model)
    ids = bench.dataset("val").sample_ids
    constant = {i: np.full((64, 64), 0.6, np.float32) for i in ids}
    by_ids = bench.evaluator("val", n_boot=0).score(constant)
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Sigmoid())
    nn.init.zeros_(model[0].weight)
    nn.init.constant_(model[0].bias, float(np.log(0.6 / 0.4)))
    assert bench.evaluator("val", n_boot=0).score(model) == pytest.approx(by_ids)
    with pytest.raises(HelioBenchError, match="1 sample id\\(s\\) missing"):
        bench.evaluator("val").score(dict(list(constant.items())[1:]))
    with pytest.raises(HelioBenchError, match="values must lie in"):
        bench.write_submission({i: np.full((64, 64), 2.0) for i in test.sample_ids}, workspace / "bad.npz")
    assert not (workspace / "bad.npz").exists()


def test_leaderboard_marks_both_rows_as_theirs_in_120_columns(plugin_run, api_submission) -> None:
    text = cli("leaderboard", "ch_segmentation")
    lines = text.strip("\n").splitlines()
    print(text)
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    plugin = next(line for line in lines if "test_byo_model:tiny_net" in line)
    submission = next(line for line in lines if "small-unet-plain-loop" in line)
    assert "plug-in" in plugin and "submission" in submission and runs.user() in submission
    assert plugin.split()[0].isdigit() and submission.split()[0].isdigit()  # both ranked
    published = lines.index(next(line for line in lines if line.startswith("published, on the paper's data")))
    assert published > max(lines.index(plugin), lines.index(submission))
    assert lines[published + 1].split()[0] == "–" and "SCSS-Net" in lines[published + 1]  # shown, never ranked
    wide = cli("leaderboard", "ch_segmentation", "--wide")
    assert "iou_pooled_05_ci_low" in wide and "config_key" in wide


def test_plugin_errors_are_clear(tiny_shards, tracking, ray_session) -> None:
    from heliobench.engine.train import train
    from heliobench.models import build_model, with_plugin
    from heliobench.specs import load_benchmark

    spec = load_benchmark("ch_segmentation").with_overrides(["resolution_px=64"])
    with pytest.raises(ConfigError, match="no such file"):
        with_plugin(spec, "examples/nowhere.py:build")
    with pytest.raises(ConfigError, match="has no 'nothing'"):
        with_plugin(spec, f"{HERE}:nothing")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        with_plugin(spec, "no_such_module:build")
    with pytest.raises(ConfigError, match="returned str, not a torch.nn.Module"):
        build_model(with_plugin(spec, f"{HERE}:not_a_module"))
    with pytest.raises(ConfigError, match="outputs do not fit task segmentation"):  # before any worker starts
        train(with_plugin(spec, f"{HERE}:three_channel_net"), str(tiny_shards), tracking_uri=tracking, run_name="misfit")
    example = with_plugin(spec, f"{REPO / 'examples' / 'small_unet.py'}:build")
    assert example.model.name == "small_unet:build" and isinstance(build_model(example), nn.Module)


def test_evaluate_model_must_be_the_trained_source(plugin_run, tiny_shards, tracking, tmp_path) -> None:
    from heliobench.engine.evaluate import evaluate
    from heliobench.specs import load_benchmark

    run_id, _ = plugin_run
    moved = tmp_path / "moved.py"
    moved.write_text(HERE.read_text() + "\n# edited after training\n")
    with pytest.raises(HelioBenchError, match="differs from the one run"):
        evaluate(load_benchmark("ch_segmentation"), run_id, str(tiny_shards), tracking_uri=tracking, model_ref=f"{moved}:tiny_net")


def test_quiet_verbs_send_ray_log_lines_to_the_log_file(tiny_shards, tiny_catalog, ray_session, tmp_path) -> None:
    env = dict(os.environ, HELIOBENCH_WORKSPACE=str(tmp_path / "ws"), RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    proc = subprocess.run([sys.executable, "-m", "heliobench.cli", "shard", str(tiny_catalog / "manifest.parquet"), "--card",
                           "sdo_sim", "--out", str(tmp_path / "shards"), "--size", "32", "--split", "val", "--members", "aia_193"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["samples"]["val"] > 0  # the result alone on standard output
    assert " INFO " not in proc.stderr and "pid=" not in proc.stderr, proc.stderr
    log = (tmp_path / "ws" / "logs" / "heliobench.log").read_text()
    assert "heliobench shard" in log and "Connecting to existing Ray cluster" in log and "Starting execution of Dataset" in log


def test_quiet_keeps_errors_on_the_terminal(tmp_path) -> None:
    import ray.data  # noqa: F401 - configures Ray's and Ray Data's loggers, as ensure_ray does before routing them

    path = logfile.quiet(tmp_path / "logs" / "heliobench.log", "test")
    logfile.route("ray", "ray.data")
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        terminal = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                    and not isinstance(h, logging.FileHandler) and h not in logging.getLogger().handlers]
        assert terminal and all(h.level == logging.ERROR for h in terminal) and not logger.propagate
    logging.getLogger("ray.data").info("an info line of Ray Data")
    logging.getLogger("ray").error("an error of Ray")
    text = path.read_text()
    assert "=== " in text and "heliobench test" in text
    assert "INFO ray.data: an info line of Ray Data" in text and "ERROR ray: an error of Ray" in text
    # the application's own handlers (here pytest's capture, on the root logger) keep their level
    assert all(h.level != logging.ERROR for h in logging.getLogger().handlers)

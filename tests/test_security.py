"""Untrusted inputs and hidden labels, without servers.

- Model artifacts and checkpoints are never unpickled: a pickle bomb in place of the
  weights or the optimizer state is refused and its payload never runs.
- Dataset cards, benchmark specs and search spaces cannot name files outside their folders
  (``..``, absolute paths, symlinks out).
- The shard readers of training refuse the test split; a scored submission yields
  scores only (no labels, no predictions stored).

The end-to-end checks (training and tuning on shards whose test files are deleted,
credentials grepped out of a cluster's logs) are in ``tests/test_cluster.py``.
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
import torch

from heliobench.engine.checkpoints import load_checkpoint, load_weights, save_checkpoint
from heliobench.engine.data import split_uris
from heliobench.errors import ConfigError, HelioBenchError
from heliobench.specs import load_benchmark, load_card, load_search_space, resolve_in_root


class Bomb:
    """Unpickling this creates ``path``: proof that something was unpickled."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _model():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())


def test_checkpoint_with_a_pickle_bomb_is_refused(tmp_path):
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, model, opt, {"name": "x"}, {"epoch": 0, "history": []})
    marker = tmp_path / "pwned-optimizer"
    torch.save({"state": Bomb(marker), "param_groups": []}, ckpt / "optimizer.pt")  # torch.save pickles
    with pytest.raises(Exception) as err:
        load_checkpoint(ckpt, _model(), torch.optim.Adam(_model().parameters()))
    assert "weights_only" in str(err.value) or "Unsupported" in str(err.value) or "global" in str(err.value).lower()
    assert not marker.exists(), "the optimizer state was unpickled"


def test_model_weights_that_are_a_pickle_are_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    marker = tmp_path / "pwned-weights"
    (folder / "model.safetensors").write_bytes(pickle.dumps(Bomb(marker)))
    # safetensors parses a JSON header; it has no pickle path at all
    with pytest.raises(HelioBenchError, match="model.safetensors: unreadable weights"):
        load_weights(_model(), folder)
    assert not marker.exists()
    (folder / "model.safetensors").unlink()
    (folder / "model.pt").write_bytes(pickle.dumps(Bomb(marker)))  # another name is simply ignored
    with pytest.raises(HelioBenchError, match="no model weights"):
        load_weights(_model(), folder)
    assert not marker.exists()


@pytest.mark.parametrize("loader,folder", [(load_card, "datasets"), (load_benchmark, "benchmarks"), (load_search_space, "tune_spaces")])
def test_specs_cannot_leave_their_folders(loader, folder, tmp_path, monkeypatch):
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: outside\n")
    for name in ("../../../../etc/passwd.yaml", f"../{folder}/../pyproject.yaml", str(outside)):
        with pytest.raises(ConfigError, match="outside"):
            loader(name)
    # A symlink inside the folder that points out of it.
    root = tmp_path / "root"
    (root / folder).mkdir(parents=True)
    (root / folder / "sneaky.yaml").symlink_to(outside)
    monkeypatch.setenv("HELIOBENCH_ROOT", str(root))
    with pytest.raises(ConfigError, match="outside"):
        resolve_in_root("sneaky", folder)


def test_training_readers_refuse_the_test_split():
    index = {"shards": [{"split": "train", "uri": "a"}, {"split": "test", "uri": "t"}]}
    assert split_uris(index, "train") == ["a"]
    with pytest.raises(HelioBenchError, match="may not read the test split"):
        split_uris(index, "test")
    assert split_uris(index, "test", allow_test=True) == ["t"]


def test_a_scored_submission_records_scores_only(client, tmp_path):
    from heliobench.tracking.leaderboard import LeaderboardTable
    from heliobench.tracking.submissions import record_submission

    spec = load_benchmark("ch_segmentation")
    preds = tmp_path / "preds.npz"
    np.savez(preds, a=np.full((8, 8), 0.5, np.float32))
    entry = record_submission(client, spec, "scores-only", "carol", {spec.primary_metric: 0.42, "n_images": 3.0}, "d" * 64,
                              preds, table=LeaderboardTable(str(tmp_path / "lb.parquet")))
    assert set(entry.row()) == {"benchmark", "entry_id", "kind", "model", "config_key", "seed", "metrics", "n_parameters",
                                "worker_hours", "dataset_hash", "submitter", "created", "dataset"}
    assert all(isinstance(m["value"], float) for m in entry.row()["metrics"])
    run = client.get_run(entry.entry_id)
    assert client.list_artifacts(entry.entry_id) == []  # neither the predictions nor any label is stored
    assert set(run.data.metrics) == {f"test_{spec.primary_metric}", "test_n_images"} and run.data.params == {}


def test_tune_trials_get_no_s3_credentials_in_their_runtime_env(monkeypatch):
    """Ray Tune copies AWS_* from the driver into each trial's runtime env, which Ray logs in
    plain text; HelioBench turns that off (trials use their node's environment)."""
    import ray.tune.execution.class_cache as class_cache

    from heliobench.raysession import keep_credentials_out_of_ray

    # Ray's defaults, restored whatever ran before (the shared session already removed them).
    defaults = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", set(class_cache.ENV_VARS_TO_PROPAGATE) | defaults)
    keep_credentials_out_of_ray()
    assert not {v for v in class_cache.ENV_VARS_TO_PROPAGATE if v.startswith("AWS_")}
    remote = class_cache._ActorClassCache().get(type("Trainable", (), {}))
    env_vars = remote._default_options["runtime_env"]["env_vars"]
    assert not [k for k in env_vars if k.startswith("AWS_")], env_vars

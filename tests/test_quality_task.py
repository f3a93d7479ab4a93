"""halpha_quality: label encoder, input preparation, the QualityTask, and train → evaluate → predict."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest
import torch

from heliobench.errors import ConfigError, HelioBenchError, ReaderError
from heliobench.prep import Pipeline
from heliobench.prep.image import PrepImage
from heliobench.prep.labels import LabelContext, encode_label
from heliobench.prep.labels.quality import DEGRADATION_KINDS
from heliobench.specs import Member, load_benchmark
from heliobench.tasks import get_task
from heliobench.tasks.base import InputImage, to_numpy
from heliobench.tasks.quality.preprocess import contrast_normalize, pyramid_reduce

TINY_MODEL = ["model.params.base_filters=4", "model.params.res_blocks=1", "model.params.critic_filters=4",
              "model.params.critic_depth=2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- label encoder ---------------------------------------------------------------------------

CSV = (b"file,obs_time,quality,degradation\n"
       b"halpha/2017/01/05/kanz_halph_fd_20170105_000041.fts.gz,2017-01-05T00:00:41,1,none\n"
       b"halpha/2017/01/05/kanz_halph_fd_20170105_060012.fts.gz,2017-01-05T06:00:12,2,contrails\n"
       b"halpha/2017/01/05/kanz_halph_fd_20170105_120003.fts.gz,2017-01-05T12:00:03,2,\n")


def _ctx(grid_uri: str | None, time: str = "2017-01-05T06:00:12") -> LabelContext:
    member = Member(key="halpha_quality", label="halpha_quality", match="before", grid="halpha")
    t = datetime.fromisoformat(time).replace(tzinfo=timezone.utc)
    return LabelContext(member, t, Pipeline([]), None, grid_uri)


def test_encoder_finds_the_row_of_the_sample_file():
    uri = "/archive/labels/halpha_quality/2017/01/20170105.csv"
    by_name = encode_label(CSV, uri, _ctx("/archive/halpha/2017/01/05/kanz_halph_fd_20170105_000041.fts.gz"))
    assert by_name.dtype == np.float32 and by_name.tolist() == [1.0, 0.0]  # Q1, none
    # no grid file: the row observed within a second of the sample time (contrails = 2)
    assert encode_label(CSV, uri, _ctx(None, "2017-01-05T06:00:12.600")).tolist() == [2.0, 2.0]
    empty_kind = encode_label(CSV, uri, _ctx(None, "2017-01-05T12:00:03"))
    assert empty_kind[0] == 2.0 and math.isnan(empty_kind[1])
    with pytest.raises(ReaderError, match=r"20170105\.csv: no row for kanz_halph_fd_20170105_180000"):
        encode_label(CSV, uri, _ctx("/a/kanz_halph_fd_20170105_180000.fts.gz", "2017-01-05T18:00:00"))
    with pytest.raises(ReaderError, match="no row for an observation at 2017-01-05T06:00:14"):
        encode_label(CSV, uri, _ctx(None, "2017-01-05T06:00:14"))


def test_encoder_rejects_bad_tables():
    uri = "day.csv"
    ctx = _ctx(None, "2017-01-05T00:00:41")
    with pytest.raises(ReaderError, match="day.csv: quality table without column"):
        encode_label(b"file,obs_time,quality\nx,2017-01-05T00:00:41,1\n", uri, ctx)
    with pytest.raises(ReaderError, match="quality '3', expected 1"):
        encode_label(b"file,obs_time,quality,degradation\nx,2017-01-05T00:00:41,3,none\n", uri, ctx)
    with pytest.raises(ReaderError, match="degradation 'hail'"):
        encode_label(b"file,obs_time,quality,degradation\nx,2017-01-05T00:00:41,2,hail\n", uri, ctx)


def test_degradation_codes_cover_the_simulator():
    from heliobench.archive.sim.weather import DEGRADATIONS

    assert DEGRADATION_KINDS == ("none", *DEGRADATIONS)


# --- input preparation -----------------------------------------------------------------------

def test_pyramid_reduce_by_hand():
    # a ramp x = column: Gaussian smoothing keeps it linear away from the borders, and output
    # column o samples input column (o + 0.5) * 2 - 0.5 = 2 o + 0.5 (pixel edges aligned)
    ramp = np.tile(np.arange(32, dtype=np.float32), (32, 1))
    reduced = pyramid_reduce(ramp, 16)
    assert reduced.shape == (16, 16)
    assert reduced[8, 4:12].tolist() == pytest.approx([2 * o + 0.5 for o in range(4, 12)], abs=1e-3)
    assert np.allclose(pyramid_reduce(np.full((32, 32), 7.0), 8), 7.0)
    assert pyramid_reduce(ramp, 32) is not ramp and np.array_equal(pyramid_reduce(ramp, 32), ramp)
    with pytest.raises(ValueError, match="at least 64 px"):
        pyramid_reduce(ramp, 64)


def test_contrast_normalize_by_hand():
    # [0, 0, 0, 4]: median 0, population std sqrt(3) = 1.7320508; z = [0, 0, 0, 2.3094011]
    # clipped at 1.5 and divided by 1.5 -> [0, 0, 0, 1]
    x = np.array([[0.0, 0.0], [0.0, 4.0]])
    assert contrast_normalize(x).ravel().tolist() == pytest.approx([0, 0, 0, 1])
    # [1, 2, 3, 4]: median 2.5, std 1.1180340; z = [-1.3416408, -0.4472136, 0.4472136, 1.3416408] / 1.5
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert contrast_normalize(y).ravel().tolist() == pytest.approx(
        [-0.8944272, -0.2981424, 0.2981424, 0.8944272], abs=1e-6)
    assert contrast_normalize(np.ones((2, 2))).tolist() == [[0.0, 0.0], [0.0, 0.0]]  # epsilon: no 0/0


# --- the task on synthetic batches -----------------------------------------------------------

def _spec(extra: list[str] = ()):
    return load_benchmark("halpha_quality").with_overrides([*TINY_MODEL, "input_scaling.size_px=32", *extra])


def _disks(n: int, degraded: list[bool], seed: int = 0, size: int = 64) -> np.ndarray:
    """Registered-like images: a textured disk of radius 0.45 size on a dark sky; degraded ones
    carry a dark cloud band across the disk."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    disk = np.hypot(xx, yy) < 0.45 * size
    out = []
    for i in range(n):
        img = np.where(disk, 2500 + 150 * rng.standard_normal((size, size)), 25.0)
        if degraded[i]:
            img = img * (1 - 0.7 * np.exp(-((xx - yy) / (0.1 * size)) ** 2))
        out.append(img)
    return np.stack(out).astype(np.float32)


def _batch(quality: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    labels = np.array([[q, 0 if q == 1 else 1] for q in quality], dtype=np.float32)
    return {"sample_id": np.array([f"s{i}" for i in range(len(quality))]),
            "halpha": _disks(len(quality), [q == 2 for q in quality], seed), "halpha_quality": labels}


def test_inputs_targets_predict_shapes():
    spec, task = _spec(), get_task("quality")
    batch = _batch([1, 2, 1])
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    assert x.shape == (3, 1, 32, 32) and x.dtype == torch.float32 and x.abs().max() <= 1
    assert y.tolist() == [1.0, 2.0, 1.0]
    torch.manual_seed(0)
    model = task.build_model(spec)
    pred = task.predict(model, x)
    assert pred["score"].shape == (3,) and (pred["score"] > 0).all()
    assert pred["reconstruction"].shape == x.shape
    assert pred["classifier_degraded"].shape == (3,) and set(pred["classifier_degraded"].tolist()) <= {0.0, 1.0}
    assert torch.isnan(pred["threshold"]).all()  # not calibrated yet
    assert task.loss(pred, y) == pytest.approx(float(pred["score"].mean()))
    with pytest.raises(ConfigError, match="unknown"):
        task.build_model(_spec(["model.params.width=3"]))
    with pytest.raises(ConfigError, match="pyramid_contrast"):
        task.inputs(_spec(["input_scaling.kind=minmax"]), batch)


def test_training_steps_reduce_the_reconstruction_error():
    spec = _spec(["training.lr=0.002", "training.params.loss_weights={adversarial: 1.0, content: 1.0, mse: 1.0}"])
    task = get_task("quality")
    torch.manual_seed(0)
    model = task.build_model(spec)
    optimizer = task.optimizer(spec, model)
    batch = _batch([1, 1, 2, 1])
    x, y = task.inputs(spec, batch), task.targets(spec, batch)

    def error() -> float:
        return float((task.predict(model, x)["reconstruction"] - x)[y == 1].square().mean())

    before = error()
    for _ in range(12):
        out = task.train_step(spec, model, optimizer, x, y, torch.Generator())
    assert math.isfinite(out["loss"]) and out["loss"] == pytest.approx(out["critic_loss"] + out["generator_loss"])
    assert {"critic_classifier_q2", "generator_content"} <= set(out)
    assert error() < 0.8 * before


def test_a_batch_without_q1_trains_only_the_classifier():
    spec, task = _spec(), get_task("quality")
    torch.manual_seed(0)
    model = task.build_model(spec)
    optimizer = task.optimizer(spec, model)
    batch = _batch([2, 2])
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = task.train_step(spec, model, optimizer, task.inputs(spec, batch), task.targets(spec, batch), torch.Generator())
    changed = {k.split(".")[0] for k, v in model.named_parameters() if not torch.equal(before[k], v)}
    assert changed == {"classifier"} and out["loss"] == pytest.approx(out["critic_classifier_q2"])


def test_validation_calibrates_the_model_and_score_uses_it():
    spec, task = _spec(), get_task("quality")
    torch.manual_seed(0)
    model = task.build_model(spec)
    acc = task.accumulator(spec, n_boot=0)
    scores_q1 = []
    for seed in range(2):
        batch = _batch([1, 1, 2], seed)
        pred = to_numpy(task.predict(model, task.inputs(spec, batch)))
        acc.update(pred, to_numpy(task.targets(spec, batch)))
        scores_q1 += list(pred["score"][:2])
    report = acc.compute()
    assert set(report) - {"n_images"} == set(spec.metrics)
    expected = np.mean(scores_q1) + 3 * np.std(scores_q1)
    assert report["threshold"] == pytest.approx(expected, rel=1e-5)
    assert float(model.threshold) == pytest.approx(expected, rel=1e-5)  # stored in the model
    assert float(model.score_floor) == pytest.approx(min(scores_q1), rel=1e-5)
    # test scoring: the stored calibration, whatever the test scores are
    test = [_batch([1, 2, 2, 1], 7)]
    metrics = task.score(spec, test, lambda b: to_numpy(task.predict(model, task.inputs(spec, b))), n_boot=50)
    assert metrics["threshold"] == pytest.approx(expected, rel=1e-5)
    assert set(metrics) - {"n_images"} - {k for k in metrics if "_ci_" in k} == set(spec.metrics)
    assert metrics["tss_ci_low"] <= metrics["tss_ci_high"] and metrics["n_images"] == 4.0
    fresh = task.build_model(spec)
    with pytest.raises(HelioBenchError, match="no validation calibration"):
        task.score(spec, test, lambda b: to_numpy(task.predict(fresh, task.inputs(spec, b))), n_boot=0)


def test_figure_and_predict_files(tmp_path):
    from astropy.io import fits

    spec, task = _spec(), get_task("quality")
    torch.manual_seed(0)
    model = task.build_model(spec)
    model.set_calibration(threshold=1e9, floor=0.0)  # nothing flagged by score
    batch = _batch([1, 2])
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    fig = task.figure(spec, x.numpy(), y.numpy(), to_numpy(task.predict(model, x)), ["a", "b"], tmp_path / "f.png")
    assert fig.stat().st_size > 0
    geometry = PrepImage(data=batch["halpha"][0], scale_arcsec=(31.25, 31.25), rotation_matrix=((1.0, 0.0), (0.0, 1.0)),
                         reference_px=(31.5, 31.5), reference_arcsec=(0.0, 0.0), disk_center_px=(31.5, 31.5),
                         rsun_arcsec=960.0, obs_time=datetime(2017, 8, 1, tzinfo=timezone.utc),
                         instrument="KSO", channel="halpha", exposure_s=None)
    images = [InputImage("kso", batch["halpha"][0], geometry), InputImage("png", batch["halpha"][1] / 4000, None)]
    records = task.predict_files(spec, model, images, tmp_path, {})
    assert [r["input"] for r in records] == ["kso", "png"]
    assert all(0 <= r["quality"] < 1 for r in records)  # score far below the threshold
    assert [r["degraded"] for r in records] == [bool(r["classifier_degraded"]) for r in records]
    with fits.open(records[0]["difference_fits"]) as hdul:
        hdr, diff = hdul["DIFFERENCE"].header, hdul["DIFFERENCE"].data
        # 64 px at 31.25"/px reduced to 32 px: 62.5"/px, centre (31.5 + 0.5) / 2 - 0.5 = 15.5 (FITS 16.5)
        assert diff.shape == (32, 32) and hdr["CDELT1"] == 62.5 and hdr["CRPIX1"] == 16.5
        assert np.allclose(diff, np.abs(hdul["INPUT"].data - hdul["RECONSTRUCTION"].data))
        assert hdr["QSCORE"] == pytest.approx(records[0]["score"])
    assert (tmp_path / "quality.csv").read_text().splitlines()[0] == "input,score,quality,degraded,classifier_degraded"
    with pytest.raises(ConfigError, match="no --option"):
        task.predict_files(spec, model, images, tmp_path, {"threshold": "2"})
    with pytest.raises(HelioBenchError, match="no validation calibration"):
        task.predict_files(spec, task.build_model(spec), images, tmp_path, {})


# --- end to end: Ray Train (2 workers) → evaluate → predict ----------------------------------

@pytest.fixture(scope="module")
def quality_shards(tmp_path_factory, tiny_catalog):
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.shards import write_shards
    from heliobench.specs import load_card

    card = load_card("kso_halpha_sim")
    manifest, _ = make_manifest(load_catalog(str(tiny_catalog)), card, "park2019")
    out = tmp_path_factory.mktemp("quality")
    write_manifest(manifest, str(out / "manifest.parquet"))
    write_shards(str(out / "manifest.parquet"), card, str(out / "shards"), size_px=256, samples_per_shard=16, progress=False)
    return out / "shards"


def test_train_evaluate_predict_end_to_end(quality_shards, tiny_archive, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from heliobench.engine.evaluate import evaluate
    from heliobench.engine.predict import predict_files
    from heliobench.engine.train import train

    monkeypatch.setenv("HELIOBENCH_WORKSPACE", str(tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = load_benchmark("halpha_quality").with_overrides(
        [*TINY_MODEL, "input_scaling.size_px=64", "training.epochs=1", "training.batch_size=8"])
    result = train(spec, str(quality_shards), workers=2, tracking_uri=uri, run_name="quality-tiny")
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    val = run.data.metrics
    assert {"val_tss", "val_accuracy", "val_threshold", "val_score_floor", "val_tp", "val_fn"} <= set(val)
    assert all(math.isfinite(val[k]) for k in ("val_accuracy", "val_threshold", "val_loss", "train_loss"))
    assert {a.path for a in client.list_artifacts(result.run_id, "figures")} == {"figures/val_predictions.png"}

    metrics = evaluate(load_benchmark("halpha_quality"), result.run_id, str(quality_shards), tracking_uri=uri, n_boot=100)
    assert metrics["threshold"] == pytest.approx(val["val_threshold"], rel=1e-5)  # the validation's, not refitted
    assert metrics["tp"] + metrics["fp"] + metrics["tn"] + metrics["fn"] == metrics["n_images"]
    assert 0 <= metrics["accuracy"] <= 1 and metrics["accuracy_ci_low"] <= metrics["accuracy_ci_high"]
    assert client.get_run(result.run_id).data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])

    fits_in = sorted(tiny_archive.rglob("kanz_halph_fd_*.fts.gz"))[0]
    png_in = tmp_path / "disk.png"
    Image.fromarray((np.random.default_rng(0).random((100, 100)) * 255).astype(np.uint8)).save(png_in)
    records = predict_files(load_benchmark("halpha_quality"), result.run_id, [str(fits_in), str(png_in)],
                            str(tmp_path / "out"), tracking_uri=uri)
    assert len(records) == 2 and all(math.isfinite(r["score"]) for r in records)
    import sunpy.map

    smap = sunpy.map.Map(records[0]["difference_fits"])
    smap = smap[0] if isinstance(smap, list) else smap
    assert smap.data.shape == (64, 64) and smap.coordinate_frame.name == "helioprojective"
    assert smap.scale[0].value == pytest.approx(2000 / 64)  # the ±1000" crop on the 64 px model grid

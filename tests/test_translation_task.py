"""Translation task (hmi_to_aia, aia_channel_selection): metrics through the task on hand values, the
pix2pix variants on synthetic batches, the channel-selection grid and report, Ray Train → evaluate →
predict and a Ray Tune grid end to end, and the metrics on a real AIA image."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from astropy.io import fits
from mlflow.tracking import MlflowClient

from heliobench.engine.data import check_compatible
from heliobench.engine.tune import flat_overrides, member_specs, trial_spec
from heliobench.errors import ConfigError, HelioBenchError
from heliobench.specs import BenchmarkSpec, ModelSpec, SearchDimension, load_benchmark, load_search_space
from heliobench.tasks import get_task
from heliobench.tasks.base import OptimizerSet
from heliobench.tasks.translation.augment import shake, shake_pad_px
from heliobench.tasks.translation.channel_selection import channel_selection_report, grid_overrides
from heliobench.tasks.translation.metrics import bin_image
from heliobench.tasks.translation.normalization import normalize_aia
from heliobench.tasks.translation.task import eval_size, registered_disk_mask

AIA = ["aia_94", "aia_131", "aia_171", "aia_193", "aia_211", "aia_304", "aia_335", "aia_1600", "aia_1700"]
TINY = ["model.params.base_features=4", "model.params.max_features=8", "model.params.disc_features=4"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec_at(size: int, *overrides: str, name: str = "hmi_to_aia") -> BenchmarkSpec:
    return load_benchmark(name).with_overrides(list(overrides)).model_copy(update={"resolution_px": size})


def synthetic_batch(n: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """HMI in [−1, 1] (as the card's pipeline gives it) and AIA channels brightening with |B| (DN/s)."""
    rng = np.random.default_rng(seed)
    b = np.clip(rng.normal(0.0, 0.2, (n, size, size)), -1, 1).astype(np.float32)
    batch = {"sample_id": np.array([f"s{i}" for i in range(n)]), "hmi_magnetogram": b}
    for k, key in enumerate(AIA):
        batch[key] = ((50 + 30 * k) * np.exp(4 * np.abs(b))).astype(np.float32)
    return batch


# ---------------------------------------------------------------- metrics through the task


def test_task_metrics_hand_values_on_the_registered_disk() -> None:
    """512² shards are scored at 256² (2×2 block means) on r < 0.99 R☉; off-disk pixels do not count."""
    task = get_task("translation")
    spec = spec_at(512, "targets=[aia_171]")
    assert eval_size(spec) == 256
    size = 512
    cols = np.arange(size)[None, :].repeat(size, 0)
    tar = np.where(cols < size // 2, 99.0, 399.0)  # I = x + 1: 100 on the left half, 400 on the right
    gen = np.where(cols < size // 2, 104.0, 479.0)  # I: 105 (5 % off) and 480 (20 % off)
    rows = np.arange(size)[:, None]
    far = np.hypot(rows - 255.5, cols - 255.5) > 1.3 * size * 976.0 / 2457.6
    tar[far], gen[far] = 0.0, 16000.0  # wildly wrong beyond 1.3 R☉: must be ignored
    acc = task.accumulator(spec, n_boot=0)
    acc.update(normalize_aia(gen)[None, None], normalize_aia(tar)[None, None])
    report = acc.compute()
    mask = registered_disk_mask(256)
    assert mask[:, :128].sum() == mask[:, 128:].sum()  # the disk is centred: halves of equal size
    # two-valued images, gen an increasing function of tar → CC = 1; RE = (5 + 80) / (100 + 400) = 0.17;
    # PPE10: the left half (5 %) is within 10 %, the right (20 %) is not → 0.5
    assert report["cc_171"] == pytest.approx(1.0)
    assert report["re_171"] == pytest.approx(0.17)
    assert report["ppe10_171"] == pytest.approx(0.5)
    assert report["n_images"] == 1.0


def test_eval_size_follows_the_resolution() -> None:
    assert eval_size(load_benchmark("hmi_to_aia")) == 256  # 1024² → 4×4 blocks, as the paper's 256²
    assert eval_size(spec_at(128)) == 128  # the demo: no upsampling
    with pytest.raises(ConfigError, match="does not divide"):
        eval_size(spec_at(128).model_copy(update={"evaluation": {"size_px": 96}}))
    # the registered disk (radius 976/2457.6 of the width, centre (n − 1)/2) at r < 0.99 R☉
    radius = 256 * 976.0 / 2457.6
    assert registered_disk_mask(256).sum() == pytest.approx(math.pi * (0.99 * radius) ** 2, rel=0.01)


def test_accumulator_keys_are_the_spec_metrics() -> None:
    task = get_task("translation")
    for name in ("hmi_to_aia", "aia_channel_selection"):
        spec = spec_at(256, name=name)
        acc = task.accumulator(spec, n_boot=20)
        x = np.random.default_rng(0).uniform(-1, 1, (2, len(spec.targets), 256, 256))
        acc.update(x, x[::-1])
        keys = set(acc.compute())
        assert keys - {"n_images"} - {k for k in keys if "_ci_" in k} == set(spec.metrics)
        assert {"cc_mean_ci_low", "cc_mean_ci_high"} <= keys  # the primary metric's interval


# ---------------------------------------------------------------- scaling and models


def test_inputs_and_targets_scaling() -> None:
    task = get_task("translation")
    batch = synthetic_batch(2, 16)
    spec = spec_at(16, "targets=[aia_171, aia_1600]")
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    assert x.shape == (2, 1, 16, 16) and y.shape == (2, 2, 16, 16) and x.dtype == y.dtype == torch.float32
    np.testing.assert_array_equal(x[:, 0].numpy(), batch["hmi_magnetogram"])  # HMI: scaled by the card pipeline
    # AIA: log2(x + 1) / 7 − 1, e.g. 127 DN/s → 0
    np.testing.assert_allclose(y[:, 1].numpy(), np.log2(batch["aia_1600"] + 1.0) / 7 - 1, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="must be an AIA channel"):
        task.targets(spec.with_overrides(["targets=[hmi_magnetogram]"]), batch)
    with pytest.raises(ConfigError, match="input_scaling.HMI"):
        task.inputs(spec.model_copy(update={"input_scaling": {"HMI": "sqrt", "AIA": "log2"}}), batch)
    gauss = spec.model_copy(update={"input_scaling": {"hmi_magnetogram": "hmi_gauss", "AIA": "log2"}})
    assert task.inputs(gauss, {"hmi_magnetogram": np.array([[[-4500.0, 1500.0]]])}).tolist() == [[[[-1.0, 0.5]]]]


def test_model_variants_per_channel_multichannel_and_model_a() -> None:
    task = get_task("translation")
    per_channel = task.build_model(spec_at(32, *TINY))
    assert len(per_channel.generators) == len(per_channel.discriminators) == 9
    assert per_channel(torch.zeros(1, 1, 32, 32)).shape == (1, 9, 32, 32)
    multi = task.build_model(spec_at(32, *TINY, "model.params.per_channel=false"))
    assert len(multi.generators) == len(multi.discriminators) == 1
    assert multi.discriminators[0].model[0].in_channels == 10  # (HMI, nine AIA channels)
    model_a = task.build_model(spec_at(32, *TINY, "model.params.gan=false"))
    assert len(model_a.discriminators) == 0
    optimizers = task.optimizer(spec_at(32, *TINY, "model.params.gan=false"), model_a)
    assert isinstance(optimizers, OptimizerSet) and set(optimizers.optimizers) == {"generator"}
    assert optimizers["generator"].defaults["betas"] == (0.5, 0.999) and optimizers["generator"].defaults["lr"] == 2e-4
    with pytest.raises(ConfigError, match="pix2pix"):
        task.build_model(spec_at(32).model_copy(update={"model": ModelSpec(name="unet")}))
    with pytest.raises(ConfigError, match="model.params"):
        task.build_model(spec_at(32, "model.params.depth=3"))
    with pytest.raises(ConfigError, match="PatchGAN needs images of 32 px"):
        task.build_model(spec_at(16, *TINY))
    assert len(task.build_model(spec_at(16, *TINY, "model.params.gan=false")).generators) == 9


def test_per_channel_models_train_independently() -> None:
    """Changing one channel's target leaves every other channel's generator step unchanged."""
    task = get_task("translation")
    spec = spec_at(32, *TINY, "targets=[aia_171, aia_193]", "training.augment=false")
    batch = synthetic_batch(2, 32)
    other = dict(batch, aia_193=batch["aia_193"] * 3)
    states = []
    for b in (batch, other):
        torch.manual_seed(0)
        model = task.build_model(spec)
        optimizer = task.optimizer(spec, model)
        for _ in range(3):
            task.train_step(spec, model, optimizer, task.inputs(spec, b), task.targets(spec, b), torch.Generator())
        states.append(model.state_dict())
    first = [k for k in states[0] if k.startswith(("generators.0.", "discriminators.0."))]
    assert first and all(torch.equal(states[0][k], states[1][k]) for k in first)
    assert not all(torch.equal(states[0][k], states[1][k]) for k in states[0] if k.startswith("generators.1."))


@pytest.mark.parametrize("gan", [False, True])
def test_a_few_steps_reduce_the_l1_loss(gan: bool) -> None:
    task = get_task("translation")
    spec = spec_at(32, *TINY, "targets=[aia_171, aia_304]", f"model.params.gan={str(gan).lower()}", "training.lr=0.002")
    batch = synthetic_batch(4, 32)
    torch.manual_seed(0)
    model = task.build_model(spec)
    optimizer = task.optimizer(spec, model)
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    generator = torch.Generator().manual_seed(0)
    losses = [task.train_step(spec, model, optimizer, x, y, generator) for _ in range(25)]
    assert ("d_loss" in losses[0]) == gan and ("g_gan" in losses[0]) == gan
    l1 = [step["loss"] for step in losses]
    assert np.mean(l1[-5:]) < 0.8 * np.mean(l1[:5])
    assert task.loss(task.predict(model, x), y) == pytest.approx(float((task.predict(model, x) - y).abs().mean()))


def test_predict_is_per_image_reproducible_and_leaves_the_rng_alone() -> None:
    task = get_task("translation")
    spec = spec_at(32, *TINY, "targets=[aia_171]")
    torch.manual_seed(0)
    model = task.build_model(spec)
    x = task.inputs(spec, synthetic_batch(3, 32))
    state = torch.random.get_rng_state()
    together = task.predict(model, x)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(together, task.predict(model, x))
    # image 0 alone and in a batch: the same (its own batch-norm statistics, the same dropout draw)
    assert torch.equal(task.predict(model, x[:1])[0], together[0])


def test_shake_shifts_input_and_target_together() -> None:
    assert [shake_pad_px(s) for s in (1024, 256, 128, 64)] == [15, 3, 1, 0]
    x = torch.arange(128.0 * 128).reshape(1, 1, 128, 128)
    y = 2 * x
    sx, sy = shake(x, y, torch.Generator().manual_seed(3))
    assert sx.shape == x.shape and torch.equal(sy, 2 * sx)
    shifts = {(int(dy), int(dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
              if torch.equal(sx[..., 1:-1, 1:-1], x[..., 1 - dy:127 - dy, 1 - dx:127 - dx])}
    assert len(shifts) == 1  # one of the nine shifts by at most ±1 px, the border zero-padded
    same, _ = shake(x[..., :64, :64], y[..., :64, :64], torch.Generator().manual_seed(3))
    assert torch.equal(same, x[..., :64, :64])


# ---------------------------------------------------------------- channel selection


def test_tune_grid_is_the_170_models_and_sets_inputs_and_targets() -> None:
    space = load_search_space("aia_channel_selection")
    values = space.space["channels"].values
    assert values == grid_overrides() and len(values) == 170
    assert space.grace_period == space.max_epochs  # ASHA stops no model early
    assert {"inputs": ["aia_131", "aia_304", "aia_1600"], "targets": ["aia_171"]} in values
    spec = load_benchmark("aia_channel_selection")
    config = {"spec": spec.model_dump_json(), "max_epochs": 2,
              "overrides": {"channels": values[80], "training.lr": 0.001}}
    assert flat_overrides(config["overrides"]) == {**values[80], "training.lr": 0.001}
    trial = trial_spec(config)
    assert (trial.inputs, trial.targets) == (values[80]["inputs"], values[80]["targets"])
    assert trial.training.epochs == 2 and trial.training.lr == 0.001
    assert flat_overrides({"inputs": ["aia_94"]}) == {"inputs": ["aia_94"]}  # a spec key is not a group


def test_a_search_needs_the_members_of_its_grid_points_only() -> None:
    """Shards for a subset of the grid fit; the members of the base spec are not required."""
    spec = load_benchmark("aia_channel_selection")
    space = load_search_space("aia_channel_selection")
    subset = [{"inputs": ["aia_131"], "targets": ["aia_171"]}, {"inputs": ["aia_131", "aia_1600"], "targets": ["aia_193"]}]
    space = space.model_copy(update={"space": {**space.space, "channels": SearchDimension(type="grid", values=subset)}})
    reachable = member_specs(spec, space)
    assert [(s.inputs, s.targets) for s in reachable] == [(["aia_131"], ["aia_171"]), (["aia_131", "aia_1600"], ["aia_193"])]
    index = {"members": [{"key": k} for k in ("aia_131", "aia_171", "aia_193", "aia_1600")], "size_px": spec.resolution_px,
             "card": spec.dataset, "scheme": spec.split_scheme}
    for s in reachable:
        check_compatible(index, s, "shards/")
    with pytest.raises(HelioBenchError, match=r"no member\(s\) aia_304, aia_94"):
        check_compatible(index, spec, "shards/")  # the whole grid would need all nine channels
    plain = load_search_space("ch_segmentation")
    assert member_specs(load_benchmark("ch_segmentation"), plain) == [load_benchmark("ch_segmentation")]


def test_channel_selection_report_from_tune_results(tmp_path: Path) -> None:
    spec_json = load_benchmark("aia_channel_selection").model_dump_json()

    def result(inputs: list[str], target: str, cc: float | None) -> SimpleNamespace:
        channel = target.removeprefix("aia_")
        return SimpleNamespace(config={"spec": spec_json, "overrides": {"channels": {"inputs": inputs, "targets": [target]}}},
                               metrics={f"val_cc_{channel}": cc, "val_cc_mean": cc} if cc is not None else None)

    results = [result(["aia_131"], "aia_171", 0.8), result(["aia_131"], "aia_193", 0.6),
               result(["aia_94"], "aia_171", 0.9), result(["aia_94"], "aia_193", 0.1),
               result(["aia_131", "aia_1600"], "aia_171", 0.95), result(["aia_131", "aia_1600"], "aia_193", None)]
    summary = channel_selection_report(results, tmp_path)
    assert summary.columns == ["inputs", "n_inputs", "mean_cc", "min_cc", "n_outputs", "rank"]
    # 131: (0.8 + 0.6) / 2 = 0.7 beats 94: (0.9 + 0.1) / 2 = 0.5; the failed trial is left out
    assert summary.rows() == [("131", 1, pytest.approx(0.7), 0.6, 2, 1), ("94", 1, pytest.approx(0.5), 0.1, 2, 2),
                              ("131+1600", 2, 0.95, 0.95, 1, 1)]
    assert (tmp_path / "channel_selection_cc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "channel_selection.csv").read_text().count("\n") == 6  # header + 5 models


# ---------------------------------------------------------------- end to end


def _png(size: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((size, size), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def translation_shards(tmp_path_factory, tiny_catalog) -> Path:
    """park2019 shards of HMI and three AIA channels at 64 px."""
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.shards import write_shards
    from heliobench.specs import load_card

    card = load_card("sdo_sim")
    manifest, _ = make_manifest(load_catalog(str(tiny_catalog)), card, "park2019")
    folder = tmp_path_factory.mktemp("translation")
    write_manifest(manifest, str(folder / "manifest.parquet"))
    write_shards(str(folder / "manifest.parquet"), card, str(folder / "shards"), size_px=64,
                 members=("hmi_magnetogram", "aia_131", "aia_171", "aia_193"), samples_per_shard=16, progress=False)
    return folder / "shards"


def test_train_evaluate_predict(workspace, translation_shards, tiny_archive, tmp_path) -> None:
    import sunpy.map

    from heliobench.engine.evaluate import evaluate
    from heliobench.engine.predict import predict_files
    from heliobench.engine.train import train

    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    spec = spec_at(64, *TINY, "targets=[aia_171, aia_193]", "training.epochs=1", "training.batch_size=4")
    result = train(spec, str(translation_shards), workers=2, tracking_uri=uri, run_name="translation-tiny")
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert {"val_cc_171", "val_cc_193", "val_cc_mean", "val_ppe10_mean", "val_loss", "train_loss"} <= set(run.data.metrics)
    assert {a.path for a in client.list_artifacts(result.run_id, "figures")} == {"figures/val_predictions.png"}

    metrics = evaluate(load_benchmark("hmi_to_aia"), result.run_id, str(translation_shards), tracking_uri=uri, n_boot=100)
    assert -1 <= metrics["cc_mean_ci_low"] <= metrics["cc_mean"] <= metrics["cc_mean_ci_high"] <= 1
    assert 0 <= metrics["ppe10_171"] <= 1 and metrics["n_images"] > 0
    assert client.get_run(result.run_id).data.metrics["test_cc_mean"] == pytest.approx(metrics["cc_mean"])

    hmi = sorted(tiny_archive.rglob("*magnetogram.fits"))[-1]
    aia_day = hmi.parents[4] / "aia" / Path(*hmi.parts[-4:-1])  # archive/hmi/YYYY/MM/DD → archive/aia/YYYY/MM/DD
    truth = sorted(p for p in aia_day.glob("*.fits") if p.name.split(".")[-3] in ("171", "193"))
    assert len(truth) == 2
    out = tmp_path / "out"
    records = predict_files(load_benchmark("hmi_to_aia"), result.run_id, [str(hmi)], str(out), tracking_uri=uri,
                            options={"truth": ",".join(map(str, truth))})
    (record,) = records
    assert record["channels"] == ["171", "193"] and set(record["metrics"]) >= {"cc_171", "re_193", "ppe10_mean"}
    with fits.open(record["fits"]) as hdul:
        assert [h.name for h in hdul[1:]] == ["AIA_171", "AIA_193"]
        assert hdul[1].header["BUNIT"] == "DN/s" and hdul[1].header["WAVELNTH"] == 171
        assert hdul[1].data.shape == (64, 64) and np.all(hdul[1].data >= 0)
    smap = sunpy.map.Map(fits.getdata(record["fits"], 1), fits.getheader(record["fits"], 1))
    assert smap.coordinate_frame.name == "helioprojective"
    assert smap.world_to_pixel(smap.center).x.value == pytest.approx(31.5)  # the registered grid's centre
    assert os.path.getsize(record["figure"]) > 0
    png = tmp_path / "disk.png"
    png.write_bytes(_png(64))
    with pytest.raises(ConfigError, match="not display-scaled"):
        predict_files(load_benchmark("hmi_to_aia"), result.run_id, [str(png)], str(out), tracking_uri=uri)


def test_channel_selection_grid_on_ray_tune(workspace, translation_shards, tmp_path) -> None:
    from heliobench.engine.tune import tune_benchmark

    uri = f"sqlite:///{workspace / 'mlflow-tune.db'}"
    spec = spec_at(64, *TINY, "training.batch_size=4", "inputs=[aia_131]", "targets=[aia_171]", name="aia_channel_selection")
    space = load_search_space("aia_channel_selection")
    combos = [{"inputs": ["aia_131"], "targets": ["aia_193"]}, {"inputs": ["aia_131", "aia_171"], "targets": ["aia_193"]}]
    space = space.model_copy(update={"max_epochs": 1, "grace_period": 1,
                                     "space": {"channels": space.space["channels"].model_copy(update={"values": combos})}})
    summary = tune_benchmark(spec, space, str(translation_shards), tracking_uri=uri, name="selection-tiny")
    assert summary.trials == 2 and summary.best_config["channels"] in combos
    table = channel_selection_report(summary.parent_run_id, tmp_path, tracking_uri=uri)
    assert table["inputs"].to_list() == ["131", "131+171"] and table["n_outputs"].to_list() == [1, 1]
    client = MlflowClient(uri)
    children = client.search_runs([client.get_run(summary.parent_run_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{summary.parent_run_id}'")
    by_channels = {c.data.params["channels"]: c.data.metrics["val_cc_193"] for c in children}
    assert table["mean_cc"].to_list() == pytest.approx([by_channels[json.dumps(c)] for c in combos])
    assert (tmp_path / "channel_selection_cc.png").is_file()


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_metrics_on_a_registered_real_aia_image(realdata: Path) -> None:
    """The AIA pipeline registers the real 171 Å image; a shifted copy scores as computed by hand."""
    import sunpy.map

    from heliobench.prep import default_pipeline
    from heliobench.prep.image import disk_mask

    image, _ = default_pipeline("AIA", 512).run(sunpy.map.Map(str(realdata / "fits/aia/AIA20110319_105400_0171.fits")))
    assert np.array_equal(disk_mask(image), registered_disk_mask(512))  # the task's disk is the registered disk
    dn = image.data.astype(np.float64)
    assert dn.max() < 2**14 - 21 and dn[registered_disk_mask(512, fraction=1.0)].min() >= 0  # nothing clipped below
    task = get_task("translation")
    spec = spec_at(512, "targets=[aia_171]")

    def score(gen: np.ndarray) -> dict[str, float]:
        acc = task.accumulator(spec, n_boot=0)
        acc.update(normalize_aia(gen)[None, None], normalize_aia(dn)[None, None])
        return acc.compute()

    assert score(dn) == pytest.approx({"cc_171": 1.0, "re_171": 0.0, "ppe10_171": 1.0, "cc_mean": 1.0, "cc_min": 1.0,
                                       "re_abs_mean": 0.0, "ppe10_mean": 1.0, "n_images": 1.0}, abs=1e-9)
    # + 20 DN/s everywhere: I' = I + 20 on the 256² blocks, so CC = 1, RE = 20·n / ΣI and a pixel is
    # within 10 % iff 20 / I ≤ 0.1, i.e. I ≥ 200 (I = binned x + 1 on the disk)
    i_tar = bin_image(dn, 256)[registered_disk_mask(256)] + 1.0
    shifted = score(dn + 20.0)
    assert shifted["cc_171"] == pytest.approx(1.0, abs=1e-9)
    assert shifted["re_171"] == pytest.approx(20.0 * i_tar.size / i_tar.sum(), rel=1e-9)
    assert shifted["ppe10_171"] == pytest.approx(np.mean(i_tar >= 200.0), abs=1.0 / i_tar.size)
    assert 0.05 < shifted["ppe10_171"] < 0.95  # a real mix of faint and bright disk

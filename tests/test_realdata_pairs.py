"""Real AIA 193 Å images with CHRONNOS coronal-hole masks (``../shared/realdata/ch_reiss``,
the Reiss/CHRONNOS layout): the PNG browse-image reader and its limb fit, PNG masks as
labels, and the whole path ingest → split → shard → train → evaluate → predict →
leaderboard through the CLI on the ``aia193_ch_pairs`` card."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heliobench.archive.labels import detect_label
from heliobench.archive.readers import read_header, read_map
from heliobench.cli import main
from heliobench.engine.data import read_shards
from heliobench.errors import ReaderError

pytestmark = pytest.mark.realdata


def _pairs(realdata: Path) -> list[tuple[Path, Path]]:
    images = sorted((realdata / "ch_reiss" / "images").glob("*.png"))
    assert len(images) == 15
    return [(p, realdata / "ch_reiss" / "masks" / p.name) for p in images]


def test_png_browse_images_are_placed_on_the_sun_by_a_limb_fit(realdata: Path) -> None:
    for image, _ in _pairs(realdata):
        record = read_header(image.read_bytes(), str(image))
        assert (record.instrument, record.channel, record.data_kind) == ("AIA", "193", "full_disk")
        assert record.obs_time.strftime("%Y_%m_%dT%H_%M_%S") in image.name
        # the 1024² renderings are centred to a few pixels, the EUV limb at ~413 px (measured by hand: 403-416)
        assert abs(record.disk_x_px - 511.5) < 8 and abs(record.disk_y_px - 511.5) < 8
        assert 405 < record.disk_radius_px < 420
        # plate scale from the Sun's apparent radius on that day: 945"-976" over ~413 px
        assert 2.2 < record.cdelt1 < 2.4 and record.exposure_s is None
    smap = read_map(image.read_bytes(), str(image))
    assert type(smap).__name__ == "AIAMap" and smap.meta["hb_pixel"] == "display"


def test_png_without_a_usable_name_or_disk_is_a_clear_error(realdata: Path, tmp_path: Path) -> None:
    image, _ = _pairs(realdata)[0]
    nameless = tmp_path / "picture.png"
    shutil.copy(image, nameless)
    with pytest.raises(ReaderError, match="name must give the instrument and channel"):
        read_header(nameless.read_bytes(), str(nameless))
    noise = tmp_path / "sdo_aia193_2015_01_01T00_00_00.png"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)).save(buf, "PNG")
    noise.write_bytes(buf.getvalue())
    with pytest.raises(ReaderError, match="limb"):
        read_header(noise.read_bytes(), str(noise))


def test_png_masks_are_labels_with_the_time_of_their_name(realdata: Path, tmp_path: Path) -> None:
    _, mask = _pairs(realdata)[0]
    label = detect_label(mask.read_bytes(), str(mask))
    assert label is not None and label.kind == "ch_mask" and label.time_start == label.time_end
    assert label.time_start.strftime("%Y_%m_%dT%H_%M_%S") in mask.name
    grey = tmp_path / "masks" / mask.name
    grey.parent.mkdir()
    buf = io.BytesIO()
    Image.fromarray(np.arange(256 * 256, dtype=np.uint32).reshape(256, 256).astype(np.uint8)).save(buf, "PNG")
    grey.write_bytes(buf.getvalue())
    with pytest.raises(ReaderError, match="256 grey levels"):
        detect_label(grey.read_bytes(), str(grey))


def _json(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_ch_reiss_end_to_end_through_the_cli(realdata: Path, workspace: Path, tmp_path: Path, capsys,
                                             ray_session, one_torch_thread) -> None:
    cat, shards, pred = tmp_path / "cat", tmp_path / "shards", tmp_path / "pred"
    assert main(["ingest", str(realdata / "ch_reiss"), "--catalog", str(cat), "--quiet"]) == 0
    assert "15 observations, 15 label files, 0 quarantined" in capsys.readouterr().out

    assert main(["split", "aia193_ch_pairs", "--catalog", str(cat)]) == 0  # the card's default scheme
    split = _json(capsys)
    assert split["manifest"].endswith("manifest-aia193_ch_pairs-years.parquet")
    assert split["samples"] == {"train": 10, "val": 2, "test": 3} and split["unmatched_by_member"] == {"ch_mask": 0}

    assert main(["shard", split["manifest"], "--card", "aia193_ch_pairs", "--out", str(shards), "--size", "256", "--quiet"]) == 0
    assert _json(capsys)["samples"] == {"train": 10, "val": 2, "test": 3}
    arrays = read_shards([str(p) for p in sorted((shards / "test").glob("*.parquet"))], ["sample_id", "ch_mask", "aia_193"])
    masks = arrays["ch_mask"]
    assert masks.shape == (3, 256, 256) and set(np.unique(masks)) <= {0, 1}
    for sample_id, mask in zip(arrays["sample_id"], masks):  # the registered mask keeps the 4096² mask's share
        stem = f"sdo_aia193_{sample_id[:4]}_{sample_id[4:6]}_{sample_id[6:8]}T{sample_id[9:11]}_{sample_id[11:13]}_{sample_id[13:15]}.png"
        native = np.asarray(Image.open(realdata / "ch_reiss" / "masks" / stem)) > 0
        assert mask.mean() == pytest.approx(native.mean(), rel=0.15)

    tiny = ["--set", "model.params.base_filters=4", "--set", "model.params.depth=2"]
    assert main(["train", "ch_segmentation", "--dataset", "aia193_ch_pairs", "--shards", str(shards), "--epochs", "1",
                 "--workers", "2", "--run-name", "ch-reiss-tiny", *tiny]) == 0
    run_id = _json(capsys)["run_id"]
    assert main(["evaluate", "ch_segmentation", "--dataset", "aia193_ch_pairs", "--shards", str(shards), "--run", run_id,
                 "--bootstrap", "50"]) == 0
    test = _json(capsys)["test"]
    assert 0 <= test["iou_pooled_05"] <= 1 and test["n_images"] == 3

    images = [str(p) for p, _ in _pairs(realdata)[-2:]]
    assert main(["predict", "ch_segmentation", "--dataset", "aia193_ch_pairs", "--run", run_id, *images, "--out", str(pred)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(records) == 2 and all(Path(r["mask_fits"]).exists() and Path(r["overlay"]).exists() for r in records)
    from astropy.io import fits

    with fits.open(records[0]["mask_fits"]) as hdul:  # registered like the shards: 256² with a WCS
        assert hdul["MASK"].data.shape == (256, 256) and hdul["MASK"].header["CTYPE1"] == "HPLN-TAN"

    assert main(["leaderboard", "ch_segmentation", "--format", "json"]) == 0
    out = capsys.readouterr().out
    rows_sim, rows_real = [json.loads(part) for part in out.split("\n") if part.startswith("[")]
    assert rows_sim == [] and [r["model"] for r in rows_real] == ["scss_net"]
    assert main(["leaderboard", "ch_segmentation", "--dataset", "aia193_ch_pairs"]) == 0
    assert "ch_segmentation on aia193_ch_pairs/years" in capsys.readouterr().out
    assert main(["leaderboard", "ch_segmentation", "--html", str(tmp_path / "board")]) == 0
    page = (tmp_path / "board" / "index.html").read_text()
    assert 'id="bench-ch_segmentation"' in page and 'id="bench-ch_segmentation-aia193_ch_pairs"' in page
    assert (tmp_path / "board" / "ch_segmentation-aia193_ch_pairs_intervals.png").exists()


def test_a_model_trained_on_the_simulator_is_scored_on_the_real_images(realdata: Path, tiny_shards: Path, workspace: Path,
                                                                        tmp_path: Path, capsys, ray_session, one_torch_thread) -> None:
    cat, shards = tmp_path / "cat", tmp_path / "real64"
    assert main(["ingest", str(realdata / "ch_reiss"), "--catalog", str(cat), "--quiet"]) == 0
    assert main(["split", "aia193_ch_pairs", "--catalog", str(cat)]) == 0
    manifest = _json(capsys)["manifest"]
    assert main(["shard", manifest, "--card", "aia193_ch_pairs", "--out", str(shards), "--size", "64", "--quiet"]) == 0
    capsys.readouterr()
    at64 = ["--set", "resolution_px=64", "--set", "model.params.base_filters=4", "--set", "model.params.depth=2"]
    assert main(["train", "ch_segmentation", "--shards", str(tiny_shards), "--epochs", "1", "--workers", "1",
                 "--run-name", "sim-to-real-tiny", *at64]) == 0
    run_id = _json(capsys)["run_id"]

    assert main(["evaluate", "ch_segmentation", "--run", run_id, "--transfer", str(shards), "--bootstrap", "20"]) == 0
    scored = _json(capsys)
    assert scored["metrics"]["n_images"] == 15 and 0 <= scored["metrics"]["iou_pooled_05"] <= 1  # every real image
    from heliobench.tracking.runs import connect

    logged = connect(None).get_run(run_id).data.metrics
    assert logged["transfer_aia193_ch_pairs_iou_pooled_05"] == pytest.approx(scored["metrics"]["iou_pooled_05"], abs=1e-4)
    assert not any(k.startswith("test_") for k in logged)  # a transfer score is not a test-split score...
    assert main(["leaderboard", "ch_segmentation", "--format", "json", "--wide"]) == 0
    assert run_id not in capsys.readouterr().out  # ...nor ranked
    assert main(["evaluate", "ch_segmentation", "--run", run_id, "--transfer", str(tiny_shards)]) == 2
    assert "score its test split with evaluate" in capsys.readouterr().err

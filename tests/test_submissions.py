"""Submission files: format checks with specific errors, no unpickling, and recording in MLflow."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from heliobench.errors import HelioBenchError
from heliobench.specs import load_benchmark
from heliobench.tracking.leaderboard import LeaderboardTable, rank
from heliobench.tracking.submission_format import SUBMISSION_FORMAT
from heliobench.tracking.submissions import record_submission, validate_submission

IDS = [f"201707{d:02d}T000000" for d in range(1, 11)]
SHAPE = (8, 8)
RANGE = (0.0, 1.0)
LIMIT = 1_000_000


def _arrays(dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {i: rng.random(SHAPE).astype(dtype) for i in IDS}


def _write(tmp_path: Path, arrays: dict[str, np.ndarray], name: str = "preds.npz", compressed: bool = False) -> Path:
    path = tmp_path / name
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def _check(path: Path, max_bytes: int = LIMIT) -> dict[str, np.ndarray]:
    return validate_submission(path, IDS, SHAPE, RANGE, max_bytes)


@pytest.mark.parametrize("dtype, compressed", [(np.float32, False), (np.float64, True)])
def test_valid_submission(tmp_path, dtype, compressed):
    arrays = _arrays(dtype)
    got = _check(_write(tmp_path, arrays, compressed=compressed))
    assert list(got) == IDS
    for key, arr in arrays.items():
        assert got[key].dtype == dtype and np.array_equal(got[key], arr)


def test_too_large_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.npz"
    path.write_bytes(b"\0" * 2000)  # not even a zip: the size check must come first
    with pytest.raises(HelioBenchError, match=f"{path}: 2000 bytes, more than the limit of 1000 bytes"):
        _check(path, max_bytes=1000)


@pytest.mark.parametrize("content", [b"sample_id,prob\n", b"PK\x03\x04 truncated"])
def test_not_an_npz(tmp_path, content):
    path = tmp_path / "preds.npz"
    path.write_bytes(content)
    with pytest.raises(HelioBenchError, match=f"{path}: not an .npz file"):
        _check(path)


def test_corrupt_archive(tmp_path):
    path = _write(tmp_path, _arrays())
    data = bytearray(path.read_bytes())
    data[400] ^= 0xFF  # inside the first array's values: the zip's CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(HelioBenchError, match=f"{path}: corrupt .npz file"):
        _check(path)


def test_missing_file(tmp_path):
    with pytest.raises(HelioBenchError, match="nope.npz: no such file"):
        _check(tmp_path / "nope.npz")


class _Payload:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickled_submission(tmp_path: Path, marker: Path, name: str) -> Path:
    arrays: dict[str, np.ndarray] = _arrays()
    arrays[IDS[3]] = np.array([_Payload(marker)], dtype=object)
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, arr, allow_pickle=True)
    return path


def test_pickled_object_array_is_rejected_without_unpickling(tmp_path):
    control_marker = tmp_path / "control-unpickled"
    control = _pickled_submission(tmp_path, control_marker, "control.npz")
    with np.load(control, allow_pickle=True) as npz:
        npz[IDS[3]]
    assert control_marker.exists(), "the payload must be live, or the test below proves nothing"

    marker = tmp_path / "unpickled"
    path = _pickled_submission(tmp_path, marker, "evil.npz")
    with pytest.raises(HelioBenchError, match=f"{path}: {IDS[3]}: holds pickled Python objects"):
        _check(path)
    assert not marker.exists()


def test_missing_ids_are_listed_with_count(tmp_path):
    arrays = _arrays()
    for key in IDS[2:]:
        del arrays[key]
    with pytest.raises(HelioBenchError, match=rf"8 test id\(s\) missing: {IDS[2]}, {IDS[3]}, .*, {IDS[6]}, \.\.\. \(8 in all\)"):
        _check(_write(tmp_path, arrays))


def test_unexpected_ids(tmp_path):
    arrays = {**_arrays(), "20990101T000000": np.zeros(SHAPE, np.float32)}
    with pytest.raises(HelioBenchError, match=r"1 id\(s\) not in the test split: 20990101T000000"):
        _check(_write(tmp_path, arrays))


def test_wrong_shape_names_the_id(tmp_path):
    arrays = {**_arrays(), IDS[5]: np.zeros((8, 9), np.float32)}
    with pytest.raises(HelioBenchError, match=rf"{IDS[5]}: shape \(8, 9\), expected \(8, 8\)"):
        _check(_write(tmp_path, arrays))


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.complex64, np.float16])
def test_wrong_dtype(tmp_path, dtype):
    arrays = {**_arrays(), IDS[1]: np.zeros(SHAPE, dtype)}
    with pytest.raises(HelioBenchError, match=rf"{IDS[1]}: dtype {np.dtype(dtype)}, expected float32 or float64"):
        _check(_write(tmp_path, arrays))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_names_the_id(tmp_path, bad):
    arrays = _arrays()
    arrays[IDS[7]][2, 3] = bad
    with pytest.raises(HelioBenchError, match=f"{IDS[7]}: contains NaN or infinite values"):
        _check(_write(tmp_path, arrays))


def test_values_out_of_range(tmp_path):
    arrays = _arrays()
    arrays[IDS[0]][0, 0] = 1.5
    with pytest.raises(HelioBenchError, match=rf"{IDS[0]}: values must lie in \[0.0, 1.0\], found min .*, max 1.5"):
        _check(_write(tmp_path, arrays))
    assert validate_submission(_write(tmp_path, arrays, "any.npz"), IDS, SHAPE, None, LIMIT)[IDS[0]][0, 0] == 1.5


def test_foreign_member_and_decompression_bomb(tmp_path):
    path = _write(tmp_path, _arrays())
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(HelioBenchError, match="member 'notes.txt' is not a .npy array"):
        _check(path)
    bomb = {**_arrays(), IDS[9]: np.zeros((2000, 2000), np.float64)}
    path = _write(tmp_path, bomb, "bomb.npz", compressed=True)
    assert path.stat().st_size < 100_000
    with pytest.raises(HelioBenchError, match=f"{IDS[9]}: 32000128 bytes uncompressed"):
        _check(path)


def test_format_text_names_the_rules():
    for words in (".npz", "sample_id", "float32", "allow_pickle=False", "[0, 1]"):
        assert words in SUBMISSION_FORMAT


def test_record_submission(client: MlflowClient, tmp_path):
    spec = load_benchmark("ch_segmentation")
    preds = _write(tmp_path, _arrays())
    metrics = {"iou_pooled_05": 0.61, "iou_pooled_05_ci_low": 0.58, "iou_pooled_05_ci_high": 0.64, "dice_pooled_05": 0.75}
    entry = record_submission(client, spec, "my <model>", "carol", metrics, "d" * 64, preds)
    assert (entry.kind, entry.model, entry.submitter, entry.dataset_hash) == ("submission", "my <model>", "carol", "d" * 64)
    assert entry.metrics == metrics and entry.seed is None and entry.worker_hours is None

    run = client.get_run(entry.entry_id)
    tags = run.data.tags
    assert tags["heliobench.kind"] == "submission" and tags["heliobench.leaderboard"] == "1"
    assert tags["heliobench.benchmark"] == spec.name and tags["heliobench.model"] == "my <model>"
    assert tags["heliobench.predictions_sha256"] == hashlib.sha256(preds.read_bytes()).hexdigest()
    assert run.data.metrics["test_iou_pooled_05"] == 0.61 and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == f"heliobench/{spec.name}"
    assert client.list_artifacts(entry.entry_id) == [], "the predictions file is not stored"

    table = LeaderboardTable()
    assert table.read()["entry_id"].to_list() == [entry.entry_id]
    board = rank(table, spec)
    assert board["model"].to_list() == ["my <model>"] and board["kind"].to_list() == ["submission"]
    assert (board["iou_pooled_05_ci_low"][0], board["iou_pooled_05_ci_high"][0]) == (0.58, 0.64)

    second = record_submission(client, spec, "my <model>", "carol", metrics, "d" * 64, _write(tmp_path, _arrays(np.float64), "b.npz"))
    assert second.config_key != entry.config_key, "another predictions file is another configuration"
    rebuilt = LeaderboardTable(str(tmp_path / "rebuilt.parquet"))
    assert rebuilt.rebuild_from_mlflow(client, [spec]) == 2
    assert rebuilt.read().sort("entry_id").equals(table.read().sort("entry_id"))


def test_record_submission_errors(client: MlflowClient, tmp_path):
    spec = load_benchmark("ch_segmentation")
    preds = _write(tmp_path, _arrays())
    with pytest.raises(HelioBenchError, match="submission 'x': no iou_pooled_05 score"):
        record_submission(client, spec, "x", "carol", {"dice_pooled_05": 0.5}, "d", preds)
    with pytest.raises(HelioBenchError, match="submission name '  ': expected 1 to 100 printable characters"):
        record_submission(client, spec, "  ", "carol", {"iou_pooled_05": 0.5}, "d", preds)
    with pytest.raises(HelioBenchError, match="submitter 'a\\\\nb'"):
        record_submission(client, spec, "x", "a\nb", {"iou_pooled_05": 0.5}, "d", preds)
    assert not (tmp_path / "leaderboard.parquet").exists()


def test_submit_names_the_benchmarks_it_takes(tmp_path):
    from heliobench.engine.submit import submit

    with pytest.raises(HelioBenchError, match="ar_detection: `heliobench submit` takes segmentation masks"):
        submit(load_benchmark("ar_detection"), str(tmp_path / "p.npz"), "m", str(tmp_path))

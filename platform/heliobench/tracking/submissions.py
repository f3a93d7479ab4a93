"""Validating, scoring and recording submissions (the format: :mod:`heliobench.tracking.submission_format`)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from heliobench.errors import HelioBenchError, one_line
from heliobench.specs import BenchmarkSpec
from heliobench.tracking import runs
from heliobench.tracking.leaderboard import (
    TAG_DATASET,
    TAG_LEADERBOARD,
    TAG_MANIFEST,
    TAG_MODEL,
    TAG_PREDICTIONS,
    TAG_SUBMITTER,
    LeaderboardEntry,
    LeaderboardTable,
    entry_from_run,
)

#: Room for an .npy header on top of the array's bytes.
_HEADER_BYTES = 4096
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _some(ids: list[str], n: int = 5) -> str:
    more = f", ... ({len(ids)} in all)" if len(ids) > n else ""
    return ", ".join(ids[:n]) + more


def _headers(path: Path, zf: zipfile.ZipFile, max_member_bytes: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in the archive, read from the .npy headers only."""
    out = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise HelioBenchError(f"{path}: member {info.filename!r} is not a .npy array")
        key = info.filename.removesuffix(".npy")
        if info.file_size > max_member_bytes:
            raise HelioBenchError(f"{path}: {key}: {info.file_size} bytes uncompressed, more than the expected shape can need")
        with zf.open(info) as f:
            try:
                reader = _HEADER_READERS.get(np.lib.format.read_magic(f))
                if reader is None:
                    raise ValueError("unsupported .npy format version")
                shape, _, dtype = reader(f)
            except ValueError as exc:
                raise HelioBenchError(f"{path}: {key}: not a readable .npy array ({exc})") from None
        if dtype.hasobject:
            raise HelioBenchError(f"{path}: {key}: holds pickled Python objects; only float32/float64 arrays are accepted")
        out[key] = (shape, dtype)
    return out


def validate_submission(
    path: Path | str,
    expected_ids: list[str],
    shape: tuple[int, ...],
    value_range: tuple[float, float] | None,
    max_bytes: int,
) -> dict[str, np.ndarray]:
    """The predictions of a submission file by observation id, after every check of the format."""
    path = Path(path)
    if not path.is_file():
        raise HelioBenchError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise HelioBenchError(f"{path}: {size} bytes, more than the limit of {max_bytes} bytes")
    if not zipfile.is_zipfile(path):
        raise HelioBenchError(f"{path}: not an .npz file (expected a zip of .npy arrays, as numpy.savez writes)")
    try:
        return _read(path, expected_ids, shape, value_range)
    except HelioBenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails with many types (BadZipFile, zlib.error, EOFError...)
        raise HelioBenchError(one_line(f"{path}: corrupt .npz file ({type(exc).__name__}: {exc})")) from None


def _read(path: Path, expected_ids: list[str], shape: tuple[int, ...], value_range: tuple[float, float] | None) -> dict[str, np.ndarray]:
    """The checks inside the archive: members, ids, dtypes and shapes (headers), then values."""
    with zipfile.ZipFile(path) as zf:
        headers = _headers(path, zf, int(np.prod(shape)) * 8 + _HEADER_BYTES)
    missing = [i for i in expected_ids if i not in headers]
    if missing:
        raise HelioBenchError(f"{path}: {len(missing)} test id(s) missing: {_some(missing)}")
    expected = set(expected_ids)
    extra = sorted(k for k in headers if k not in expected)
    if extra:
        raise HelioBenchError(f"{path}: {len(extra)} id(s) not in the test split: {_some(extra)}")
    for key in expected_ids:
        got_shape, dtype = headers[key]
        if dtype.kind != "f" or dtype.itemsize not in (4, 8):
            raise HelioBenchError(f"{path}: {key}: dtype {dtype}, expected float32 or float64")
        if got_shape != tuple(shape):
            raise HelioBenchError(f"{path}: {key}: shape {got_shape}, expected {tuple(shape)}")
    out = {}
    with np.load(path, allow_pickle=False) as npz:
        for key in expected_ids:
            arr = npz[key]
            if not np.isfinite(arr).all():
                raise HelioBenchError(f"{path}: {key}: contains NaN or infinite values")
            if value_range is not None and (arr.min() < value_range[0] or arr.max() > value_range[1]):
                raise HelioBenchError(
                    f"{path}: {key}: values must lie in [{value_range[0]}, {value_range[1]}], "
                    f"found min {arr.min():.4g}, max {arr.max():.4g}"
                )
            out[key] = arr
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_name(name: str, what: str) -> None:
    if not name.strip() or len(name) > 100 or not name.isprintable():
        raise HelioBenchError(f"{what} {name!r}: expected 1 to 100 printable characters")


def record_submission(
    client: MlflowClient,
    spec: BenchmarkSpec,
    name: str,
    submitter: str,
    metrics: dict[str, float],
    dataset_hash: str,
    predictions_path: Path | str,
    table: LeaderboardTable | None = None,
) -> LeaderboardEntry:
    """Record a scored submission as an MLflow run and add it to the leaderboard table.

    ``metrics`` are the evaluator's test scores; the predictions file itself is not stored,
    only its SHA-256 (tag ``heliobench.predictions_sha256``).
    """
    _check_name(name, "submission name")
    _check_name(submitter, "submitter")
    if spec.primary_metric not in metrics:
        raise HelioBenchError(f"submission {name!r}: no {spec.primary_metric} score among the metrics")
    tags = {
        runs.TAG_BENCHMARK: spec.name, runs.TAG_KIND: "submission", TAG_LEADERBOARD: "1", TAG_SUBMITTER: submitter,
        TAG_MODEL: name, TAG_MANIFEST: dataset_hash, TAG_PREDICTIONS: _sha256(Path(predictions_path)),
        TAG_DATASET: spec.dataset,
    }
    run = client.create_run(runs.experiment_id(client, spec.name), run_name=f"submission-{name}", tags=tags)
    run_id = run.info.run_id
    now = run.info.start_time
    client.log_batch(run_id, metrics=[Metric(f"test_{k}", float(v), now, 0) for k, v in metrics.items()])
    client.set_terminated(run_id, "FINISHED")
    entry = entry_from_run(client, run_id, spec)
    (table or LeaderboardTable()).add_entry(entry)
    return entry

"""The event_tracking benchmark: HEK box tables, one-pass scoring, the task, baselines, end to end.

Boxes are (x0, y0, x1, y1) in continuous registered pixels, a box covering [x0, x1) x [y0, y1).
The measures themselves are checked by hand in test_tracking_parts.py; here they are checked
through the task's scoring paths (teacher-forced validation and one-pass evaluation).
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zlib
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from heliobench.errors import ConfigError, ReaderError
from heliobench.prep.image import PrepImage
from heliobench.prep.labels import LabelContext
from heliobench.prep.labels.hek import COLUMNS, K_MAX, encode_hek, track_key
from heliobench.prep.pipeline import DISK_RADIUS_FRACTION
from heliobench.specs import load_benchmark, load_card, load_search_space
from heliobench.tasks import get_task
from heliobench.tasks.base import to_numpy
from heliobench.tasks.tracking.baseline_entries import rotation_predictor, static_predictor
from heliobench.tasks.tracking.evaluation import TrackingAccumulator, one_pass
from heliobench.tasks.tracking.layout import Layout, layout
from heliobench.tasks.tracking.metrics import REPORT_KEYS
from test_tracking_parts import eit_map_with_repaired_header, expected_shift_px

SIZE = 64
CARD = load_card("sdo_tracking_sim")
TINY = ["model.params.crop_size=32", "model.params.channels=[8,16,32]", "model.params.hidden=32",
        "model.params.dropout=0.0", "training.params.examples_per_pair=2", "training.batch_size=4"]


def tiny_spec(*extra: str):
    return load_benchmark("event_tracking").with_overrides([*TINY, *extra]).model_copy(update={"resolution_px": SIZE})


# --- HEK box tables -------------------------------------------------------------------------

def _grid(obs_time: datetime) -> PrepImage:
    """A 100 x 100 registered grid, 2"/px, north up, the Sun's centre at WCS pixel (49.5, 49.5)."""
    return PrepImage(data=np.zeros((100, 100), np.float32), scale_arcsec=(2.0, 2.0),
                     rotation_matrix=((1.0, 0.0), (0.0, 1.0)), reference_px=(49.5, 49.5), reference_arcsec=(0.0, 0.0),
                     disk_center_px=(49.5, 49.5), rsun_arcsec=80.0, obs_time=obs_time, instrument="AIA",
                     channel="171", exposure_s=2.0)


def _event(kind: str, start: str, end: str, x0: float, y0: float, x1: float, y1: float, specific: str = "",
           noaa: int | None = None) -> dict:
    ring = f"{x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}"
    return {"event_type": kind, "event_starttime": start, "event_endtime": end, "frm_name": "test",
            "frm_specificid": specific, "ar_noaanum": noaa, "hpc_x": (x0 + x1) / 2, "hpc_y": (y0 + y1) / 2,
            "hpc_bbox": f"POLYGON(({ring}))", "hpc_boundcc": ""}


def _encode(events: list[dict], when: datetime, grid: PrepImage | None = None) -> np.ndarray:
    raw = json.dumps({"result": events}).encode()
    member = CARD.member("hek")
    return encode_hek(raw, "test.json", LabelContext(member, when, None, grid or _grid(when), None))


NOON = datetime(2017, 9, 5, 12, tzinfo=timezone.utc)


def test_hek_table_columns_boxes_and_keys_on_a_known_grid() -> None:
    events = [
        _event("AR", "2017-09-05T00:00:00", "2017-09-05T23:59:59", -100, -50, 20, 30, noaa=12673),
        _event("CH", "2017-09-05T08:00:00", "2017-09-05T16:00:00", 10, 10, 30, 20, specific="SPoCA_v1.0_CH_0000001"),
    ]
    table = _encode(events, NOON)
    assert COLUMNS == ("track_key", "event_type", "x0", "y0", "x1", "y1", "noaa")
    assert table.shape == (K_MAX, 7) and table.dtype == np.float64
    # Pixel = arcsec / 2 + 49.5 (WCS, centres at integers); the box convention adds 0.5:
    # x -100" -> -50 + 49.5 + 0.5 = 0; 20" -> 60; y -50" -> 25; 30" -> 65.
    np.testing.assert_allclose(table[0], [zlib.crc32(b"NOAA 12673") & 0x7FFFFFFF, 0, 0, 25, 60, 65, 12673])
    np.testing.assert_allclose(table[1, :6], [zlib.crc32(b"SPoCA_v1.0_CH_0000001") & 0x7FFFFFFF, 1, 55, 55, 65, 60])
    assert np.isnan(table[1, 6]) and np.isnan(table[2:]).all()
    assert table[0, 0] == track_key("NOAA 12673") < 2**31  # exact in float64


def test_hek_table_keeps_records_valid_at_the_grid_frame_one_per_track() -> None:
    events = [
        _event("AR", "2017-09-05T00:00:00", "2017-09-05T05:59:59", 0, 0, 10, 10, noaa=12673),  # ended
        _event("AR", "2017-09-05T06:00:00", "2017-09-05T23:59:59", 2, 0, 12, 10, noaa=12673),
        _event("AR", "2017-09-05T11:00:00", "2017-09-05T13:00:00", 4, 0, 14, 10, noaa=12673),  # started last
        _event("AR", "2017-09-05T13:00:00", "2017-09-05T23:59:59", 0, 0, 10, 10, noaa=12674),  # not yet
        _event("FL", "2017-09-05T11:00:00", "2017-09-05T13:00:00", 0, 0, 10, 10, noaa=12673),  # a flare
        _event("AR", "2017-09-05T00:00:00", "2017-09-05T23:59:59", 0, 0, 10, 10),  # no track identifier
    ]
    # The nominal sample time is 13:30, but the grid frame was taken at 12:00: its events count.
    table = _encode(events, datetime(2017, 9, 5, 13, 30, tzinfo=timezone.utc), grid=_grid(NOON))
    rows = table[~np.isnan(table[:, 0])]
    assert len(rows) == 1 and rows[0, 6] == 12673
    assert rows[0, 2] == pytest.approx(4 / 2 + 50)  # the record that started at 11:00


def test_hek_table_orders_rows_by_type_and_key() -> None:
    events = [_event("AR" if i % 2 else "CH", "2017-09-05T00:00:00", "2017-09-05T23:59:59", 0, 0, 2 + i, 2,
                     specific=f"track-{i}") for i in range(K_MAX)]
    table = _encode(events, NOON)
    assert not np.isnan(table[:, :6]).any()  # every visible track has its row (no NOAA number here)
    assert list(table[:, 1]) == sorted(table[:, 1])
    for code in (0, 1):
        keys = table[table[:, 1] == code, 0]
        assert list(keys) == sorted(keys)


def test_hek_table_refuses_more_tracks_than_rows() -> None:
    events = [_event("AR", "2017-09-05T00:00:00", "2017-09-05T23:59:59", 0, 0, 2 + i, 2, specific=f"track-{i}")
              for i in range(K_MAX + 1)]
    with pytest.raises(ReaderError, match=rf"test.json: {K_MAX + 1} event tracks visible at 2017-09-05T12:00:00, "
                                          rf"more than the {K_MAX}"):
        _encode(events, NOON)


def test_hek_encoder_needs_a_grid() -> None:
    ctx = LabelContext(CARD.member("hek"), NOON, None, None, None)
    with pytest.raises(ConfigError, match="member hek: a hek label needs a grid"):
        encode_hek(b'{"result": []}', "x.json", ctx)


@pytest.mark.realdata
def test_real_hek_regions_link_by_noaa_number_and_land_on_the_registered_grid(realdata: Path) -> None:
    import sunpy.map

    from heliobench.prep import default_pipeline

    path = next((realdata / "hek").glob("*.json"))
    raw = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aia = sunpy.map.Map(realdata / "fits" / "aia" / "AIA20110319_105400_0171.fits")
        registered, _ = default_pipeline("AIA", 256).run(aia)
    tables = {}
    for day in (1, 2):
        when = datetime(2017, 9, day, 12, tzinfo=timezone.utc)
        grid = replace(registered, obs_time=when)
        tables[day] = _encode_raw(raw, when, grid)
    events = json.loads(raw)  # a plain list of events
    regions_day1 = {e["ar_noaanum"] for e in events if e["event_type"] == "AR" and e["event_starttime"].startswith("2017-09-01")}
    day1 = tables[1][~np.isnan(tables[1][:, 0])]
    assert set(day1[:, 6].astype(int)) == regions_day1 and (day1[:, 1] == 0).all()  # ARs only, no flares
    # frm_specificid is empty: the key is the NOAA number's, the same on both days.
    key = track_key("NOAA 12673")
    box1, box2 = (t[t[:, 0] == key][0, 2:6] for t in (tables[1], tables[2]))
    # Independent geometry: registered disk centred at pixel 127.5 with radius 256 * 976/2457.6 px
    # = 101.67 px for the Sun's apparent radius; the box convention adds 0.5 to WCS pixels.
    px_per_arcsec = 256 * DISK_RADIUS_FRACTION / registered.rsun_arcsec
    ring = [e for e in events if e["ar_noaanum"] == 12673 and e["event_starttime"].startswith("2017-09-01")][0]
    xs = [float(v.split()[0]) for v in ring["hpc_bbox"][9:-2].split(",")]
    assert box1[0] == pytest.approx(128 + min(xs) * px_per_arcsec, abs=0.01)
    assert box1[2] == pytest.approx(128 + max(xs) * px_per_arcsec, abs=0.01)
    # A day of rotation carries the region west (+x) by some 150" (about 15 px here).
    assert 8 < (box2[0] + box2[2] - box1[0] - box1[2]) / 2 < 25


def _encode_raw(raw: bytes, when: datetime, grid: PrepImage) -> np.ndarray:
    return encode_hek(raw, "real.json", LabelContext(CARD.member("hek"), when, None, grid, None))


# --- Scoring: teacher-forced pairs and one-pass evaluation -----------------------------------

A, B, C = 11.0, 22.0, 33.0  # track keys: A an AR crossing the disk, B a coronal hole, C at the limb
LAYOUT = Layout(frames=((0, "aia_171_prev", "aia_171"), (1, "aia_193_prev", "aia_193")),
                prev_boxes="hek_prev", boxes="hek", offset_min=-360.0)


def _table(*rows: tuple[float, int, float, float, float, float]) -> np.ndarray:
    table = np.full((K_MAX, 7), np.nan)
    for i, row in enumerate(rows):
        table[i, :6] = row
    return table


def _ar(x: float) -> tuple:
    return (A, 0, x, 30.0, x + 10, 40.0)


def _batch(samples: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    return {"sample_id": np.array([s for s, _, _ in samples]),
            "hek_prev": np.stack([p for _, p, _ in samples]), "hek": np.stack([c for _, _, c in samples])}


LIMB = (C, 0, 2.0, 30.0, 8.0, 36.0)  # corners off the 25.4-px disk of a 64-px frame
CH = (B, 1, 28.0, 20.0, 36.0, 26.0)
# A moves +2 px every 6 h; B is seen on one pair only; a gap of a day, then A again.
SAMPLES = [
    ("20170901T060000", _table(_ar(20), LIMB), _table(_ar(22), LIMB)),
    ("20170901T120000", _table(_ar(22), CH), _table(_ar(24), CH)),
    ("20170901T180000", _table(_ar(24), CH), _table(_ar(26))),
    ("20170902T180000", _table(_ar(30)), _table(_ar(32))),
]


def _plus_one(calls: list) -> callable:
    """A tracker answering every given box moved 1 px to +x; records the tables it was given."""

    def predict(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(batch["hek_prev"].copy())
        return {"boxes": batch["hek_prev"][..., 2:6] + [1.0, 0.0, 1.0, 0.0]}

    return predict


def test_one_pass_feeds_back_the_trackers_own_boxes_and_scores_by_hand() -> None:
    calls: list = []
    report = one_pass([_batch(SAMPLES[:2]), _batch(SAMPLES[2:])], _plus_one(calls), LAYOUT, SIZE, n_boot=0)
    # Track A starts from the truth (x0 = 20), then gets its own answers 21, 22; after the gap
    # it starts again from the truth (30). The limb track C is never given.
    assert [c[0, 0, 2] for c in calls] == [20, 21, 22, 30]
    assert not np.isin(C, np.concatenate([c[0, :, 0] for c in calls]))
    # A's first sequence: answers 21, 22, 23 against truths 22, 24, 26 (10 x 10 boxes):
    # IoU 90/110, 80/120, 70/130. B: answer 29 against 28 (8 x 6): 42/54. A after the gap: 9/11.
    ious_a = [9 / 11, 2 / 3, 7 / 13]
    ata_a, ata_b = np.mean(ious_a), 42 / 54
    assert report["n_sequences"] == 3 and report["n_sequences_ar"] == 2 and report["n_sequences_ch"] == 1
    assert report["ata"] == pytest.approx((ata_a + ata_b + 9 / 11) / 3)
    assert report["ata_ar"] == pytest.approx((ata_a + 9 / 11) / 2)
    # Matched (IoU >= 0.5) frames: all but A's third (7/13 = 0.54 is matched too): F = 1 everywhere.
    assert report["f_score"] == 1.0 and report["ota"] == 1.0
    assert report["centre_error_px"] == pytest.approx((np.mean([1, 2, 3]) + 1 + 1) / 3)
    assert report["precision_20px"] == 1.0


def test_one_pass_only_scores_tracked_event_types() -> None:
    ar_only = replace(LAYOUT, frames=LAYOUT.frames[:1])
    report = one_pass([_batch(SAMPLES)], _plus_one([]), ar_only, SIZE)
    assert report["n_sequences"] == 2 and "n_sequences_ch" not in report


def test_a_lost_tracker_keeps_failing_until_the_track_ends() -> None:
    def lost(batch):
        return {"boxes": np.full(batch["hek_prev"].shape[:-1] + (4,), np.nan)}

    report = one_pass([_batch(SAMPLES[:3])], lost, replace(LAYOUT, frames=LAYOUT.frames[:1]), SIZE, n_boot=0)
    # One AR sequence of 3 frames without an answer: no true positive, 3 misses, no false positive.
    assert report["n_sequences"] == 1 and report["ata"] == 0 and report["f_score"] == 0
    assert report["ota"] == 0 and report["success_auc"] == 0 and math.isnan(report["otp"])


def test_teacher_forced_accumulator_groups_pairs_by_track() -> None:
    acc = TrackingAccumulator(SIZE, n_boot=200)
    for _, prev, curr in SAMPLES:
        acc.update({"boxes": prev[None, :, 2:6] + [1.0, 0.0, 1.0, 0.0], "prev": prev[None]}, curr[None])
    out = acc.compute()
    # Every A pair starts from the truth: answer +1 against truth +2, IoU 9/11, in one sequence
    # of 4 frames (A's third pair's B is gone from the current frame and is not scored).
    assert out["n_sequences"] == 2 and out["n_images"] == 4
    assert out["ata_ar"] == pytest.approx(9 / 11) and out["ata_ch"] == pytest.approx(42 / 54)
    assert out["ata_ci_low"] <= out["ata"] <= out["ata_ci_high"]


# --- Baselines -------------------------------------------------------------------------------

def test_static_baseline_answers_the_given_box() -> None:
    spec = tiny_spec()
    batch = _batch(SAMPLES[1:2])
    boxes = static_predictor(spec)(batch)["boxes"]
    np.testing.assert_array_equal(boxes[0, :2], batch["hek_prev"][0, :2, 2:6])
    assert np.isnan(boxes[0, 2:]).all()


def test_rotation_baseline_moves_a_disk_centre_box_by_six_hours_of_rotation() -> None:
    spec = tiny_spec()
    box = (A, 0, 27.0, 27.0, 37.0, 37.0)  # centred on the disk centre (32, 32)
    batch = _batch([("20200606T060000", _table(box), _table(box))])  # B0 ~ 0 in early June
    moved = rotation_predictor(spec)(batch)["boxes"][0, 0]
    radius_px = SIZE * DISK_RADIUS_FRACTION
    # 6 h of equatorial synodic rotation, 3.34 deg: R sin(3.34 deg) = 0.0582 R = 1.48 px west.
    expected = expected_shift_px(radius_px, 0.0, 6, 1.0)
    assert expected == pytest.approx(1.48, abs=0.01)
    assert moved[0] - 27 == pytest.approx(expected, rel=0.02)
    assert abs(moved[1] - 27) < 0.05 * expected
    np.testing.assert_allclose(moved[2:] - moved[:2], [10, 10])


# --- The task on synthetic frames -------------------------------------------------------------

def _blob_frame(centres: list[tuple[float, float]]) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    frame = np.full((SIZE, SIZE), 50.0)
    for cx, cy in centres:
        frame += 5000.0 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 2.5**2))
    return frame.astype(np.float32)


def synthetic_batch(n: int, seed: int) -> dict[str, np.ndarray]:
    """Frame pairs of one bright AR blob (171) and one CH blob (193) moving a few pixels."""
    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("aia_171", "aia_171_prev", "aia_193", "aia_193_prev", "hek_prev", "hek")}
    for _ in range(n):
        (ax, ay), (cx, cy) = rng.uniform(24, 40, 2), rng.uniform(24, 40, 2)
        (dax, day), (dcx, dcy) = rng.uniform(-3, 3, 2), rng.uniform(-3, 3, 2)
        out["aia_171_prev"].append(_blob_frame([(ax, ay)]))
        out["aia_171"].append(_blob_frame([(ax + dax, ay + day)]))
        out["aia_193_prev"].append(_blob_frame([(cx, cy)]))
        out["aia_193"].append(_blob_frame([(cx + dcx, cy + dcy)]))
        out["hek_prev"].append(_table((A, 0, ax - 5, ay - 5, ax + 5, ay + 5), (B, 1, cx - 5, cy - 5, cx + 5, cy + 5)))
        out["hek"].append(_table((A, 0, ax + dax - 5, ay + day - 5, ax + dax + 5, ay + day + 5),
                                 (B, 1, cx + dcx - 5, cy + dcy - 5, cx + dcx + 5, cy + dcy + 5)))
    batch = {k: np.stack(v) for k, v in out.items()}
    batch["sample_id"] = np.array([f"20170901T{6 * (i % 4):02d}0000" for i in range(n)])
    return batch


def test_inputs_targets_and_predictions_have_the_documented_shapes() -> None:
    spec, task = tiny_spec(), get_task("tracking")
    batch = synthetic_batch(3, 0)
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    assert x["prev"].shape == x["curr"].shape == (3, 2, SIZE, SIZE)  # channels: AR (171), CH (193)
    assert x["prev_boxes"].shape == y.shape == (3, K_MAX, 7)
    assert x["event_types"].tolist() == [[0, 1]] * 3
    assert 0 <= float(x["curr"].min()) and float(x["curr"].max()) <= 1
    torch.manual_seed(0)
    pred = task.predict(task.build_model(spec), x)
    assert pred["boxes"].shape == pred["windows"].shape == (3, K_MAX, 4)
    assert torch.isfinite(pred["boxes"][:, :2]).all() and torch.isnan(pred["boxes"][:, 2:]).all()


def test_training_steps_lower_the_loss_on_a_tiny_batch() -> None:
    spec, task = tiny_spec("training.lr=0.003"), get_task("tracking")
    batch = synthetic_batch(4, 1)
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    torch.manual_seed(0)
    model = task.build_model(spec)
    optimizer = task.optimizer(spec, model)
    before = task.loss(task.predict(model, x), y)
    generator = torch.Generator().manual_seed(0)
    steps = [task.train_step(spec, model, optimizer, x, y, generator) for _ in range(25)]
    assert steps[0]["examples"] == 4 * 2 * (1 + 2)  # 4 pairs x 2 tracks x (true + 2 shifted)
    after = task.loss(task.predict(model, x), y)
    assert after < 0.6 * before


def test_accumulator_keys_are_the_benchmark_metrics() -> None:
    spec, task = tiny_spec(), get_task("tracking")
    batch = synthetic_batch(2, 2)
    x, y = task.inputs(spec, batch), task.targets(spec, batch)
    torch.manual_seed(0)
    acc = task.accumulator(spec, n_boot=0)
    acc.update(to_numpy(task.predict(task.build_model(spec), x)), to_numpy(y))
    out = acc.compute()
    assert set(spec.metrics) <= set(out)
    assert set(out) - set(spec.metrics) - {"n_images"} == {f"{k}_{t}" for k in (*REPORT_KEYS, "n_sequences") for t in ("ar", "ch")}


def test_spec_layout_and_its_errors() -> None:
    spec = load_benchmark("event_tracking")
    lay = layout(spec)
    assert lay.frames == ((0, "aia_171_prev", "aia_171"), (1, "aia_193_prev", "aia_193"))
    assert (lay.prev_boxes, lay.boxes, lay.offset_min) == ("hek_prev", "hek", -360.0)
    assert spec.inputs[0] == "aia_171"  # what `heliobench predict` preprocesses
    assert load_search_space("event_tracking").benchmark == "event_tracking"
    with pytest.raises(ConfigError, match="event_frames: unknown event type 'FL'"):
        layout(spec.with_overrides(["model.params.event_frames={FL: aia_171}"]))
    with pytest.raises(ConfigError, match="'aia_193' needs one previous frame"):
        layout(spec.with_overrides(["inputs=[aia_171, aia_171_prev, aia_193, hek_prev]"]))
    with pytest.raises(ConfigError, match="tracking supports model goturn"):
        get_task("tracking").build_model(spec.with_overrides(["model.name=scss_net"]))


# --- End to end: simulated dense windows -> Ray Train -> evaluate -> predict -> baselines -----

@pytest.fixture(scope="module")
def tracking_archive(tmp_path_factory, ray_session) -> Path:
    """Frames 6 hours apart in each park2019 split (64 px): 3 train, 1 val and 3 test pairs."""
    from heliobench.archive.sim import simulate_archive

    out = tmp_path_factory.mktemp("tracking-archive")
    for start, end in (("2016-12-01", "2016-12-02"), ("2017-03-01", "2017-03-01T12:00"), ("2017-09-01", "2017-09-02")):
        simulate_archive(str(out), start, end, "6h", size=SIZE, seed=3, progress=False)
    return out


@pytest.fixture(scope="module")
def tracking_shards(tmp_path_factory, tracking_archive) -> Path:
    from heliobench.catalog.ingest import ingest
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.shards import write_shards

    cat = tmp_path_factory.mktemp("tracking-catalog")
    ingest([str(tracking_archive)], str(cat), progress=False)
    manifest, _ = make_manifest(load_catalog(str(cat)), CARD, "park2019")
    assert manifest.counts() == {"train": 3, "val": 1, "test": 3}
    uri = str(cat / "manifest.parquet")
    write_manifest(manifest, uri)
    out = tmp_path_factory.mktemp("tracking-shards")
    write_shards(uri, CARD, str(out), size_px=SIZE, samples_per_shard=8, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(workspace, tracking_shards):
    from heliobench.engine.train import train

    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    result = train(tiny_spec("training.epochs=1"), str(tracking_shards), workers=2, tracking_uri=uri, run_name="tiny-tracking")
    return result, uri


def test_train_evaluate_predict_and_baselines_end_to_end(trained, tracking_shards, tracking_archive, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from heliobench.engine.evaluate import evaluate
    from heliobench.engine.predict import predict_files
    from heliobench.tasks.tracking.baseline_entries import score_baselines
    from heliobench.tracking.leaderboard import LeaderboardTable, rank

    result, uri = trained
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and "val_success_auc" in run.data.metrics
    assert {a.path for a in MlflowClient(uri).list_artifacts(result.run_id, "figures")} == {"figures/val_predictions.png"}
    spec = tiny_spec()
    metrics = evaluate(spec, result.run_id, str(tracking_shards), tracking_uri=uri, n_boot=50)
    assert metrics["n_sequences"] >= 1 and 0 <= metrics["success_auc"] <= 20 / 21
    assert metrics["success_auc_ci_low"] <= metrics["success_auc"] <= metrics["success_auc_ci_high"]

    frames = sorted(tracking_archive.rglob("*2017-09-01*.171.image_lev1.fits"))
    assert len(frames) == 4
    records = predict_files(spec, result.run_id, [str(f) for f in frames], str(tmp_path / "out"),
                            tracking_uri=uri, options={"box": "20,26,30,36"})
    assert [r["frame"] for r in records] == [0, 1, 2, 3] and records[0]["box"] == [20, 26, 30, 36]
    assert len(Path(records[0]["csv"]).read_text().splitlines()) == 5 and os.path.getsize(records[0]["figure"]) > 0

    entries = score_baselines(spec, str(tracking_shards), tracking_uri=uri, n_boot=50)
    assert entries["differential-rotation"].metrics["success_auc"] > entries["static-box"].metrics["success_auc"]
    board = rank(LeaderboardTable(), spec)
    assert set(board["model"]) == {"goturn", "static-box", "differential-rotation"}


@pytest.mark.realdata
def test_tracker_follows_a_box_through_the_real_eit_hourly_sequence(trained, realdata: Path, tmp_path) -> None:
    from heliobench.engine.evaluate import load_run_model, run_spec
    from heliobench.prep import default_pipeline
    from heliobench.tasks.base import InputImage
    from heliobench.tracking import runs

    result, uri = trained
    client = runs.connect(uri)
    spec = run_spec(client, result.run_id, tiny_spec())
    model = load_run_model(client, result.run_id, spec)
    paths = sorted((realdata / "fits" / "eit" / "hourly_2004-03-01").glob("*.fits"))
    pipeline = default_pipeline("AIA", 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = []
        for path in paths:
            image, _ = pipeline.run(PrepImage.from_map(eit_map_with_repaired_header(path), "EIT", "195"))
            images.append(InputImage(path.stem, image.data, image))
    records = get_task("tracking").predict_files(spec, model, images, tmp_path, {"box": "59,59,69,69"})
    boxes = np.array([r["box"] for r in records])
    assert len(records) == 13 and boxes[0].tolist() == [59, 59, 69, 69]
    assert (boxes >= 0).all() and (boxes <= 128).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    times = [r["obs_time"] for r in records]
    assert times == sorted(times) and times[0].startswith("2004-03-01T00:00")
    assert Path(records[0]["csv"]).read_text().splitlines()[1].startswith("0,efz20040301.000010_s,2004-03-01T00:00:10")

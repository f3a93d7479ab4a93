"""Event tracking as an engine task: a GOTURN regressor following HEK active regions and coronal holes.

A sample is a frame pair (previous, current) per tracked channel with the HEK tables of
both frames (:mod:`.layout`). Inputs: ``prev`` and ``curr`` frames (B, C, H, W), one
channel per tracked event type, ``event_types`` (B, C), the event type code of each
channel, and ``prev_boxes`` (B, K, 7), the previous table. The target is the current
table, ground truth only (:func:`.tracks.ground_truth`). For every track of the previous table the model sees the previous
frame cut around the previous box and the current frame cut at the same window
(:mod:`.crops`) and regresses the current box. ``predict`` returns ``boxes`` (B, K, 4)
per row of ``prev_boxes`` (NaN where there is no track), the ``windows`` they were
searched in, and ``prev`` (the table the prediction started from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from heliobench.engine.checkpoints import unwrap
from heliobench.errors import ConfigError
from heliobench.specs import BenchmarkSpec
from heliobench.tasks.base import InputImage, MetricAccumulator, Task
from heliobench.tasks.segmentation.task import scale_inputs
from heliobench.tasks.tracking.boxes import clip_to_frame
from heliobench.tasks.tracking.crops import COORD_SCALE, MotionModel, context_window, crop, motion_example
from heliobench.tasks.tracking.evaluation import TrackingAccumulator, one_pass
from heliobench.tasks.tracking.figures import pair_figure, sequence_figure
from heliobench.tasks.tracking.layout import layout
from heliobench.tasks.tracking.model import GoturnRegressor, l1_box_loss, track_sequence
from heliobench.tasks.tracking.tracks import BOX, TYPE, ground_truth, match, present

#: ``model.params`` keys that are not the regressor's.
TASK_PARAMS = ("event_frames",)


def tracked_rows(table: np.ndarray, event_types: torch.Tensor) -> tuple[np.ndarray, dict[int, int]]:
    """Rows (b, k) of ``table`` (B, K, 7) with a track of a tracked event type, and each type's channel."""
    channels = {int(code): c for c, code in enumerate(event_types[0].tolist())} if len(table) else {}
    return np.argwhere(present(table) & np.isin(table[..., TYPE], list(channels))), channels


def _origin_and_size(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return windows[..., [0, 1, 0, 1]], (windows[..., 2:] - windows[..., :2])[..., [0, 1, 0, 1]]


def crop_coords(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Frame boxes (..., 4) in the crop coordinates of their windows (..., 4), as ``CropWindow.to_crop``."""
    origin, size = _origin_and_size(windows)
    return (boxes - origin) / size * COORD_SCALE


def from_crop_coords(coords: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Crop coordinates (..., 4) of windows (..., 4) back in frame pixels; inverse of :func:`crop_coords`."""
    origin, size = _origin_and_size(windows)
    return coords / COORD_SCALE * size + origin


class TrackingTask(Task):
    """Single-target tracking of HEK events with a GOTURN regressor (Sarker & Banda 2019)."""

    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        if spec.model.name != "goturn":
            raise ConfigError(f"benchmark {spec.name}: tracking supports model goturn, not {spec.model.name!r}")
        layout(spec)
        params = {k: v for k, v in spec.model.params.items() if k not in TASK_PARAMS}
        return GoturnRegressor(in_channels=1, **params)

    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        lay = layout(spec)

        def frames(which: int) -> torch.Tensor:
            stacked = [scale_inputs(np.asarray(batch[pair[which]]), spec.input_scaling) for pair in lay.frames]
            return torch.from_numpy(np.stack(stacked, axis=1))

        table = np.asarray(batch[lay.prev_boxes], dtype=np.float64)
        codes = np.array(lay.event_types, dtype=np.int64)
        return {"prev": frames(1), "curr": frames(2), "prev_boxes": torch.from_numpy(table),
                "event_types": torch.from_numpy(np.tile(codes, (len(table), 1)))}

    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        lay = layout(spec)
        size = np.asarray(batch[lay.frames[0][2]]).shape[-1]
        return torch.from_numpy(ground_truth(np.asarray(batch[lay.boxes], dtype=np.float64), size, lay.event_types))

    def train_step(self, spec, model, optimizer, inputs, targets, generator):
        core = unwrap(model)
        model.train()
        params = spec.training.params
        n_generated = int(params.get("examples_per_pair", 10)) if spec.training.augment else 0
        motion = MotionModel(**params.get("motion", {}))
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        prev_table = ground_truth(inputs["prev_boxes"].cpu().numpy(), inputs["curr"].shape[-1])
        curr_table = targets.cpu().numpy()
        rows = match(prev_table, curr_table)
        tracked, channels = tracked_rows(prev_table, inputs["event_types"])
        examples = []
        for b, k in tracked:
            if rows[b, k] < 0:
                continue
            c = channels[int(prev_table[b, k, TYPE])]
            prev, curr = inputs["prev"][b, c : c + 1], inputs["curr"][b, c : c + 1]
            prev_box, curr_box = prev_table[b, k, BOX], curr_table[b, rows[b, k], BOX]
            window = context_window(prev_box)
            examples.append((crop(prev, window, core.crop_size), crop(curr, window, core.crop_size),
                             window.to_crop(curr_box)[0]))
            examples += [motion_example(prev, curr, prev_box, curr_box, rng, core.crop_size, motion)
                         for _ in range(n_generated)]
        optimizer.zero_grad(set_to_none=True)
        if examples:
            target, search, coords = zip(*examples)
            labels = torch.from_numpy(np.stack(coords)).float().to(inputs["curr"].device)
            loss = l1_box_loss(model(torch.stack(target), torch.stack(search)), labels)
        else:  # no track in this batch: a zero loss through the model keeps DDP workers in step
            blank = inputs["curr"].new_zeros((1, 1, core.crop_size, core.crop_size))
            loss = model(blank, blank).sum() * 0.0
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach()), "examples": float(len(examples))}

    def predict(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        core = unwrap(model)
        was_training = core.training
        core.eval()
        table = inputs["prev_boxes"].cpu().numpy()
        height, width = inputs["curr"].shape[-2:]
        boxes, windows = np.full(table.shape[:-1] + (4,), np.nan), np.full(table.shape[:-1] + (4,), np.nan)
        rows, channels = tracked_rows(table, inputs["event_types"])
        if len(rows):
            targets, searches = [], []
            for b, k in rows:
                c, window = channels[int(table[b, k, TYPE])], context_window(table[b, k, BOX])
                windows[b, k] = (window.x0, window.y0, window.x1, window.y1)
                targets.append(crop(inputs["prev"][b, c : c + 1], window, core.crop_size))
                searches.append(crop(inputs["curr"][b, c : c + 1], window, core.crop_size))
            with torch.no_grad():
                coords = core(torch.stack(targets), torch.stack(searches)).double().cpu().numpy()
            found = from_crop_coords(coords, windows[rows[:, 0], rows[:, 1]])
            boxes[rows[:, 0], rows[:, 1]] = clip_to_frame(found, height, width)
        core.train(was_training)
        return {"boxes": torch.from_numpy(boxes), "windows": torch.from_numpy(windows), "prev": inputs["prev_boxes"]}

    def loss(self, predictions: dict[str, torch.Tensor], targets: torch.Tensor) -> float:
        """L1 crop-coordinate loss (as in training) over the tracks found in both frames; 0 without any."""
        prev, true = predictions["prev"].cpu().numpy(), targets.cpu().numpy()
        rows = match(prev, true)
        b, k = np.nonzero((rows >= 0) & np.isfinite(predictions["boxes"].cpu().numpy()).all(axis=-1))
        if not len(b):
            return 0.0
        windows = predictions["windows"].cpu().numpy()[b, k]
        pred = crop_coords(predictions["boxes"].cpu().numpy()[b, k], windows)
        return float(np.abs(pred - crop_coords(true[b, rows[b, k], BOX], windows)).sum(axis=1).mean())

    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        return TrackingAccumulator(spec.resolution_px, n_boot)

    def score(self, spec, batches, predict, n_boot: int = 1000) -> dict[str, float]:
        """One-pass evaluation (:func:`.evaluation.one_pass`) of ``predict`` over the batches."""
        return one_pass(batches, predict, layout(spec), spec.resolution_px, n_boot)

    def figure(self, spec, inputs, targets, predictions, ids, path: Path) -> Path:
        lay = layout(spec)
        starts = ground_truth(inputs["prev_boxes"], inputs["curr"].shape[-1], lay.event_types)
        return pair_figure(inputs["curr"], starts, targets, predictions["boxes"],
                           [(code, curr) for code, _, curr in lay.frames], ids, path)

    def predict_files(self, spec, model, images: list[InputImage], out_dir: Path, options: dict[str, str]) -> list[dict[str, Any]]:
        """Track one box through the input frames (in the order given).

        Option ``box=X0,Y0,X1,Y1`` (required): the box in the first frame, in registered
        pixels (box convention of :mod:`.boxes`). Writes ``track.csv`` (one row per frame)
        and ``track.png`` (frames with the box); returns one record per frame.
        """
        if "box" not in options:
            raise ConfigError("tracking predict: give the first frame's box as --option box=X0,Y0,X1,Y1 (registered pixels)")
        try:
            first = np.array([float(v) for v in options["box"].split(",")])
        except ValueError:
            first = np.empty(0)
        if first.shape != (4,) or not (first[2] > first[0] and first[3] > first[1]):
            raise ConfigError(f"--option box={options['box']!r}: expected X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0")
        frames = [item.data if item.image is None else scale_inputs(item.data, spec.input_scaling) for item in images]
        boxes = track_sequence(unwrap(model), np.stack(frames), first)
        times = [item.image.obs_time.isoformat() if item.image is not None else "" for item in images]
        csv = out_dir / "track.csv"
        lines = ["frame,input,obs_time,x0,y0,x1,y1"]
        lines += [f"{t},{item.stem},{times[t]}," + ",".join(f"{v:.3f}" for v in boxes[t]) for t, item in enumerate(images)]
        csv.write_text("\n".join(lines) + "\n")
        fig = sequence_figure(frames, boxes, [f"{t}: {item.stem}" for t, item in enumerate(images)], out_dir / "track.png")
        return [{"input": item.stem, "frame": t, "obs_time": times[t], "box": boxes[t].tolist(), "csv": str(csv),
                 "figure": str(fig)} for t, item in enumerate(images)]

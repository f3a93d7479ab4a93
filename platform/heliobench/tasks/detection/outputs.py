"""What ``heliobench predict`` writes for the active-region tasks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from heliobench.specs import BenchmarkSpec
from heliobench.tasks.base import InputImage
from heliobench.tasks.detection.figures import draw_detections
from heliobench.tasks.detection.targets import cutout, window


@dataclass(frozen=True)
class ClassifierRun:
    """A trained ``ar_classification`` model and its spec."""

    spec: BenchmarkSpec
    model: nn.Module


def load_classifier(run_id: str, tracking_uri: str | None = None) -> ClassifierRun:
    """The model of an ``ar_classification`` run (on the tracking store in use unless given)."""
    import mlflow

    from heliobench.engine.evaluate import load_run_model, run_spec
    from heliobench.specs import load_benchmark
    from heliobench.tracking import runs

    client = runs.connect(tracking_uri or mlflow.get_tracking_uri())
    spec = run_spec(client, run_id, load_benchmark("ar_classification"))
    return ClassifierRun(spec, load_run_model(client, run_id, spec))


def classify_cutouts(model: nn.Module, cutouts: list[np.ndarray], class_names: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Class names and softmax probabilities (N, classes) of cut-outs (each ``(size, size)``)."""
    if not cutouts:
        return [], np.zeros((0, len(class_names)))
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack(cutouts)[:, None].astype(np.float32)))[0]
    probs = torch.softmax(logits.float(), dim=1).numpy()
    return [class_names[k] for k in probs.argmax(axis=1)], probs


def write_json(path: Path, records: list[dict[str, Any]]) -> Path:
    """``records`` as indented JSON."""
    path.write_text(json.dumps(records, indent=1))
    return path


def _write_cutout(out_dir: Path, name: str, item: InputImage, image: np.ndarray, box: np.ndarray) -> dict[str, str]:
    """The box's square window as FITS (the input's WCS shifted to the window) and PNG."""
    from astropy.io import fits
    from PIL import Image

    from heliobench.engine.predict import wcs_header

    piece = window(image, box)
    header = wcs_header(item.image) if item.image is not None else fits.Header()
    if item.image is not None:
        header["CRPIX1"] -= piece.col0
        header["CRPIX2"] -= piece.row0
    for key, value in zip(("BOX_X0", "BOX_Y0", "BOX_X1", "BOX_Y1"), box):
        header[key] = (float(value), "box in the input's registered pixels (edges)")
    fits_path, png_path = out_dir / f"{name}.fits", out_dir / f"{name}.png"
    fits.PrimaryHDU(piece.data, header).writeto(fits_path, overwrite=True)
    grey = np.round((np.clip(piece.data, -1, 1) + 1) * 127.5).astype(np.uint8)  # 128 = 0 G
    Image.fromarray(np.flipud(grey)).save(png_path)  # north up
    return {"cutout_fits": str(fits_path), "cutout_png": str(png_path)}


def write_detection_outputs(out_dir: Path, item: InputImage, image: np.ndarray, detections: np.ndarray,
                            classifier: ClassifierRun | None) -> dict[str, Any]:
    """Figure, detections JSON and cut-outs of one input; ``detections`` (N, 5) as
    ``x0, y0, x1, y1, confidence`` in the input's registered pixels."""
    boxes, confidence = detections[:, :4], detections[:, 4]
    if classifier is None:
        labels, scores, fmt = ["AR"] * len(boxes), confidence, "{:.2f}"
        probabilities = [None] * len(boxes)
    else:
        from heliobench.tasks.detection.classes import class_names
        from heliobench.tasks.detection.task import classifier_settings

        class_map, size = classifier_settings(classifier.spec)
        labels, probs = classify_cutouts(classifier.model, [cutout(image, b, size) for b in boxes], class_names(class_map))
        scores, fmt = probs.max(axis=1) if len(boxes) else np.zeros(0), "{:.0%}"
        probabilities = [float(p) for p in scores]
    figure = draw_detections(image, boxes, labels, scores, out_dir / f"{item.stem}_detections.png", score_format=fmt)
    found = []
    for k, box in enumerate(boxes):
        found.append({"box": [float(v) for v in box], "confidence": float(confidence[k]), "class": labels[k],
                      "class_probability": probabilities[k],
                      **_write_cutout(out_dir, f"{item.stem}_region{k:02d}", item, image, box)})
    listing = write_json(out_dir / f"{item.stem}_detections.json", found)
    return {"input": item.stem, "figure": str(figure), "detections_json": str(listing), "boxes": boxes,
            "confidence": confidence, "labels": labels, "cutouts": [f["cutout_fits"] for f in found]}

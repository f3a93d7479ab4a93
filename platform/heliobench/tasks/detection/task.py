"""Active-region detection (DetectNet) and Mount Wilson classification (GoogLeNet) as engine tasks.

Both read the same shards: the registered HMI magnetogram (the HMI pipeline maps
+/-3000 G to +/-1) and the encoded SRS table of the sample (:mod:`heliobench.prep.labels.srs`).
DIGITS feeds DetectNet and GoogLeNet 3-channel images; a magnetogram has one channel, so
the first convolutions take one (identical to a grey image copied into three channels
with the first-layer weights summed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heliobench.errors import ConfigError
from heliobench.specs import BenchmarkSpec
from heliobench.tasks.base import InputImage, MetricAccumulator, Task
from heliobench.tasks.detection.accumulators import ClassificationAccumulator, DetectionAccumulator
from heliobench.tasks.detection.classes import class_names
from heliobench.tasks.detection.classifier import GoogLeNet, classification_loss
from heliobench.tasks.detection.model import STRIDE, DetectNet, cell_size, decode_boxes, detectnet_losses
from heliobench.tasks.detection.regions import min_box_area, padded_boxes, sample_regions
from heliobench.tasks.detection.targets import cutout, detectnet_targets

#: Rows of the padded truth-box and detection arrays (per image).
K_MAX = 32
#: DIGITS' DetectNet clustering (``ClusterDetections``) settings, overridable in ``model.params``;
#: see the benchmark notes for why they differ from DIGITS' KITTI values.
CLUSTERING = {"threshold": 0.6, "group_threshold": 1, "eps": 0.2, "min_height": 0.0}
#: DIGITS' DetectNet coverage-target settings, overridable in ``training.params.coverage``;
#: ``min_cvg_len`` is in pixels of the network's (upsampled) input, as in DIGITS.
COVERAGE = {"scale_cvg": 0.4, "min_cvg_len": 20.0}
#: The grid settings in ``model.params`` and their defaults: DIGITS' stride 16 on the image as it is.
GEOMETRY = {"stride": STRIDE, "upsample": 1}


def _split_params(spec: BenchmarkSpec, groups: dict[str, tuple[str, ...]]) -> dict[str, dict[str, Any]]:
    """``model.params`` split into the named groups; ConfigError naming an unknown key."""
    known = {key: group for group, keys in groups.items() for key in keys}
    unknown = sorted(set(spec.model.params) - set(known))
    if unknown:
        raise ConfigError(
            f"benchmark {spec.name}: unknown model.params {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    out: dict[str, dict[str, Any]] = {group: {} for group in groups}
    for key, value in spec.model.params.items():
        out[known[key]][key] = value
    return out


def _image_batch(spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> np.ndarray:
    """(B, C, H, W) float32 registered images of the input members, NaN as 0."""
    return np.nan_to_num(np.stack([np.asarray(batch[k], dtype=np.float32) for k in spec.inputs], axis=1))


def _flip_mask(n: int, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Which of ``n`` samples to mirror left-right."""
    return torch.rand(n, generator=generator) < probability


# ---------------------------------------------------------------- detection


class Detector(nn.Module):
    """DetectNet and the clustering settings its output is decoded with."""

    def __init__(self, net: DetectNet, clustering: dict[str, float]) -> None:
        super().__init__()
        self.net = net
        self.clustering = {**CLUSTERING, **clustering}

    def forward(self, x: torch.Tensor):
        return self.net(x)


def detectnet_geometry(spec: BenchmarkSpec) -> tuple[int, int]:
    """(cell side in image pixels, upsampling factor) of a detection spec's DetectNet grid."""
    stride, upsample = (spec.model.params.get(key, default) for key, default in GEOMETRY.items())
    try:
        return cell_size(int(stride), int(upsample)), int(upsample)
    except ValueError as error:
        raise ConfigError(f"benchmark {spec.name}: model.params stride/upsample: {error}") from None


class DetectionTask(Task):
    """Active-region boxes on full-disk magnetograms with DetectNet (coverage cross-entropy + box L1)."""

    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        if spec.model.name != "detectnet":
            raise ConfigError(f"benchmark {spec.name}: detection supports model detectnet, not {spec.model.name!r}")
        detectnet_geometry(spec)
        params = _split_params(spec, {"net": ("width", "dropout", *GEOMETRY), "clustering": tuple(CLUSTERING)})
        return Detector(DetectNet(in_channels=len(spec.inputs), **params["net"]), params["clustering"])

    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(_image_batch(spec, batch))

    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Truth boxes (B, K_MAX, 4), NaN padded, and their DetectNet coverage/bbox/obj-norm maps."""
        boxes = padded_boxes(np.asarray(batch[spec.targets[0]]), min_box_area(spec), K_MAX)
        shape = np.asarray(batch[spec.inputs[0]]).shape[-2:]
        cell, upsample = detectnet_geometry(spec)
        coverage = {**COVERAGE, **spec.training.params.get("coverage", {})}
        coverage["min_cvg_len"] = float(coverage["min_cvg_len"]) / upsample
        maps = [detectnet_targets(b[np.isfinite(b).all(axis=1)], shape, cell, **coverage) for b in boxes]
        cov, bbox, norm = (torch.from_numpy(np.stack(parts)) for parts in zip(*maps))
        return {"boxes": torch.from_numpy(boxes), "coverage": cov, "bbox": bbox, "obj_norm": norm}

    def train_step(self, spec, model, optimizer, inputs, targets, generator):
        model.train()
        if spec.training.augment:
            inputs, targets = _mirror_detection(inputs, targets, spec.training.params.get("flip_prob", 0.5),
                                                detectnet_geometry(spec)[0], generator)
        optimizer.zero_grad(set_to_none=True)
        out = model(inputs)
        loss = detectnet_losses(out.coverage_logit, out.bbox, targets["coverage"], targets["bbox"], targets["obj_norm"])
        loss.total.backward()
        optimizer.step()
        return {"loss": float(loss.total.detach()), "coverage_loss": float(loss.coverage.detach()),
                "bbox_loss": float(loss.bbox.detach())}

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Coverage (and its logit) and bbox maps, and the clustered detections (B, K_MAX, 5) as
        ``x0, y0, x1, y1, confidence``, most confident first, NaN padded."""
        model.eval()
        with torch.no_grad():
            out = model(inputs)
        detector = getattr(model, "module", model)
        cov, bbox = out.coverage.float().cpu().numpy(), out.bbox.float().cpu().numpy()
        detections = np.full((len(cov), K_MAX, 5), np.nan, dtype=np.float32)
        for i in range(len(cov)):
            found = decode_boxes(cov[i], bbox[i], stride=detector.net.cell, **detector.clustering)
            order = np.argsort(-found.confidence, kind="stable")[:K_MAX]
            detections[i, :len(order), :4] = found.boxes[order]
            detections[i, :len(order), 4] = found.confidence[order]
        return {"coverage": out.coverage, "coverage_logit": out.coverage_logit, "bbox": out.bbox,
                "detections": torch.from_numpy(detections)}

    def loss(self, predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> float:
        return float(detectnet_losses(predictions["coverage_logit"], predictions["bbox"], targets["coverage"],
                                      targets["bbox"], targets["obj_norm"]).total)

    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        return DetectionAccumulator(float(spec.evaluation.get("iou_threshold", 0.5)), n_boot=n_boot)

    def figure(self, spec, inputs, targets, predictions, ids, path: Path) -> Path:
        from heliobench.tasks.detection.figures import detection_panels

        return detection_panels(inputs[:, 0], targets["boxes"], predictions["detections"], ids, path)

    def predict_files(self, spec, model, images: list[InputImage], out_dir: Path, options: dict[str, str]) -> list[dict]:
        """Per input: boxes drawn on the magnetogram (Fig. 11 of the paper), a JSON of the
        detections, and each box's cut-out as FITS (with WCS) and PNG. Option
        ``classifier_run=RUN_ID`` labels the boxes with a trained ``ar_classification`` run's
        class and probability; without it boxes read "AR" with the DetectNet confidence."""
        from heliobench.tasks.detection.outputs import load_classifier, write_detection_outputs

        classifier = load_classifier(options["classifier_run"], options.get("tracking_uri")) if "classifier_run" in options else None
        records = []
        for item in images:
            x = _as_model_input(item)
            detections = self.predict(model, torch.from_numpy(x[None, None]))["detections"].numpy()[0]
            records.append(write_detection_outputs(out_dir, item, x, detections[np.isfinite(detections[:, 0])], classifier))
        return records


def _mirror_detection(inputs: torch.Tensor, targets: dict[str, torch.Tensor], probability: float, cell: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mirror images left-right with their DetectNet maps (DIGITS' ``flip_prob``).

    A mirrored cell's box corners relative to its own top-left corner are
    ``(cell - x1, y0, cell - x0, y1)``.
    """
    flip = _flip_mask(len(inputs), probability, generator).to(inputs.device)
    if not flip.any():
        return inputs, targets
    width = inputs.shape[-1]
    boxes = targets["boxes"].clone()
    boxes[flip] = torch.stack([width - boxes[flip][..., 2], boxes[flip][..., 1],
                               width - boxes[flip][..., 0], boxes[flip][..., 3]], dim=-1)
    bbox = targets["bbox"].clone()
    mirrored = targets["bbox"][flip].flip(-1)
    bbox[flip] = torch.stack([cell - mirrored[:, 2], mirrored[:, 1], cell - mirrored[:, 0], mirrored[:, 3]], dim=1)
    bbox[flip] = torch.where(targets["coverage"][flip].flip(-1) > 0, bbox[flip], torch.zeros_like(bbox[flip]))
    out = {"boxes": boxes, "bbox": bbox}
    for key in ("coverage", "obj_norm"):
        out[key] = torch.where(flip[:, None, None, None], targets[key].flip(-1), targets[key])
    return torch.where(flip[:, None, None, None], inputs.flip(-1), inputs), out


def _as_model_input(item: InputImage) -> np.ndarray:
    """A predict input as the model sees it: registered pixels as they are, a display PNG
    (grey in [0, 1], 0.5 = 0 G) mapped to [-1, 1]."""
    data = np.nan_to_num(np.asarray(item.data, dtype=np.float32))
    return data if item.image is not None else 2 * data - 1


# ---------------------------------------------------------------- classification


class Classifier(nn.Module):
    """GoogLeNet whose forward gives (logits, auxiliary logits), so DDP sees the auxiliary heads."""

    def __init__(self, net: GoogLeNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.net.forward_with_aux(x)


def classifier_settings(spec: BenchmarkSpec) -> tuple[str, int]:
    """The class map and the cut-out size (pixels) of a classification benchmark."""
    params = spec.model.params
    return str(params.get("class_map", "paper4")), int(params.get("input_px", 224))


class ClassificationTask(Task):
    """Mount Wilson classes of region cut-outs with GoogLeNet (cross-entropy + 0.3 per auxiliary head).

    A batch of samples becomes the batch of its regions: every kept box (on the disk,
    above the minimum area, with a class in the class map) of every sample, cut out and
    resampled to ``input_px``.
    """

    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        if spec.model.name != "googlenet":
            raise ConfigError(f"benchmark {spec.name}: classification supports model googlenet, not {spec.model.name!r}")
        params = _split_params(spec, {"net": ("width", "dropout", "aux_classifiers"), "data": ("class_map", "input_px")})
        names = class_names(classifier_settings(spec)[0])
        return Classifier(GoogLeNet(len(names), in_channels=len(spec.inputs), **params["net"]))

    def _regions(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> list[tuple[int, np.ndarray, int]]:
        """(sample index, box, label) of every kept region of a batch."""
        class_map, _ = classifier_settings(spec)
        area = min_box_area(spec)
        out = []
        for i, table in enumerate(np.asarray(batch[spec.targets[0]])):
            regions = sample_regions(table, area, class_map)
            out += [(i, box, int(label)) for box, label in zip(regions.boxes, regions.labels) if label >= 0]
        return out

    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        _, size = classifier_settings(spec)
        images = _image_batch(spec, batch)
        cuts = [[cutout(images[i, c], box, size) for c in range(images.shape[1])] for i, box, _ in self._regions(spec, batch)]
        return torch.from_numpy(np.asarray(cuts, dtype=np.float32).reshape(len(cuts), images.shape[1], size, size))

    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Region labels and the number of images of the batch (``batch_images``)."""
        labels = np.array([label for _, _, label in self._regions(spec, batch)], dtype=np.int64)
        return {"label": torch.from_numpy(labels), "batch_images": torch.tensor([len(batch[spec.targets[0]])])}

    def optimizer(self, spec: BenchmarkSpec, model: nn.Module) -> torch.optim.Optimizer:
        """DIGITS' GoogLeNet solver: SGD, momentum 0.9, weight decay 2e-4 (``training.params.optimizer: adam`` for Adam)."""
        params = spec.training.params
        kind = params.get("optimizer", "sgd")
        if kind == "adam":
            return torch.optim.Adam(model.parameters(), lr=spec.training.lr)
        if kind != "sgd":
            raise ConfigError(f"benchmark {spec.name}: training.params.optimizer {kind!r}: expected sgd or adam")
        return torch.optim.SGD(model.parameters(), lr=spec.training.lr, momentum=float(params.get("momentum", 0.9)),
                               weight_decay=float(params.get("weight_decay", 2e-4)))

    def train_step(self, spec, model, optimizer, inputs, targets, generator):
        model.train()
        if spec.training.augment:
            flip = _flip_mask(len(inputs), spec.training.params.get("flip_prob", 0.5), generator).to(inputs.device)
            inputs = torch.where(flip[:, None, None, None], inputs.flip(-1), inputs)
        optimizer.zero_grad(set_to_none=True)
        logits, aux = model(inputs)
        labels = targets["label"]
        if len(labels):
            loss = classification_loss(logits, aux, labels)
        else:  # no region in this batch: a zero loss still joins the gradient all-reduce
            loss = 0.0 * (logits.sum() + sum(a.sum() for a in aux))
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        model.eval()
        with torch.no_grad():
            return {"logits": model(inputs)[0]}

    def loss(self, predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> float:
        labels = targets["label"]
        return float(F.cross_entropy(predictions["logits"], labels)) if len(labels) else 0.0

    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        return ClassificationAccumulator(class_names(classifier_settings(spec)[0]), n_boot=n_boot)

    def figure(self, spec, inputs, targets, predictions, ids, path: Path) -> Path:
        from heliobench.tasks.detection.figures import classification_panels

        names = class_names(classifier_settings(spec)[0])
        return classification_panels(inputs[:, 0], targets["label"], predictions["logits"], names, path)

    def predict_files(self, spec, model, images: list[InputImage], out_dir: Path, options: dict[str, str]) -> list[dict]:
        """Classify each input as one region cut-out; writes ``classes.json`` with every input's
        class and class probabilities.

        Give PNG cut-outs (as ``predict ar_detection`` writes them: grey 128 = 0 G): FITS inputs
        go through the card's full-disk registration, which suits whole magnetograms only.
        """
        from heliobench.tasks.detection.outputs import classify_cutouts, write_json

        _, size = classifier_settings(spec)
        names = class_names(classifier_settings(spec)[0])
        whole = [np.array([0.0, 0.0, item.data.shape[1], item.data.shape[0]]) for item in images]
        cuts = [cutout(_as_model_input(item), box, size) for item, box in zip(images, whole)]
        labels, probs = classify_cutouts(model, cuts, names)
        records = [{"input": item.stem, "class": label, "probability": float(p.max()),
                    "probabilities": dict(zip(names, map(float, p)))} for item, label, p in zip(images, labels, probs)]
        write_json(out_dir / "classes.json", records)
        return records

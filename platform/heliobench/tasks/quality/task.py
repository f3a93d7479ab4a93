"""Image-quality assessment as an engine task: the GAN of Jarolim et al. (2020) on H-alpha images.

The generator learns to reconstruct clear (Q1) images through a quantised bottleneck; an
image's quality score is the content loss between it and its reconstruction. Samples
carry their quality class (``halpha_quality`` label: 1 = Q1, 2 = Q2): Q1 images train
the generator and discriminators, and in classifier mode Q1 and Q2 images train the
classifiers whose features define the score.

Calibration: validation fits the decision threshold (mean + 3 sigma) and the scale floor
(minimum) on the Q1 validation scores, reports its metrics with them, and stores them
in the scored model's buffers at the end of the pass (the accumulator this task hands
the validation loop writes them back), so the checkpoint saved after validation carries
them. Evaluation on the test split reads them from the model and never refits.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from heliobench.errors import ConfigError, HelioBenchError
from heliobench.prep.image import PrepImage
from heliobench.specs import BenchmarkSpec
from heliobench.tasks.base import InputImage, MetricAccumulator, OptimizerSet, Task, average_gradients, to_numpy
from heliobench.tasks.quality.figures import quality_figure
from heliobench.tasks.quality.losses import LossWeights, critic_step_losses, generator_step_losses
from heliobench.tasks.quality.metrics import Calibration, QualityAccumulator, assess, classify, quality_scale
from heliobench.tasks.quality.model import QualityGAN, QualityModelConfig
from heliobench.tasks.quality.preprocess import contrast_normalize, pyramid_reduce

Q1, Q2 = 1, 2


def prepare_images(images: np.ndarray, scaling: dict[str, Any]) -> np.ndarray:
    """(B, n, n) registered ±1000" images -> (B, 1, size, size) model inputs in [-1, 1].

    ``input_scaling`` ``{kind: pyramid_contrast, size_px, clip}``: Gaussian-pyramid reduction
    to ``size_px`` then contrast normalisation clipped at ``clip`` sigma (Jarolim et al. 2020).
    """
    if scaling.get("kind") != "pyramid_contrast":
        raise ConfigError(f"input_scaling.kind {scaling.get('kind')!r}: the quality task expects pyramid_contrast")
    size, clip = int(scaling.get("size_px", 128)), float(scaling.get("clip", 1.5))
    if images.shape[-1] < size:
        raise ConfigError(f"input_scaling.size_px {size} exceeds the {images.shape[-1]} px images of the shards")
    out = [contrast_normalize(pyramid_reduce(np.asarray(img, dtype=np.float32), size), clip) for img in images]
    return np.stack(out)[:, None]


class _ValidationAccumulator(MetricAccumulator):
    """Fits the calibration on the Q1 scores it sees and hands it to ``on_fit``."""

    def __init__(self, on_fit: Callable[[Calibration], None], n_boot: int) -> None:
        self._acc = QualityAccumulator(calibration=None, n_boot=n_boot)
        self._on_fit = on_fit

    def update(self, predictions: dict[str, np.ndarray], targets: np.ndarray) -> None:
        self._acc.update(predictions["score"], targets == Q2, predictions.get("classifier_degraded"))

    def compute(self) -> dict[str, float]:
        report = self._acc.compute()
        self._on_fit(self._acc.calibration)
        return report


class QualityTask(Task):
    """Jarolim et al. (2020): reconstruction GAN, content-loss quality score, mean + 3 sigma threshold."""

    parallel_strategy = None  # generator and critics step separately (average_gradients)

    def __init__(self) -> None:
        self._scored: QualityGAN | None = None  # the model of the latest predict (validation write-back)

    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        if spec.model.name != "quality_gan":
            raise ConfigError(f"benchmark {spec.name}: the quality task supports model quality_gan, not {spec.model.name!r}")
        if len(spec.inputs) != 1 or len(spec.targets) != 1:
            raise ConfigError(f"benchmark {spec.name}: expected one H-alpha input and one quality target")
        known = {f.name for f in fields(QualityModelConfig)} - {"channels"}
        unknown = sorted(set(spec.model.params) - known)
        if unknown:
            raise ConfigError(f"benchmark {spec.name}: model.params {unknown} unknown; quality_gan takes {sorted(known)}")
        return QualityGAN(QualityModelConfig(**spec.model.params))

    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(prepare_images(np.asarray(batch[spec.inputs[0]]), spec.input_scaling))

    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        """The quality class (1 = Q1, 2 = Q2) of each sample."""
        return torch.from_numpy(np.asarray(batch[spec.targets[0]])[:, 0].astype(np.float32))

    def optimizer(self, spec: BenchmarkSpec, model: nn.Module) -> OptimizerSet:
        """Adam (lr, betas (0.5, 0.9)) for the generator, another for discriminators and classifiers."""
        betas = tuple(spec.training.params.get("betas", (0.5, 0.9)))
        critics = [p for c in _critics(model) for p in c.parameters()]
        return OptimizerSet(
            generator=torch.optim.Adam(model.generator.parameters(), lr=spec.training.lr, betas=betas),
            discriminator=torch.optim.Adam(critics, lr=spec.training.lr, betas=betas),
        )

    def train_step(self, spec, model, optimizer, inputs, targets, generator):
        """A critic step on the batch's Q1 (and, in classifier mode, Q2) images, then a generator step on its Q1.

        ``loss`` is the sum of both objectives. The batch's Q2 images are unused without a classifier.
        """
        model.train()
        clean, degraded = inputs[targets == Q1], inputs[targets == Q2]
        clean = clean if len(clean) else None
        degraded = degraded if len(degraded) and model.classifier is not None else None
        weights = LossWeights(**spec.training.params.get("loss_weights", {}))
        out: dict[str, float] = {}
        optimizer.zero_grad(set_to_none=True)
        if clean is not None or degraded is not None:
            critic = critic_step_losses(model, clean, degraded)
            critic["loss"].backward()
            out |= {f"critic_{k}": float(v.detach()) for k, v in critic.items()}
        _synchronised_step(_critics(model), optimizer["discriminator"], "critic_loss" in out)
        optimizer.zero_grad(set_to_none=True)
        if clean is not None:
            with _frozen(_critics(model)):
                gen = generator_step_losses(model, clean, weights)
                gen["loss"].backward()
            out |= {f"generator_{k}": float(v.detach()) for k, v in gen.items()}
        _synchronised_step([model.generator], optimizer["generator"], "generator_loss" in out)
        return {"loss": out.get("critic_loss", 0.0) + out.get("generator_loss", 0.0), **out}

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per image: score, reconstruction, the stored calibration and, in classifier mode, the vote."""
        model.eval()
        self._scored = model
        result = assess(model, inputs)
        n = len(inputs)
        out = {
            "score": torch.from_numpy(result.scores).float(),
            "reconstruction": result.reconstructions,
            "threshold": model.threshold.detach().expand(n).clone(),
            "score_floor": model.score_floor.detach().expand(n).clone(),
        }
        if result.classifier_degraded is not None:
            out["classifier_degraded"] = torch.from_numpy(result.classifier_degraded.astype(np.float32))
        return out

    def loss(self, predictions: dict[str, torch.Tensor], targets: torch.Tensor) -> float:
        """Mean quality score (content loss) of the batch."""
        return float(predictions["score"].mean())

    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        """The validation accumulator: fits the calibration on its Q1 scores and stores it in the scored model."""
        return _ValidationAccumulator(self._store_calibration, n_boot)

    def _store_calibration(self, calibration: Calibration) -> None:
        if self._scored is not None:
            self._scored.set_calibration(*calibration)

    def score(self, spec: BenchmarkSpec, batches: Iterable[dict[str, np.ndarray]],
              predict: Callable[[dict[str, np.ndarray]], Any], n_boot: int = 1000) -> dict[str, float]:
        """Test metrics with the model's stored validation calibration (never fitted on test)."""
        acc: QualityAccumulator | None = None
        for batch in batches:
            pred = predict(batch)
            if acc is None:
                acc = QualityAccumulator(_stored_calibration(pred), n_boot=n_boot)
            truth = to_numpy(self.targets(spec, batch)) == Q2
            acc.update(pred["score"], truth, pred.get("classifier_degraded"))
        if acc is None:
            raise HelioBenchError(f"benchmark {spec.name}: no test samples to score")
        return acc.compute()

    def figure(self, spec, inputs, targets, predictions, ids, path: Path) -> Path:
        """Input, reconstruction and |difference| of up to 4 samples, captioned with truth, score and verdict."""
        n = min(len(ids), 4)
        calibration = _stored_calibration(predictions, required=False)
        verdicts = _verdicts(predictions, calibration) if calibration is not None else None
        captions = []
        for i in range(n):
            caption = f"{ids[i]} ({'Q2' if targets[i] == Q2 else 'Q1'})\nscore {predictions['score'][i]:.3g}"
            if verdicts is not None:
                caption += f", q {verdicts[i]['quality']:.2f} ({'degraded' if verdicts[i]['degraded'] else 'clear'})"
            captions.append(caption)
        return quality_figure(inputs[:n], predictions["reconstruction"][:n], captions, path)

    def predict_files(self, spec, model, images: list[InputImage], out_dir: Path, options: dict[str, str]) -> list[dict]:
        """Per H-alpha file: score, continuous quality, Q1/Q2 decision, a figure (input,
        reconstruction, |difference|) and a FITS of the difference map (with input and
        reconstruction) on the model's grid, with the input's WCS where it has one.
        A ``quality.csv`` lists every file's result. No options."""
        if options:
            raise ConfigError(f"the quality task takes no --option, got {', '.join(options)}")
        records = []
        for item in images:
            x = self.inputs(spec, {spec.inputs[0]: item.data[None]})
            pred = to_numpy(self.predict(model, x))
            calibration = _stored_calibration(pred)
            verdict = _verdicts(pred, calibration)[0]
            records.append(_write_outputs(out_dir, item, x.numpy()[0, 0], pred["reconstruction"][0, 0], verdict))
        with open(out_dir / "quality.csv", "w", newline="") as fh:
            columns = ["input", "score", "quality", "degraded", "classifier_degraded"]
            writer = csv.DictWriter(fh, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
        return records


def _critics(model: nn.Module) -> list[nn.Module]:
    """The discriminators and, in classifier mode, the classifiers."""
    return [model.discriminator] + ([model.classifier] if model.classifier is not None else [])


@contextlib.contextmanager
def _frozen(modules: list[nn.Module]) -> Iterator[None]:
    """No parameter gradients for ``modules`` inside the block (gradients still flow through them)."""
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _synchronised_step(modules: list[nn.Module], optimizer: torch.optim.Optimizer, active: bool) -> None:
    """Step ``modules`` with gradients averaged over the data-parallel workers.

    Every worker joins the same collectives: one whose batch gave these networks no loss
    term (no Q1, or no image of either class) adds zero gradients, and the step is skipped
    only when no worker had a term.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        params = [p for m in modules for p in m.parameters()]
        flag = torch.tensor([float(active)], device=params[0].device)
        dist.all_reduce(flag)
        if flag.item() == 0:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for m in modules:
            average_gradients(m)
        optimizer.step()
    elif active:
        optimizer.step()


def _stored_calibration(predictions: dict[str, np.ndarray], required: bool = True) -> Calibration | None:
    """The model's validation calibration carried by its predictions (None/error when unset)."""
    calibration = Calibration(float(predictions["threshold"][0]), float(predictions["score_floor"][0]))
    if np.isfinite(calibration).all():
        return calibration
    if required:
        raise HelioBenchError("the quality model carries no validation calibration (threshold); "
                              "train it with `heliobench train`, which fits it on the Q1 validation images")
    return None


def _verdicts(predictions: dict[str, np.ndarray], calibration: Calibration) -> list[dict[str, Any]]:
    """Score, continuous quality and decision of every image of a prediction batch."""
    votes = predictions.get("classifier_degraded")
    degraded = classify(predictions["score"], calibration.threshold, votes)
    quality = quality_scale(predictions["score"], calibration)
    return [{"score": float(predictions["score"][i]), "quality": float(quality[i]), "degraded": bool(degraded[i]),
             "classifier_degraded": None if votes is None else bool(votes[i])} for i in range(len(degraded))]


def _model_grid(image: PrepImage, size: int) -> PrepImage:
    """``image``'s geometry on the pyramid-reduced size x size grid (pixel edges aligned)."""
    d = image.data.shape[-1] / size

    def reduce(px: tuple[float, float]) -> tuple[float, float]:
        return ((px[0] + 0.5) / d - 0.5, (px[1] + 0.5) / d - 0.5)

    return image.with_data(np.zeros((size, size), np.float32),
                           scale_arcsec=(image.scale_arcsec[0] * d, image.scale_arcsec[1] * d),
                           reference_px=reduce(image.reference_px), disk_center_px=reduce(image.disk_center_px))


def _write_outputs(out_dir: Path, item: InputImage, image: np.ndarray, reconstruction: np.ndarray,
                   verdict: dict[str, Any]) -> dict[str, Any]:
    from astropy.io import fits

    from heliobench.engine.predict import wcs_header

    decision = "Q2 degraded" if verdict["degraded"] else "Q1 clear"
    caption = f"{item.stem}\n{decision}, score {verdict['score']:.3g}, quality {verdict['quality']:.2f}"
    figure = quality_figure(image[None], reconstruction[None], [caption], out_dir / f"{item.stem}_quality.png")
    hdr = wcs_header(_model_grid(item.image, image.shape[-1])) if item.image is not None else fits.Header()
    hdr["QSCORE"] = (verdict["score"], "content loss of input vs reconstruction")
    hdr["QUALITY"] = (verdict["quality"], "0 best Q1 validation image, 1 threshold")
    hdr["DEGRADED"] = (verdict["degraded"], "predicted Q2")
    fits_path = out_dir / f"{item.stem}_difference.fits"
    fits.HDUList([
        fits.PrimaryHDU(),
        fits.ImageHDU(np.abs(image - reconstruction).astype(np.float32), hdr, name="DIFFERENCE"),
        fits.ImageHDU(image.astype(np.float32), hdr, name="INPUT"),
        fits.ImageHDU(reconstruction.astype(np.float32), hdr, name="RECONSTRUCTION"),
    ]).writeto(fits_path, overwrite=True)
    return {"input": item.stem, **verdict, "figure": str(figure), "difference_fits": str(fits_path)}

"""Segmentation as an engine task: SCSS-Net on AIA images → coronal-hole / active-region masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heliobench.errors import ConfigError
from heliobench.prep.pipeline import registered_disk_mask
from heliobench.specs import BenchmarkSpec
from heliobench.tasks.base import InputImage, MetricAccumulator, Task
from heliobench.tasks.segmentation.augment import augment_pair
from heliobench.tasks.segmentation.metrics import SegmentationAccumulator
from heliobench.tasks.segmentation.model import ScssNet

#: Keras' binary cross-entropy clips probabilities to [eps, 1 - eps] with this epsilon.
KERAS_EPSILON = 1e-7


def scale_inputs(x: np.ndarray, scaling: dict) -> np.ndarray:
    """Map registered intensities to [0, 1] as the spec says (SCSS-Net takes [0, 1] inputs).

    ``log_minmax``: log10 of the value clipped to [low, high], mapped linearly to [0, 1];
    ``minmax``: the value clipped to [low, high], mapped to [0, 1]; ``disk_median``: the
    value over the median of its image's disk (inside 0.95 R_sun of the registered grid),
    clipped to [low, high] and mapped to [0, 1] — independent of DN, exposure and
    display scaling, so that FITS, JP2 and PNG images of one channel look alike;
    ``none``: as is. ``x`` is one image (H, W) or a batch (N, H, W). Non-finite pixels
    (off the detector) become 0.
    """
    kind = scaling.get("kind", "none")
    x = np.nan_to_num(x.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if kind == "none":
        return x
    low, high = float(scaling["low"]), float(scaling["high"])
    if kind == "log_minmax":
        x, low, high = np.log10(np.clip(x, low, high)), np.log10(low), np.log10(high)
    elif kind == "disk_median":
        disk = registered_disk_mask(x.shape[-1], 0.95)
        median = np.median(x[..., disk], axis=-1)
        x = x / np.where(median > 0, median, 1.0)[..., None, None]
    elif kind != "minmax":
        raise ConfigError(f"input_scaling.kind {kind!r}: expected log_minmax, minmax, disk_median or none")
    return ((np.clip(x, low, high) - low) / (high - low)).astype(np.float32)


class _Accumulator(MetricAccumulator):
    def __init__(self, n_boot: int) -> None:
        self._acc = SegmentationAccumulator(n_boot=n_boot)

    def update(self, predictions: np.ndarray, targets: np.ndarray) -> None:
        self._acc.update(predictions[:, 0], targets[:, 0])

    def compute(self) -> dict[str, float]:
        return self._acc.compute()


class SegmentationTask(Task):
    """Binary segmentation with SCSS-Net (U-Net, sigmoid output, binary cross-entropy)."""

    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        if spec.model.name != "scss_net":
            raise ConfigError(f"benchmark {spec.name}: segmentation supports model scss_net, not {spec.model.name!r}")
        return ScssNet(in_channels=len(spec.inputs), out_channels=len(spec.targets), **spec.model.params)

    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        x = np.stack([scale_inputs(np.asarray(batch[k]), spec.input_scaling) for k in spec.inputs], axis=1)
        return torch.from_numpy(x)

    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(batch[k]) for k in spec.targets], axis=1).astype(np.float32))

    def train_step(self, spec, model, optimizer, inputs, targets, generator):
        model.train()
        if spec.training.augment:
            inputs, targets = augment_pair(inputs, targets, generator, **spec.training.params.get("augment", {}))
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=inputs.device.type, dtype=torch.bfloat16, enabled=inputs.device.type == "cuda"):
            probs = model(inputs)  # mixed precision on GPUs; the loss is computed in float32
        loss = F.binary_cross_entropy(probs.float().clamp(KERAS_EPSILON, 1 - KERAS_EPSILON), targets)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return model(inputs)

    def loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        return float(F.binary_cross_entropy(predictions.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON), targets))

    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        return _Accumulator(n_boot)

    def figure(self, spec, inputs, targets, predictions, ids, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(len(ids), 4)
        fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
        for i in range(n):
            for ax, img, title in zip(axes[i], (inputs[i, 0], targets[i, 0], predictions[i, 0]),
                                      (f"{ids[i]} {spec.inputs[0]}", f"truth {spec.targets[0]}", "prediction")):
                ax.imshow(img, origin="lower", cmap="gray" if title.startswith(ids[i]) else "magma", vmin=0, vmax=1)
                ax.set_title(title, fontsize=9)
                ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path

    def predict_files(self, spec, model, images: list[InputImage], out_dir: Path, options: dict[str, str]) -> list[dict]:
        """Per input: the probability mask as PNG, a FITS mask on the registered grid (with
        the input's WCS, observer and time) and an overlay figure. Option ``threshold`` (0.5)."""
        threshold = float(options.get("threshold", 0.5))
        records = []
        for item in images:
            x = item.data[None] if item.image is None else self.inputs(spec, {spec.inputs[0]: item.data[None]}).numpy()[0]
            prob = self.predict(model, torch.from_numpy(np.ascontiguousarray(x)[None])).numpy()[0, 0]
            records.append(_write_mask_outputs(out_dir, item, x[0], prob, (prob > threshold).astype(np.uint8)))
        return records


def _write_mask_outputs(out_dir: Path, item: InputImage, image: np.ndarray, prob: np.ndarray, mask: np.ndarray) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits
    from PIL import Image

    from heliobench.engine.predict import wcs_header

    stem = item.stem
    png = out_dir / f"{stem}_mask.png"
    Image.fromarray(np.flipud(mask * 255).astype(np.uint8)).save(png)
    fits_path = out_dir / f"{stem}_mask.fits"
    hdr = wcs_header(item.image) if item.image is not None else fits.Header()
    hdr["BUNIT"] = "probability"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(prob.astype(np.float32), hdr, name="PROBABILITY"),
                  fits.ImageHDU(mask, hdr, name="MASK")]).writeto(fits_path, overwrite=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(image, origin="lower", cmap="gray")
    axes[0].set_title(f"{stem}: input")
    axes[1].imshow(image, origin="lower", cmap="gray")
    axes[1].contour(mask, levels=[0.5], colors="orange", linewidths=0.8)
    axes[1].set_title("prediction (p > 0.5)")
    for ax in axes:
        ax.axis("off")
    overlay = out_dir / f"{stem}_overlay.png"
    fig.tight_layout()
    fig.savefig(overlay, dpi=90)
    plt.close(fig)
    return {"input": stem, "mask_png": str(png), "mask_fits": str(fits_path), "overlay": str(overlay),
            "fraction": float(mask.mean()), "probabilities": prob}

"""Image translation as an engine task: HMI → AIA (Park et al. 2019) and AIA → AIA (Lim et al. 2021).

Shard columns hold registered observations: AIA in DN/s (exposure-normalised), HMI already clipped at
±3000 G and scaled to [−1, 1] by the card's default pipeline. The spec's ``input_scaling`` maps an
instrument (or a member key, which wins) to ``log2`` (Park et al.'s AIA scaling, log2 of x + 1 DN
clipped to [0, 14] → [−1, 1]), ``hmi_gauss`` (B clipped at ±3000 G → [−1, 1], for pipelines that keep
gauss) or ``none``. Targets must be on the ``log2`` scale: the metrics invert it and compare data units
at ``evaluation.size_px`` (256, or the resolution if smaller) on the disk, r < 0.99 R☉ of the
registered grid's fixed radius.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heliobench.errors import ConfigError
from heliobench.prep.pipeline import registered_disk_mask
from heliobench.specs import BenchmarkSpec, Member, load_card
from heliobench.tasks.base import InputImage, MetricAccumulator, OptimizerSet, Task, average_gradients
from heliobench.tasks.translation.augment import shake
from heliobench.tasks.translation.figures import Panelset, translation_figure
from heliobench.tasks.translation.losses import ADAM_BETAS, L1_WEIGHT, default_optimizers, discriminator_losses, generator_losses
from heliobench.tasks.translation.metrics import EVAL_SIZE_PX, TranslationMetricAccumulator, bin_image, translation_report
from heliobench.tasks.translation.model import Pix2Pix
from heliobench.tasks.translation.normalization import denormalize_aia, normalize_aia, normalize_hmi

#: Smallest image the PatchGAN's three stride-2 and two stride-1 4×4 convolutions leave a patch of.
MIN_GAN_SIZE_PX = 32
#: Seed of the test-time dropout of :meth:`TranslationTask.predict`.
PREDICT_SEED = 0
SCALINGS = {"none": lambda x: x, "hmi_gauss": normalize_hmi, "log2": normalize_aia}


@functools.lru_cache(maxsize=None)
def _observations(dataset: str) -> dict[str, Member]:
    return {m.key: m for m in load_card(dataset).members if m.label is None}


def _member(spec: BenchmarkSpec, key: str) -> Member:
    members = _observations(spec.dataset)
    if key not in members:
        raise ConfigError(f"benchmark {spec.name}: {key!r} is not an observation member of dataset {spec.dataset}")
    return members[key]


def scaling(spec: BenchmarkSpec, key: str) -> str:
    """The ``input_scaling`` kind of member ``key`` (by member key, else by instrument)."""
    member = _member(spec, key)
    kind = spec.input_scaling.get(key, spec.input_scaling.get(member.instrument))
    if kind not in SCALINGS:
        raise ConfigError(f"benchmark {spec.name}: input_scaling.{member.instrument}: expected one of "
                          f"{', '.join(SCALINGS)} for member {key}, got {kind!r}")
    return kind


def target_channels(spec: BenchmarkSpec) -> list[str]:
    """The AIA channel of every target (``171``...), checked to be on the ``log2`` scale."""
    for key in spec.targets:
        if scaling(spec, key) != "log2":
            raise ConfigError(f"benchmark {spec.name}: target {key} must be an AIA channel on the log2 scale "
                              f"(input_scaling.{_member(spec, key).instrument}: log2)")
    return [str(_member(spec, key).channel) for key in spec.targets]


def eval_size(spec: BenchmarkSpec) -> int:
    """Where metrics are computed: ``evaluation.size_px`` (256), or the resolution if that is smaller."""
    size = min(int(spec.evaluation.get("size_px", EVAL_SIZE_PX)), spec.resolution_px)
    if spec.resolution_px % size:
        raise ConfigError(f"benchmark {spec.name}: evaluation.size_px {size} does not divide resolution_px {spec.resolution_px}")
    return size


def scale_members(spec: BenchmarkSpec, keys: list[str], batch: dict[str, np.ndarray]) -> torch.Tensor:
    """Members ``keys`` of a batch, each with its ``input_scaling``, stacked on axis 1 (float32)."""
    return torch.from_numpy(np.stack([np.asarray(SCALINGS[scaling(spec, k)](np.asarray(batch[k], np.float32)),
                                                 np.float32) for k in keys], axis=1))


class _Accumulator(MetricAccumulator):
    """Normalised predictions and targets → data units → ``eval_size`` bins → CC, RE, PPE10 on the disk."""

    def __init__(self, spec: BenchmarkSpec, n_boot: int):
        self.size = eval_size(spec)
        self.mask = registered_disk_mask(self.size)
        self._acc = TranslationMetricAccumulator(target_channels(spec), n_boot=n_boot)

    def update(self, predictions: np.ndarray, targets: np.ndarray) -> None:
        gen, tar = (bin_image(denormalize_aia(np.asarray(a, np.float64)), self.size) for a in (predictions, targets))
        self._acc.update(gen, tar, self.mask)

    def compute(self) -> dict[str, float]:
        return self._acc.compute()


class TranslationTask(Task):
    """pix2pix image translation: Model A (L1) or Model B (cGAN + 100·L1), per channel or multi-channel."""

    parallel_strategy = None  # generator and discriminator step separately; gradients via average_gradients

    def build_model(self, spec: BenchmarkSpec) -> nn.Module:
        if spec.model.name != "pix2pix":
            raise ConfigError(f"benchmark {spec.name}: translation supports model pix2pix, not {spec.model.name!r}")
        target_channels(spec)
        params = {k: v for k, v in spec.model.params.items() if k != "l1_weight"}
        if params.get("gan", True) and spec.resolution_px < MIN_GAN_SIZE_PX:
            raise ConfigError(f"benchmark {spec.name}: the 70×70 PatchGAN needs images of {MIN_GAN_SIZE_PX} px or more, "
                              f"got {spec.resolution_px} (Model A: model.params.gan=false)")
        try:
            return Pix2Pix(len(spec.inputs), len(spec.targets), spec.resolution_px, **params)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"benchmark {spec.name}: model.params: {exc}") from None

    def inputs(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        return scale_members(spec, spec.inputs, batch)

    def targets(self, spec: BenchmarkSpec, batch: dict[str, np.ndarray]) -> torch.Tensor:
        target_channels(spec)
        return scale_members(spec, spec.targets, batch)

    def optimizer(self, spec: BenchmarkSpec, model: nn.Module) -> OptimizerSet:
        betas = tuple(spec.training.params.get("adam_betas", ADAM_BETAS))
        return OptimizerSet(**default_optimizers(model.generators, model.discriminators, spec.training.lr, betas))

    def train_step(self, spec, model, optimizer, inputs, targets, generator):
        """One pix2pix iteration: the discriminators step on (x, y) vs (x, G(x)), then the generators.

        The losses of the per-channel models are summed, so each model gets exactly its own gradient.
        """
        model.train()
        if spec.training.augment:
            inputs, targets = shake(inputs, targets, generator)
        fakes, reals = model.split(model(inputs)), model.split(targets)
        discriminators = list(model.discriminators)
        out: dict[str, float] = {}
        if discriminators:
            optimizer["discriminator"].zero_grad(set_to_none=True)
            d_loss = sum(discriminator_losses(d(inputs, real), d(inputs, fake.detach()))["total"]
                         for d, real, fake in zip(discriminators, reals, fakes))
            d_loss.backward()
            average_gradients(model.discriminators)
            optimizer["discriminator"].step()
            out["d_loss"] = float(d_loss.detach()) / len(discriminators)
        model.discriminators.requires_grad_(False)
        optimizer["generator"].zero_grad(set_to_none=True)
        l1_weight = float(spec.model.params.get("l1_weight", L1_WEIGHT))
        parts = [generator_losses(fake, real, d(inputs, fake) if discriminators else None, l1_weight)
                 for d, fake, real in zip(discriminators or [None] * len(fakes), fakes, reals)]
        sum(p["total"] for p in parts).backward()
        average_gradients(model.generators)
        optimizer["generator"].step()
        model.discriminators.requires_grad_(True)
        if discriminators:
            out["g_gan"] = float(sum(p["gan"].detach() for p in parts)) / len(parts)
        out["loss"] = float(torch.cat([f.detach() for f in fakes], 1).sub(targets).abs().mean())  # L1, as val_loss
        return out

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """pix2pix inference: each image on its own (batch norm on its statistics, dropout on), with
        dropout drawn from a fixed seed so that a prediction does not depend on batch-mates or on when
        it is made."""
        model.eval()
        devices = [inputs.device.index or 0] if inputs.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(PREDICT_SEED)
            return torch.cat([model(inputs[i:i + 1]) for i in range(len(inputs))])

    def loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        return float(F.l1_loss(predictions, targets))

    def accumulator(self, spec: BenchmarkSpec, n_boot: int = 1000) -> MetricAccumulator:
        return _Accumulator(spec, n_boot)

    def figure(self, spec, inputs, targets, predictions, ids, path: Path) -> Path:
        samples = [Panelset(str(ids[i]), inputs[i, 0], predictions[i], targets[i]) for i in range(min(len(ids), 3))]
        return _figure(spec, samples, path)

    def predict_files(self, spec, model, images: list[InputImage], out_dir: Path, options: dict[str, str]) -> list[dict]:
        """Per sample (one file per input member, in any order within the sample): the generated
        channels as FITS in DN/s on the input's registered WCS (one HDU per channel) and a figure.

        Option ``truth=FILE[,FILE...]`` (one sample only): observed target channels, shown in the
        figure and scored (CC, RE, PPE10 on the disk) in the record's ``metrics``.
        """
        groups = _input_groups(spec, images)
        truth = _read_truth(spec, options["truth"].split(","), len(groups)) if options.get("truth") else None
        channels = target_channels(spec)
        records = []
        for group in groups:
            x = scale_members(spec, spec.inputs, {k: item.data[None] for k, item in zip(spec.inputs, group)})
            generated = self.predict(model, x).numpy()[0]
            stem = "_".join(item.stem for item in group)
            record: dict[str, Any] = {"input": stem, "channels": channels,
                                      "fits": str(_write_fits(out_dir / f"{stem}_translated.fits", spec, group[0], generated))}
            panels = Panelset(stem, x.numpy()[0, 0], generated, None if truth is None else normalize_aia(truth))
            record["figure"] = str(_figure(spec, [panels], out_dir / f"{stem}_translated.png"))
            if truth is not None:
                size = eval_size(spec)
                record["metrics"] = translation_report(bin_image(denormalize_aia(generated.astype(np.float64)), size),
                                                       bin_image(truth, size), registered_disk_mask(size), channels)
            records.append(record)
        return records


def _figure(spec: BenchmarkSpec, samples: list[Panelset], path: Path) -> Path:
    """Input (the first input member) | generated (| truth) of each sample."""
    return translation_figure(samples, spec.inputs[0], str(_member(spec, spec.inputs[0]).channel), target_channels(spec), path)


def _input_groups(spec: BenchmarkSpec, images: list[InputImage]) -> list[list[InputImage]]:
    """The input files as samples: consecutive groups of one file per input member, in spec order."""
    from heliobench.shards import member_pipelines

    k = len(spec.inputs)
    flat = [item.stem for item in images if item.image is None]
    if flat:
        raise ConfigError(f"benchmark {spec.name}: translation needs FITS observations in data units, "
                          f"not display-scaled PNG/JPEG ({', '.join(flat)})")
    if not images or len(images) % k:
        raise ConfigError(f"benchmark {spec.name}: give {k} file(s) per sample ({', '.join(spec.inputs)}), got {len(images)}")
    if k > 1:
        hashes = {p.hash for key, p in member_pipelines(spec.card(), spec.resolution_px).items() if key in spec.inputs}
        if len(hashes) > 1:
            raise ConfigError(f"benchmark {spec.name}: predict preprocesses every file like {spec.inputs[0]}, "
                              f"but the card's pipelines of {', '.join(spec.inputs)} differ")
    wanted = [(_member(spec, key).instrument, str(_member(spec, key).channel)) for key in spec.inputs]
    groups = []
    for start in range(0, len(images), k):
        chunk = {(item.image.instrument, item.image.channel): item for item in images[start:start + k]}
        missing = [f"{i} {c}" for i, c in wanted if (i, c) not in chunk]
        if missing:
            got = ", ".join(f"{item.stem} ({item.image.instrument} {item.image.channel})" for item in images[start:start + k])
            raise ConfigError(f"benchmark {spec.name}: sample {start // k + 1} lacks {', '.join(missing)}; got {got}")
        groups.append([chunk[w] for w in wanted])
    return groups


def _read_truth(spec: BenchmarkSpec, uris: list[str], n_samples: int) -> np.ndarray:
    """Observed target channels (C, H, W) in DN/s on the registered grid, from FITS files in any order."""
    from heliobench.archive.readers import read_map
    from heliobench.prep.image import PrepImage
    from heliobench.shards import member_pipelines
    from heliobench.storage import read_bytes

    if n_samples != 1:
        raise ConfigError(f"--option truth: give one sample's input files with truth, got {n_samples} samples")
    pipelines = member_pipelines(spec.card(), spec.resolution_px)
    by_channel = {}
    for uri in (u.strip() for u in uris):
        image = PrepImage.from_map(read_map(read_bytes(uri), uri))
        key = next((k for k in spec.targets if (_member(spec, k).instrument, str(_member(spec, k).channel))
                    == (image.instrument, image.channel)), None)
        if key is None:
            raise ConfigError(f"--option truth: {uri} ({image.observation}) is not one of the targets {', '.join(spec.targets)}")
        by_channel[key] = pipelines[key].run(image)[0].data
    missing = [k for k in spec.targets if k not in by_channel]
    if missing:
        raise ConfigError(f"--option truth: no file for {', '.join(missing)}")
    return np.stack([by_channel[k] for k in spec.targets]).astype(np.float64)


def _write_fits(path: Path, spec: BenchmarkSpec, reference: InputImage, generated: np.ndarray) -> Path:
    """One image HDU per generated channel, in DN/s, with the input's registered WCS."""
    from astropy.io import fits

    from heliobench.engine.predict import wcs_header

    hdus: list[Any] = [fits.PrimaryHDU()]
    for key, channel, image in zip(spec.targets, target_channels(spec), denormalize_aia(generated.astype(np.float64))):
        header = wcs_header(reference.image)
        header["BUNIT"] = "DN/s"
        header["WAVELNTH"] = (int(channel), "generated AIA channel (Angstrom)")
        header["HB_BENCH"] = (spec.name, "HelioBench benchmark of the model")
        hdus.append(fits.ImageHDU(image.astype(np.float32), header, name=key.upper()))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path

"""H-alpha image-quality task: the GAN of Jarolim et al. (2020), its losses and metrics."""

from heliobench.tasks.quality.losses import (
    LossWeights,
    discriminator_step_losses,
    generator_step_losses,
)
from heliobench.tasks.quality.metrics import assess, fit_threshold, quality_report
from heliobench.tasks.quality.model import QualityGAN, QualityModelConfig

__all__ = [
    "LossWeights",
    "QualityGAN",
    "QualityModelConfig",
    "assess",
    "discriminator_step_losses",
    "fit_threshold",
    "generator_step_losses",
    "quality_report",
]

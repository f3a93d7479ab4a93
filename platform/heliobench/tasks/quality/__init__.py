"""H-alpha image-quality task: the GAN of Jarolim et al. (2020), its losses and metrics."""

from heliobench.tasks.quality.losses import (
    LossWeights,
    critic_step_losses,
    generator_step_losses,
)
from heliobench.tasks.quality.metrics import QualityAccumulator, assess, fit_calibration, quality_report
from heliobench.tasks.quality.model import QualityGAN, QualityModelConfig

__all__ = [
    "LossWeights",
    "QualityAccumulator",
    "QualityGAN",
    "QualityModelConfig",
    "assess",
    "critic_step_losses",
    "fit_calibration",
    "generator_step_losses",
    "quality_report",
]

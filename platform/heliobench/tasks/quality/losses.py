"""Losses of the quality GAN, with the weighting of the original code.

From ``siqa/model.py`` (``combineGenerator``, ``combineDiscriminator``,
``buildCombinedClassifier``) of RobertJaro/SolarImageQualityAssessment, weights of
``siqa/kso_train.py``. With D_i the critic at scale i (input average-pooled by 2**i) and
f_il its l-th block's features:

* LSGAN: ``mse(p, t) = mean((p - t)**2)`` over every patch of the batch, no 1/2 factor.
* content_i(x, y) = sum_l mean_{c,h,w} |f_il(x) - f_il(y)|: layers and scales weigh equally,
  each layer is averaged over its own elements.
* generator: ``lambda_mse * mse(G(x), x) + sum_i [lambda_adv * mse(D_i(G(x)), 1)
  + lambda_content * mean_batch content_i(x, G(x))]`` with lambda_adv = 1, lambda_content = 1
  (``IQAModel`` defaults to 10, the published training sets 1) and lambda_mse = 0.
* discriminator: ``sum_i mse(D_i(x), 1) + mse(D_i(G(x)), 0)`` on Q1 images, G frozen.
  (The original's generator step draws a fresh Q1 batch; the task reuses the step's batch.)
* classifier mode (the paper's extension that also learns from Q2 images): classifiers C_i
  of the discriminators' architecture learn ``sum_i mse(C_i(q1), 1) + mse(C_i(q2), 0)``, and
  the generator's content loss (hence the quality score) uses the features of C_i instead of
  D_i; the adversarial term still comes from D_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from heliobench.tasks.quality.model import CriticOutput, QualityGAN


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator objective (published values)."""

    adversarial: float = 1.0
    content: float = 1.0
    mse: float = 0.0


def lsgan_loss(prediction: Tensor, target: float) -> Tensor:
    """Least-squares GAN loss: mean of ``(prediction - target)**2``."""
    return (prediction - target).square().mean()


def content_distance(real: list[CriticOutput], fake: list[CriticOutput]) -> Tensor:
    """Per-image content loss, shape (B,): sum over scales and layers of mean |difference|."""
    per_layer = [
        (fr - ff).abs().flatten(1).mean(1)
        for (features_r, _), (features_f, _) in zip(real, fake, strict=True)
        for fr, ff in zip(features_r, features_f, strict=True)
    ]
    return torch.stack(per_layer).sum(0)


def generator_step_losses(
    model: QualityGAN, images: Tensor, weights: LossWeights = LossWeights()
) -> dict[str, Tensor]:
    """Generator objective on a batch of Q1 images; ``loss`` is the one to back-propagate.

    Only the generator's optimiser should step on it (the critics are frozen in this step).
    """
    fake = model.generator(images)
    adversarial = sum(lsgan_loss(patch, 1.0) for _, patch in model.discriminator(fake))
    with torch.no_grad():
        real_features = model.content_critic(images)
    content = content_distance(real_features, model.content_critic(fake)).mean()
    mse = (fake - images).square().mean()
    loss = weights.adversarial * adversarial + weights.content * content + weights.mse * mse
    return {"loss": loss, "adversarial": adversarial, "content": content, "mse": mse}


def critic_step_losses(
    model: QualityGAN, clean: Tensor | None, degraded: Tensor | None = None
) -> dict[str, Tensor]:
    """Critic objective: discriminators on Q1 ``clean`` images, classifiers on both classes.

    The discriminators learn real Q1 images (target 1) against their reconstructions
    (target 0, G frozen); in classifier mode the classifiers learn Q1 (target 1) against
    Q2 ``degraded`` images (target 0). A batch may lack one class: its terms are left out
    (the original drew one Q1 and one Q2 image per step). ``loss`` sums the terms; the
    networks share no parameters, so one optimiser over all equals the original's updates.
    """
    if degraded is not None and model.classifier is None:
        raise ValueError("degraded (Q2) images train the classifier, which exists in classifier mode only")
    if clean is None and degraded is None:
        raise ValueError("critic_step_losses needs Q1 or Q2 images, got neither")
    losses: dict[str, Tensor] = {}
    if clean is not None:
        with torch.no_grad():
            fake = model.generator(clean)
        losses["real"] = sum(lsgan_loss(patch, 1.0) for _, patch in model.discriminator(clean))
        losses["fake"] = sum(lsgan_loss(patch, 0.0) for _, patch in model.discriminator(fake))
        if model.classifier is not None:
            losses["classifier_q1"] = sum(lsgan_loss(patch, 1.0) for _, patch in model.classifier(clean))
    if degraded is not None:
        losses["classifier_q2"] = sum(lsgan_loss(patch, 0.0) for _, patch in model.classifier(degraded))
    return {"loss": sum(losses.values()), **losses}

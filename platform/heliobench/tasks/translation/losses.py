"""Losses of Park et al. (2019): Model A = L1 only; Model B = vanilla cGAN (BCE) + 100·L1 (pix2pix).

The discriminator returns logits, so the BCE of pix2pix/Park (sigmoid output + ``BCELoss``) is computed
as ``binary_cross_entropy_with_logits``: the same loss, numerically stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

L1_WEIGHT = 100.0
LEARNING_RATE = 2e-4
ADAM_BETAS = (0.5, 0.999)


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def generator_losses(fake: torch.Tensor, target: torch.Tensor, fake_logits: torch.Tensor | None = None,
                     l1_weight: float = L1_WEIGHT) -> dict[str, torch.Tensor]:
    """Generator objective: Model A without ``fake_logits``, Model B with D's logits on (input, fake).

    Returns ``l1`` and ``total``; Model B adds ``gan`` (non-saturating −log D(x, G(x))) and
    ``total = gan + l1_weight · l1``.
    """
    l1 = F.l1_loss(fake, target)
    if fake_logits is None:
        return {"l1": l1, "total": l1}
    gan = _bce(fake_logits, real=True)
    return {"gan": gan, "l1": l1, "total": gan + l1_weight * l1}


def discriminator_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Discriminator objective on (input, target) and (input, detached fake); halved as pix2pix."""
    real = _bce(real_logits, real=True)
    fake = _bce(fake_logits, real=False)
    return {"real": real, "fake": fake, "total": 0.5 * (real + fake)}


def default_optimizers(generator: nn.Module, discriminator: nn.Module | None = None, lr: float = LEARNING_RATE,
                       betas: tuple[float, float] = ADAM_BETAS) -> dict[str, torch.optim.Adam]:
    """Adam for each network, lr 2e-4 and β = (0.5, 0.999) by default (pix2pix and Park et al.).

    Keys ``generator`` and, given a discriminator with parameters (Model B), ``discriminator``.
    """
    optimizers = {"generator": torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)}
    if discriminator is not None and any(True for _ in discriminator.parameters()):
        optimizers["discriminator"] = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    return optimizers

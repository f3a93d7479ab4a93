"""pix2pix networks as used by Park et al. (2019): U-Net generator and 70×70 PatchGAN discriminator.

Follows Isola et al. (2017) and junyanz/pytorch-CycleGAN-and-pix2pix (``UnetGenerator``,
``NLayerDiscriminator`` with ``n_layers=3``, batch norm, ``init_type='normal'``, gain 0.02).

Generator: stride-2 4×4 convolutions with 64, 128, 256, then 512 features down to a 1×1 bottleneck, so
the depth is log2(image size): 10 levels at 1024 (Park et al.), 8 at 256 (pix2pix ``unet_256``), 6 at 64.
LeakyReLU(0.2) before every encoder convolution but the first, batch norm after every encoder convolution
but the first and the innermost, ReLU before every decoder transposed convolution, batch norm after every
one but the outermost, skip connections by concatenation, tanh output. Dropout 0.5 follows the three
innermost decoder blocks (outputs 2, 4 and 8 px), the CD512-CD512-CD512 of the pix2pix paper and Park's
code (``current_size <= 8``); junyanz's code places them one level outwards (4, 8 and 16 px).

Batch norm always normalises with the statistics of the batch at hand and dropout is always on, in
training and inference alike: Park's Keras layers are called with ``training=1``, and pix2pix runs the
generator "at inference time in exactly the same manner as during the training phase" (Isola et al.).
Run on one image at a time, this batch norm is instance normalisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
DROPOUT = 0.5
DROPOUT_MAX_SIZE_PX = 8
INIT_STD = 0.02


def unet_depth(image_size: int) -> int:
    """Number of stride-2 levels taking ``image_size`` to a 1×1 bottleneck."""
    depth = round(math.log2(image_size)) if image_size > 0 else 0
    if depth < 2 or 2**depth != image_size:
        raise ValueError(f"image_size must be a power of two ≥ 4 for a U-Net to 1×1, got {image_size}")
    return depth


class BatchStatsNorm(nn.BatchNorm2d):
    """Batch norm on the current batch's statistics in every mode (no running averages)."""

    def __init__(self, num_features: int):
        super().__init__(num_features, track_running_stats=False)


class AlwaysDropout(nn.Dropout):
    """Dropout that stays on in evaluation mode (pix2pix's noise at test time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True)


def init_weights(net: nn.Module) -> nn.Module:
    """pix2pix initialisation: conv weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, INIT_STD)
            nn.init.zeros_(m.bias)
    return net


class UNetGenerator(nn.Module):
    """U-Net from ``in_channels`` to ``out_channels`` (one model per AIA channel as Park et al., or several)."""

    def __init__(self, in_channels: int, out_channels: int, image_size: int, base_features: int = 64,
                 max_features: int = 512):
        super().__init__()
        self.image_size = image_size
        depth = unet_depth(image_size)
        widths = [min(base_features * 2**i, max_features) for i in range(depth)]
        self.down = nn.ModuleList()
        for level, width in enumerate(widths):
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(LEAKY_SLOPE)]
            layers.append(nn.Conv2d(widths[level - 1] if level else in_channels, width, 4, 2, 1, bias=False))
            if 0 < level < depth - 1:
                layers.append(BatchStatsNorm(width))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()  # innermost first; block ``level`` maps 2^-(level+1) to 2^-level of the size
        for level in reversed(range(1, depth)):
            in_width = widths[level] if level == depth - 1 else 2 * widths[level]
            layers = [nn.ReLU(), nn.ConvTranspose2d(in_width, widths[level - 1], 4, 2, 1, bias=False),
                      BatchStatsNorm(widths[level - 1])]
            if image_size >> level <= DROPOUT_MAX_SIZE_PX:
                layers.append(AlwaysDropout(DROPOUT))
            self.up.append(nn.Sequential(*layers))
        self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1),
                                     nn.Tanh()))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"generator built for {self.image_size}² images, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](skips.pop())
        for block in self.up[1:]:
            x = block(torch.cat([skips.pop(), x], dim=1))
        return x


class PatchDiscriminator(nn.Module):
    """70×70 PatchGAN on the concatenated (input, target) pair; returns one logit per patch.

    C64 (no norm) - C128 - C256 (stride 2) - C512 - C1 (stride 1), 4×4 kernels, padding 1, LeakyReLU 0.2.
    Logits, not sigmoid outputs: the loss applies the sigmoid (``BCEWithLogits``, numerically stable).
    """

    def __init__(self, input_channels: int, target_channels: int, base_features: int = 64):
        super().__init__()
        f = base_features
        self.model = nn.Sequential(
            nn.Conv2d(input_channels + target_channels, f, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False), BatchStatsNorm(2 * f), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False), BatchStatsNorm(4 * f), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(4 * f, 8 * f, 4, 1, 1, bias=False), BatchStatsNorm(8 * f), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(8 * f, 1, 4, 1, 1),
        )
        init_weights(self)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([condition, image], dim=1))


class Pix2Pix(nn.Module):
    """Park et al.'s models: U-Net generators and, for Model B (``gan``), their PatchGAN discriminators.

    ``per_channel`` (the paper): one independent generator (and discriminator) per output channel,
    trained side by side — the same as separate runs, since they share no weights and the task sums
    their losses. Otherwise one generator predicts every output channel and one discriminator judges
    the (input, all channels) pair. ``forward`` returns the generated channels in target order.
    """

    def __init__(self, in_channels: int, out_channels: int, image_size: int, per_channel: bool = True,
                 gan: bool = True, base_features: int = 64, max_features: int = 512, disc_features: int = 64):
        super().__init__()
        self.group = 1 if per_channel else out_channels
        n = out_channels // self.group
        self.generators = nn.ModuleList(
            UNetGenerator(in_channels, self.group, image_size, base_features, max_features) for _ in range(n))
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, self.group, disc_features) for _ in range(n) if gan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([g(x) for g in self.generators], dim=1)

    def split(self, channels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Target (or generated) channels (B, C, H, W) as one chunk per generator."""
        return torch.split(channels, self.group, dim=1)

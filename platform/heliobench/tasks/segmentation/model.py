"""SCSS-Net (Mackovjak et al. 2021, MNRAS 508, 3111): the U-Net of the published coronal-hole and
active-region models, ported layer for layer from ``scss_net`` in space-lab-sk/scss-net (Keras).

Published configuration: 256x256x1 input, ``filters=32``, ``layers=4``, ``batch_norm=True``,
``drop_prob=0.5``. Per level: two 3x3 'same' convolutions, each followed by batch norm and ReLU
(biases kept, as in Keras). Decoder levels use stride-1 3x3 transposed convolutions, which is what
the original's ``Conv2DTranspose`` is. Dropout sits where the original puts it: before encoder
levels 3 and up, before the bottleneck, and before the first two decoder levels (ahead of the
upsampling). Upsampling is nearest-neighbour (Keras ``UpSampling2D``); the skip concatenation puts
the upsampled tensor first. The head is a 1x1 convolution and a sigmoid. Batch norm and weight
initialisation follow the Keras defaults: momentum 0.99 (``bn_momentum=0.01`` in torch's
convention), epsilon 1e-3, Glorot-uniform kernels and zero biases. With momentum 0.01 the
running statistics need some hundreds of steps to settle: a run of a few dozen steps (the
demo's) evaluates well only with a faster ``bn_momentum`` such as 0.1, torch's default.
"""

from __future__ import annotations

import torch
from torch import nn

_BN_EPS = 1e-3  # Keras BatchNormalization default epsilon


def _double_conv(conv: type[nn.Conv2d] | type[nn.ConvTranspose2d], in_ch: int, out_ch: int,
                 batch_norm: bool, bn_momentum: float) -> nn.Sequential:
    """Two 3x3 'same' convolutions, each followed by optional batch norm and a ReLU."""
    layers: list[nn.Module] = []
    for ch in (in_ch, out_ch):
        layers.append(conv(ch, out_ch, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch, eps=_BN_EPS, momentum=bn_momentum))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _maybe_dropout(p: float, enabled: bool) -> nn.Module:
    """A dropout layer, or an identity where the original has none (or ``p == 0``)."""
    return nn.Dropout(p) if enabled and p > 0 else nn.Identity()


class ScssNet(nn.Module):
    """The SCSS-Net U-Net. ``forward`` returns per-pixel probabilities in [0, 1] (a sigmoid).

    Train with ``logits`` and ``BCEWithLogitsLoss``: it is numerically stabler than BCE on the
    probabilities and gives the same loss. Input height and width must be divisible by
    ``2**depth``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base_filters: int = 32,
                 depth: int = 4, dropout: float = 0.5, batch_norm: bool = True, bn_momentum: float = 0.01) -> None:
        super().__init__()
        if depth < 1 or base_filters < 1 or not 0.0 <= dropout < 1.0 or not 0.0 < bn_momentum <= 1.0:
            raise ValueError(
                f"ScssNet expects depth >= 1, base_filters >= 1, 0 <= dropout < 1 and 0 < bn_momentum <= 1; "
                f"got depth={depth}, base_filters={base_filters}, dropout={dropout}, bn_momentum={bn_momentum}")
        self.depth = depth
        widths = [base_filters * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList(
            nn.Sequential(_maybe_dropout(dropout, level >= 2),
                          _double_conv(nn.Conv2d, in_ch, out_ch, batch_norm, bn_momentum))
            for level, (in_ch, out_ch) in enumerate(zip([in_channels, *widths], widths[:depth])))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = nn.Sequential(
            _maybe_dropout(dropout, True),
            _double_conv(nn.Conv2d, widths[depth - 1], widths[depth], batch_norm, bn_momentum))
        self.decoder_dropout = nn.ModuleList(
            _maybe_dropout(dropout, step < 2) for step in range(depth))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.decoder = nn.ModuleList(
            _double_conv(nn.ConvTranspose2d, widths[level + 1] + widths[level], widths[level],
                         batch_norm, bn_momentum)
            for level in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        self.apply(_keras_init)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores, shape ``(N, out_channels, H, W)``."""
        multiple = 2**self.depth
        if x.dim() != 4 or x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(
                f"ScssNet(depth={self.depth}) expects input (N, C, H, W) with H and W divisible "
                f"by {multiple}; got shape {tuple(x.shape)}")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for drop, block, skip in zip(self.decoder_dropout, self.decoder, reversed(skips)):
            x = block(torch.cat([self.up(drop(x)), skip], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel probabilities in [0, 1], shape ``(N, out_channels, H, W)``."""
        return torch.sigmoid(self.logits(x))


def _keras_init(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels and zero biases for every convolution."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as Keras' "Trainable params" (batch-norm running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

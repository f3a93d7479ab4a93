"""A model written outside HelioBench, trained through ``heliobench train --model``.

A small U-Net (two levels, ``width`` filters) for the segmentation benchmarks: it takes the
task's inputs (N, inputs, H, W) and gives what the reference SCSS-Net gives, probabilities
in [0, 1] of shape (N, targets, H, W). HelioBench calls ``build`` with the benchmark spec::

    heliobench train ch_segmentation --model examples/small_unet.py:build --set model.params.width=16
    heliobench evaluate ch_segmentation --run RUN_ID    # the run's leaderboard row says "plug-in"

The run records the plug-in (``examples/small_unet.py:build``), this file's SHA-256 and the
parameter count; ``heliobench tune ch_segmentation --model ...`` searches over it the same way.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallUNet(nn.Module):
    """Encoder (width, 2 width, 4 width filters), decoder with skips, sigmoid output."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 8) -> None:
        super().__init__()
        self.down1, self.down2 = _block(in_channels, width), _block(width, 2 * width)
        self.bottom = _block(2 * width, 4 * width)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2), _block(4 * width, 2 * width)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2), _block(2 * width, width)
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(nn.functional.max_pool2d(d1, 2))
        b = self.bottom(nn.functional.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], dim=1))
        return torch.sigmoid(self.head(u1))


def build(spec) -> SmallUNet:
    """The plug-in factory: a SmallUNet for the benchmark's inputs and targets (``model.params.width``)."""
    return SmallUNet(len(spec.inputs), len(spec.targets), width=int(spec.model.params.get("width", 8)))

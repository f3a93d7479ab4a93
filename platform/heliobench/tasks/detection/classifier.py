"""GoogLeNet (Szegedy et al. 2015), the Mount Wilson classifier of de Oliveira & Gradvohl (2020).

Layer for layer the BVLC/DIGITS Caffe GoogLeNet: a 7x7/2 convolution, 3x3/2 max pooling
(Caffe rounds pooled sizes up: ``ceil_mode``), local response normalisation, 1x1 and 3x3
convolutions, LRN, pooling, Inception modules 3a-3b, pooling, 4a-4e, pooling, 5a-5b, global
average pooling, dropout 0.4 and a linear classifier. Each Inception module concatenates a
1x1 branch, a 1x1 -> 3x3 branch, a 1x1 -> 5x5 branch and a 3x3/1 max-pool -> 1x1 branch; every
convolution is followed by a ReLU. The optional auxiliary classifiers after 4a and 4d
(average pooling to 4x4, 1x1 convolution to 128, fully connected 1024, dropout 0.7, linear)
add 0.3 times their cross-entropy to the loss during training, as in the paper.

``width`` scales every channel count (``width=1`` is the published network; ``width=1/16``
runs in milliseconds on a CPU). The auxiliary heads pool adaptively to 4x4, which equals the
original 5x5/3 average pooling on 224-pixel inputs and keeps small inputs usable.

Initialisation differs from the prototxt on purpose: its ``xavier`` filler (variance
1/fan_in) with 0.2 biases is meant for fine-tuning ImageNet weights, as DIGITS users did; from
scratch the signal fades through the 22 ReLU layers until the features no longer depend on the
input (their spread over a batch falls to ~0.5% of their mean at width 1/8). Weights here
use He initialisation (normal, variance 2/fan_in) and zero biases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Inception modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) channels.
INCEPTION_SPECS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

AUX_LOSS_WEIGHT = 0.3


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by ``width`` (at least 1)."""
    return max(1, round(channels * width))


def conv_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """A 'same'-padded convolution and a ReLU."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2), nn.ReLU(inplace=True))


def max_pool() -> nn.MaxPool2d:
    """Caffe's 3x3/2 max pooling (output size rounded up)."""
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class Inception(nn.Module):
    """An Inception module: 1x1, 1x1->3x3, 1x1->5x5 and maxpool->1x1 branches, concatenated."""

    def __init__(self, in_ch: int, spec: tuple[int, int, int, int, int, int], width: float) -> None:
        super().__init__()
        c1, c3r, c3, c5r, c5, pool = (scaled(c, width) for c in spec)
        self.branch1 = conv_relu(in_ch, c1, 1)
        self.branch3 = nn.Sequential(conv_relu(in_ch, c3r, 1), conv_relu(c3r, c3, 3))
        self.branch5 = nn.Sequential(conv_relu(in_ch, c5r, 1), conv_relu(c5r, c5, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_relu(in_ch, pool, 1))
        self.out_channels = c1 + c3 + c5 + pool

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


def inception_stack(names: str, in_ch: int, width: float) -> tuple[nn.Sequential, int]:
    """The Inception modules ``names`` (space-separated keys of INCEPTION_SPECS) in sequence,
    and their output channel count."""
    modules = []
    for name in names.split():
        module = Inception(in_ch, INCEPTION_SPECS[name], width)
        modules.append(module)
        in_ch = module.out_channels
    return nn.Sequential(*modules), in_ch


def stem(in_channels: int, width: float, pool1: bool = True) -> tuple[nn.Sequential, int]:
    """conv 7x7/2, pool, LRN, conv 1x1, conv 3x3, LRN, pool: stride 8, 192 x width channels.

    ``pool1=False`` sets the first pooling's kernel and stride to 1 (an identity): stride 4.
    """
    c1, c2r, c2 = scaled(64, width), scaled(64, width), scaled(192, width)
    layers = nn.Sequential(
        conv_relu(in_channels, c1, 7, stride=2), max_pool() if pool1 else nn.Identity(),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        conv_relu(c1, c2r, 1), conv_relu(c2r, c2, 3), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        max_pool(),
    )
    return layers, c2


def he_init(module: nn.Module) -> None:
    """He-normal weights (variance 2/fan_in) and zero biases for every convolution and linear layer."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class AuxClassifier(nn.Module):
    """GoogLeNet's auxiliary head: avg-pool to 4x4, 1x1 conv 128, FC 1024, dropout 0.7, FC."""

    def __init__(self, in_ch: int, n_classes: int, width: float) -> None:
        super().__init__()
        c, hidden = scaled(128, width), scaled(1024, width)
        self.layers = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), conv_relu(in_ch, c, 1), nn.Flatten(),
            nn.Linear(16 * c, hidden), nn.ReLU(inplace=True), nn.Dropout(0.7), nn.Linear(hidden, n_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class GoogLeNet(nn.Module):
    """GoogLeNet classifier; ``forward`` gives logits, ``forward_with_aux`` also the aux logits."""

    def __init__(self, n_classes: int, in_channels: int = 1, width: float = 1.0,
                 aux_classifiers: bool = True, dropout: float = 0.4) -> None:
        super().__init__()
        if n_classes < 2 or width <= 0:
            raise ValueError(f"GoogLeNet needs n_classes >= 2 and width > 0, got {n_classes} and {width}")
        self.stem, ch = stem(in_channels, width)
        self.inception3, ch = inception_stack("3a 3b", ch, width)
        self.inception4a, ch4a = inception_stack("4a", ch, width)
        self.inception4bcd, ch4d = inception_stack("4b 4c 4d", ch4a, width)
        self.inception4e, ch = inception_stack("4e", ch4d, width)
        self.inception5, ch = inception_stack("5a 5b", ch, width)
        self.pool = max_pool()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(ch, n_classes))
        self.aux = nn.ModuleList(
            [AuxClassifier(ch4a, n_classes, width), AuxClassifier(ch4d, n_classes, width)] if aux_classifiers else [])
        he_init(self)
        self.to(memory_format=torch.channels_last)  # channels-last pooling is 3-6x faster on a CPU

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Main logits and, in training mode with auxiliary heads, their logits (after 4a, 4d)."""
        x = self.pool(self.inception3(self.stem(x)))
        x4a = self.inception4a(x)
        x4d = self.inception4bcd(x4a)
        x = self.inception5(self.pool(self.inception4e(x4d)))
        aux = [head(f) for head, f in zip(self.aux, (x4a, x4d))] if self.training else []
        return self.head(x), aux

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]


def classification_loss(logits: Tensor, aux_logits: list[Tensor], targets: Tensor) -> Tensor:
    """Cross-entropy of the main head plus 0.3 x that of each auxiliary head."""
    loss = F.cross_entropy(logits, targets)
    for aux in aux_logits:
        loss = loss + AUX_LOSS_WEIGHT * F.cross_entropy(aux, targets)
    return loss

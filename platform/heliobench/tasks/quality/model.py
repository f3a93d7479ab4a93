"""Generator and multi-scale PatchGAN critics of Jarolim et al. (2020, A&A 643, A72).

A PyTorch re-implementation of ``siqa/model.py`` and ``siqa/tools/common.py`` of
github.com/RobertJaro/SolarImageQualityAssessment (Keras, channels-last). Defaults are the
published configuration (``siqa/kso_train.py``): 128x128 inputs, 64 base filters, three
down/up blocks, 8 bottleneck channels quantised to 5 centres, 9 residual blocks, three
discriminators of depth 4, classifier mode on. Details kept from the original code:

* ``InstanceNorm`` is the keras-contrib layer with ``axis=None``: the statistics run over all
  channels *and* pixels of one sample, the scale and shift are single scalars and epsilon
  (1e-3) is added to the standard deviation, not to the variance.
* The quantiser outputs the centre index (0..n-1), not a value in [0, 1].
* Transposed convolutions use TensorFlow's ``padding='same'`` alignment (the extra output
  row and column are cut at the bottom/right, not at the top/left as in PyTorch).
* Every kernel *and* bias starts from N(0, 0.02).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Features of every block of one critic and its patch output, for one input scale.
CriticOutput = tuple[list[Tensor], Tensor]


@dataclass(frozen=True)
class QualityModelConfig:
    """Widths and depths of the quality GAN; the defaults are the published ones."""

    channels: int = 1
    base_filters: int = 64
    depth: int = 3
    res_blocks: int = 9
    bottleneck_channels: int = 8
    n_centers: int = 5
    critic_filters: int = 64
    critic_depth: int = 4
    n_scales: int = 3
    classifier_mode: bool = True


class InstanceNorm(nn.Module):
    """Per-sample normalisation over (C, H, W) with a scalar scale and shift (see module doc)."""

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        dims = tuple(range(1, x.ndim))
        mean = x.mean(dims, keepdim=True)
        std = x.std(dims, keepdim=True, unbiased=False)
        return (x - mean) / (std + self.eps) * self.gamma + self.beta


class Quantizer(nn.Module):
    """Maps sigmoid outputs in [0, 1] to the nearest of ``n_centers`` centres 0, 1, ..., n-1.

    Forward gives the hard centre; backward uses the gradient of the soft assignment
    ``sum_k c_k softmax(-|x (n-1) - c_k|)_k`` (straight-through estimator of Mentzer et al.
    2018, as the original ``QuantizationLayer``).
    """

    def __init__(self, n_centers: int = 5):
        super().__init__()
        centers = torch.arange(n_centers, dtype=torch.float32)
        self.register_buffer("centers", centers, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        centers = self.centers.to(x.dtype)
        distance = (x.unsqueeze(-1) * (len(centers) - 1) - centers).abs()
        soft = (torch.softmax(-distance, dim=-1) * centers).sum(-1)
        hard = centers[distance.argmin(dim=-1)]
        return soft + (hard - soft).detach()


def _conv_block(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, relu: bool = True
) -> nn.Sequential:
    """Reflection pad, convolution, instance norm (and ReLU)."""
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(kernel // 2),
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride),
        InstanceNorm(),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 conv blocks plus identity; no activation after the sum (as the original)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(channels, channels, 3), _conv_block(channels, channels, 3, relu=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class UpBlock(nn.Module):
    """3x3 transposed convolution with stride 2 (TensorFlow 'same' alignment), norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2)
        self.norm = InstanceNorm()

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        y = self.conv(x)[..., : 2 * height, : 2 * width]
        return F.relu(self.norm(y))


class Generator(nn.Module):
    """Encoder, quantised bottleneck and decoder; output in [-1, 1] (tanh)."""

    def __init__(self, config: QualityModelConfig = QualityModelConfig()):
        super().__init__()
        c = config
        widths = [c.base_filters * 2**i for i in range(c.depth + 1)]
        self.encoder = nn.Sequential(
            _conv_block(c.channels, widths[0], 7),
            *[_conv_block(widths[i], widths[i + 1], 3, stride=2) for i in range(c.depth)],
        )
        self.bottleneck = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(widths[-1], c.bottleneck_channels, 3),
            nn.Sigmoid(),
            Quantizer(c.n_centers),
        )
        self.decoder = nn.Sequential(
            _conv_block(c.bottleneck_channels, widths[-1], 3),
            *[ResidualBlock(widths[-1]) for _ in range(c.res_blocks)],
            *[UpBlock(widths[i + 1], widths[i]) for i in reversed(range(c.depth))],
            nn.ReflectionPad2d(3),
            nn.Conv2d(widths[0], c.channels, 7),
            nn.Tanh(),
        )
        _init_normal(self)

    def encode(self, x: Tensor) -> Tensor:
        """The quantised code, shape (B, bottleneck_channels, H / 2**depth, W / 2**depth)."""
        return self.bottleneck(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encode(x))


class PatchCritic(nn.Module):
    """PatchGAN: 4x4 stride-2 convs (no norm on the first), LeakyReLU 0.2, 4x4 patch output."""

    def __init__(self, channels: int = 1, base_filters: int = 64, depth: int = 4):
        super().__init__()
        blocks = []
        in_ch = channels
        for i in range(depth):
            out_ch = base_filters * 2**i
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1),
                    InstanceNorm() if i else nn.Identity(),
                    nn.LeakyReLU(0.2),
                )
            )
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        # TensorFlow 'same' for a 4x4 kernel: one row/column before, two after.
        self.patch = nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(in_ch, 1, 4))
        _init_normal(self)

    def forward(self, x: Tensor) -> CriticOutput:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features, self.patch(x)


class MultiScaleCritic(nn.Module):
    """``n_scales`` critics; critic i sees the input average-pooled by 2**i."""

    def __init__(self, config: QualityModelConfig = QualityModelConfig()):
        super().__init__()
        self.critics = nn.ModuleList(
            PatchCritic(config.channels, config.critic_filters, config.critic_depth)
            for _ in range(config.n_scales)
        )

    def forward(self, x: Tensor) -> list[CriticOutput]:
        return [critic(F.avg_pool2d(x, 2**i)) for i, critic in enumerate(self.critics)]


class QualityGAN(nn.Module):
    """Generator, discriminators and, in classifier mode, the Q1-vs-Q2 classifiers.

    The classifiers share the discriminators' architecture; in classifier mode their
    features (not the discriminators') define the content loss and the quality score.
    The buffers ``threshold`` and ``score_floor`` hold the calibration fitted on the Q1
    validation scores (NaN until a validation pass sets them), so that a saved model
    decides Q1/Q2 without seeing any other data.
    """

    threshold: Tensor
    score_floor: Tensor

    def __init__(self, config: QualityModelConfig = QualityModelConfig()):
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = MultiScaleCritic(config)
        self.classifier = MultiScaleCritic(config) if config.classifier_mode else None
        self.register_buffer("threshold", torch.tensor(float("nan")))
        self.register_buffer("score_floor", torch.tensor(float("nan")))

    def set_calibration(self, threshold: float, floor: float) -> None:
        """Store the validation calibration (saved with the weights)."""
        self.threshold.fill_(threshold)
        self.score_floor.fill_(floor)

    @property
    def content_critic(self) -> MultiScaleCritic:
        """The critic whose features measure content: classifier if present, else discriminator."""
        return self.classifier if self.classifier is not None else self.discriminator

    def forward(self, x: Tensor) -> Tensor:
        return self.generator(x)


def _init_normal(module: nn.Module) -> None:
    """N(0, 0.02) for every convolution kernel and bias (Keras ``RandomNormal(stddev=0.02)``)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.normal_(m.bias, std=0.02)

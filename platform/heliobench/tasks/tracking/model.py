"""GOTURN-style regression tracker in plain torch, and the loop that tracks a sequence with it.

Held et al. (ECCV 2016) pass the target crop and the search crop through the same convolutional
layers (CaffeNet conv1-conv5 in the original). They concatenate the two feature maps and regress
the box in the search crop through fully connected layers, with dropout and an L1 loss. The
output is ``(x0, y0, x1, y1)`` in crop coordinates (see :mod:`.crops`). Here the encoder is a
small stack of 3x3 convolutions with max pooling, sized for 1-channel solar crops, and each crop
pair is standardised on the way in (:meth:`GoturnRegressor.forward`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from heliobench.tasks.tracking.boxes import as_boxes, clip_to_frame
from heliobench.tasks.tracking.crops import COORD_SCALE, CONTEXT_FACTOR, crop_pair, frame_tensor

#: Added to a target crop's standard deviation (flat crops, such as padding, stay finite).
STANDARDIZE_EPSILON = 1e-3
_MARGIN = (1 - 1 / CONTEXT_FACTOR) / 2
STILL_BOX = tuple(COORD_SCALE * v for v in (_MARGIN, _MARGIN, 1 - _MARGIN, 1 - _MARGIN))


class GoturnRegressor(nn.Module):
    """Siamese conv encoder, concatenated features and FC layers regressing 4 box coordinates.

    Each conv block is conv 3x3, ReLU, max-pool 2. So ``crop_size`` must be divisible by
    ``2 ** len(channels)``. The head has three FC layers of ``hidden`` units, each with ReLU and
    dropout (GOTURN's fc6, fc7 and fc7b, of 4096 units with dropout 0.5), then a linear layer to
    4 outputs (fc8). GOTURN starts fc8's bias at 0. Ours starts at ``STILL_BOX``: the previous
    box in its own context window, which is the answer when nothing moved. This spares the
    first training steps of learning a constant.
    """

    def __init__(self, in_channels: int = 1, crop_size: int = 128,
                 channels: Sequence[int] = (16, 32, 64, 128), hidden: int = 512,
                 dropout: float = 0.5):
        super().__init__()
        side = crop_size // 2 ** len(channels)
        if side < 1 or side * 2 ** len(channels) != crop_size:
            raise ValueError(f"crop_size {crop_size} must be a positive multiple of "
                             f"2 ** len(channels) = {2 ** len(channels)}")
        self.in_channels, self.crop_size = in_channels, crop_size
        blocks: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *channels[:-1]), channels):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        layers: list[nn.Module] = []
        width = 2 * channels[-1] * side * side
        for _ in range(3):
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        self.head = nn.Sequential(*layers, nn.Linear(hidden, 4))
        with torch.no_grad():  # start from "the target has not moved": the box at the window centre
            self.head[-1].bias.copy_(self.head[-1].bias.new_tensor(STILL_BOX))

    def forward(self, target: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """Boxes (B, 4) in search-crop coordinates from crops (B, C, crop_size, crop_size).

        Each pair is first standardised by its target crop's mean and standard deviation
        (GOTURN subtracts a mean image instead). The search crop gets the same shift and
        scale, so a change of brightness between the frames stays visible.
        """
        mean = target.mean(dim=(1, 2, 3), keepdim=True)
        scale = target.std(dim=(1, 2, 3), keepdim=True) + STANDARDIZE_EPSILON
        both = self.encoder(torch.cat([(target - mean) / scale, (search - mean) / scale], dim=0))
        return self.head(torch.cat(both.chunk(2, dim=0), dim=1))


def l1_box_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 loss: absolute errors summed over the 4 coordinates, averaged over the batch.

    GOTURN's Caffe net also sums over the batch (``Reduction`` ASUM). We average instead, so the
    learning rate does not depend on the batch size.
    """
    return (pred - target).abs().sum(dim=1).mean()


def track_sequence(model: GoturnRegressor, frames: np.ndarray | Sequence[ArrayLike],
                   first_box: ArrayLike) -> np.ndarray:
    """Track from ``first_box`` in frame 0 through ``frames``; returns boxes (T, 4).

    Frame t is searched at the window of the box found in frame t-1, as GOTURN does at test
    time. Each prediction is clipped to the frame. Row 0 is ``first_box``. Frames are (H, W) or
    (C, H, W) with ``model.in_channels`` channels.
    """
    device = next(model.parameters()).device
    tensors = [frame_tensor(frame).to(device) for frame in frames]
    boxes = np.empty((len(tensors), 4))
    boxes[0] = as_boxes(first_box, "first_box")[0]
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for t in range(1, len(tensors)):
            target, search, window = crop_pair(tensors[t - 1], tensors[t], boxes[t - 1],
                                               model.crop_size)
            coords = model(target[None], search[None]).double().cpu().numpy()
            boxes[t] = clip_to_frame(window.from_crop(coords), *tensors[t].shape[-2:])[0]
    model.train(was_training)
    return boxes

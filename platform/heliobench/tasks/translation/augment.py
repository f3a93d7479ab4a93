"""Park et al.'s training augmentation ("shake", ``shake_tensor`` in eunsu-park/solar_euv_generation).

Input and target are zero-padded by ``size/64 − 1`` pixels on each side and cropped back to the
original size at one random offset per batch: a random shift of up to ±15 px at 1024², ±3 px at 256²
and none at 64². The padding is zero in normalised units, as in the authors' code: 0 G for HMI and
log2 7, i.e. 127 DN, for AIA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shake_pad_px(size_px: int) -> int:
    """Padding, and largest shift, of the authors' ``shake_tensor`` for ``size_px``² images."""
    return max(size_px // 64 - 1, 0)


def shake(inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch (B, C, H, W) of inputs and targets shifted together by one random offset."""
    size = inputs.shape[-1]
    pad = shake_pad_px(size)
    if pad == 0:
        return inputs, targets
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=generator))

    def crop(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (pad, pad, pad, pad))[..., dy:dy + size, dx:dx + size]

    return crop(inputs), crop(targets)

"""Paired image/mask augmentation for segmentation, in the style of SCSS-Net's training pipeline.

The SCSS-Net notebooks augment with albumentations inside ``ImageDataAugmentor``, a drop-in
replacement for Keras' ``ImageDataGenerator``. The code author's thesis notebook
(harmi97/sun-segmentation, ``notebooks/model_train.ipynb``) uses HorizontalFlip(p=.5),
VerticalFlip(p=.5), Rotate((45, 45), p=.5, border replicate), RandomGamma((100, 150), p=.5) and
RandomBrightnessContrast((0, .2), (0, .4), p=.5). It builds one generator for images and a second
one for masks (``augment_mode='mask'``: spatial transforms only, nearest-neighbour), and the two
share ``augment_seed=42`` so that both draw the same geometric transform.

``augment_pair`` keeps the same families of transforms but makes the pairing explicit: a single
call draws one transform per sample and applies it to the image and the mask. So the pairing
cannot drift, as it can with two seeded streams. Differences from the reference:

- Flips and the rotation are combined into one ``affine_grid``/``grid_sample`` warp. The image
  is sampled bilinearly and the mask by nearest neighbour, both with border replication
  (``cv2.BORDER_REPLICATE``).
- The rotation angle is drawn uniformly in ``±max_rotation_deg`` on every call. The reference's
  ``Rotate((45, 45))`` always turns by exactly 45 degrees, with probability one half.
- Gamma, then contrast/brightness (albumentations' ``x * (1 + c) + b``), act on the image only and
  are always drawn from ranges that contain the identity. The image is clipped to [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_pair(image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, *,
                 max_rotation_deg: float = 45.0, gamma_range: tuple[float, float] = (0.8, 1.2),
                 brightness: float = 0.1, contrast: float = 0.1,
                 flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly flip, rotate and photometrically jitter an image and its mask together.

    ``image`` is float in [0, 1], shaped (C, H, W) or (B, C, H, W). ``mask`` is (K, H, W) or
    (B, K, H, W), usually K = 1, of any dtype, and keeps its dtype and values. Every sample in a batch gets its own
    transform. The result depends only on the inputs and the state of ``generator``.
    """
    batched = image.dim() == 4
    if image.dim() not in (3, 4) or mask.dim() != image.dim() \
            or mask.shape[-2:] != image.shape[-2:] or (batched and mask.shape[0] != image.shape[0]):
        raise ValueError(
            f"augment_pair expects image (C,H,W)/(B,C,H,W) and mask (K,H,W)/(B,K,H,W) with the "
            f"same batch size and H, W; got image {tuple(image.shape)}, mask {tuple(mask.shape)}")
    if not batched:
        image, mask = image.unsqueeze(0), mask.unsqueeze(0)
    n = image.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)

    def random_sign() -> torch.Tensor:
        if not flip:
            return torch.ones(n, dtype=torch.float64)
        return torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0).to(torch.float64)

    sign_x, sign_y = random_sign(), random_sign()
    angle = uniform(-max_rotation_deg, max_rotation_deg) * (math.pi / 180.0)
    gamma = uniform(*gamma_range)
    alpha = 1.0 + uniform(-contrast, contrast)
    beta = uniform(-brightness, brightness)

    grid = F.affine_grid(_warp_matrix(angle, sign_x, sign_y, image.shape[-2:]).to(image.dtype),
                         list(image.shape), align_corners=False)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border",
                           align_corners=False)
    warped_mask = F.grid_sample(mask.to(image.dtype), grid, mode="nearest",
                                padding_mode="border", align_corners=False).to(mask.dtype)
    out = _photometric(warped, gamma, alpha, beta)
    if not batched:
        out, warped_mask = out.squeeze(0), warped_mask.squeeze(0)
    return out, warped_mask


def _warp_matrix(angle: torch.Tensor, sign_x: torch.Tensor, sign_y: torch.Tensor,
                 size: torch.Size) -> torch.Tensor:
    """(B, 2, 3) ``affine_grid`` matrices: flips then a rotation in pixel space.

    Normalised coordinates scale x by 2/W and y by 2/H, so the off-diagonal terms carry the aspect
    ratio. Without it, a rotation of a non-square image would shear.
    """
    height, width = size
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(angle)
    row_x = torch.stack([cos * sign_x, -sin * (height / width) * sign_y, zero], dim=1)
    row_y = torch.stack([sin * (width / height) * sign_x, cos * sign_y, zero], dim=1)
    return torch.stack([row_x, row_y], dim=1)


def _photometric(image: torch.Tensor, gamma: torch.Tensor, alpha: torch.Tensor,
                 beta: torch.Tensor) -> torch.Tensor:
    """Per-sample gamma, then contrast ``alpha`` and brightness ``beta``; clipped to [0, 1]."""
    def per_sample(v: torch.Tensor) -> torch.Tensor:
        return v.to(image.dtype).view(-1, 1, 1, 1)

    out = image.clamp(0.0, 1.0) ** per_sample(gamma)
    return (out * per_sample(alpha) + per_sample(beta)).clamp(0.0, 1.0)

"""Input/target scaling of Park et al. (2019), as in the authors' code (eunsu-park/solar_euv_generation).

HMI: B clipped to ±3000 G, mapped linearly to [−1, 1].
AIA: log2 of (x + 1 DN) clipped to [1, 2^14], mapped from [0, 14] to [−1, 1]. The +1 DN offset is the
authors' (``np.log2((x + 1.).clip(1., 2.**14.))``) so that x = 0 maps to −1.
The inverses are exact on the representable range: |B| ≤ 3000 G and 0 ≤ x ≤ 2^14 − 1 DN.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

HMI_LIMIT_GAUSS = 3000.0
AIA_LOG2_MAX = 14.0


def _log2(x: Array) -> Array:
    return torch.log2(x) if isinstance(x, torch.Tensor) else np.log2(x)


def normalize_hmi(b_gauss: Array) -> Array:
    """Line-of-sight field in G → [−1, 1] (clipped at ±3000 G)."""
    return b_gauss.clip(-HMI_LIMIT_GAUSS, HMI_LIMIT_GAUSS) / HMI_LIMIT_GAUSS


def denormalize_hmi(y: Array) -> Array:
    """[−1, 1] → line-of-sight field in G."""
    return y.clip(-1.0, 1.0) * HMI_LIMIT_GAUSS


def normalize_aia(x_dn: Array) -> Array:
    """AIA intensity in DN (per s, as the paper) → [−1, 1] on a log2 scale."""
    return _log2((x_dn + 1.0).clip(1.0, 2.0**AIA_LOG2_MAX)) / (AIA_LOG2_MAX / 2) - 1.0


def denormalize_aia(y: Array) -> Array:
    """[−1, 1] → AIA intensity in DN; inverse of :func:`normalize_aia`."""
    return 2.0 ** ((y.clip(-1.0, 1.0) + 1.0) * (AIA_LOG2_MAX / 2)) - 1.0

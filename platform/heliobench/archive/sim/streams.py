"""Named random streams: every random draw of the simulator comes from one of these.

A stream is seeded by the run's seed, the stream's name and integer keys (a day index, a
time in seconds, a channel), so every draw is a pure function of (seed, what, when).
"""

from __future__ import annotations

import numpy as np

_STREAMS = {
    "active_regions": 1,
    "coronal_holes": 2,
    "filaments": 3,
    "polar_holes": 4,
    "pointing": 5,
    "noise": 6,
    "halpha": 7,
    "texture": 8,
    "quality": 9,
    "corona": 10,
}


def rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """The generator of ``stream`` for ``seed`` and integer ``keys``."""
    return np.random.default_rng([seed, _STREAMS[stream], *(int(k) for k in keys)])

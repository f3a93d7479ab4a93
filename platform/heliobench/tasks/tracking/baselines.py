"""Model-free tracking baselines: the box that stays, and the box carried by differential rotation.

A learned tracker is only worth its cost if it beats these. On the solar disk, most of an
event's apparent motion is rotation. Boxes follow :mod:`.boxes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sunpy.map import GenericMap
from sunpy.physics.differential_rotation import solar_rotate_coordinate

from heliobench.tasks.tracking.boxes import as_boxes, centres


def static_box_tracker(frames: Sequence[Any], first_box: ArrayLike) -> np.ndarray:
    """``first_box`` repeated for every frame: boxes (T, 4)."""
    return np.repeat(as_boxes(first_box, "first_box"), len(frames), axis=0)


def differential_rotation_tracker(maps: Sequence[GenericMap], first_box: ArrayLike) -> np.ndarray:
    """``first_box`` (in ``maps[0]``'s pixels) moved by solar differential rotation alone.

    The box centre becomes a helioprojective coordinate through ``maps[0]``'s WCS. SunPy's
    ``solar_rotate_coordinate`` (Howard et al. 1990 profile) rotates it to each map's observer
    and time, and the map's WCS turns it back into pixels. The box keeps its size. A centre
    off the disk, or rotated behind the limb, gives a NaN row (no prediction).
    """
    box = as_boxes(first_box, "first_box")
    x, y = centres(box)[0] - 0.5  # box coordinates -> WCS pixel coordinates (centres at integers)
    start = maps[0].wcs.pixel_to_world(x, y)
    boxes = np.empty((len(maps), 4))
    for t, sun_map in enumerate(maps):
        rotated = solar_rotate_coordinate(start, observer=sun_map.observer_coordinate)
        new_x, new_y = sun_map.wcs.world_to_pixel(rotated)
        boxes[t] = box[0] + np.array([new_x - x, new_y - y] * 2)
    return boxes

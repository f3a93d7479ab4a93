"""Model-free tracking baselines: the box that stays, and the box carried by differential rotation.

A learned tracker is only worth its cost if it beats these. On the solar disk, most of an
event's apparent motion is rotation. Boxes follow :mod:`.boxes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import astropy.units as u
import numpy as np
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.time import Time
from numpy.typing import ArrayLike
from sunpy.coordinates import Helioprojective, get_earth, sun
from sunpy.map import GenericMap
from sunpy.physics.differential_rotation import solar_rotate_coordinate

from heliobench.prep.pipeline import DISK_RADIUS_FRACTION
from heliobench.tasks.tracking.boxes import as_boxes, centres


def static_box_tracker(frames: Sequence[Any], first_box: ArrayLike) -> np.ndarray:
    """``first_box`` repeated for every frame: boxes (T, 4)."""
    return np.repeat(as_boxes(first_box, "first_box"), len(frames), axis=0)


def registered_map(size: int, time: datetime) -> GenericMap:
    """An empty map with the geometry of a default-registered ``size``-pixel frame seen from Earth at ``time``.

    The default registration (``prep/pipeline.py``) centres the Sun, puts north up and
    gives it a radius of ``size * DISK_RADIUS_FRACTION`` pixels, so the plate scale is the
    Sun's apparent radius at ``time`` over that radius. This is the WCS a shard frame had.
    """
    t = Time(time, scale="utc")
    scale = sun.angular_radius(t).to_value(u.arcsec) / (size * DISK_RADIUS_FRACTION)
    centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=Helioprojective, obstime=t, observer=get_earth(t))
    data = np.zeros((size, size), dtype=np.float32)
    header = sunpy.map.make_fitswcs_header(data, centre, scale=[scale, scale] * u.arcsec / u.pix,
                                           reference_pixel=[(size - 1) / 2, (size - 1) / 2] * u.pix)
    return sunpy.map.Map(data, header)


def rotate_boxes(boxes: ArrayLike, start: GenericMap, end: GenericMap) -> np.ndarray:
    """Boxes (N, 4) in ``start``'s pixels moved by solar differential rotation into ``end``'s pixels.

    Each box centre becomes a helioprojective coordinate through ``start``'s WCS. SunPy's
    ``solar_rotate_coordinate`` (Howard et al. 1990 profile) rotates it to ``end``'s observer
    and time, and ``end``'s WCS turns it back into pixels. Boxes keep their size. A centre
    off the disk, or rotated behind the limb, gives a NaN row (no prediction).
    """
    box = as_boxes(boxes)
    x, y = (centres(box) - 0.5).T  # box coordinates -> WCS pixel coordinates (centres at integers)
    rotated = solar_rotate_coordinate(start.wcs.pixel_to_world(x, y), observer=end.observer_coordinate)
    new_x, new_y = end.wcs.world_to_pixel(rotated)
    shift = np.stack([new_x - x, new_y - y], axis=-1)
    return box + np.concatenate([shift, shift], axis=-1)


def differential_rotation_tracker(maps: Sequence[GenericMap], first_box: ArrayLike) -> np.ndarray:
    """``first_box`` (in ``maps[0]``'s pixels) moved by differential rotation to every map: boxes (T, 4)."""
    box = as_boxes(first_box, "first_box")
    return np.concatenate([rotate_boxes(box, maps[0], sun_map) for sun_map in maps])

"""Full-disk browse images in PNG or JPEG (SDO quick-look images, the Reiss et al. /
CHRONNOS coronal-hole set): 8-bit display-scaled pixels with no header.

Such a file says nothing about itself, so two things come from elsewhere, both stated:

* **What and when** from the file name, which must hold the instrument and channel
  (``aia193``, ``AIA_193``, ``hmi_magnetogram``) and the time (``2014_07_15T21_59_55``,
  ``20140715_215955``, Helioviewer's ``2014_07_15__21_59_55_84``), as the SDO browse and
  the CHRONNOS files are named. Readers otherwise never trust a name: here there is
  nothing else.
* **Where the Sun is** from the pixels: the limb is found along 72 rays from the image
  centre (the steepest drop of brightness) and a circle is fitted to it. The plate scale
  follows from that radius and the Sun's apparent radius seen from Earth at that time
  (SDO's orbit is within 0.01 % of Earth's distance).

The header written for sunpy is an Earth-observer helioprojective WCS plus
``HB_PIXEL = 'display'``: the pixels are display values, not DN, and are never divided by
an exposure time.
"""

from __future__ import annotations

import io
import posixpath
import re
from datetime import datetime, timezone
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from heliobench.archive.readers.containers import ImageFile
from heliobench.archive.readers.keywords import possible_time
from heliobench.archive.readers.validation import check_shape
from heliobench.errors import ReaderError

#: File-name parts naming an instrument and channel, and the keywords that say the same in a FITS header.
_CHANNEL = re.compile(r"(?<![a-z])(?P<inst>aia|hmi)[_\-]?(?P<channel>\d{2,4}|magnetogram|continuum)(?![a-z])", re.I)
_TELESCOPES = {"AIA": ("SDO/AIA", "AIA"), "HMI": ("SDO/HMI", "HMI_FRONT2")}
#: File-name time stamps: 2014_07_15T21_59_55, 2014-07-15T21:59:55, 20140715_215955, 2014_07_15__21_59_55.
_TIME = re.compile(
    r"(?P<y>\d{4})[_\-]?(?P<m>\d{2})[_\-]?(?P<d>\d{2})(?:T|_{1,2})(?P<H>\d{2})[_:\-]?(?P<M>\d{2})[_:\-]?(?P<S>\d{2})"
)
#: Fraction of the half-width searched for the limb along each ray.
_LIMB_SEARCH = (0.5, 0.98)
_RAYS = 72
#: Least fall of brightness across the limb, as a share of the disk's median (real AIA 193 PNGs: 0.2-0.5).
_LIMB_CONTRAST = 0.1


def name_time(uri: str) -> datetime:
    """The UTC time stamp in a file name (``2014_07_15T21_59_55``, ``20140715_215955``...)."""
    when = _TIME.search(posixpath.basename(uri))
    if when is None:
        raise ReaderError(uri, "a PNG/JPEG file has no header, so its name must give the time (e.g. ..._2014_07_15T21_59_55.png)")
    try:
        stamp = datetime(*(int(when[k]) for k in "ymdHMS"), tzinfo=timezone.utc)
    except ValueError:
        raise ReaderError(uri, f"the time {when.group(0)!r} in the file name is not a valid date and time") from None
    return possible_time(stamp, f"the time {when.group(0)!r} in the file name", uri)


def name_parts(uri: str) -> tuple[str, str, datetime]:
    """Instrument, channel and UTC time named by a browse image's file name."""
    what = _CHANNEL.search(posixpath.basename(uri))
    if what is None:
        raise ReaderError(
            uri,
            "a PNG/JPEG image has no header, so its name must give the instrument and channel "
            "(e.g. sdo_aia193_2014_07_15T21_59_55.png); this one does not",
        )
    return what["inst"].upper(), what["channel"].lower(), name_time(uri)


def decode_raster(raw: bytes, uri: str) -> np.ndarray:
    """The pixels of a PNG/JPEG as float32 grey levels, row 0 at the bottom (FITS convention)."""
    try:
        with Image.open(io.BytesIO(raw)) as picture:
            grey = picture.convert("F") if picture.mode in ("I", "I;16", "F") else picture.convert("L")
            pixels = np.asarray(grey, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - PIL reports damaged images with many types (OSError, SyntaxError...)
        raise ReaderError(uri, f"not a readable PNG/JPEG image ({type(exc).__name__}: {exc})") from None
    return np.ascontiguousarray(pixels[::-1])


def grey_levels(raw: bytes, uri: str) -> list[int]:
    """The 8-bit grey levels present in a PNG/JPEG (PIL's histogram: no array is built)."""
    try:
        with Image.open(io.BytesIO(raw)) as picture:
            histogram = picture.convert("L").histogram()
    except Exception as exc:  # noqa: BLE001 - PIL reports damaged images with many types (OSError, SyntaxError...)
        raise ReaderError(uri, f"not a readable PNG/JPEG image ({type(exc).__name__}: {exc})") from None
    return [level for level, count in enumerate(histogram) if count]


def _steepest_drop(profiles: np.ndarray, start: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius of the fastest fall of each row of ``profiles`` (sampled at 1-px steps from
    ``start``) and the fall there, over ``width`` pixels of a ``width``-pixel running mean."""
    from scipy.ndimage import uniform_filter1d

    smooth = uniform_filter1d(np.atleast_2d(profiles), width, axis=1)
    change = smooth[:, width:] - smooth[:, :-width]
    steepest = np.argmin(change, axis=1)
    return start + steepest + width / 2, -change[np.arange(len(change)), steepest]


def fit_limb(pixels: np.ndarray, uri: str) -> tuple[float, float, float]:
    """Disk centre (0-based x, y) and radius in pixels, from the limb of a full-disk image.

    The limb is where the brightness, smoothed over 2 % of the half-width, falls fastest:
    first in the mean radial profile about the image centre (between 0.5 and 0.98 of the
    half-width; the fall must reach a tenth of the disk's median, or there is no limb),
    then along each of 72 rays within 7 % of that radius. A least-squares circle (Kåsa
    fit) through the ray points, refitted without points more than 3 % off it (a bright
    loop or a coronal hole at the limb), gives the disk.
    """
    ny, nx = pixels.shape
    if min(nx, ny) < 32:
        raise ReaderError(uri, f"an image of {nx}x{ny} pixels is too small to show the solar limb")
    half = min(nx, ny) / 2
    cx0, cy0 = (nx - 1) / 2, (ny - 1) / 2
    width = max(3, int(0.02 * half))
    yy, xx = np.indices(pixels.shape)
    distance = np.hypot(xx - cx0, yy - cy0)
    ring = distance.astype(int).ravel()
    mean_profile = np.bincount(ring, pixels.ravel()) / np.maximum(np.bincount(ring), 1)
    lo, hi = int(_LIMB_SEARCH[0] * half), int(_LIMB_SEARCH[1] * half)
    (r0,), (fall,) = _steepest_drop(mean_profile[lo:hi], lo, width)
    if not fall >= _LIMB_CONTRAST * np.median(pixels[distance < 0.9 * r0]):
        raise ReaderError(uri, "no solar limb found in this PNG/JPEG image: it does not look like a full-disk image")
    radii = np.arange(0.93 * r0, min(1.07 * r0, half))
    angles = np.linspace(0, 2 * np.pi, _RAYS, endpoint=False)
    xs = np.clip(np.rint(cx0 + np.outer(np.cos(angles), radii)).astype(int), 0, nx - 1)
    ys = np.clip(np.rint(cy0 + np.outer(np.sin(angles), radii)).astype(int), 0, ny - 1)
    r = _steepest_drop(pixels[ys, xs], radii[0], width)[0]
    px, py = cx0 + r * np.cos(angles), cy0 + r * np.sin(angles)
    cx, cy, radius = cx0, cy0, float(r0)
    for _ in range(3):
        keep = np.abs(np.hypot(px - cx, py - cy) - radius) < 0.03 * radius
        if keep.sum() < _RAYS // 3:
            raise ReaderError(uri, "no solar limb found in this PNG/JPEG image: it does not look like a full-disk image")
        a = np.column_stack([px[keep], py[keep], np.ones(keep.sum())])
        (c1, c2, c3), *_ = np.linalg.lstsq(a, px[keep] ** 2 + py[keep] ** 2, rcond=None)
        cx, cy = c1 / 2, c2 / 2
        radius = float(np.sqrt(max(c3 + cx**2 + cy**2, 0.0)))
    if not 0.2 * half < radius < half or np.hypot(cx - cx0, cy - cy0) > 0.1 * half:
        raise ReaderError(uri, f"the limb fitted in this PNG/JPEG image (radius {radius:.0f} px) is not a full solar disk")
    return float(cx), float(cy), radius


def raster_header(uri: str, pixels: np.ndarray) -> dict[str, Any]:
    """FITS keywords that place a browse image on the Sun (see the module docstring)."""
    from sunpy.coordinates import get_earth, sun

    instrument, channel, t = name_parts(uri)
    cx, cy, radius_px = fit_limb(pixels, uri)
    earth = get_earth(t)
    rsun_arcsec = float(sun.angular_radius(t).to_value("arcsec"))
    scale = rsun_arcsec / radius_px
    ny, nx = pixels.shape
    header: dict[str, Any] = {
        "NAXIS": 2, "NAXIS1": nx, "NAXIS2": ny,
        "DATE-OBS": t.strftime("%Y-%m-%dT%H:%M:%S"),
        "TELESCOP": _TELESCOPES[instrument][0], "INSTRUME": _TELESCOPES[instrument][1],
        "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
        "CDELT1": scale, "CDELT2": scale, "CRPIX1": cx + 1, "CRPIX2": cy + 1, "CRVAL1": 0.0, "CRVAL2": 0.0,
        "RSUN_OBS": rsun_arcsec, "DSUN_OBS": float(earth.radius.to_value("m")),
        "HGLN_OBS": 0.0, "HGLT_OBS": float(earth.lat.to_value("deg")),
        "HB_PIXEL": "display",
    }
    if channel.isdigit():
        header.update(WAVELNTH=int(channel), WAVEUNIT="angstrom")
    else:
        header["CONTENT"] = channel.upper()
    return header


def open_raster(raw: bytes, uri: str, file_format: str) -> ImageFile:
    """A PNG/JPEG full-disk browse image as an :class:`ImageFile` with a derived header."""
    pixels = decode_raster(raw, uri)
    check_shape(pixels.shape, uri)
    return ImageFile(uri=uri, file_format=file_format, header=raster_header(uri, pixels), shape=pixels.shape,
                     decode=partial(np.array, pixels, copy=True))

"""Checks that turn a damaged image into a reason a person understands.

A header whose pixel scale is 0, whose rotation matrix is singular or whose date is
impossible makes sunpy and astropy fail later with their own messages
(``SingularMatrixError: ERROR 3 in wcsset()...``), or worse, succeed with a wrong
geometry. These checks run first and say what is wrong in the file's own terms
(``CDELT1 = 0: the pixel scale is missing``), as a :class:`ReaderError` naming the file.

* :func:`check_shape` — the declared image size, before anything is allocated;
* :func:`check_observer` — ``RSUN_OBS`` as the file writes it;
* :func:`check_header` — WCS and exposure keywords of a header as sunpy will use it
  (after the per-instrument repairs of :mod:`.instruments`);
* :func:`check_record` — the geometry sunpy derived from them;
* :func:`check_pixels` — decoded pixels that hold no finite value (all NaN or infinite).
"""

from __future__ import annotations

import math
from typing import Any

import astropy.units as u
import numpy as np

from heliobench.archive.observation import ObservationRecord
from heliobench.archive.readers.keywords import Header, text
from heliobench.errors import ReaderError

#: Largest image side accepted (pixels): 4× the 4096² of SDO, room for any solar imager.
MAX_SIDE_PX = 16384

#: What each WCS keyword means, for the reasons given when it is missing or unusable.
_MEANING = {
    "CDELT": "the pixel scale",
    "CRPIX": "the reference pixel",
    "CRVAL": "the reference pixel's coordinates",
    "CROTA2": "the image rotation",
    "RSUN_OBS": "the Sun's apparent radius",
    "EXPTIME": "the exposure time",
}


def check_shape(shape: tuple[int, ...], uri: str) -> None:
    """An image of ``shape`` (ny, nx) as declared by its file: at least 1 pixel and at most
    :data:`MAX_SIDE_PX` per side (a damaged ``NAXISn`` would otherwise allocate gigabytes)."""
    ny, nx = shape
    if nx < 1 or ny < 1:
        raise ReaderError(uri, f"the image is declared {nx} x {ny} pixels: it has no pixels")
    if max(nx, ny) > MAX_SIDE_PX:
        raise ReaderError(uri, f"the image is declared {nx} x {ny} pixels, more than the {MAX_SIDE_PX}-pixel limit "
                               f"per side (a damaged NAXIS1/NAXIS2?)")


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _value(header: Header, key: str, uri: str, meaning: str) -> float | None:
    """The finite number ``key`` holds (None when absent); a reason when it holds anything else."""
    if key not in header:
        return None
    value = header[key]
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise ReaderError(uri, f"{key} = {_show(value)} is not a number: {meaning} is unreadable") from None
    if not math.isfinite(number):
        raise ReaderError(uri, f"{key} = {_show(value)}: {meaning} is missing")
    return number


def _matrix(header: Header, prefix: str, uri: str) -> np.ndarray | None:
    """The 2×2 matrix of ``PCi_j`` or ``CDi_j`` keywords (unset elements as the FITS defaults), None when none is set."""
    keys = [[f"{prefix}{i}_{j}" for j in (1, 2)] for i in (1, 2)]
    if not any(k in header for row in keys for k in row):
        return None
    default = (lambda i, j: float(i == j)) if prefix == "PC" else (lambda i, j: 0.0)
    meaning = "the image axes' orientation" if prefix == "PC" else "the pixel scale and rotation"
    values = [[_value(header, k, uri, meaning) for k in row] for row in keys]
    return np.array([[default(i, j) if v is None else v for j, v in enumerate(row)] for i, row in enumerate(values)])


def _check_singular(matrix: np.ndarray, prefix: str, uri: str) -> None:
    det = float(np.linalg.det(matrix))
    scale = float(np.abs(matrix).max())
    if scale == 0 or abs(det) <= 1e-12 * scale * scale:
        cells = ", ".join(f"{prefix}{i + 1}_{j + 1} = {matrix[i, j]:g}" for i in range(2) for j in range(2))
        raise ReaderError(uri, f"{cells} form a singular matrix: the image axes collapse onto a line (a damaged rotation "
                               f"or scale keyword)")


def _angle_unit(header: Header, key: str, uri: str) -> u.UnitBase:
    """The angle unit ``CUNITi`` names (arcsec where absent, as sunpy assumes)."""
    name = text(header, key)
    if name is None:
        return u.arcsec
    try:
        unit = u.Unit(name)
    except (ValueError, TypeError):
        unit = None
    if unit is None or unit.physical_type != "angle":
        raise ReaderError(uri, f"{key} = {name!r} is not an angle unit (arcsec, deg): the image cannot be placed on the sky")
    return unit


def check_observer(header: Header, uri: str) -> None:
    """``RSUN_OBS`` as the file writes it: a positive number where present.

    Not asked of Helioviewer JPEG 2000 files, whose placeholder observer keywords
    (``RSUN_OBS = 0``) :func:`.instruments.repair_header` removes.
    """
    rsun = _value(header, "RSUN_OBS", uri, _MEANING["RSUN_OBS"])
    if rsun is not None and rsun <= 0:
        raise ReaderError(uri, f"RSUN_OBS = {_show(rsun)}: {_MEANING['RSUN_OBS']} is missing")


def check_header(header: Header, shape: tuple[int, int], uri: str) -> None:
    """The keywords sunpy places an image of ``shape`` (ny, nx) with, as they stand before the Map is built.

    ``CDELTi`` (or a ``CDi_j`` matrix) and ``CRPIXi`` must be present; they, ``CRVALi``,
    ``CROTA2``, ``PCi_j`` and ``EXPTIME`` must be finite numbers where present; no
    ``CDELTi`` may be 0 nor make the image wider than the sky, and neither matrix be
    singular; ``CUNITi`` must be an angle and ``EXPTIME`` not negative.
    """
    cd = _matrix(header, "CD", uri)
    for i, pixels in ((1, shape[1]), (2, shape[0])):
        scale = _value(header, f"CDELT{i}", uri, _MEANING["CDELT"])
        if scale is None and cd is None:
            raise ReaderError(uri, f"no CDELT{i} keyword (nor a CD matrix): {_MEANING['CDELT']} is unknown")
        if scale == 0:
            raise ReaderError(uri, f"CDELT{i} = 0: {_MEANING['CDELT']} is missing")
        unit = _angle_unit(header, f"CUNIT{i}", uri)
        if scale is not None and abs(scale) * pixels * unit.to(u.deg) > 360:
            raise ReaderError(uri, f"CDELT{i} = {_show(scale)} {unit}: {_MEANING['CDELT']} makes the image "
                                   f"{pixels} pixels across wider than the whole sky")
        if _value(header, f"CRPIX{i}", uri, _MEANING["CRPIX"]) is None:
            raise ReaderError(uri, f"no CRPIX{i} keyword: {_MEANING['CRPIX']} is unknown")
        _value(header, f"CRVAL{i}", uri, _MEANING["CRVAL"])
    for prefix, matrix in (("CD", cd), ("PC", _matrix(header, "PC", uri))):
        if matrix is not None:
            _check_singular(matrix, prefix, uri)
    _value(header, "CROTA2", uri, _MEANING["CROTA2"])
    exposure = _value(header, "EXPTIME", uri, _MEANING["EXPTIME"])
    if exposure is not None and exposure < 0:
        raise ReaderError(uri, f"EXPTIME = {_show(exposure)}: a negative exposure time")


#: The catalog record's geometry, by what it is called in a reason.
_GEOMETRY = {
    "cdelt1": "pixel scale", "cdelt2": "pixel scale", "crota2": "rotation", "dsun_obs_m": "observer distance",
    "hgln_obs_deg": "observer longitude", "hglt_obs_deg": "observer latitude", "disk_x_px": "disk centre",
    "disk_y_px": "disk centre", "disk_radius_px": "disk radius",
}


def check_record(record: ObservationRecord) -> None:
    """The geometry sunpy derived from a header that passed :func:`check_header`: finite, and
    a positive disk radius (keywords in range one by one can still combine into nonsense)."""
    for field, meaning in _GEOMETRY.items():
        value = getattr(record, field)
        if value is not None and not math.isfinite(value):
            raise ReaderError(record.uri, f"the header's coordinate keywords give no finite {meaning} ({field} = {value})")
    if record.disk_radius_px is not None and record.disk_radius_px <= 0:
        raise ReaderError(record.uri, f"the header's coordinate keywords give a disk radius of {record.disk_radius_px:g} pixels")


def check_pixels(data: np.ndarray, uri: str) -> None:
    """Decoded pixels: a 2-D image with at least one finite value (integers always are)."""
    if data.ndim != 2:
        raise ReaderError(uri, f"the image data is {data.ndim}-D ({' x '.join(map(str, data.shape))}); expected a 2-D image")
    if data.dtype.kind in "fc" and not _any_finite(data):
        raise ReaderError(uri, "the image holds no finite pixel value (every pixel is NaN or infinite)")


def _any_finite(data: np.ndarray) -> bool:
    """Whether ``data`` holds a finite value: a sparse sample first (a real image answers there), then every pixel."""
    flat = data.reshape(-1)
    step = max(1, flat.size // 4096)
    return bool(np.isfinite(flat[::step]).any() or np.isfinite(flat).any())


#: The start of a FITS header card giving an axis count (``NAXIS`` or a compressed image's ``ZNAXIS``).
_AXIS_COUNT_KEYS = (b"NAXIS   =", b"ZNAXIS  =")
#: The FITS standard's limit on the number of axes.
MAX_AXES = 999


def check_axis_counts(raw: bytes, uri: str) -> None:
    """Refuse a FITS file whose headers declare an impossible number of axes: astropy reads
    ``NAXIS1`` ... ``NAXISn`` one by one and would run for hours on ``NAXIS = 2147483648``.

    The cards are found with ``bytes.find`` (a pass over a 4096² image's pixels at memory speed)."""
    for key in _AXIS_COUNT_KEYS:
        at = raw.find(key)
        while at >= 0:
            if at % 80 == 0:  # a header card, not pixel bytes that happen to spell it
                _check_axis_count(key, raw[at + len(key):at + 80].split(b"/", 1)[0], uri)  # the rest of the 80-byte card
            at = raw.find(key, at + 1)


def _check_axis_count(key: bytes, value: bytes, uri: str) -> None:
    text = value.strip().decode("ascii", "replace")
    try:
        count = int(text)
    except ValueError:
        return  # not a count at all: astropy says so itself
    if not 0 <= count <= MAX_AXES:
        name = key.decode().rstrip("= ")
        raise ReaderError(uri, f"{name} = {text}: a FITS image has 0 to {MAX_AXES} axes, the header is damaged")

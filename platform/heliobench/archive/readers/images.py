"""Observation images: the catalog record from the header alone, and the full sunpy Map.

Both go through the same steps, so a record's disk geometry is exactly what the Map
says: open the container, identify instrument and channel, repair the header, build the
Map (for the record, over a zero-cost stand-in array of the right shape).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import astropy.units as u
import astropy.wcs
import numpy as np
import sunpy
from astropy.coordinates import SkyCoord
from sunpy.coordinates import frames

from heliobench.archive.observation import ObservationRecord
from heliobench.archive.readers import instruments, validation
from heliobench.archive.readers.containers import ImageFile, open_image, stand_in
from heliobench.archive.readers.keywords import (
    Header,
    display_scaled,
    image_type,
    number,
    observation_time,
    processing_level,
    quality_word,
    text,
)
from heliobench.errors import ReaderError

if TYPE_CHECKING:
    import sunpy.map


@dataclass(frozen=True)
class Observation:
    """An image file understood: what took it, when, and a header sunpy can use."""

    image: ImageFile
    instrument: str
    channel: str
    obs_time: datetime
    header: Header  # repaired (see instruments.repair_header)


def read_header(raw: bytes, uri: str) -> ObservationRecord:
    """The catalog record of one FITS / gzipped FITS / JPEG 2000 observation, from its header only."""
    observation = understand(open_image(raw, uri))
    if observation.image.stored_floats is not None:  # pixels that cost nothing to check are checked here already
        validation.check_pixels(observation.image.stored_floats, uri)
    record = _record(observation, geometry_map(observation))
    validation.check_record(record)
    return record


def read_map(raw: bytes, uri: str) -> sunpy.map.GenericMap:
    """The observation as a sunpy Map (AIAMap, HMIMap... where sunpy knows the instrument)."""
    observation = understand(open_image(raw, uri))
    data = observation.image.decode()
    validation.check_pixels(data, uri)
    return _to_map(observation, data)


def geometry_map(observation: Observation) -> sunpy.map.GenericMap:
    """The observation's Map over a zero-cost stand-in of its pixels: every keyword, no pixel
    decoded. An HMI map gets no plot normalisation: sunpy's HMIMap would otherwise set one
    from the pixels (``nanmax(abs(data))``, a 64 MB temporary and 13 ms at 4096²); other
    sources (MDIMap) need theirs."""
    return _to_map(observation, stand_in(observation.image.shape), **({"plot_settings": {"norm": None}} if observation.instrument == "HMI" else {}))


def decode_pixels(image: ImageFile, binning: int = 1) -> np.ndarray:
    """The checked pixels of ``image`` (:func:`.validation.check_pixels`) or, with ``binning``
    > 1, their means over binning x binning boxes (:meth:`ImageFile.box_means`)."""
    if binning == 1:
        data = image.decode()
        validation.check_pixels(data, image.uri)
        return data
    means = image.box_means(binning)
    if not np.isfinite(means).any():  # every box holds a NaN: say whether any pixel is finite
        validation.check_pixels(image.decode(), image.uri)
    return means


def understand(image: ImageFile) -> Observation:
    """Identify instrument, channel and time of ``image``, repair its header and check the
    keywords sunpy will use (:mod:`.validation`)."""
    header, uri = image.header, image.uri
    instrument = instruments.identify_instrument(header, uri)
    obs_time = observation_time(header, uri)
    if image.file_format != "jp2":  # Helioviewer's placeholder observer keywords are repaired instead
        validation.check_observer(header, uri)
    repaired = instruments.repair_header(header, instrument, obs_time, image.shape, uri)
    validation.check_header(repaired, image.shape, uri)
    return Observation(
        image=image,
        instrument=instrument,
        channel=instruments.channel(header, instrument, uri),
        obs_time=obs_time,
        header=repaired,
    )


@contextmanager
def quiet_sunpy() -> Iterator[None]:
    """Silence sunpy's notes about assumed metadata (the record states what was used).

    A filter on sunpy's logger rather than ``setLevel``: setting a level clears the cache of
    every logger in the process (hundreds under Ray), which cost more than building the Map.
    """
    added = _errors_only not in sunpy.log.filters  # a nested use leaves the outer one's filter in place
    if added:
        sunpy.log.addFilter(_errors_only)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if added:
            sunpy.log.removeFilter(_errors_only)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _to_map(observation: Observation, data: np.ndarray, **kwargs: Any) -> sunpy.map.GenericMap:
    import sunpy.map  # on first use: importing it takes seconds, which every Ray Train worker would pay

    with quiet_sunpy():
        try:
            return sunpy.map.Map(data, observation.header, **kwargs)
        except Exception as exc:  # sunpy/astropy reject unusable WCS keywords with many types
            raise ReaderError(
                observation.image.uri, f"the header's coordinate keywords are unusable ({type(exc).__name__}: {exc})"
            ) from None


#: Projection parameter keywords (PVi_m), as sunpy finds them in a map's metadata.
_PV_KEY = re.compile(r"pv[1-9]\d?_(?:0|[1-9]\d?)$", re.IGNORECASE)


def _pixel_wcs(smap: sunpy.map.GenericMap) -> astropy.wcs.WCS | None:
    """The map's celestial WCS from the keywords sunpy's ``Map.wcs`` takes for it (reference
    pixel and value, scale, units, PC matrix, projection), without its observer and dates:
    the same pixel <-> helioprojective mapping (wcslib) at a fraction of the cost, as these
    move no pixel. None for maps that are not plainly helioprojective (other frames,
    projection parameters): they go through sunpy's own WCS and coordinate frames."""
    ctypes = smap.coordinate_system
    if {str(ctypes[0])[:4], str(ctypes[1])[:4]} != {"HPLN", "HPLT"} or any(_PV_KEY.match(k) for k in smap.meta):
        return None
    units = smap.spatial_units
    wcs = astropy.wcs.WCS(naxis=2)
    wcs.wcs.crpix = u.Quantity(smap.reference_pixel) + 1 * u.pix
    wcs.wcs.cdelt = u.Quantity([smap.scale[0].to(units[0] / u.pix), smap.scale[1].to(units[1] / u.pix)])
    wcs.wcs.crval = u.Quantity([smap.meta.get("crval1", 0.0) * units[0], smap.meta.get("crval2", 0.0) * units[1]])
    wcs.wcs.ctype = ctypes
    wcs.wcs.pc = smap.rotation_matrix
    wcs.wcs.crota = (0, 0)
    wcs.wcs.cunit = units
    wcs.wcs.set()
    return wcs


def _disk(smap: sunpy.map.GenericMap, wcs: astropy.wcs.WCS | None) -> tuple[float, float, float] | None:
    """Disk centre (0-based x, y pixels) and radius (pixels) of a helioprojective map: the
    pixel of helioprojective (0", 0") through ``wcs`` (:func:`_pixel_wcs`), else through
    sunpy's coordinate frames."""
    if wcs is not None:
        x, y = wcs.world_to_pixel_values(0.0, 0.0)
    elif isinstance(smap.coordinate_frame, frames.Helioprojective):
        centre = smap.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
        x, y = centre.x.to_value(u.pix), centre.y.to_value(u.pix)
    else:
        return None
    radius = (smap.rsun_obs / smap.scale.axis1).to_value(u.pix)
    return float(x), float(y), float(radius)


def _data_kind(instrument: str, disk: tuple[float, float, float] | None, shape: tuple[int, int]) -> str:
    """``cea_patch`` without a disk; ``full_disk`` when a full-disk imager's frame holds the
    Sun centre; ``partial_disk`` otherwise (cut-outs, TRACE)."""
    if disk is None:
        return "cea_patch"
    ny, nx = shape
    centre_in_frame = -0.5 <= disk[0] <= nx - 0.5 and -0.5 <= disk[1] <= ny - 0.5
    return "full_disk" if centre_in_frame and instrument in instruments.FULL_DISK_IMAGERS else "partial_disk"


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _record(observation: Observation, smap: sunpy.map.GenericMap) -> ObservationRecord:
    image, header = observation.image, observation.header
    with quiet_sunpy():
        try:
            wcs = _pixel_wcs(smap)
            disk = _disk(smap, wcs)
            ctypes = (wcs or smap.wcs).wcs.ctype
            observer = smap.observer_coordinate
            rsun_obs = float(smap.rsun_obs.to_value(u.arcsec))
            dsun = float(smap.dsun.to_value(u.m))
            rotation = smap.rotation_matrix
            scale, units = smap.scale, smap.spatial_units
            observatory, detector = smap.observatory, smap.detector
        except Exception as exc:  # observer/coordinate failures come from sunpy and astropy
            raise ReaderError(image.uri, f"cannot place the image on the Sun ({type(exc).__name__}: {exc})") from None
    ny, nx = image.shape
    return ObservationRecord(
        uri=image.uri,
        instrument=observation.instrument,
        channel=observation.channel,
        obs_time=observation.obs_time,
        file_format=image.file_format,
        data_kind=_data_kind(observation.instrument, disk, image.shape),
        nx=nx,
        ny=ny,
        wavelength_angstrom=instruments.wavelength_angstrom(header),
        exposure_s=number(header, "EXPTIME"),
        quality=quality_word(header, image.uri),
        image_type=image_type(header),
        level=processing_level(header),
        bunit=text(header, "BUNIT"),
        display_scaled=display_scaled(header),
        ctype1=ctypes[0],
        ctype2=ctypes[1],
        cunit1=units.axis1.to_string(),
        cunit2=units.axis2.to_string(),
        cdelt1=float(scale.axis1.value),
        cdelt2=float(scale.axis2.value),
        crpix1=number(header, "CRPIX1"),
        crpix2=number(header, "CRPIX2"),
        crval1=number(header, "CRVAL1"),
        crval2=number(header, "CRVAL2"),
        crota2=math.degrees(math.atan2(rotation[1, 0], rotation[0, 0])),
        rsun_obs_arcsec=rsun_obs if math.isfinite(rsun_obs) and rsun_obs > 0 else None,
        dsun_obs_m=dsun,
        hgln_obs_deg=float(observer.lon.to_value(u.deg)) if observer is not None else None,
        hglt_obs_deg=float(observer.lat.to_value(u.deg)) if observer is not None else None,
        disk_x_px=disk[0] if disk else None,
        disk_y_px=disk[1] if disk else None,
        disk_radius_px=disk[2] if disk else None,
        observatory="Kanzelhöhe" if observation.instrument == "KSO" else _optional_str(observatory),
        detector=_optional_str(detector),
    )

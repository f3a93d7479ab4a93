"""Observation images: the catalog record from the header alone, and the full sunpy Map.

Both go through the same steps, so a record's disk geometry is exactly what the Map
says: open the container, identify instrument and channel, repair the header, build the
Map (for the record, over a zero-cost stand-in array of the right shape).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import astropy.units as u
import numpy as np
import sunpy
import sunpy.map
from astropy.coordinates import SkyCoord
from sunpy.coordinates import frames

from heliobench.archive.observation import ObservationRecord
from heliobench.archive.readers import instruments
from heliobench.archive.readers.containers import ImageFile, open_image
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
    stand_in = np.broadcast_to(np.zeros((), dtype=np.float32), observation.image.shape)
    return _record(observation, _to_map(observation, stand_in))


def read_map(raw: bytes, uri: str) -> sunpy.map.GenericMap:
    """The observation as a sunpy Map (AIAMap, HMIMap... where sunpy knows the instrument)."""
    observation = understand(open_image(raw, uri))
    return _to_map(observation, observation.image.decode())


def understand(image: ImageFile) -> Observation:
    """Identify instrument, channel and time of ``image`` and repair its header."""
    header, uri = image.header, image.uri
    instrument = instruments.identify_instrument(header, uri)
    obs_time = observation_time(header, uri)
    return Observation(
        image=image,
        instrument=instrument,
        channel=instruments.channel(header, instrument, uri),
        obs_time=obs_time,
        header=instruments.repair_header(header, instrument, obs_time, image.shape, uri),
    )


@contextmanager
def quiet_sunpy() -> Iterator[None]:
    """Silence sunpy's notes about assumed metadata (the record states what was used)."""
    level = sunpy.log.level
    sunpy.log.setLevel("ERROR")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sunpy.log.setLevel(level)


def _to_map(observation: Observation, data: np.ndarray) -> sunpy.map.GenericMap:
    with quiet_sunpy():
        try:
            return sunpy.map.Map(data, observation.header)
        except Exception as exc:  # sunpy/astropy reject unusable WCS keywords with many types
            raise ReaderError(
                observation.image.uri, f"the header's coordinate keywords are unusable ({type(exc).__name__}: {exc})"
            ) from None


def _disk(smap: sunpy.map.GenericMap) -> tuple[float, float, float] | None:
    """Disk centre (0-based x, y pixels) and radius (pixels) of a helioprojective map."""
    if not isinstance(smap.coordinate_frame, frames.Helioprojective):
        return None
    centre = smap.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    radius = (smap.rsun_obs / smap.scale.axis1).to_value(u.pix)
    return float(centre.x.to_value(u.pix)), float(centre.y.to_value(u.pix)), float(radius)


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
            disk = _disk(smap)
            observer = smap.observer_coordinate
            rsun_obs = float(smap.rsun_obs.to_value(u.arcsec))
            dsun = float(smap.dsun.to_value(u.m))
            rotation = smap.rotation_matrix
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
        ctype1=smap.wcs.wcs.ctype[0],
        ctype2=smap.wcs.wcs.ctype[1],
        cunit1=smap.spatial_units.axis1.to_string(),
        cunit2=smap.spatial_units.axis2.to_string(),
        cdelt1=float(smap.scale.axis1.value),
        cdelt2=float(smap.scale.axis2.value),
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
        observatory="Kanzelhöhe" if observation.instrument == "KSO" else _optional_str(smap.observatory),
        detector=_optional_str(smap.detector),
    )

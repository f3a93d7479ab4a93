"""The image a preprocessing step sees: pixels plus the geometry read from the Map's WCS."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from heliobench.archive.observation import INSTRUMENTS
from heliobench.archive.readers.keywords import display_scaled

if TYPE_CHECKING:
    import sunpy.map

    from heliobench.archive.readers.images import Observation

#: Instruments whose channel is an observable (read from the header's CONTENT), not a wavelength.
_MAGNETOGRAPHS = ("HMI", "MDI")


@dataclass(frozen=True, eq=False)
class PrepImage:
    """A 2-D image with the geometry preprocessing needs.

    Pixel coordinates are 0-based ``(x, y)`` = (column, row); the linear part of the WCS
    maps a pixel offset ``p`` to helioprojective offsets in arcsec as
    ``diag(scale_arcsec) @ rotation_matrix @ p`` (FITS CDELT and PC). Pixels are assumed
    square where a radius in pixels is needed (``disk_radius_px``).

    ``binning`` > 1: ``data`` holds the means over binning x binning boxes of the image the
    geometry describes (``ImageFile.box_means``, for a registration that averages those
    boxes first); only :class:`~heliobench.prep.register.Register` takes such an image.
    """

    data: np.ndarray  # float32, shape (ny, nx)
    scale_arcsec: tuple[float, float]  # CDELT1, CDELT2 in arcsec / pixel
    rotation_matrix: tuple[tuple[float, float], tuple[float, float]]  # PC matrix
    reference_px: tuple[float, float]  # CRPIX, 0-based
    reference_arcsec: tuple[float, float]  # CRVAL in arcsec
    disk_center_px: tuple[float, float]  # pixel of the Sun's centre (HPC 0", 0"), 0-based
    rsun_arcsec: float  # apparent solar radius
    obs_time: datetime  # timezone-aware UTC
    instrument: str
    channel: str
    exposure_s: float | None
    display_scaled: bool = False  # display values (HB_PIXEL = 'display'): no photometric calibration applies
    binning: int = 1  # data: means over binning x binning boxes of the described image

    @classmethod
    def from_map(
        cls, smap: sunpy.map.GenericMap, instrument: str | None = None, channel: str | None = None,
        obs_time: datetime | None = None,
    ) -> PrepImage:
        """Read pixels and geometry from a sunpy Map with a helioprojective WCS.

        ``instrument``, ``channel`` and ``obs_time`` (UTC) override what is guessed from the
        header (pass the catalog's values where they are known: sunpy's ``date`` parses the
        header's time again). A map in any other frame (a CEA patch in
        heliographic degrees) is a :class:`~heliobench.prep.base.PrepError`: its pixels
        are not on the disk as seen from the observer.
        """
        from heliobench.prep.base import PrepError

        ctypes = [str(smap.meta.get(f"ctype{i}", "")).upper().replace("_", "-") for i in (1, 2)]
        if not (ctypes[0].startswith(("HPLN", "SOLAR-X")) and ctypes[1].startswith(("HPLT", "SOLAR-Y"))):  # SOLAR-X: old MDI/EIT
            raise PrepError(f"a {'/'.join(ctypes)} image is not helioprojective (a CEA or heliographic patch): "
                            "it cannot be registered onto the solar disk")
        per_px = u.arcsec / u.pix
        name = instrument or _instrument_name(smap)
        scale_q = smap.scale
        scale = (scale_q[0].to_value(per_px), scale_q[1].to_value(per_px))
        rotation = _pair_of_pairs(_rotation_matrix(smap, scale_q))
        reference_px = (smap.reference_pixel.x.to_value(u.pix), smap.reference_pixel.y.to_value(u.pix))
        # CRVAL straight from the header in its CUNIT: sunpy's reference_coordinate and
        # world_to_pixel build coordinate frames, which cost more than decoding a 1024² image.
        reference_arcsec = tuple(u.Quantity(smap.meta[f"crval{i + 1}"], unit).to_value(u.arcsec)
                                 for i, unit in enumerate(smap.spatial_units))
        return cls._on_wcs(
            np.asarray(smap.data, dtype=np.float32), scale, rotation, reference_px, reference_arcsec,
            rsun_arcsec=float(smap.rsun_obs.to_value(u.arcsec)),
            obs_time=obs_time or smap.date.utc.to_datetime(timezone=timezone.utc),
            instrument=name,
            channel=channel or _channel_name(smap, name),
            exposure_s=None if smap.exposure_time is None else float(smap.exposure_time.to_value(u.s)),
            display_scaled=display_scaled(smap.meta),
        )

    @classmethod
    def from_observation(cls, observation: Observation) -> PrepImage:
        """The geometry of an observation the readers understood, over a zero-cost stand-in of
        its pixels (:meth:`with_data` gives them): :meth:`from_map` of its geometry Map, with
        the catalog's instrument, channel and time.

        For AIA and HMI headers with helioprojective axes in arcsec, a rotation by CROTA2
        alone, the radius in ``RSUN_OBS`` (or ``SOLAR_R``, ``RADIUS``) and an exposure in
        seconds, the same numbers are read straight from the repaired header, as sunpy reads
        them (AIAMap and HMIMap take these properties from GenericMap): building the Map costs
        about 0.8 ms an image, a tenth of decoding a 1024² one. Any other header builds the Map.
        """
        geometry = _plain_geometry(observation.header, observation.instrument) if observation.channel else None
        if geometry is None:
            from heliobench.archive.readers.images import geometry_map

            return cls.from_map(geometry_map(observation), observation.instrument, observation.channel, observation.obs_time)
        from heliobench.archive.readers.containers import stand_in

        scale, rotation, reference_px, reference_arcsec, rsun, exposure = geometry
        return cls._on_wcs(
            stand_in(observation.image.shape), scale, rotation, reference_px, reference_arcsec, rsun_arcsec=rsun,
            obs_time=observation.obs_time, instrument=observation.instrument, channel=observation.channel,
            exposure_s=exposure, display_scaled=display_scaled(observation.header),
        )

    @classmethod
    def _on_wcs(cls, data: np.ndarray, scale_arcsec: tuple[float, float],
                rotation_matrix: tuple[tuple[float, float], tuple[float, float]], reference_px: tuple[float, float],
                reference_arcsec: tuple[float, float], **fields) -> PrepImage:
        """An image whose disk centre follows from the linear part of its WCS (``fields``: the rest)."""
        centre = _linear_world_to_pixel(scale_arcsec, rotation_matrix, reference_px, reference_arcsec, np.zeros(1), np.zeros(1))
        return cls(data=data, scale_arcsec=scale_arcsec, rotation_matrix=rotation_matrix, reference_px=reference_px,
                   reference_arcsec=reference_arcsec, disk_center_px=(float(centre[0][0]), float(centre[1][0])), **fields)

    @property
    def plate_scale_arcsec(self) -> float:
        """Mean plate scale (arcsec / pixel), the square root of the pixel area."""
        return math.sqrt(abs(self.scale_arcsec[0] * self.scale_arcsec[1]))

    @property
    def disk_radius_px(self) -> float:
        """Apparent solar radius in pixels."""
        return self.rsun_arcsec / self.plate_scale_arcsec

    @property
    def rotation_deg(self) -> float:
        """Roll angle of the image (CROTA2 convention): 0 when solar north is up."""
        pc = self.rotation_matrix
        return math.degrees(math.atan2(pc[1][0], pc[0][0]))

    @property
    def observation(self) -> str:
        """A short name of the observation for messages, e.g. ``AIA 171 2011-03-19T10:54:00``."""
        return f"{self.instrument} {self.channel} {self.obs_time:%Y-%m-%dT%H:%M:%S}"

    def world_to_pixel(self, tx_arcsec: np.ndarray, ty_arcsec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel ``(x, y)`` of helioprojective ``(Tx, Ty)`` in arcsec, by the WCS's linear part.

        The gnomonic (TAN) projection departs from linear by under 0.01% within 1.1 R☉,
        far below a pixel at any SDO resolution.
        """
        return _linear_world_to_pixel(self.scale_arcsec, self.rotation_matrix, self.reference_px,
                                      self.reference_arcsec, tx_arcsec, ty_arcsec)

    def with_data(self, data: np.ndarray, **changes) -> PrepImage:
        """A copy with new pixels (cast to float32) and optionally other fields changed."""
        return dataclasses.replace(self, data=np.asarray(data, dtype=np.float32), **changes)


def disk_distance(image: PrepImage) -> np.ndarray:
    """Distance of every pixel's centre from the disk centre, in solar radii."""
    ny, nx = image.data.shape
    cx, cy = image.disk_center_px
    y, x = np.ogrid[:ny, :nx]
    return np.hypot(x - cx, y - cy) / image.disk_radius_px


def disk_mask(image: PrepImage, fraction: float = 0.99) -> np.ndarray:
    """Boolean on-disk mask ``r < fraction * R_sun`` on the image's pixel grid."""
    return disk_distance(image) < fraction


def _linear_world_to_pixel(scale_arcsec, rotation_matrix, reference_px, reference_arcsec,
                           tx_arcsec: np.ndarray, ty_arcsec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel ``(x, y)`` of helioprojective arcsec by the linear part of a FITS WCS."""
    linear = np.diag(scale_arcsec) @ np.asarray(rotation_matrix)
    offsets = np.stack([np.asarray(tx_arcsec, float) - reference_arcsec[0],
                        np.asarray(ty_arcsec, float) - reference_arcsec[1]])
    px = np.linalg.solve(linear, offsets.reshape(2, -1)).reshape(offsets.shape)
    return px[0] + reference_px[0], px[1] + reference_px[1]


#: Keywords that make sunpy take a map's rotation from a PC or CD matrix rather than CROTA2.
_MATRIX_KEYS = ("pc1_1", "pc1_2", "pc2_1", "pc2_2", "cd1_1", "cd1_2", "cd2_1", "cd2_2")


def _rotation_matrix(smap: sunpy.map.GenericMap, scale: tuple[u.Quantity, u.Quantity]) -> np.ndarray:
    """``smap.rotation_matrix``. A map rotated by CROTA2 alone (AIA and HMI level 1) gets
    sunpy's ``_rotation_matrix_from_crota`` evaluated on the floats it computes with (sunpy
    divides Quantities: 0.35 ms a map, more than the rest of the geometry); a map with PC
    or CD keywords, a source with its own rotation, or axes in different units asks sunpy."""
    from sunpy.map import GenericMap

    source = type(smap)
    plain = (source.rotation_matrix is GenericMap.rotation_matrix
             and source._rotation_matrix_from_crota is GenericMap._rotation_matrix_from_crota)
    if not plain or scale[0].unit != scale[1].unit or any(key in smap.meta for key in _MATRIX_KEYS):
        return np.asarray(smap.rotation_matrix, dtype=float)
    return _crota_matrix(scale[0].value, scale[1].value, smap.meta.get("crota2", 0))


def _crota_matrix(cdelt1: float, cdelt2: float, crota2: float) -> np.ndarray:
    """sunpy's ``GenericMap._rotation_matrix_from_crota`` on floats."""
    lam = cdelt2 / cdelt1
    angle = np.deg2rad(crota2)
    return np.array([[np.cos(angle), -1 * lam * np.sin(angle)], [1 / lam * np.sin(angle), np.cos(angle)]])


#: Instruments whose sunpy source (AIAMap, HMIMap, or GenericMap for a header sunpy does not
#: place) reads scale, reference, rotation, radius and exposure as GenericMap does.
_GENERIC_GEOMETRY = ("AIA", "HMI")


_Geometry = tuple[tuple[float, float], tuple[tuple[float, float], tuple[float, float]], tuple[float, float],
                  tuple[float, float], float, float | None]


def _plain_geometry(header: Mapping, instrument: str) -> _Geometry | None:
    """Scale, rotation, reference pixel and coordinate (arcsec), radius (arcsec) and exposure
    (s) of a header, read as sunpy's GenericMap reads them (keys in any case, as sunpy's
    MetaDict); None where only the Map gives sunpy's numbers: another instrument, axes not
    helioprojective or not in arcsec, a PC or CD matrix, a keyword missing or not a number,
    no radius keyword, an exposure in other units."""
    if instrument not in _GENERIC_GEOMETRY:
        return None
    meta = {str(key).lower(): value for key, value in header.items()}
    ctypes = [str(meta.get(f"ctype{i}", "")).upper() for i in (1, 2)]
    if not (ctypes[0].startswith("HPLN") and ctypes[1].startswith("HPLT")) or any(key in meta for key in _MATRIX_KEYS):
        return None
    if any(not isinstance(meta.get(key), str) or meta[key].lower() != "arcsec" for key in ("cunit1", "cunit2")):
        return None
    rsun = meta.get("rsun_obs", meta.get("solar_r", meta.get("radius")))
    exposure = meta.get("xposure") or meta.get("exptime")
    values = [meta.get(key) for key in ("cdelt1", "cdelt2", "crpix1", "crpix2", "crval1", "crval2")]
    values += [meta.get("crota2", 0), rsun] + ([] if exposure is None else [exposure])
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values) or meta.get("timeunit", "s") != "s":
        return None
    cdelt1, cdelt2, crpix1, crpix2, crval1, crval2, crota2 = (float(v) for v in values[:7])
    return ((cdelt1, cdelt2), _pair_of_pairs(_crota_matrix(cdelt1, cdelt2, crota2)), (crpix1 - 1, crpix2 - 1),
            (crval1, crval2), float(rsun), None if exposure is None else float(exposure))


def _pair_of_pairs(matrix: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    return ((float(matrix[0, 0]), float(matrix[0, 1])), (float(matrix[1, 0]), float(matrix[1, 1])))


def _instrument_name(smap: sunpy.map.GenericMap) -> str:
    """The catalog's instrument name (``INSTRUMENTS``) for a Map, e.g. ``AIA 3`` -> ``AIA``."""
    words = " ".join(str(v or "") for v in (smap.instrument, smap.observatory, smap.detector)).upper()
    for name in INSTRUMENTS:
        if words.startswith(name):
            return name
    if "KANZELH" in words or "KSO" in words:
        return "KSO"
    return str(smap.instrument or "").upper()


def _channel_name(smap: sunpy.map.GenericMap, instrument: str) -> str:
    """Catalog channel: wavelength in Angstrom for imagers, the observable for magnetographs."""
    if instrument == "KSO":
        return "halpha"
    if instrument not in _MAGNETOGRAPHS and smap.wavelength is not None:
        wavelength = smap.wavelength
        # without WAVEUNIT (PROBA2/SWAP) sunpy leaves WAVELNTH unitless: FITS means Angstrom then
        return str(round(wavelength.value if wavelength.unit == u.dimensionless_unscaled else wavelength.to_value(u.AA)))
    words = " ".join(
        str(v or "") for v in (smap.measurement, smap.meta.get("content"), smap.meta.get("obs_mode"))
    ).lower()
    if "magnet" in words or smap.unit == u.G:
        return "magnetogram"
    if "continuum" in words:
        return "continuum"
    return words.split()[0] if words.split() else ""

"""The documented display curves of 8-bit browse images, so that their pixels go back to
physical units and simulated images can be sent the same way (clipping and 8-bit steps).

A curve clips the physical values (per second of exposure where the maker divides by
EXPTIME), scales them (linear, square root or log10), byte-scales the clipped range to
0-255 (IDL ``BYTSCL``: ``floor(255.9999 * (x - low) / (high - low))``) and, for coloured
PNGs, maps each byte through a colour table whose PIL luminance is what HelioBench's
raster reader returns. Inverting takes each grey level to the centre of its byte's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

_TOP = 255.9999


@dataclass(frozen=True)
class DisplayCurve:
    """How an 8-bit image was made from physical values; ``source`` says where that is documented."""

    name: str
    scaling: Literal["linear", "sqrt", "log10"]
    low: float  # clip limits, in physical units (per second when ``per_second``) x ``exposure_norm_s``
    high: float
    per_second: bool  # values are divided by EXPTIME before clipping
    source: str
    exposure_norm_s: float = 1.0  # ... and then multiplied by this (SSW aia_intscale normalises to 2.9995 s)
    colormap: str | None = None  # matplotlib colour table applied to the bytes (its luminance is read back)

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        if self.scaling == "log10":
            return np.log10(x)
        if self.scaling == "sqrt":
            return np.sqrt(x)
        return x

    def _unscaled(self, s: np.ndarray) -> np.ndarray:
        if self.scaling == "log10":
            return 10.0**s
        if self.scaling == "sqrt":
            return s**2
        return s

    def _per_unit(self, exposure_s: float | None) -> float:
        """Factor from physical values to the curve's units. Without an exposure time (a PNG has
        no header) the physical values are per second."""
        if not self.per_second:
            return 1.0
        return self.exposure_norm_s / (exposure_s if exposure_s and exposure_s > 0 else 1.0)

    @cached_property
    def _luminance(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(grey level, byte) of the colour table, grey levels increasing (ties averaged)."""
        if self.colormap is None:
            return None
        import matplotlib
        import sunpy.visualization.colormaps  # noqa: F401  (registers the SDO colour tables)
        from PIL import Image

        rgb = np.round(matplotlib.colormaps[self.colormap](np.arange(256))[:, :3] * 255).astype(np.uint8)
        grey = np.asarray(Image.fromarray(rgb[None]).convert("L"))[0].astype(float)
        if np.any(np.diff(grey) < 0):
            raise ValueError(f"display curve {self.name}: colour table {self.colormap} is not monotonic in luminance")
        levels = np.unique(grey)
        bytes_ = np.array([np.arange(256)[grey == g].mean() for g in levels])
        return levels, bytes_

    def to_display(self, values: np.ndarray, exposure_s: float | None) -> np.ndarray:
        """Grey levels (0-255, float) the maker would have written for physical ``values``."""
        x = np.clip(np.asarray(values, dtype=float) * self._per_unit(exposure_s), self.low, self.high)
        lo, hi = self._scaled(np.array(self.low)), self._scaled(np.array(self.high))
        with np.errstate(invalid="ignore"):
            byte = np.floor(_TOP * (self._scaled(x) - lo) / (hi - lo))
        if self._luminance is not None:
            levels, bytes_ = self._luminance
            byte = np.where(np.isfinite(byte), np.interp(byte, bytes_, levels), np.nan)
        return byte

    def to_physical(self, grey: np.ndarray, exposure_s: float | None) -> np.ndarray:
        """Physical values of grey levels (rounded to whole levels; NaN stays NaN): each level's
        byte range centre, through the inverse curve."""
        grey = np.asarray(grey, dtype=float)
        levels = np.arange(256.0)
        if self._luminance is not None:
            lum, bytes_ = self._luminance
            levels = np.interp(levels, lum, bytes_)
        lo, hi = self._scaled(np.array(self.low)), self._scaled(np.array(self.high))
        table = self._unscaled(lo + (np.floor(levels) + 0.5) / 256.0 * (hi - lo)) / self._per_unit(exposure_s)
        finite = np.isfinite(grey)
        index = np.clip(np.rint(np.where(finite, grey, 0.0)), 0, 255).astype(np.uint8)
        return np.where(finite, table[index], np.nan)

    def round_trip(self, values: np.ndarray, exposure_s: float | None) -> np.ndarray:
        """``values`` as they come back from an image made with this curve (clipped and quantised)."""
        return self.to_physical(self.to_display(values, exposure_s), exposure_s)


#: Helioviewer's AIA 193 JPEG 2000: DN/s clipped to 20-2500, log10, byte-scaled. Checked on
#: the real 2013-06-24 JP2: the inverted image's median and mean are 172 and 332 DN (x EXPTIME)
#: against the header's DATAMEDN 171 and DATAMEAN 327.
HELIOVIEWER_AIA193 = DisplayCurve(
    name="helioviewer_aia193",
    scaling="log10",
    low=20.0,
    high=2500.0,
    per_second=True,
    source="Helioviewer-Project/jp2gen sdo/aia/hvs_version6_aia.pro (193: log10, dataMin 20, dataMax 2500 DN/s)",
)

#: Helioviewer's HMI magnetogram JPEG 2000: linear between -250 and 250 G.
HELIOVIEWER_HMI_MAGNETOGRAM = DisplayCurve(
    name="helioviewer_hmi_magnetogram",
    scaling="linear",
    low=-250.0,
    high=250.0,
    per_second=False,
    source="Helioviewer-Project/jp2gen sdo/hmi/hvs_default_hmi.pro (magnetogram: linear, -250 to 250 G)",
)

#: SDO browse PNGs of AIA 193 (the Reiss/CHRONNOS images): SSW aia_intscale's 193 curve
#: (DN normalised to 2.9995 s, clipped to 120-6000, log10) under SunPy's sdoaia193 colour
#: table. The colours are verified (a real PNG pixel's RGB distance to the table is 1 level
#: typically, 8 at most); the intensity curve is the AIA team's standard, not stated by the files.
SDO_BROWSE_AIA193 = DisplayCurve(
    name="sdo_browse_aia193",
    scaling="log10",
    low=120.0,
    high=6000.0,
    per_second=True,
    exposure_norm_s=2.9995,
    colormap="sdoaia193",
    source="SolarSoft aia_intscale (193: log10 of DN x 2.9995/EXPTIME clipped to 120-6000) with SunPy's sdoaia193 colour table",
)

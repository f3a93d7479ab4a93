"""What an image is, judged from its FITS keywords: instrument, channel, wavelength, and
the per-instrument repairs its header needs before sunpy can place it on the Sun.

Everything here looks at header content only. The one exception is documented in
:func:`cea_segment`: the JSOC writes the SHARP/SMARP segment name (``Br``, ``Bp``,
``magnetogram``...) into the exported file name and nowhere in the header.
"""

from __future__ import annotations

import posixpath
import re
from datetime import datetime

import astropy.units as u
from astropy.coordinates import SkyCoord

from heliobench.archive.observation import INSTRUMENTS
from heliobench.archive.readers.keywords import Header, number, text
from heliobench.errors import ReaderError

#: Instruments whose field of view holds the whole disk; the others (TRACE) see part of it.
FULL_DISK_IMAGERS = frozenset({"AIA", "HMI", "MDI", "EIT", "SWAP", "KSO"})

#: The channels (Angstrom) each EUV/UV imager has.
EUV_CHANNELS = {
    "AIA": (94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500),
    "EIT": (171, 195, 284, 304),
    "SWAP": (174,),
    "TRACE": (171, 195, 284, 1216, 1550, 1600, 1700, 5000),
}

#: Kanzelhöhe filters by central wavelength (Angstrom).
KSO_CHANNELS = {6563: "halpha", 3934: "ca_ii_k", 5460: "continuum"}

_AU_M = 1.495978707e11

#: JSOC segment names of SHARP/SMARP CEA patches, by the kind of quantity they hold.
_CEA_SEGMENT_KIND = {
    "magnetogram": "field", "Br": "field", "Bp": "field", "Bt": "field",
    "Br_err": "field", "Bp_err": "field", "Bt_err": "field", "field": "field",
    "Dopplergram": "velocity", "continuum": "intensity",
    "bitmap": "mask", "conf_disambig": "mask",
}

#: JSOC export file names: ``<series>.<record number>.<T_REC>.<segment>.fits``.
_JSOC_EXPORT_NAME = re.compile(r"^[a-z]+\.[a-z_0-9]+\.\d+\.\d{8}_\d{6}_TAI\.(?P<segment>\w+)\.fits(\.gz)?$")


def identify_instrument(header: Header, uri: str) -> str:
    """The instrument (one of INSTRUMENTS) named by INSTRUME / TELESCOP / DETECTOR / ORIGIN."""
    instrume = (text(header, "INSTRUME") or "").upper()
    telescop = (text(header, "TELESCOP") or "").upper()
    detector = (text(header, "DETECTOR") or "").upper()
    origin = " ".join(text(header, k) or "" for k in ("ORIGIN", "OBSRVTRY")).upper()
    if any("KANZELH" in field for field in (instrume, telescop, origin)):
        return "KSO"
    for name in INSTRUMENTS:
        if instrume.startswith(name) or detector == name or telescop in (name, f"SDO/{name}"):
            return name
    if not instrume and not telescop:
        raise ReaderError(uri, "no INSTRUME or TELESCOP keyword: cannot tell which instrument took the image")
    raise ReaderError(
        uri,
        f"unknown instrument INSTRUME={text(header, 'INSTRUME')!r}, TELESCOP={text(header, 'TELESCOP')!r} "
        f"(HelioBench reads {', '.join(INSTRUMENTS)})",
    )


def is_cea_patch(header: Header) -> bool:
    """Whether the image is a cylindrical-equal-area patch (SHARP, SMARP)."""
    return (text(header, "CTYPE1") or "").upper().endswith("-CEA")


def wavelength_angstrom(header: Header) -> float | None:
    """WAVELNTH in Angstrom (WAVEUNIT honoured; TRACE's WAVE_LEN when numeric)."""
    value = number(header, "WAVELNTH", "WAVE_LEN")
    if value is None:
        return None
    unit = (text(header, "WAVEUNIT") or "angstrom").lower()
    return value * {"nm": 10.0, "m": 1e10}.get(unit, 1.0)


def channel(header: Header, instrument: str, uri: str) -> str:
    """The channel: ``"171"``... for EUV/UV imagers, ``"magnetogram"``, ``"continuum"``,
    ``"Br"``... for HMI/MDI, ``"halpha"`` for Kanzelhöhe."""
    if instrument in ("HMI", "MDI"):
        return cea_segment(header, uri) if is_cea_patch(header) else _magnetograph_channel(header, uri)
    if instrument == "KSO":
        return _kso_channel(header, uri)
    return _euv_channel(header, instrument, uri)


def _euv_channel(header: Header, instrument: str, uri: str) -> str:
    label = text(header, "WAVE_LEN") if instrument == "TRACE" else None
    if label is not None and not label.replace(".", "").isdigit():
        return "white_light" if label.upper() == "WL" else label.lower()
    wave = wavelength_angstrom(header)
    if wave is None:
        raise ReaderError(uri, f"{instrument} image without WAVELNTH: its channel is unknown")
    channel_a = round(wave)
    if channel_a not in EUV_CHANNELS[instrument]:
        raise ReaderError(uri, f"WAVELNTH={wave:g} is none of the {instrument} channels {EUV_CHANNELS[instrument]}")
    return str(channel_a)


def _quantity_of_unit(header: Header) -> str | None:
    """``field``, ``velocity``, ``intensity`` or ``mask`` judged from BUNIT."""
    bunit = (text(header, "BUNIT") or "").lower().replace(" ", "")
    if bunit in ("gauss", "g", "mx/cm^2", "mx/cm2", "mxcm^-2"):
        return "field"
    if bunit in ("cm/s", "m/s", "km/s"):
        return "velocity"
    if bunit in ("dn/s", "arbitraryintensityunits", "dn"):
        return "intensity"
    if not bunit:
        return "mask"
    return None


def _magnetograph_channel(header: Header, uri: str) -> str:
    described = " ".join(text(header, k) or "" for k in ("CONTENT", "OBS_MODE", "DPC_OBSR")).upper()
    for word, name in (("MAGNETOGRAM", "magnetogram"), ("CONTINUUM", "continuum"), ("DOPPLER", "dopplergram")):
        if word in described:
            return name
    by_unit = {"field": "magnetogram", "intensity": "continuum", "velocity": "dopplergram"}
    kind = _quantity_of_unit(header)
    if kind in by_unit:
        return by_unit[kind]
    raise ReaderError(
        uri,
        f"cannot tell the observable: CONTENT={text(header, 'CONTENT')!r}, BUNIT={text(header, 'BUNIT')!r} "
        "(expected a magnetogram, continuum or Dopplergram)",
    )


def cea_segment(header: Header, uri: str) -> str:
    """The SHARP/SMARP segment of a CEA patch (``magnetogram``, ``Br``, ``bitmap``...).

    JSOC writes the same CONTENT ('HMI observable') into every segment and the header of
    ``Br``, ``Bp`` and ``Bt`` differ in nothing but data statistics, so the segment name
    is taken from the JSOC export file name when there is one and it agrees with the
    header's unit; otherwise the channel is what BUNIT says (``magnetogram`` for field
    units, ``continuum``, ``dopplergram`` or ``bitmap``).
    """
    kind = _quantity_of_unit(header)
    match = _JSOC_EXPORT_NAME.match(posixpath.basename(uri))
    if match and _CEA_SEGMENT_KIND.get(match["segment"]) == kind:
        return "dopplergram" if match["segment"] == "Dopplergram" else match["segment"]
    by_unit = {"field": "magnetogram", "intensity": "continuum", "velocity": "dopplergram", "mask": "bitmap"}
    if kind in by_unit:
        return by_unit[kind]
    raise ReaderError(uri, f"CEA patch with BUNIT={text(header, 'BUNIT')!r}: cannot tell which segment it is")


def _kso_channel(header: Header, uri: str) -> str:
    wave = wavelength_angstrom(header)
    if wave is None:
        raise ReaderError(uri, "Kanzelhöhe image without WAVELNTH: cannot tell H-alpha from Ca II K or white light")
    for centre, name in KSO_CHANNELS.items():
        if abs(wave - centre) < 0.01 * centre:
            return name
    raise ReaderError(uri, f"Kanzelhöhe WAVELNTH={wave:g} Angstrom is none of {sorted(KSO_CHANNELS)}")


def repair_header(header: Header, instrument: str, obs_time: datetime, shape: tuple[int, int], uri: str) -> Header:
    """A copy of ``header`` that sunpy places correctly on the Sun.

    Placeholder observer values (``RSUN_OBS = 0``, ``DSUN_OBS = 0.03``, ``HGLN_OBS =
    'nan'``, as in some Helioviewer JPEG 2000 files) are removed so that sunpy's
    documented Earth-observer defaults apply; exposure times in other keywords or units
    (TRACE ``SHT_MDUR``, Kanzelhöhe ``EXP_TIME`` in ms) become ``EXPTIME`` in seconds;
    Kanzelhöhe headers get their WCS (see :func:`_kso_wcs`).
    """
    fixed = dict(header)
    rsun = number(fixed, "RSUN_OBS")
    if "RSUN_OBS" in fixed and (rsun is None or rsun <= 0):
        del fixed["RSUN_OBS"]
    dsun = number(fixed, "DSUN_OBS")
    if "DSUN_OBS" in fixed and (dsun is None or not 0.1 * _AU_M < dsun < 10 * _AU_M):
        del fixed["DSUN_OBS"]
    for key in ("HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS"):
        if key in fixed and number(fixed, key) is None:
            del fixed[key]
    if number(fixed, "EXPTIME") is None:
        if number(fixed, "SHT_MDUR") is not None:
            fixed["EXPTIME"] = number(fixed, "SHT_MDUR")
        elif instrument == "KSO" and number(fixed, "EXP_TIME") is not None:
            fixed["EXPTIME"] = number(fixed, "EXP_TIME") / 1000.0
    if instrument == "KSO":
        fixed.update(_kso_wcs(fixed, obs_time, shape, uri))
    return fixed


def _kso_wcs(header: Header, obs_time: datetime, shape: tuple[int, int], uri: str) -> Header:
    """The keywords that place a Kanzelhöhe image on the Sun.

    Kanzelhöhe files write ``WAVEUNIT = 'ANG'``, the image rotation as ``ANGLE`` (sense
    opposite to ``CROTA2``), plate scales in arcsec without ``CUNIT``, and are observed
    from Earth. Files without a WCS (film and
    plate scans, some patrol images) give the disk centre ``CENTER_X``/``CENTER_Y``
    (0-based pixels, IDL convention) and radius ``SOLAR_R`` (pixels); the plate scale then
    follows from the Sun's apparent radius seen from Earth at the observation time.
    """
    from sunpy.coordinates import frames, get_earth, sun
    from sunpy.map import make_fitswcs_header

    extra: Header = {}
    if (text(header, "WAVEUNIT") or "").upper() in ("ANG", "ANGSTROM", "ANGSTROMS"):
        extra["WAVEUNIT"] = "Angstrom"
    has_rotation = any(k in header for k in ("CROTA2", "PC1_1", "CD1_1"))
    rotation = -(number(header, "ANGLE") or 0.0) if not has_rotation else None
    if "DSUN_OBS" not in header:
        earth = get_earth(obs_time)
        extra.update(HGLN_OBS=earth.lon.to_value(u.deg), HGLT_OBS=earth.lat.to_value(u.deg), DSUN_OBS=earth.radius.to_value(u.m))
    if text(header, "CTYPE1") and number(header, "CDELT1", "CD1_1") is not None:
        if rotation is not None:
            extra["CROTA2"] = rotation
        extra.update({f"CUNIT{i}": "arcsec" for i in (1, 2) if not text(header, f"CUNIT{i}")})
        return extra
    centre_x, centre_y = number(header, "CENTER_X"), number(header, "CENTER_Y")
    radius_px = number(header, "SOLAR_R", "R_SUN")
    if centre_x is None or centre_y is None or radius_px is None or radius_px <= 0:
        raise ReaderError(
            uri, "Kanzelhöhe image with neither a WCS (CTYPE1, CDELT1) nor CENTER_X, CENTER_Y and SOLAR_R to derive one"
        )
    observer = get_earth(obs_time)
    centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=frames.Helioprojective(observer=observer, obstime=obs_time))
    scale = sun.angular_radius(obs_time).to(u.arcsec) / (radius_px * u.pix)
    wcs = make_fitswcs_header(
        shape,
        centre,
        reference_pixel=u.Quantity([centre_x, centre_y], u.pix),
        scale=u.Quantity([scale, scale]),
        rotation_angle=(rotation or 0.0) * u.deg,
    )
    extra.update({k.upper(): v for k, v in wcs.items() if k.upper() not in ("DATE-OBS", "NAXIS", "NAXIS1", "NAXIS2")})
    return extra

"""FITS headers and bytes as the real archives write them.

SDO files are JSOC exports: an empty primary HDU and a RICE_1-compressed image HDU with
the level-1 (AIA) or hmi.M_720s (HMI) keywords. Kanzelhoehe H-alpha files are gzipped plain
FITS with the KSO keywords (CENTER_X/Y, SOLAR_R, SOLAR_P0/B0) beside a standard WCS.
Everything is built in memory and is byte-for-byte a function of its inputs.
"""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timedelta

import numpy as np
from astropy.io import fits

from heliobench.archive.sim.config import DSUN_REF_M, RSUN_REF_M, AIAChannel
from heliobench.archive.sim.geometry import Observer, Pointing

INT16_BLANK = -32768
_INT32_BLANK = -2147483648
#: hmi.M_720s stores the field as int32 in units of 0.1 G.
_HMI_BSCALE = 0.1
#: JSOC T_REC epochs.
_HMI_TRECEPOC = "1993.01.01_00:00:00_TAI"
_AIA_TRECEPOC = "1977.01.01_00:00:00_TAI"


def iso(t: datetime, decimals: int = 0) -> str:
    """ISO 8601 without a time zone suffix (``decimals`` digits of seconds)."""
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        text += f"{t.microsecond / 1e6:.{decimals}f}"[1:]
    return text


def tai_stamp(t_tai: datetime) -> str:
    """JSOC TAI time string, e.g. ``2014.03.01_00:00:00_TAI``."""
    return t_tai.strftime("%Y.%m.%d_%H:%M:%S") + "_TAI"


def _wcs_cards(pointing: Pointing, observer: Observer) -> list[tuple[str, object, str]]:
    rsun_obs = observer.rsun_obs_arcsec
    return [
        ("CTYPE1", "HPLN-TAN", "helioprojective longitude, gnomonic"),
        ("CTYPE2", "HPLT-TAN", "helioprojective latitude, gnomonic"),
        ("CUNIT1", "arcsec", ""),
        ("CUNIT2", "arcsec", ""),
        ("CRPIX1", round(pointing.crpix1, 4), "disk centre (FITS pixel)"),
        ("CRPIX2", round(pointing.crpix2, 4), "disk centre (FITS pixel)"),
        ("CRVAL1", 0.0, "[arcsec]"),
        ("CRVAL2", 0.0, "[arcsec]"),
        ("CDELT1", round(pointing.cdelt_arcsec, 6), "[arcsec/pixel]"),
        ("CDELT2", round(pointing.cdelt_arcsec, 6), "[arcsec/pixel]"),
        ("CROTA2", round(pointing.crota2_deg, 6), "[deg]"),
        ("RSUN_OBS", round(rsun_obs, 6), "apparent solar radius [arcsec]"),
        ("R_SUN", round(rsun_obs / pointing.cdelt_arcsec, 6), "apparent solar radius [pixel]"),
        ("RSUN_REF", RSUN_REF_M, "[m]"),
        ("DSUN_OBS", round(observer.dsun_m, 2), "observer-Sun distance [m]"),
        ("DSUN_REF", DSUN_REF_M, "[m]"),
        ("HGLN_OBS", 0.0, "Stonyhurst longitude of the observer [deg]"),
        ("HGLT_OBS", round(observer.b0_deg, 6), "Stonyhurst latitude of the observer [deg]"),
        ("CRLN_OBS", round(observer.l0_deg, 6), "Carrington longitude of the observer [deg]"),
        ("CRLT_OBS", round(observer.b0_deg, 6), "Carrington latitude of the observer [deg]"),
        ("CAR_ROT", observer.carrington_rotation, "Carrington rotation"),
    ]


def _stats_cards(values: np.ndarray) -> list[tuple[str, object, str]]:
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return [("DATAVALS", 0, ""), ("MISSVALS", int(values.size), "")]
    return [
        ("DATAMIN", float(np.round(valid.min(), 3)), ""),
        ("DATAMAX", float(np.round(valid.max(), 3)), ""),
        ("DATAMEDN", float(np.round(np.median(valid), 3)), ""),
        ("DATAMEAN", float(np.round(valid.mean(), 3)), ""),
        ("DATARMS", float(np.round(valid.std(), 3)), ""),
        ("DATAVALS", int(valid.size), "valid pixels"),
        ("MISSVALS", int(values.size - valid.size), "missing pixels"),
        ("TOTVALS", int(values.size), ""),
        ("PERCENTD", float(np.round(100.0 * valid.size / values.size, 3)), "percent of valid pixels"),
    ]


def _header(cards: list[tuple[str, object, str]]) -> fits.Header:
    return fits.Header(cards)


def aia_header(
    channel: AIAChannel,
    date_obs: datetime,
    t_rec: datetime,
    pointing: Pointing,
    observer: Observer,
    image: np.ndarray,
    quality: int,
) -> fits.Header:
    """Level-1 AIA keywords (``image`` holds BLANK where data are missing)."""
    t_obs = date_obs + timedelta(seconds=channel.exptime_s / 2)
    x0, y0 = pointing.crpix1 - 1.0, pointing.crpix2 - 1.0
    values = np.where(image == INT16_BLANK, np.nan, image.astype(float))
    cards = [
        ("TELESCOP", "SDO/AIA", ""),
        ("INSTRUME", channel.instrume, ""),
        ("DETECTOR", "AIA", ""),
        ("ORIGIN", "SDO/JSOC-SDP", ""),
        ("DATE", iso(t_rec + timedelta(days=3)), "file creation (UTC)"),
        ("DATE-OBS", iso(date_obs, 2), "start of exposure (UTC)"),
        ("T_OBS", iso(t_obs, 2) + "Z", "mid-exposure (UTC)"),
        ("T_REC", iso(t_rec) + "Z", ""),
        ("TRECEPOC", _AIA_TRECEPOC, ""),
        ("TRECSTEP", 24.0 if channel.is_uv else 12.0, "[s]"),
        ("WAVELNTH", channel.wavelength, "[angstrom]"),
        ("WAVEUNIT", "angstrom", ""),
        ("WAVE_STR", channel.wave_str, ""),
        ("EXPTIME", channel.exptime_s, "exposure duration [s]"),
        ("QUALITY", quality, "level-1 quality word"),
        ("LVL_NUM", 1.0, "data level"),
        ("IMG_TYPE", "LIGHT", ""),
        ("ACS_MODE", "SCIENCE", ""),
        ("BUNIT", "DN", ""),
        ("PIXLUNIT", "DN", ""),
        ("BLANK", INT16_BLANK, ""),
        *_wcs_cards(pointing, observer),
        ("HAEX_OBS", round(observer.hae_m[0], 2), "heliocentric mean ecliptic X [m]"),
        ("HAEY_OBS", round(observer.hae_m[1], 2), "heliocentric mean ecliptic Y [m]"),
        ("HAEZ_OBS", round(observer.hae_m[2], 2), "heliocentric mean ecliptic Z [m]"),
        ("INST_ROT", round(pointing.crota2_deg, 6), "[deg]"),
        ("X0_MP", round(x0, 4), "disk centre, 0-based pixel"),
        ("Y0_MP", round(y0, 4), "disk centre, 0-based pixel"),
        ("IMSCL_MP", round(pointing.cdelt_arcsec, 6), "[arcsec/pixel]"),
        *_stats_cards(values),
        ("NSATPIX", int((image >= 16383).sum()), "saturated pixels"),
    ]
    return _header(cards)


def hmi_header(
    t_rec_tai: datetime,
    t_obs_utc: datetime,
    pointing: Pointing,
    observer: Observer,
    field_g: np.ndarray,
) -> fits.Header:
    """hmi.M_720s keywords."""
    cards = [
        ("TELESCOP", "SDO/HMI", ""),
        ("INSTRUME", "HMI_FRONT2", ""),
        ("DETECTOR", "HMI", ""),
        ("CAMERA", 2, ""),
        ("ORIGIN", "SDO/JSOC-SDP", ""),
        ("CONTENT", "MAGNETOGRAM", ""),
        ("DATE", iso(t_obs_utc + timedelta(days=3)), "file creation (UTC)"),
        ("DATE-OBS", iso(t_obs_utc, 2), "observation time (UTC)"),
        ("T_OBS", tai_stamp(t_rec_tai), "observation time (TAI)"),
        ("T_REC", tai_stamp(t_rec_tai), "record time slot (TAI)"),
        ("TRECEPOC", _HMI_TRECEPOC, ""),
        ("TRECSTEP", 720.0, "[s]"),
        ("TRECUNIT", "secs", ""),
        ("CADENCE", 720.0, "[s]"),
        ("WAVELNTH", 6173.0, "[angstrom]"),
        ("WAVEUNIT", "angstrom", ""),
        ("QUALITY", 0, ""),
        ("QUALLEV1", 0, ""),
        ("BUNIT", "Gauss", ""),
        *_wcs_cards(pointing, observer),
        *_stats_cards(field_g),
    ]
    return _header(cards)


def mask_header(content: str, date_obs: datetime, pointing: Pointing, observer: Observer) -> fits.Header:
    """A label mask on an AIA grid: same WCS and observer keywords as the images of its time."""
    cards = [
        ("CONTENT", content, "0/1 mask of the simulated truth"),
        ("ORIGIN", "HelioBench simulator", ""),
        ("DATE-OBS", iso(date_obs, 2), "time step (UTC)"),
        ("BUNIT", "", "1 inside, 0 outside"),
        *_wcs_cards(pointing, observer),
    ]
    return _header(cards)


def kso_header(
    date_obs: datetime,
    exptime_s: float,
    pointing: Pointing,
    observer: Observer,
    image: np.ndarray,
) -> fits.Header:
    """Kanzelhoehe H-alpha keywords plus a standard WCS."""
    radius_px = observer.rsun_obs_arcsec / pointing.cdelt_arcsec
    cards = [
        ("DATE", iso(date_obs + timedelta(minutes=2)), "file creation (UTC)"),
        ("DATE-OBS", iso(date_obs), "start of exposure (UTC)"),
        ("TIMESYS", "UTC", ""),
        ("ORIGIN", "KANZELHOEHE", "Kanzelhoehe Observatory, University of Graz"),
        ("TELESCOP", "KANZELHOEHE", ""),
        ("INSTRUME", "H-ALPHA", "full-disk H-alpha patrol"),
        ("WAVELNTH", 6563, "[angstrom]"),
        ("WAVEUNIT", "angstrom", ""),
        ("EXPTIME", round(exptime_s, 5), "[s]"),
        ("BUNIT", "counts", "12-bit camera counts"),
        ("CENTER_X", round(pointing.crpix1 - 1.0, 3), "disk centre, 0-based column [pixel]"),
        ("CENTER_Y", round(pointing.crpix2 - 1.0, 3), "disk centre, 0-based row [pixel]"),
        ("SOLAR_R", round(radius_px, 3), "solar radius [pixel]"),
        ("SOLAR_P0", round(observer.p_deg, 4), "position angle of solar north [deg]"),
        ("SOLAR_B0", round(observer.b0_deg, 4), "heliographic latitude of disk centre [deg]"),
        *_wcs_cards(pointing, observer),
        *_stats_cards(image.astype(float)),
    ]
    return _header(cards)


def jsoc_bytes(data: np.ndarray, header: fits.Header, scaled: bool = False) -> bytes:
    """A JSOC export file: empty primary HDU + RICE_1 image HDU.

    With ``scaled``, ``data`` (float, NaN = missing) is stored as int32 in units of 0.1
    (BSCALE) with BLANK, as hmi.M_720s is.
    """
    if scaled:
        stored = np.where(np.isfinite(data), np.rint(np.nan_to_num(data) / _HMI_BSCALE), _INT32_BLANK)
        hdu = fits.CompImageHDU(data=stored.astype(np.int32), header=header, compression_type="RICE_1")
        hdu.header["BSCALE"] = _HMI_BSCALE
        hdu.header["BZERO"] = 0.0
        hdu.header["BLANK"] = _INT32_BLANK
    else:
        hdu = fits.CompImageHDU(data=data, header=header, compression_type="RICE_1")
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    return buffer.getvalue()


def gzipped_fits_bytes(data: np.ndarray, header: fits.Header) -> bytes:
    """A plain FITS file, gzipped without a timestamp (so the bytes are reproducible)."""
    buffer = io.BytesIO()
    fits.PrimaryHDU(data=data, header=header).writeto(buffer)
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)

"""Where each simulated file goes under the archive root: JSOC, KSO and catalog naming."""

from __future__ import annotations

import posixpath
from datetime import date, datetime

from heliobench.archive.sim.config import AIAChannel

#: The kinds of files the simulator writes, as counted in its summary.
KINDS = ("aia", "hmi", "halpha", "ch_mask", "ar_mask", "hek", "srs", "halpha_quality")


def aia_path(channel: AIAChannel, t_rec: datetime) -> str:
    """``aia/YYYY/MM/DD/aia.lev1_euv_12s.YYYY-MM-DDTHHMMSSZ.<wl>.image_lev1.fits``."""
    return (
        f"aia/{t_rec:%Y/%m/%d}/{channel.series}.{t_rec:%Y-%m-%dT%H%M%S}Z.{channel.wavelength}.image_lev1.fits"
    )


def hmi_path(t_rec_tai: datetime) -> str:
    """``hmi/YYYY/MM/DD/hmi.m_720s.YYYYMMDD_HHMMSS_TAI.1.magnetogram.fits`` (T_REC, TAI)."""
    return f"hmi/{t_rec_tai:%Y/%m/%d}/hmi.m_720s.{t_rec_tai:%Y%m%d_%H%M%S}_TAI.1.magnetogram.fits"


def halpha_path(t: datetime) -> str:
    """``halpha/YYYY/MM/DD/kanz_halph_fd_YYYYMMDD_HHMMSS.fts.gz``."""
    return f"halpha/{t:%Y/%m/%d}/kanz_halph_fd_{t:%Y%m%d_%H%M%S}.fts.gz"


def mask_path(kind: str, t: datetime) -> str:
    """``labels/masks/<ch|ar>/YYYY/MM/DD/<kind>_mask.YYYY-MM-DDTHHMMSSZ.fits``."""
    return f"labels/masks/{kind}/{t:%Y/%m/%d}/{kind}_mask.{t:%Y-%m-%dT%H%M%S}Z.fits"


def hek_path(day: date) -> str:
    """``labels/hek/YYYY/hek_YYYYMMDD.json``."""
    return f"labels/hek/{day:%Y}/hek_{day:%Y%m%d}.json"


def srs_path(day: date) -> str:
    """``labels/srs/YYYY/YYYYMMDDSRS.txt``."""
    return f"labels/srs/{day:%Y}/{day:%Y%m%d}SRS.txt"


def quality_path(day: date) -> str:
    """``labels/halpha_quality/YYYY/MM/YYYYMMDD.csv``."""
    return f"labels/halpha_quality/{day:%Y/%m}/{day:%Y%m%d}.csv"


def kind_of(path: str) -> str:
    """Which of KINDS a path written by the simulator is."""
    name = posixpath.basename(path)
    if name.startswith("aia."):
        return "aia"
    if name.startswith("hmi."):
        return "hmi"
    if name.startswith("kanz_halph_fd_"):
        return "halpha"
    if name.startswith(("ch_mask.", "ar_mask.")):
        return name.split(".", 1)[0]
    if name.startswith("hek_"):
        return "hek"
    if name.endswith("SRS.txt"):
        return "srs"
    if "/labels/halpha_quality/" in f"/{path}":
        return "halpha_quality"
    raise ValueError(f"{path}: not a file the simulator writes")

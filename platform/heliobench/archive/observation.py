"""The observation record: one row of the catalog, as every reader returns it.

Readers (``heliobench.archive.readers``) turn the bytes of one file into an
:class:`ObservationRecord`; ingest adds ``checksum`` and ``size_bytes`` and writes the
records to the parquet catalog. Pixel coordinates are 0-based (numpy convention);
angles in degrees, plate scales in arcsec/pixel, distances in metres, times UTC.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

#: Instrument names as they appear in the catalog.
INSTRUMENTS = ("AIA", "HMI", "MDI", "EIT", "SWAP", "TRACE", "KSO")

#: The nine AIA channels HelioBench benchmarks use (Angstrom).
AIA_CHANNELS = ("94", "131", "171", "193", "211", "304", "335", "1600", "1700")


@dataclass(frozen=True)
class ObservationRecord:
    """Metadata of one observation file, as understood by a reader."""

    uri: str
    instrument: str  # one of INSTRUMENTS
    channel: str  # "171", "193", ... for EUV/UV; "magnetogram", "continuum", "halpha", "bitmap", ...
    obs_time: datetime  # timezone-aware UTC
    file_format: str  # "fits", "fits.gz", "jp2", "png", "jpeg"
    data_kind: str  # "full_disk", "partial_disk", "cea_patch"
    nx: int
    ny: int
    wavelength_angstrom: float | None = None
    exposure_s: float | None = None
    quality: int = 0  # the instrument's QUALITY word (0 = nominal)
    image_type: str | None = None  # IMG_TYPE, upper case: AIA "LIGHT" or "DARK"
    level: str | None = None  # "1", "1.5", ...
    bunit: str | None = None  # the unit of the source image (of the original FITS where display_scaled)
    display_scaled: bool = False  # pixels are display values (HB_PIXEL = 'display'), not physical units
    ctype1: str | None = None
    ctype2: str | None = None
    cunit1: str | None = None
    cunit2: str | None = None
    cdelt1: float | None = None  # arcsec / pixel (deg/pixel for CEA patches, see cunit)
    cdelt2: float | None = None
    crpix1: float | None = None  # FITS 1-based reference pixel, as in the header
    crpix2: float | None = None
    crval1: float | None = None
    crval2: float | None = None
    crota2: float | None = None  # degrees
    rsun_obs_arcsec: float | None = None
    dsun_obs_m: float | None = None
    hgln_obs_deg: float | None = None
    hglt_obs_deg: float | None = None
    disk_x_px: float | None = None  # disk centre, 0-based pixel column
    disk_y_px: float | None = None  # disk centre, 0-based pixel row
    disk_radius_px: float | None = None
    observatory: str | None = None
    detector: str | None = None

    def to_row(self) -> dict:
        """The record as a plain dict (one catalog row, without checksum/size)."""
        return dataclasses.asdict(self)


_PA_TYPES = {
    "str": pa.string(),
    "str | None": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "float | None": pa.float64(),
    "datetime": pa.timestamp("us", tz="UTC"),
}

#: Arrow schema of the catalog parquet: the record's fields plus what ingest adds.
CATALOG_SCHEMA = pa.schema(
    [pa.field(f.name, _PA_TYPES[f.type]) for f in dataclasses.fields(ObservationRecord)]
    + [
        pa.field("checksum", pa.string()),  # sha256 of the file's bytes
        pa.field("size_bytes", pa.int64()),
        pa.field("source_mtime", pa.string()),  # storage mtime/ETag seen at ingest (incremental runs)
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)

#: Arrow schema of the quarantine table.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("stage", pa.string()),  # where the file failed: read, labels, header, catalog
        pa.field("size_bytes", pa.int64()),
        pa.field("checksum", pa.string()),
        pa.field("source_mtime", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)

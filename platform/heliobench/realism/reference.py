"""The real side of the report: full-disk images grouped into families that compare like
with like against one simulated product, the sunspot-group table and the SRS files.

Files are found under the real-data folder (``../shared/realdata``, see its README) and
judged by what HelioBench's readers make of them, never by their names: a file that is no
whole full disk, or whose 8-bit display curve is not documented, is listed as unused with
the reason. A file that cannot be read is listed the same way; it never stops the report.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
from tqdm import tqdm

from heliobench.archive.readers import read_image_mask_pair, read_srs
from heliobench.archive.readers.containers import open_image
from heliobench.archive.readers.images import understand
from heliobench.archive.readers.keywords import display_scaled
from heliobench.errors import ReaderError
from heliobench.prep.base import PrepError
from heliobench.realism.disks import DiskImage, load_disk, whole_disk_in_frame
from heliobench.realism.display import HELIOVIEWER_AIA193, HELIOVIEWER_HMI_MAGNETOGRAM, SDO_BROWSE_AIA193, DisplayCurve
from heliobench.specs import project_root
from heliobench.storage import read_bytes

#: Folders of full-disk observations under the real-data folder.
IMAGE_FOLDERS = ("fits", "jp2", "ch_reiss/images")
IMAGE_SUFFIXES = (".fits", ".fts", ".fits.gz", ".jp2", ".png", ".jpg")
#: The Kislovodsk sunspot-group table and the NOAA SRS folder under the real-data folder.
KISLOVODSK_TABLE = "tables/kislovodsk_sunspot_groups.csv"
SRS_FOLDER = "srs"
#: CHRONNOS coronal-hole masks beside ``ch_reiss/images`` (same file names).
CH_MASK_FOLDER = "ch_reiss/masks"


@dataclass(frozen=True)
class Family:
    """Real images of one kind and the simulated product they are compared with."""

    key: str
    title: str
    instrument: str  # as HelioBench's readers name it
    channels: tuple[str, ...]
    file_format: str  # "fits", "jp2" or "png"
    simulated: tuple[str, str]  # (instrument, channel) of the simulated partner
    kind: Literal["intensity", "field"]
    curve: DisplayCurve | None = None  # for display-scaled pixels
    absolute: bool = False  # also compare the disk median in DN/s
    coronal_holes: bool = False  # images come with CHRONNOS masks

    @property
    def display_note(self) -> str:
        """How the family's pixels become physical values."""
        if self.curve is not None:
            return f"8-bit display values inverted through {self.curve.source}; simulated images sent through the same curve"
        if self.file_format in ("jp2", "png"):
            return "8-bit display values of a linear display: ratios to the disk median are kept"
        return "FITS values"


FAMILIES = (
    Family("aia171_fits", "AIA 171 Å (FITS)", "AIA", ("171",), "fits", ("AIA", "171"), "intensity", absolute=True),
    Family("swap174_fits", "SWAP 174 Å (FITS) vs AIA 171 Å", "SWAP", ("174",), "fits", ("AIA", "171"), "intensity"),
    Family("eit195_fits", "EIT 195 Å (FITS) vs AIA 193 Å", "EIT", ("195",), "fits", ("AIA", "193"), "intensity"),
    Family("aia193_fits", "AIA 193 Å (FITS)", "AIA", ("193",), "fits", ("AIA", "193"), "intensity", absolute=True),
    Family("aia193_jp2", "AIA 193 Å (Helioviewer JP2)", "AIA", ("193",), "jp2", ("AIA", "193"), "intensity",
           curve=HELIOVIEWER_AIA193, absolute=True),
    Family("aia193_png", "AIA 193 Å (SDO browse PNG, CHRONNOS set)", "AIA", ("193",), "png", ("AIA", "193"), "intensity",
           curve=SDO_BROWSE_AIA193, absolute=True, coronal_holes=True),
    Family("hmi_magnetogram_jp2", "HMI magnetogram (Helioviewer JP2)", "HMI", ("magnetogram",), "jp2", ("HMI", "magnetogram"),
           "field", curve=HELIOVIEWER_HMI_MAGNETOGRAM),
    Family("hmi_magnetogram_fits", "HMI magnetogram (FITS)", "HMI", ("magnetogram",), "fits", ("HMI", "magnetogram"), "field"),
    Family("mdi_magnetogram_fits", "MDI magnetogram (FITS) vs HMI", "MDI", ("magnetogram",), "fits", ("HMI", "magnetogram"), "field"),
    Family("hmi_continuum_jp2", "HMI continuum (Helioviewer JP2)", "HMI", ("continuum",), "jp2", ("HMI", "continuum"), "intensity"),
    Family("continuum_fits_hmi", "HMI continuum (FITS)", "HMI", ("continuum",), "fits", ("HMI", "continuum"), "intensity"),
    Family("continuum_fits_mdi", "MDI continuum (FITS) vs HMI", "MDI", ("continuum",), "fits", ("HMI", "continuum"), "intensity"),
)


def default_realdata() -> Path:
    """``$HELIOBENCH_REALDATA``, else ``../shared/realdata`` beside the project (as the tests use)."""
    env = os.environ.get("HELIOBENCH_REALDATA")
    return Path(env) if env else project_root().parent / "shared" / "realdata"


@dataclass
class Reference:
    """Everything real the report compares with, loaded once (re-use it while tuning the simulator)."""

    root: Path | None
    images: dict[str, list[DiskImage]] = field(default_factory=dict)  # per family key
    unused: dict[str, str] = field(default_factory=dict)  # file -> why it is not compared
    kislovodsk: pl.DataFrame | None = None
    srs: pl.DataFrame | None = None  # regions of the real SRS files

    def family_images(self, family: Family) -> list[DiskImage]:
        """The real images of ``family`` (empty when there are none)."""
        return self.images.get(family.key, [])


def _family_of(instrument: str, channel: str, file_format: str, display: bool) -> Family | str:
    """The family of a file from what its header says, or why it belongs to none."""
    file_format = "png" if file_format in ("png", "jpeg") else file_format.split(".")[0]
    for family in FAMILIES:
        if (instrument, file_format) == (family.instrument, family.file_format) and channel in family.channels:
            return family
    if display:
        return f"{instrument} {channel} 8-bit display image: no documented display curve brings its pixels back to physical units"
    return f"{instrument} {channel} {file_format}: the simulator has no counterpart to compare it with"


def _load(path: Path, root: Path, ref: Reference, limit: int | None) -> None:
    """Add one file to ``ref``: to its family's images, or to the unused files with the reason."""
    name, uri = str(path.relative_to(root)), str(path)
    raw = read_bytes(uri)
    seen = understand(open_image(raw, uri))  # header only, no sunpy Map
    family = _family_of(seen.instrument, seen.channel, seen.image.file_format, display_scaled(seen.header))
    if isinstance(family, str):
        ref.unused[name] = family
        return
    if limit is not None and len(ref.images.get(family.key, [])) >= limit:
        ref.unused[name] = f"beyond the limit of {limit} real images per family ({family.key})"
        return
    try:
        image = load_disk(uri, family.curve, raw)
    except PrepError as exc:
        ref.unused[name] = f"not a full-disk image: {exc}"
        return
    if not whole_disk_in_frame(image.centre_px, image.radius_px, image.data.shape):
        ref.unused[name] = "the disk its header describes does not fit in the frame (a cut-out, or a rebinned file " \
                           "that kept the original plate scale): the report compares full-disk images only"
        return
    if family.coronal_holes:
        image = _with_chronnos_mask(image, root / CH_MASK_FOLDER / path.name)
    ref.images.setdefault(family.key, []).append(image)


def load_reference(root: str | os.PathLike | None = None, limit: int | None = None, progress: bool = False) -> Reference:
    """The real data under ``root`` (default :func:`default_realdata`); at most ``limit``
    images per family. A missing folder gives an empty reference (published values only)."""
    root = Path(root) if root is not None else default_realdata()
    if not (root / "README.md").is_file():
        return Reference(root=None)
    ref = Reference(root=root)
    paths = sorted(p for folder in IMAGE_FOLDERS for p in (root / folder).rglob("*")
                   if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
    for path in tqdm(paths, unit="file", desc="real data", disable=not progress):
        try:
            _load(path, root, ref, limit)
        except (ReaderError, ValueError, OSError) as exc:
            ref.unused[str(path.relative_to(root))] = f"unreadable: {exc}"
    table = root / KISLOVODSK_TABLE
    if table.is_file():
        ref.kislovodsk = kislovodsk_groups(table)
    srs_files = sorted((root / SRS_FOLDER).glob("*SRS.txt"))
    frames = []
    for path in srs_files:
        try:
            frames.append(read_srs(read_bytes(str(path)), str(path)))
        except ReaderError as exc:
            ref.unused[str(path.relative_to(root))] = f"unreadable: {exc}"
    ref.srs = pl.concat(frames) if frames else None
    return ref


def _with_chronnos_mask(image: DiskImage, mask_path: Path) -> DiskImage:
    """The image with its CHRONNOS mask (4096² PNG, brought to the image's grid by block majority)."""
    if not mask_path.is_file():
        raise ValueError(f"no CHRONNOS mask {mask_path} beside the image")
    _, mask = read_image_mask_pair(image.uri, mask_path)
    return dataclasses.replace(image, mask=mask.astype(bool))


def kislovodsk_groups(path: str | os.PathLike) -> pl.DataFrame:
    """The Kislovodsk sunspot-group table (Illarionov & Tlatov 2022, observethesun/sunspot_groups):
    one row per group and day, within 60° of the central meridian.

    Columns used: ``date``, ``lat_mean`` (degrees), ``area`` (MSH, corrected for
    foreshortening), ``nspots`` (spots and pores), ``tilt`` (degrees, positive clockwise: the
    inclination of the regression line through the group's spots). Its ``complexity`` column
    (a principal-component count of the group's mask shape) has no counterpart in NOAA
    reports or in the simulator and is not used.
    """
    needed = ("date", "lat_mean", "area", "nspots", "tilt")
    try:
        table = pl.read_csv(path, columns=list(needed), try_parse_dates=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ReaderError(str(path), f"not the Kislovodsk sunspot-group table ({exc})") from None
    if table.schema["date"] != pl.Datetime:
        table = table.with_columns(pl.col("date").str.to_datetime())
    return table.rename({"lat_mean": "latitude_deg", "area": "area_msh", "nspots": "spots", "tilt": "tilt_deg"})

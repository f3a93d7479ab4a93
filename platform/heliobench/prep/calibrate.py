"""Photometric calibration: exposure normalisation and AIA degradation correction.

Both follow aiapy (``aiapy.calibrate.normalize_exposure`` and ``correct_degradation``):
the image is divided by the exposure time, and by aiapy's time-dependent degradation
factor of its channel (:func:`aiapy.calibrate.degradation`). The degradation factors come
from a response table on disk (by default the one aiapy ships), so preprocessing needs
no network, and the table's content (not its path) enters the step's hash.

Display-scaled images (``PrepImage.display_scaled``: Helioviewer JPEG 2000, PNG browse
images) hold values for viewing, not counts: both steps return them unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from heliobench.errors import ConfigError
from heliobench.prep.base import PrepError, Step
from heliobench.prep.image import PrepImage

#: ``DegradationCorrection(table=AIAPY_TABLE)``: the response table installed with aiapy.
AIAPY_TABLE = "aiapy"
#: Where aiapy keeps that table. aiapy 0.10 ships one response table, V8 of 2017-12-10, with
#: its test data; newer versions (V10) it downloads from SSW or JSOC (``get_correction_table``).
_AIAPY_TABLE_FILE = ("aiapy.tests.data", "aia_V8_20171210_050627_response_table.txt")


class ExposureNormalize(Step):
    """Divide by the exposure time: AIA DN -> DN/s (``exposure_s`` becomes 1).

    Version 2: display-scaled images pass unchanged (version 1 divided them too).
    """

    name = "exposure_normalize"
    version = 2

    def __init__(self) -> None:
        super().__init__()

    def apply(self, image: PrepImage) -> PrepImage:
        """The image in counts per second; PrepError when the exposure is missing or <= 0."""
        if image.display_scaled:
            return image
        exposure = image.exposure_s
        if exposure is None or not exposure > 0:
            raise PrepError(
                f"{image.observation}: exposure time is {exposure!r} s, cannot normalise to "
                "counts per second (expected EXPTIME > 0)"
            )
        return image.with_data(image.data / np.float32(exposure), exposure_s=1.0)


class DegradationCorrection(Step):
    """Divide an AIA image by its channel's degradation factor at the observation time.

    ``table`` says where the factors come from:

    * ``"aiapy"`` (the default): the response table installed with aiapy (V8, 2017-12-10),
      read offline; the factor is :func:`aiapy.calibrate.degradation`'s. Each channel's
      last epoch in that table runs from 2015-09-01 to 2030, so for observations after
      2017-12 its polynomial is extrapolated: pass a newer table for those.
    * the path of an SSW/JSOC response table (``$SSW/sdo/aia/response/aia_V*_response_table.txt``,
      as :func:`aiapy.calibrate.util.get_correction_table` reads it): aiapy's factor from it.
    * the path of a CSV (comma-separated) of precomputed factors with columns ``time``
      (ISO 8601, UTC when no offset is given), ``channel`` (as in the catalog, e.g.
      ``171``) and ``factor`` (> 0), interpolated linearly in time; before the first or
      after the last row of a channel the nearest row's factor is used.
    * ``None``: the identity (recorded in the hash, so corrected and uncorrected datasets
      never share one).

    Other instruments and display-scaled images pass unchanged. The step touches no
    geometry: the pointing is the header's (AIA level-1 CRPIX/CRVAL/CROTA2, as the readers
    give it to sunpy); aiapy's pointing table, which needs the network, is not used.

    Version 2: non-AIA and display-scaled images pass unchanged (version 1 applied a
    CSV table to any instrument with the channel).
    """

    name = "degradation"
    version = 2

    def __init__(self, table: str | None = AIAPY_TABLE):
        if table is not None and not isinstance(table, str):
            raise ConfigError(f"{self.name}: table must be 'aiapy', a table path or null, got {table!r}")
        super().__init__(table=table)
        self._table_sha256: str | None = None
        self._factors: _FactorCurves | _ResponseTable | None = None
        if table is not None:
            self._table_sha256, self._factors = _load_table(table)

    def fingerprint(self) -> dict[str, Any]:
        """Name, version and the table's content hash (moving the file keeps the hash)."""
        return {"step": self.name, "version": self.version, "params": {"table_sha256": self._table_sha256}}

    def factor(self, image: PrepImage) -> float:
        """The factor :meth:`apply` divides by: the table's for ``image``'s channel and time;
        1 without a table, for other instruments than AIA and for display-scaled images."""
        if self._factors is None or image.instrument != "AIA" or image.display_scaled:
            return 1.0
        try:
            return self._factors.factor(image.channel, image.obs_time)
        except ValueError as exc:
            raise PrepError(f"{image.observation}: degradation table {self.params['table']}: {exc}") from None

    def apply(self, image: PrepImage) -> PrepImage:
        """The image divided by :meth:`factor`."""
        factor = self.factor(image)
        return image if factor == 1.0 else image.with_data(image.data / np.float32(factor))


@dataclass(frozen=True)
class _Epochs:
    """One channel's rows of a response table, sorted by date, as plain numbers: epoch start
    and stop as two-part Julian dates in UTC (the epoch test) and the start in TAI (the
    elapsed time), and per row the effective area over the first row's and the polynomial."""

    start_utc: tuple[np.ndarray, np.ndarray]
    stop_utc: tuple[np.ndarray, np.ndarray]
    start_tai: tuple[np.ndarray, np.ndarray]
    ratio: np.ndarray
    p1: np.ndarray
    p2: np.ndarray
    p3: np.ndarray


@dataclass(frozen=True)
class _ResponseTable:
    """An AIA response table as aiapy reads it (epochs with effective areas and polynomials)."""

    table: Any  # astropy QTable from aiapy.calibrate.util.get_correction_table
    #: Per channel, its epochs (None: the table has no rows for it).
    _channels: dict[str, _Epochs | None] = field(default_factory=dict, compare=False, repr=False)

    def factor(self, channel: str, when: datetime) -> float:
        """aiapy's degradation factor; ValueError naming what the table lacks.

        :func:`aiapy.calibrate.degradation` selects and copies a channel's rows of the
        table for every image and does its arithmetic on ``Time`` objects, which costs
        more than registering a 1024² image. Here each channel's rows are selected once
        (as ``aiapy.calibrate.util._select_epoch_from_correction_table`` selects them) and
        kept as numbers (:class:`_Epochs`), and aiapy's formula runs on them with the
        operations astropy performs: the observation's two-part Julian dates in UTC and TAI
        come from ERFA as ``Time`` computes them, the epoch test compares them as ``Time``
        comparisons do, the elapsed time is the TAI difference normalised by astropy's
        ``day_frac`` as ``Time`` subtraction does. The factor is aiapy's to the
        last bit (tests compare both, on epoch boundaries too). Where aiapy would raise,
        aiapy runs.
        """
        import astropy.units as u
        import erfa
        from aiapy.calibrate import degradation
        from astropy.time import Time
        from astropy.time.utils import day_frac

        if not channel.isdigit():
            raise ValueError(f"channel {channel!r} is not an AIA wavelength")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", erfa.ErfaWarning)  # UTC of times past the leap-second table
            epochs = self._epochs(channel)
            in_epoch = ()
            if epochs is not None:
                # Time(when)'s two-part JD in UTC and TAI, computed as astropy computes them
                naive = when if when.tzinfo is None else (when - when.utcoffset()).replace(tzinfo=None)
                utc1, utc2 = day_frac(*erfa.dtf2d(b"UTC", naive.year, naive.month, naive.day, naive.hour, naive.minute,
                                                  naive.second + naive.microsecond / 1e6))
                (s1, s2), (e1, e2) = epochs.start_utc, epochs.stop_utc
                in_epoch = np.flatnonzero(((utc1 - s1) + (utc2 - s2) >= 0.0) & ((utc1 - e1) + (utc2 - e2) < 0.0))
            if not len(in_epoch):
                return float(degradation(int(channel) * u.AA, Time(when), correction_table=self.table)[0])  # aiapy's error
            i = in_epoch[-1]
            tai1, tai2 = day_frac(*erfa.utctai(utc1, utc2))
            dt = sum(day_frac(tai1 - epochs.start_tai[0][i], tai2 - epochs.start_tai[1][i]))
            poly = epochs.p1[i] * dt + epochs.p2[i] * dt**2 + epochs.p3[i] * dt**3 + 1.0
        return float(poly * epochs.ratio[i])

    def _epochs(self, channel: str) -> _Epochs | None:
        """The channel's rows sorted by date (aiapy's selection) as numbers, None when it has none."""
        if channel not in self._channels:
            import astropy.units as u

            thin = "_THIN" if int(channel) not in (1600, 1700, 4500) else ""
            rows = self.table[self.table["WAVE_STR"] == f"{int(channel)}{thin}"]
            rows.sort("DATE")
            start, stop = rows["T_START"], rows["T_STOP"]
            self._channels[channel] = _Epochs(
                start_utc=(start.utc.jd1, start.utc.jd2),
                stop_utc=(stop.utc.jd1, stop.utc.jd2),
                start_tai=(start.tai.jd1, start.tai.jd2),
                ratio=(rows["EFF_AREA"] / rows["EFF_AREA"][0]).to_value(u.dimensionless_unscaled),
                p1=np.asarray(rows["EFFA_P1"], dtype=float),
                p2=np.asarray(rows["EFFA_P2"], dtype=float),
                p3=np.asarray(rows["EFFA_P3"], dtype=float),
            ) if len(rows) else None
        return self._channels[channel]


@dataclass(frozen=True)
class _FactorCurves:
    """Precomputed factors per channel: sorted POSIX times and factors."""

    curves: dict[str, tuple[np.ndarray, np.ndarray]]

    def factor(self, channel: str, when: datetime) -> float:
        """The factor interpolated linearly in time; ValueError for a channel without rows."""
        if channel not in self.curves:
            raise ValueError(f"no rows for channel {channel!r} (it has {sorted(self.curves)})")
        times, factors = self.curves[channel]
        return float(np.interp(when.timestamp(), times, factors))


def aia_degradation(channel: str, when: datetime, table: str = AIAPY_TABLE) -> float:
    """The degradation factor of AIA ``channel`` at ``when`` from ``table`` (see
    :class:`DegradationCorrection`): what the simulator multiplies its counts by and the
    default pipeline divides them by."""
    try:
        return _load_table(table)[1].factor(channel, when)
    except ValueError as exc:
        raise PrepError(f"AIA {channel} {when:%Y-%m-%dT%H:%M:%S}: degradation table {table}: {exc}") from None


def aiapy_table_path() -> Path:
    """The response table installed with aiapy (see ``_AIAPY_TABLE_FILE``)."""
    package, name = _AIAPY_TABLE_FILE
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        raise ConfigError("degradation table 'aiapy': aiapy is not installed (pip install aiapy)") from None
    if not path.is_file():
        raise ConfigError(
            f"degradation table 'aiapy': this aiapy no longer ships {name}; pass table=PATH to an "
            "aia_V*_response_table.txt (from $SSW/sdo/aia/response/)"
        )
    return path


def _load_table(table: str) -> tuple[str, _FactorCurves | _ResponseTable]:
    """Content hash and parsed factors of ``table`` ('aiapy' or a path)."""
    path = aiapy_table_path() if table == AIAPY_TABLE else Path(table)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"degradation table {path}: cannot be read ({exc.strerror})") from exc
    sha256 = hashlib.sha256(raw).hexdigest()
    if sha256 not in _PARSED:
        _PARSED[sha256] = _parse_table(raw, f"degradation table {path}")
    return sha256, _PARSED[sha256]


#: Parsed tables by content hash: every AIA member's pipeline loads the same table, parsed once per process.
_PARSED: dict[str, _FactorCurves | _ResponseTable] = {}


def _parse_table(raw: bytes, where: str) -> _FactorCurves | _ResponseTable:
    """A CSV of factors when the first line has commas, else an aiapy response table."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a text table") from None
    if "," in text.partition("\n")[0]:
        return _FactorCurves(_read_csv(text, where))
    from aiapy.calibrate.util import get_correction_table

    try:
        return _ResponseTable(get_correction_table(text))
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{where}: neither a CSV with columns time, channel, factor nor an AIA response table "
            f"(aia_V*_response_table.txt, as aiapy reads it): {type(exc).__name__}: {exc}"
        ) from None


def _read_csv(text: str, where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-channel (sorted POSIX times, factors) of a CSV of precomputed factors."""
    rows = list(csv.DictReader(text.splitlines()))
    missing = {"time", "channel", "factor"} - set(rows[0] if rows else {})
    if missing:
        raise ConfigError(f"{where}: expected columns time, channel, factor; missing {sorted(missing)}")
    points: dict[str, list[tuple[float, float]]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            when = datetime.fromisoformat(row["time"].strip())
            factor = float(row["factor"])
        except ValueError as exc:
            raise ConfigError(f"{where}, line {line}: {exc} (expected an ISO time and a number)") from exc
        if not factor > 0:
            raise ConfigError(f"{where}, line {line}: factor must be > 0, got {row['factor']!r}")
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        points.setdefault(row["channel"].strip(), []).append((when.timestamp(), factor))
    curves = {}
    for channel, pairs in points.items():
        pairs.sort()
        curves[channel] = (np.array([t for t, _ in pairs]), np.array([f for _, f in pairs]))
    return curves

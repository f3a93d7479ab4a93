"""Photometric calibration: exposure normalisation and the instrument-degradation hook.

Both follow aiapy (``aiapy.calibrate.normalize_exposure`` and ``correct_degradation``):
the image is divided by the exposure time, and by a time-dependent factor per channel.
aiapy computes that factor from JSOC's ``aia.response`` series; HelioBench reads it from
a CSV table exported once, so preprocessing needs no network and the table's content
(not its path) enters the step's hash.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from heliobench.errors import ConfigError
from heliobench.prep.base import PrepError, Step
from heliobench.prep.image import PrepImage


class ExposureNormalize(Step):
    """Divide by the exposure time: AIA DN -> DN/s (``exposure_s`` becomes 1)."""

    name = "exposure_normalize"
    version = 1

    def __init__(self) -> None:
        super().__init__()

    def apply(self, image: PrepImage) -> PrepImage:
        """The image in counts per second; PrepError when the exposure is missing or <= 0."""
        exposure = image.exposure_s
        if exposure is None or not exposure > 0:
            raise PrepError(
                f"{image.observation}: exposure time is {exposure!r} s, cannot normalise to "
                "counts per second (expected EXPTIME > 0)"
            )
        return image.with_data(image.data / np.float32(exposure), exposure_s=1.0)


class DegradationCorrection(Step):
    """Divide by the instrument's degradation factor for the channel at the observation time.

    ``table`` is a CSV file with columns ``time`` (ISO 8601, UTC when no offset is given),
    ``channel`` (as in the catalog, e.g. ``171``) and ``factor`` (> 0). The factor is
    interpolated linearly in time; before the first or after the last row of a channel
    the nearest row's factor is used. ``table=None`` is the identity (recorded in the hash,
    so corrected and uncorrected datasets never share one).
    """

    name = "degradation"
    version = 1

    def __init__(self, table: str | None = None):
        if table is not None and not isinstance(table, str):
            raise ConfigError(f"{self.name}: table must be a CSV path or null, got {table!r}")
        super().__init__(table=table)
        self._curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._table_sha256: str | None = None
        if table is not None:
            self._table_sha256, self._curves = _read_table(Path(table))

    def fingerprint(self) -> dict[str, Any]:
        """Name, version and the table's content hash (moving the file keeps the hash)."""
        return {"step": self.name, "version": self.version, "params": {"table_sha256": self._table_sha256}}

    def factor(self, image: PrepImage) -> float:
        """The degradation factor for ``image``'s channel and time (1 without a table)."""
        if self.params["table"] is None:
            return 1.0
        if image.channel not in self._curves:
            raise PrepError(
                f"{image.observation}: degradation table {self.params['table']} has no rows for "
                f"channel {image.channel!r} (it has {sorted(self._curves)})"
            )
        times, factors = self._curves[image.channel]
        return float(np.interp(image.obs_time.timestamp(), times, factors))

    def apply(self, image: PrepImage) -> PrepImage:
        """The image divided by :meth:`factor`."""
        if self.params["table"] is None:
            return image
        return image.with_data(image.data / np.float32(self.factor(image)))


def _read_table(path: Path) -> tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Content hash and per-channel (sorted POSIX times, factors) of a degradation CSV."""
    where = f"degradation table {path}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror})") from exc
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
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
    return hashlib.sha256(raw).hexdigest(), curves

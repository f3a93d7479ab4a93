"""One UTC day of the simulated archive: the day's images and its label files."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime

from astropy.time import Time

from heliobench import storage
from heliobench.archive.sim import paths
from heliobench.archive.sim.config import SimConfig
from heliobench.archive.sim.srs import srs_text
from heliobench.archive.sim.sun import SunModel
from heliobench.archive.sim.timestep import simulate_time_step

_QUALITY_COLUMNS = ("file", "obs_time", "quality", "degradation")


def _naive_utc(t: str | datetime | Time) -> datetime:
    return Time(t, scale="utc").utc.to_datetime()


def _as_date(day: str | date | datetime) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return date.fromisoformat(day)


def simulate_day(
    out: str, day: str | date, times: Sequence[str | datetime | Time], config: SimConfig
) -> list[str]:
    """Write the files of ``times`` (all within the UTC ``day``) and the day's labels under ``out``.

    Labels: the HEK records of the time steps, the SRS issued on the day and the H-alpha
    quality table. Each file is built in memory and written at once, so memory does not grow
    with the number of time steps. Returns the written URIs.
    """
    the_day = _as_date(day)
    steps = sorted(_naive_utc(t) for t in times)
    strays = [t for t in steps if t.date() != the_day]
    if strays:
        raise ValueError(f"simulate_day({the_day}): time steps outside the day: {strays[:3]}")
    model = SunModel(config.seed)
    written: list[str] = []

    def put(path: str, data: bytes) -> None:
        uri = storage.join(out, path)
        storage.write_bytes_atomic(uri, data)
        written.append(uri)

    events: list[dict] = []
    quality_rows: list[dict] = []
    for t in steps:
        step = simulate_time_step(model, t, config)
        for path, data in step.files:
            put(path, data)
        events.extend(step.hek_events)
        quality_rows.append(step.halpha_row)

    put(paths.hek_path(the_day), json.dumps({"result": events, "overmax": False}).encode())
    put(paths.srs_path(the_day), srs_text(model, the_day).encode("ascii"))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=_QUALITY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(quality_rows)
    put(paths.quality_path(the_day), table.getvalue().encode())
    return written

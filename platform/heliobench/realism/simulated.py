"""The simulated side: time steps and SRS days written by the simulator's public
:func:`~heliobench.archive.sim.simulate_day`, and the files of any simulated archive
sorted into images, coronal-hole masks and SRS reports by HelioBench's readers.

Nothing here knows how the simulator draws the Sun: the report measures the files it
writes, exactly as it measures the real ones, so that its numbers follow the simulator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from itertools import groupby

import numpy as np
import polars as pl
from tqdm import tqdm

from heliobench.archive.labels import detect_label
from heliobench.archive.readers import read_srs
from heliobench.archive.readers.containers import open_image
from heliobench.archive.readers.images import understand
from heliobench.archive.sim import SimConfig, simulate_day
from heliobench.catalog.sources import list_source
from heliobench.errors import ReaderError
from heliobench.raysession import ensure_ray
from heliobench.realism.disks import DiskImage, load_disk
from heliobench.storage import read_bytes

#: Label-only days per simulation task (an SRS day costs a few hundredths of a second).
_DAYS_PER_TASK = 8
#: A coronal-hole mask belongs to the AIA image taken within this many seconds of it.
_MASK_MATCH_S = 60.0
#: The simulator applies AIA's degradation, which is known from SDO's start of science (2010):
#: a real image taken before is paired with the simulated Sun whole solar cycles later (the same
#: phase of the cycle and time of year).
SDO_ERA_START = datetime(2010, 5, 13, tzinfo=timezone.utc)
SOLAR_CYCLE_YEARS = 11


def partner_time(t: datetime) -> datetime:
    """When the simulated partner of a real image taken at ``t`` (UTC) is simulated."""
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    if t >= SDO_ERA_START:
        return t
    years = SOLAR_CYCLE_YEARS * math.ceil((SDO_ERA_START - t).days / 365.25 / SOLAR_CYCLE_YEARS)
    return t.replace(year=t.year + years, day=min(t.day, 28) if t.month == 2 else t.day)


def _simulate_days(out: str, jobs: list[tuple[str, list[str]]], config: SimConfig) -> tuple[int, dict[str, str]]:
    """Simulate each (day, times) job; a day that fails is reported with the reason, not raised."""
    failed = {}
    for day, times in jobs:
        try:
            simulate_day(out, day, times, config)
        except Exception as exc:  # any simulator error on one day must not stop the others
            failed[day] = f"{type(exc).__name__}: {exc}"
    return len(jobs), failed


def simulate(
    out: str,
    times: Iterable[datetime],
    label_days: Iterable[date] = (),
    size: int = 512,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, str]:
    """Simulate the time steps ``times`` (UTC) and, for ``label_days``, only the day's labels
    (SRS, HEK, H-alpha quality), into ``out`` (a folder or URI the Ray workers can write to):
    one Ray task per day with images, one per batch of label-only days. Returns the days the
    simulator failed on, with the reason."""
    import ray

    steps = sorted({_naive_utc(t) for t in times})
    by_day = {d: [t.isoformat() for t in group] for d, group in groupby(steps, key=lambda t: t.date())}
    for d in label_days:
        by_day.setdefault(d, [])
    jobs = sorted((d.isoformat(), ts) for d, ts in by_day.items())
    label_only = [job for job in jobs if not job[1]]
    tasks = [[job] for job in jobs if job[1]]
    tasks += [label_only[i:i + _DAYS_PER_TASK] for i in range(0, len(label_only), _DAYS_PER_TASK)]
    config = SimConfig(size=size, seed=seed)
    ensure_ray()
    remote = ray.remote(num_cpus=1)(_simulate_days)
    pending = [remote.remote(out, task, config) for task in tasks]
    failed: dict[str, str] = {}
    with tqdm(total=len(jobs), unit="day", desc="simulate", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            count, errors = ray.get(done[0])
            failed.update(errors)
            bar.update(count)
    return failed


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


@dataclass(frozen=True)
class SimImage:
    """A simulated observation file: what the readers say it is."""

    uri: str
    instrument: str
    channel: str
    obs_time: datetime  # UTC, aware


@dataclass
class SimulatedFiles:
    """The files of a simulated archive, sorted by what they hold."""

    images: list[SimImage] = field(default_factory=list)
    ch_masks: list[tuple[datetime, str]] = field(default_factory=list)
    srs: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    def products(self) -> set[tuple[str, str]]:
        """The (instrument, channel) pairs the archive has images of."""
        return {(i.instrument, i.channel) for i in self.images}

    def of(self, instrument: str, channel: str) -> list[SimImage]:
        """Images of one product, in time order."""
        return sorted((i for i in self.images if (i.instrument, i.channel) == (instrument, channel)),
                      key=lambda i: i.obs_time)

    def srs_regions(self) -> pl.DataFrame | None:
        """The regions of every SRS report, one table (None without reports)."""
        frames = []
        for uri in self.srs:
            try:
                frames.append(read_srs(read_bytes(uri), uri))
            except ReaderError as exc:
                self.unreadable[uri] = str(exc)
        return pl.concat(frames) if frames else None


def scan_archive(root: str, progress: bool = True) -> SimulatedFiles:
    """Sort the files under ``root`` (a simulated archive, local or ``s3://``) by their content."""
    found = SimulatedFiles()
    for source in tqdm(list_source(root), unit="file", desc="scan", disable=not progress):
        uri = source.uri
        try:
            raw = read_bytes(uri)
            label = detect_label(raw, uri)
            if label is None:
                seen = understand(open_image(raw, uri))  # the header only: no sunpy Map is built
                found.images.append(SimImage(uri, seen.instrument, seen.channel, seen.obs_time))
            elif label.kind == "ch_mask":
                found.ch_masks.append((label.time_start, uri))
            elif label.kind == "srs":
                found.srs.append(uri)
        except (ReaderError, ValueError, OSError) as exc:
            found.unreadable[uri] = str(exc)
    return found


def load_simulated(files: SimulatedFiles, image: SimImage, with_mask: bool = False) -> DiskImage:
    """A simulated image as a :class:`DiskImage`; ``with_mask``: with the coronal-hole mask of its
    time step (the simulator's truth, on the same grid)."""
    disk = load_disk(image.uri)
    if not with_mask:
        return disk
    near = [(abs((t - image.obs_time).total_seconds()), uri) for t, uri in files.ch_masks]
    seconds, uri = min(near, default=(np.inf, ""))
    if seconds > _MASK_MATCH_S:
        raise ValueError(f"{image.uri}: no coronal-hole mask within {_MASK_MATCH_S:.0f} s")
    mask = np.asarray(open_image(read_bytes(uri), uri).decode()) > 0
    if mask.shape != disk.data.shape:
        raise ValueError(f"{uri}: mask {mask.shape} is not on the grid of {image.uri} {disk.data.shape}")
    return dataclasses.replace(disk, mask=mask)

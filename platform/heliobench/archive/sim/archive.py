"""Simulating a whole archive on Ray: one task per UTC day of time steps, a bounded number in flight."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

import astropy.units as u
from astropy.time import Time
from tqdm import tqdm

from heliobench.archive.sim import cycle, paths
from heliobench.archive.sim.config import SimConfig
from heliobench.archive.sim.day import simulate_day
from heliobench.errors import HelioBenchError
from heliobench.raysession import ensure_ray

#: Day tasks in flight per CPU of the cluster.
_IN_FLIGHT_PER_CPU = 2


@dataclass(frozen=True)
class SimSummary:
    """What a simulation run wrote."""

    files: dict[str, int] = field(default_factory=dict)  # per kind in paths.KINDS
    time_steps: int = 0
    days: int = 0
    seconds: float = 0.0

    @property
    def total_files(self) -> int:
        """All files written."""
        return sum(self.files.values())


def cadence_seconds(cadence: u.Quantity | str) -> float:
    """A cadence such as ``"6h"``, ``"30min"`` or ``6 * u.h`` in seconds."""
    try:
        seconds = u.Quantity(cadence).to_value(u.s)
    except (TypeError, ValueError, u.UnitsError):
        raise HelioBenchError(f"cadence {cadence!r}: expected a time such as '6h', '30min' or '1d'") from None
    if seconds <= 0:
        raise HelioBenchError(f"cadence {cadence!r}: must be positive")
    return float(seconds)


def time_steps(start: str | Time, end: str | Time, cadence_s: float) -> list[datetime]:
    """Time steps ``start, start + cadence, ...`` before ``end`` (naive UTC datetimes)."""
    first, last = Time(start, scale="utc"), Time(end, scale="utc")
    for t, name in ((first, "start"), (last, "end")):
        cycle.check_supported(float(t.mjd), f"simulate {name} {t.isot}")
    if last <= first:
        raise HelioBenchError(f"simulate: end {last.isot} is not after start {first.isot}")
    t0 = first.to_datetime()
    count = int(((last - first).to_value(u.s) - 1e-6) // cadence_s) + 1
    return [t0 + timedelta(seconds=i * cadence_s) for i in range(count)]


def simulate_archive(
    out: str,
    start: str | Time,
    end: str | Time,
    cadence: u.Quantity | str,
    size: int = 512,
    seed: int = 0,
    progress: bool = True,
    halpha_size: int | None = None,
) -> SimSummary:
    """Simulate SDO/AIA, SDO/HMI and KSO H-alpha files plus their labels from ``start`` to ``end``.

    ``out`` is a local folder or an fsspec URI. Time steps run from ``start`` every ``cadence``
    up to, not including, ``end``. Same seed, same Sun: any time step's files are identical
    whatever ``start`` is. Each UTC day is one Ray task (images and labels of that
    day); at most ``2 x CPUs`` tasks are in flight, and a progress bar counts finished days.
    """
    started = time.perf_counter()
    if "://" not in out:
        out = os.path.abspath(out)  # Ray workers may not share the driver's working directory
    config = SimConfig(size=size, seed=seed, halpha_size=halpha_size, cadence_s=cadence_seconds(cadence))
    steps = time_steps(start, end, config.cadence_s)
    days = [(day, [t.isoformat() for t in group]) for day, group in groupby(steps, key=lambda t: t.date())]

    import ray

    ensure_ray()
    task = ray.remote(num_cpus=1)(simulate_day)
    max_in_flight = max(1, _IN_FLIGHT_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))
    counts: Counter[str] = Counter()
    pending: list = []
    with tqdm(total=len(days), unit="day", desc="simulate", disable=not progress) as bar:

        def finish_one(in_flight: list) -> list:
            done, rest = ray.wait(in_flight, num_returns=1)
            for uris in ray.get(done):
                counts.update(paths.kind_of(uri) for uri in uris)
            bar.update(len(done))
            return rest

        for day, times in days:
            if len(pending) >= max_in_flight:
                pending = finish_one(pending)
            pending.append(task.remote(out, day.isoformat(), times, config))
        while pending:
            pending = finish_one(pending)
    return SimSummary(
        files={kind: counts.get(kind, 0) for kind in paths.KINDS},
        time_steps=len(steps),
        days=len(days),
        seconds=time.perf_counter() - started,
    )

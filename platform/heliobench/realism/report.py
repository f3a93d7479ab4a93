"""``heliobench sim-report``: simulate what the comparison needs, measure it against the real
data, and write the table (JSON), the figures and an HTML page.

For tuning the simulator without re-reading the real files every time::

    reference = load_reference()                      # real files, once (about half a minute)
    files = scan_archive("work/my_sim")               # any archive written by `heliobench sim`
    rows = measure(reference, files, Path("/tmp/fig"))  # every distance, seconds
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from heliobench.realism.compare_images import compare_images
from heliobench.realism.compare_regions import KISLOVODSK_SPAN, compare_regions
from heliobench.realism.html import write_html
from heliobench.realism.reference import FAMILIES, Reference, load_reference
from heliobench.realism.regions import cycle_days
from heliobench.realism.simulated import SimulatedFiles, partner_time, scan_archive, simulate
from heliobench.realism.table import Row


@dataclass(frozen=True)
class ReportSettings:
    """What the report simulates and how much of the real data it reads."""

    size: int = 512  # simulated AIA/HMI image size (pixels)
    seed: int = 0
    days: tuple[datetime, ...] = ()  # simulate these times for the image statistics instead of each real file's own
    cycle_cadence_days: int = 10  # SRS reports every this many days over the Kislovodsk years
    magnetogram_steps: int = 40  # full time steps spread over the Kislovodsk years, for tilts
    real_limit: int | None = None  # at most this many real images per family

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"size (--size) must be at least 16 pixels, got {self.size}")
        if self.cycle_cadence_days < 1:
            raise ValueError(f"cycle_cadence_days (--cycle-cadence) must be at least 1, got {self.cycle_cadence_days}")
        if self.magnetogram_steps < 0:
            raise ValueError(f"magnetogram_steps (--magnetogram-steps) must be at least 0, got {self.magnetogram_steps}")
        if self.real_limit is not None and self.real_limit < 1:
            raise ValueError(f"real_limit (--real-limit) must be at least 1, got {self.real_limit}")


#: The demo's report: it measures the demo's own archive and reads at most 5 real images per kind.
DEMO_SETTINGS = ReportSettings(real_limit=5)


def plan(reference: Reference, settings: ReportSettings) -> tuple[list[datetime], list[date]]:
    """The time steps to simulate with images, and the days for which the SRS report is enough.

    Steps: each real image's date and time (one per day; or ``settings.days``), plus
    ``magnetogram_steps`` at 00:00 UT spread over the Kislovodsk years (for tilts). Label days:
    every ``cycle_cadence_days`` over those years, and the days of the real SRS reports.
    """
    kis = reference.kislovodsk
    start, end = (kis["date"].min(), kis["date"].max()) if kis is not None else KISLOVODSK_SPAN
    start = datetime(start.year, start.month, start.day)
    if settings.days:
        steps = list(settings.days)
    else:
        first_of_day: dict[date, datetime] = {}
        for image in sorted((i for images in reference.images.values() for i in images), key=lambda i: i.obs_time):
            when = partner_time(image.obs_time)
            first_of_day.setdefault(when.date(), when.astimezone(timezone.utc).replace(tzinfo=None))
        steps = list(first_of_day.values())
    n = settings.magnetogram_steps
    spacing = (end - start) / max(n, 1)
    steps += [(start + spacing * (i + 0.5)).replace(hour=0, minute=0, second=0, microsecond=0) for i in range(n)]
    label_days = [d.date() for d in cycle_days(start, end, settings.cycle_cadence_days)]
    if reference.srs is not None:
        label_days += reference.srs["issued"].dt.date().unique().to_list()
    return steps, label_days


def measure(reference: Reference, files: SimulatedFiles, figure_dir: Path) -> list[Row]:
    """Every statistic of the simulated archive ``files`` against ``reference``, figures into ``figure_dir``."""
    figure_dir.mkdir(parents=True, exist_ok=True)
    return compare_images(reference, files, figure_dir) + compare_regions(reference, files, figure_dir)


def realism_report(out: str | Path, realdata: str | Path | None = None, settings: ReportSettings = ReportSettings(),
                   archive: str | None = None, progress: bool = True) -> list[Row]:
    """Simulate (or read ``archive``), compare with the real data under ``realdata`` (default
    ``../shared/realdata``) and write ``index.html``, the figures and ``realism.json`` into ``out``."""
    started = time.perf_counter()

    def done(what: str) -> None:
        if progress:
            print(f"[sim-report] {what} at {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reference = load_reference(realdata, settings.real_limit, progress=progress)
    done(f"real data read ({sum(map(len, reference.images.values()))} images)")
    with tempfile.TemporaryDirectory(prefix="heliobench-sim-report-") as tmp:
        steps: list[datetime] = []
        failed: dict[str, str] = {}
        if archive is None:
            steps, label_days = plan(reference, settings)
            failed = simulate(tmp, steps, label_days, size=settings.size, seed=settings.seed, progress=progress)
            done(f"simulated {len(steps)} time steps and the SRS of {len(set(label_days))} days")
        files = scan_archive(archive or tmp, progress=progress)
        rows = measure(reference, files, out)
        done("measured")
    seconds = time.perf_counter() - started
    described = {**{k: v for k, v in asdict(settings).items() if k != "days"},
                 "days": [d.isoformat() for d in settings.days] or "each real file's date and time",
                 "realdata": str(reference.root) if reference.root else "absent (published values only)",
                 "archive": archive or f"simulated: {len(steps)} time steps with images", "seconds": round(seconds, 1)}
    galleries = sorted(p.name for p in out.glob("*.images.png"))
    absent = {f"({f.title})": "no real files of this kind" for f in FAMILIES if not reference.family_images(f)}
    write_html(out, rows, described, absent | reference.unused | {f"simulated day {d}": why for d, why in failed.items()},
               galleries)
    (out / "realism.json").write_text(json.dumps({"settings": described, "rows": [r.to_json() for r in rows],
                                                  "unused_real_files": reference.unused,
                                                  "families_without_real_files": [f.key for f in FAMILIES if not reference.family_images(f)],
                                                  "simulated_products": sorted(" ".join(p) for p in files.products()),
                                                  "failed_simulated_days": failed,
                                                  "unreadable_simulated_files": files.unreadable}, indent=1))
    return rows


def demo_report(workdir: str | Path, archive: str) -> tuple[Path, list[Row]]:
    """The report for ``heliobench demo`` on the demo's own simulated ``archive``, reading at most
    :data:`DEMO_SETTINGS`'s real files per kind, into ``WORKDIR/realism``: (its page, its rows)."""
    out = Path(workdir) / "realism"
    rows = realism_report(out, settings=DEMO_SETTINGS, archive=archive)
    return out / "index.html", rows


def parse_day(text: str) -> datetime:
    """A day or time (ISO 8601, UTC) given on the command line: ``2014-07-15`` or ``2014-07-15T12:00``."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--days {text!r}: expected a date or time such as 2014-07-15 or 2014-07-15T12:00") from None
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when

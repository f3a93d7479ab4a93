"""How close the simulated archive is to the Sun: each statistic of the simulator's files
against real files (``../shared/realdata``) or published values, with a distance and a figure.

:func:`realism_report` does it all (``heliobench sim-report``). To measure a simulator
change quickly, load the real side once and measure any simulated archive folder::

    from heliobench.realism import load_reference, measure, scan_archive
    reference = load_reference()
    rows = measure(reference, scan_archive("work/sim"), Path("work/sim_report"))
    {r.key: r.distance for r in rows}
"""

from heliobench.realism.compare_images import compare_images
from heliobench.realism.compare_regions import compare_regions
from heliobench.realism.reference import Reference, load_reference
from heliobench.realism.report import DEMO_SETTINGS, ReportSettings, demo_report, measure, realism_report
from heliobench.realism.simulated import SimulatedFiles, scan_archive, simulate
from heliobench.realism.table import Row, format_table

__all__ = [
    "DEMO_SETTINGS",
    "Reference",
    "ReportSettings",
    "Row",
    "SimulatedFiles",
    "compare_images",
    "compare_regions",
    "demo_report",
    "format_table",
    "load_reference",
    "measure",
    "realism_report",
    "scan_archive",
    "simulate",
]

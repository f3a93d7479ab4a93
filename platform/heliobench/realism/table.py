"""The report's rows: one statistic each, simulated against real, with its distance."""

from __future__ import annotations

import math
from dataclasses import dataclass

from heliobench.realism.distances import Distance


@dataclass(frozen=True)
class Row:
    """One statistic of the simulator against real data.

    ``simulated`` and ``real`` are summary values (``summary`` says which: the distance is
    computed on the full distributions, curves or per-image values, not on these).
    ``distance`` is NaN when one side is missing, and ``note`` then says why.
    """

    key: str  # stable identifier, e.g. "aia193_png.histogram"
    statistic: str
    summary: str
    simulated: float | str | None
    real: float | str | None
    distance: float
    metric: Distance
    source: str  # the real files, or the publication of a published value
    figure: str | None  # PNG in the report folder
    n_simulated: int
    n_real: int
    note: str = ""

    @property
    def close(self) -> bool:
        """Whether the distance is below its closeness bound."""
        return self.metric.is_close(self.distance)

    def to_json(self) -> dict:
        """The row as JSON-ready values (NaN as null)."""
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "key": self.key, "statistic": self.statistic, "summary": self.summary,
            "simulated": clean(self.simulated), "real": clean(self.real),
            "distance": clean(self.distance), "distance_name": self.metric.name, "distance_unit": self.metric.unit,
            "close_below": self.metric.close_below, "close": self.close, "distance_meaning": self.metric.meaning,
            "source": self.source, "figure": self.figure, "n_simulated": self.n_simulated, "n_real": self.n_real,
            "note": self.note,
        }


def format_value(value: float | str | None) -> str:
    """A summary value for the table: 3 significant digits, '—' when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.3g}"


def format_distance(row: Row) -> str:
    """The distance with its unit, '—' when missing."""
    if not math.isfinite(row.distance):
        return "—"
    return f"{row.distance:.3g} {row.metric.unit}".rstrip()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: list[Row], width: int = 60) -> str:
    """The rows as a fixed-width text table (sources, or why a side is missing, cut to ``width`` characters)."""
    header = ("statistic", "simulated", "real", "distance", "close", "source")
    lines = [[r.statistic, format_value(r.simulated), format_value(r.real), format_distance(r),
              ("yes" if r.close else "no") if math.isfinite(r.distance) else "—",
              _cut(r.source or r.note, width)] for r in rows]
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)

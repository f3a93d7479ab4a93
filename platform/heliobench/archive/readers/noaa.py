"""NOAA active-region numbers written with four digits.

NOAA reached region 10000 on 2002-06-14 and kept writing four digits (10001 as
``0001``) in SRS reports and SolarSoft event lists. The full number is the four-digit
one plus the multiple of 10000 that brings it closest to the count NOAA had reached at
the date; that count is estimated from the mean numbering rate, which is far more
accurate than the 5000-region margin the rule needs.
"""

from __future__ import annotations

from datetime import datetime, timezone

#: NOAA assigned region 10000 on this day.
_REGION_10000_DATE = datetime(2002, 6, 14, tzinfo=timezone.utc)

#: Mean number of regions NOAA numbered per year 1996-2017 (7938 in Jan 1996, 12672 in Sep 2017).
_REGIONS_PER_YEAR = 176.0


def full_noaa_number(number: int | None, date: datetime) -> int | None:
    """The full NOAA region number of ``number`` as written at ``date`` (None for 0 / none)."""
    if number is None or number <= 0:
        return None
    if number >= 10000:
        return number
    years = (date - _REGION_10000_DATE).total_seconds() / (365.25 * 86400)
    expected = 10000 + _REGIONS_PER_YEAR * years
    return number + 10000 * max(0, round((expected - number) / 10000))

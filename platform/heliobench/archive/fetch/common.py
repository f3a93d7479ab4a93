"""What the fetched sources share: time ranges, service URLs, the download loop and its report.

Every fetched file is written atomically (:func:`heliobench.storage.write_bytes_atomic`), so a
file that exists in the download folder is complete: a run that is interrupted and started
again skips the files it already has and fetches only the others. A file that cannot be
fetched is reported (:class:`FetchResult.failures`, and a warning naming its URL) and the run
goes on with the next one; only a service that cannot be reached at all stops the run, with
an error naming the service's URL.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.request import urlopen

import astropy.units as u
from tqdm import tqdm

from heliobench import storage
from heliobench.errors import HelioBenchError

log = logging.getLogger(__name__)

_RANGE = re.compile(r"(?P<start>[^/\[\]@]+)/(?P<end>[^/\[\]@]+)")


@dataclass(frozen=True)
class Failure:
    """One file (or one query) that could not be fetched: its URL and why."""

    url: str
    reason: str


@dataclass
class FetchResult:
    """The files a fetch left in the download folder (fetched now or before) and its failures."""

    paths: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def report(self, uri: str) -> None:
        """Warn once per failure, naming ``uri`` and the URL that failed."""
        for failure in self.failures:
            log.warning("%s: could not fetch %s (%s); the other files were fetched", uri, failure.url, failure.reason)


@dataclass(frozen=True)
class TimeRange:
    """A UTC time range ``[start, end)`` as naive datetimes."""

    start: datetime
    end: datetime

    def days(self) -> list[date]:
        """The UTC days the range touches, in order."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def parse_time_range(text: str, uri: str) -> TimeRange:
    """``START/END`` in ISO 8601 (UTC): a date-only END includes that whole day
    (``2017-09-01/2017-09-03`` is three days), a time END is exclusive."""
    match = _RANGE.fullmatch(text.strip())
    if match is None:
        raise HelioBenchError(f"{uri}: time range {text!r} is not START/END, e.g. 2017-09-01/2017-09-03")
    start = _instant(match["start"], uri)
    end = _instant(match["end"], uri)
    if "T" not in match["end"] and " " not in match["end"].strip():
        end += timedelta(days=1)
    if end <= start:
        raise HelioBenchError(f"{uri}: the range ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return TimeRange(start, end)


def _instant(text: str, uri: str) -> datetime:
    """A naive UTC datetime from an ISO 8601 date or date-time (``Z`` or an offset allowed)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HelioBenchError(f"{uri}: {text!r} is not an ISO 8601 date or time (e.g. 2017-09-01T06:00)") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_cadence(text: str, uri: str) -> timedelta:
    """A cadence such as ``1h``, ``12min``, ``30s`` or ``1d``."""
    try:
        seconds = u.Quantity(text.strip()).to_value(u.s)
    except (TypeError, ValueError, u.UnitsError):
        raise HelioBenchError(f"{uri}: cadence {text!r} is not a time such as 1h, 12min or 1d") from None
    if seconds <= 0:
        raise HelioBenchError(f"{uri}: cadence {text!r} must be positive")
    return timedelta(seconds=float(seconds))


def service_url(env: str, default: str, explicit: str | None = None) -> str:
    """A service's base URL: ``explicit``, else ``$env``, else ``default``; always ending in ``/``."""
    url = explicit or os.environ.get(env) or default
    if not re.match(r"https?://[^/]+", url):
        raise HelioBenchError(f"{env}={url!r} is not an http(s) URL")
    return url if url.endswith("/") or "?" in url else url + "/"


def unreachable(uri: str, service: str, url: str, exc: BaseException) -> HelioBenchError:
    """The error for a service that cannot be reached, naming its URL."""
    reason = getattr(exc, "reason", None) or exc
    return HelioBenchError(f"{uri}: {service} at {url} unreachable ({reason})")


def exists(target: str) -> bool:
    """Whether ``target`` is already in the download folder (then it is complete: writes are atomic)."""
    fs, path = storage.filesystem(target)
    return storage.with_retries(lambda: fs.exists(path), target)


def download_all(
    items: Iterable[tuple[str, str]],
    get: Callable[[str], bytes],
    *,
    desc: str,
    progress: bool,
    check: Callable[[bytes], str | None] = lambda data: None,
) -> FetchResult:
    """Fetch each ``(url, target)`` with ``get(url)`` unless ``target`` exists, writing it atomically.

    ``check`` names what is wrong with a response that is not the expected file (None when
    it is fine); such a response, and any exception ``get`` raises, is recorded as a
    :class:`Failure` and the loop goes on. The progress bar counts files.
    """
    todo = list(items)
    result = FetchResult()
    with tqdm(total=len(todo), unit="file", desc=desc, disable=not progress) as bar:
        for url, target in todo:
            if not exists(target):
                failure = _fetch_one(url, target, get, check)
                if failure is not None:
                    result.failures.append(failure)
                    bar.update(1)
                    continue
            result.paths.append(target)
            bar.update(1)
    return result


def http_get(url: str, timeout_s: float = 60.0) -> bytes:
    """The body of ``url`` (a response shorter than its Content-Length raises ``IncompleteRead``)."""
    with urlopen(url, timeout=timeout_s) as response:
        return response.read()


def _fetch_one(url: str, target: str, get: Callable[[str], bytes], check: Callable[[bytes], str | None]) -> Failure | None:
    """Download one file; the :class:`Failure` when it could not be had."""
    try:
        data = get(url)
    except Exception as exc:  # noqa: BLE001 (any failure of one file is reported, never stops the others)
        return Failure(url, _reason(exc))
    problem = check(data)
    if problem is not None:
        return Failure(url, problem)
    storage.write_bytes_atomic(target, data)
    return None


def _reason(exc: BaseException) -> str:
    """A short reason for a failed download (HTTP status, or the exception)."""
    status = getattr(exc, "code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}"

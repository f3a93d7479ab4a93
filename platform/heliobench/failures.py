"""One boundary per file: whatever one file raises is recorded with it, and the job goes on.

Every verb that works through many files (ingest, shard, predict) runs each file's steps
inside :func:`stage` blocks. Anything raised there (a :class:`ReaderError` with its
human reason, or an exception nobody expected) becomes a :class:`StageFailure` naming
the file, the stage and the reason; the verb records it (quarantine table, skipped-samples
table, error record) and carries on. A reason from an unexpected exception keeps the
exception's type (``unexpected SingularMatrixError: ...``), so programming errors stay
visible, and :func:`check_share` fails a run, after it finished, when more than a share
of its files failed.

Errors in the job's configuration (:class:`ConfigError`: a card, spec or option) are not
a file's fault and pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from heliobench.errors import ConfigError, HelioBenchError, ReaderError, one_line

#: Share of a run's files that may fail before the run exits non-zero (after finishing).
DEFAULT_MAX_SHARE = 0.05


class StageFailure(ReaderError):
    """What went wrong with one file (``uri``, ``reason``) at one ``stage`` of the work on it."""

    def __init__(self, uri: str, stage: str, reason: str):
        self.stage = stage
        super().__init__(uri, reason)


def failure_reason(exc: BaseException) -> str:
    """One line saying what ``exc`` says about a file: a reader's own reason, a HelioBench
    error's message, or ``unexpected TYPE: message`` for anything else."""
    if isinstance(exc, ReaderError):
        return exc.reason
    if isinstance(exc, HelioBenchError):
        return one_line(str(exc))
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, OSError):
        return one_line(f"cannot read the file ({type(exc).__name__}: {exc})")
    return one_line(f"unexpected {type(exc).__name__}: {exc}")


@contextmanager
def stage(name: str, uri: str) -> Iterator[None]:
    """Turn anything raised inside the block into a :class:`StageFailure` of ``uri`` at stage ``name``."""
    try:
        yield
    except (StageFailure, ConfigError):
        raise
    except Exception as exc:  # noqa: BLE001 - the per-file boundary: every failure is recorded with its file
        raise StageFailure(getattr(exc, "uri", None) or uri, name, failure_reason(exc)) from exc


class TooManyFailures(HelioBenchError):
    """A run finished, but more than the allowed share of its files failed.

    ``result`` is what the run returned had it succeeded (its summary or records).
    """

    def __init__(self, message: str, result: Any):
        self.result = result
        super().__init__(message)


def check_share(failed: int, total: int, max_share: float | None, what: str, where: str, result: Any) -> None:
    """Raise :class:`TooManyFailures` when ``failed`` of ``total`` is more than ``max_share``
    (None: no limit); ``what`` names the items and their fate, ``where`` the record of them."""
    if max_share is None or total == 0 or failed <= max_share * total:
        return
    raise TooManyFailures(
        f"{failed} of {total} {what} ({failed / total:.1%}), more than the {max_share * 100:g}% allowed "
        f"(--max-quarantine); the run finished: see {where}",
        result,
    )

"""Errors a user can cause. Each names the file (or key) and says what was expected."""

from __future__ import annotations


class HelioBenchError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ReaderError(HelioBenchError):
    """A file could not be understood by any reader.

    ``uri`` names the file, ``reason`` says what was wrong with it (on one line). Ingest
    puts such files in quarantine with the reason; other callers let it propagate.
    """

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = one_line(reason)
        super().__init__(f"{uri}: {self.reason}")


class ConfigError(HelioBenchError):
    """A dataset card, benchmark spec or search space is invalid (names file and key)."""


class StorageError(HelioBenchError):
    """Object storage stayed unreachable or refused an operation (names the URI)."""


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (whitespace runs, newlines among them, become one space), cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."

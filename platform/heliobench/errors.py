"""Errors a user can cause. Each names the file (or key) and says what was expected."""

from __future__ import annotations


class HelioBenchError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ReaderError(HelioBenchError):
    """A file could not be understood by any reader.

    ``uri`` names the file, ``reason`` says what was wrong with it. Ingest puts such
    files in quarantine with the reason; other callers let it propagate.
    """

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class ConfigError(HelioBenchError):
    """A dataset card, benchmark spec or search space is invalid (names file and key)."""


class StorageError(HelioBenchError):
    """Object storage stayed unreachable or refused an operation (names the URI)."""

"""Object storage through fsspec: local folders and ``s3://`` buckets behind one API.

S3 endpoints and keys come from the usual AWS settings (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``). Writes are atomic: the bytes go to a
temporary key that is then moved into place, so a reader never sees a partial file.
Transient storage failures are retried with exponential backoff; when storage stays
down, a :class:`StorageError` names the URI (never the credentials).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import fsspec
from fsspec.core import url_to_fs

from heliobench.errors import StorageError

T = TypeVar("T")

#: Exceptions treated as transient (connection refused or reset, timeouts, 5xx).
_TRANSIENT = (ConnectionError, TimeoutError, OSError)


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem serving ``uri`` and the path inside it."""
    if uri.startswith("s3://"):
        opts: dict = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
        if endpoint:
            opts["endpoint_url"] = endpoint
        return url_to_fs(uri, **opts)
    return url_to_fs(uri)


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a local path or URI with ``/``."""
    out = uri.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out


def with_retries(fn: Callable[[], T], uri: str, attempts: int = 5, base_delay_s: float = 0.5) -> T:
    """Call ``fn``, retrying transient storage errors with exponential backoff."""
    for attempt in range(attempts):
        try:
            return fn()
        except FileNotFoundError:
            raise
        except _TRANSIENT as exc:
            if attempt == attempts - 1:
                raise StorageError(
                    f"{uri}: storage unreachable after {attempts} attempts ({type(exc).__name__})"
                ) from None
            time.sleep(base_delay_s * 2**attempt)
    raise AssertionError("unreachable")


def read_bytes(uri: str) -> bytes:
    """The whole content of ``uri``."""
    fs, path = filesystem(uri)
    return with_retries(lambda: fs.cat_file(path), uri)


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` so that readers see either nothing or all of it."""
    fs, path = filesystem(uri)
    parent = path.rsplit("/", 1)[0]
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[-1]}"

    def _write() -> None:
        if not fs.exists(parent):
            fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)

    try:
        with_retries(_write, uri)
    finally:
        if fs.exists(tmp):
            fs.rm_file(tmp)


def arrow_storage(uri: str) -> tuple[object | None, str]:
    """``(pyarrow filesystem, path)`` for Ray's ``storage_path``/``storage_filesystem``.

    Local folders need no filesystem; ``s3://`` gets the same s3fs filesystem as every
    other object-storage access here (endpoint and keys from the usual AWS settings),
    wrapped for pyarrow, and the path without its scheme.
    """
    if not uri.startswith("s3://"):
        return None, uri
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = filesystem(uri)
    return PyFileSystem(FSSpecHandler(fs)), path

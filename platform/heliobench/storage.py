"""Object storage through fsspec: local folders and ``s3://`` buckets behind one API.

S3 endpoints and keys come from the usual AWS settings (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``). Writes are atomic: the bytes go to a
temporary key (``.tmp-<random>-<name>`` beside the target) that is then moved into place,
so a reader never sees a partial file; a write that fails leaves the target as it was.
Transient storage failures (connection refused or reset, timeouts, 5xx) are retried with
exponential backoff — ``HELIOBENCH_STORAGE_ATTEMPTS`` attempts (default 5), the first
retry after ``HELIOBENCH_STORAGE_BACKOFF_S`` seconds (default 0.5), doubling — on top of
s3fs's own retries (about 10 s per operation), so an outage of about a minute is ridden
out. When storage stays down, a :class:`StorageError` names the URI (never the credentials).
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import fsspec
from fsspec.core import url_to_fs

from heliobench.errors import StorageError

T = TypeVar("T")

#: OSError subclasses that say something about the request, not the connection: not retried.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
_PERMANENT_ERRNOS = {errno.EINVAL, errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG}

#: Environment variables whose values are credentials: never shown in messages.
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
              "PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "RAY_AUTH_TOKEN")
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]*):[^/\s@'\"]+@")


def redact(text: str) -> str:
    """``text`` without credentials: passwords in URLs (``://user:***@``) and the values of
    the secret environment variables (:data:`SECRET_ENV`) replaced by ``***``."""
    out = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", text)
    for key in SECRET_ENV:
        value = os.environ.get(key)
        if value and len(value) >= 4:
            out = out.replace(value, "***")
    return out


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem serving ``uri`` and the path inside it.

    fsspec's chained URLs work too: ``zip://MEMBER::/path/archive.zip`` (or
    ``::s3://bucket/archive.zip``) is the file MEMBER inside that ZIP archive.
    """
    opts: dict = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    if endpoint and "s3://" in uri:
        opts["endpoint_url"] = endpoint
    if uri.startswith("s3://"):
        return url_to_fs(uri, **opts)
    return url_to_fs(uri, s3=opts) if opts else url_to_fs(uri)


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a local path or URI with ``/``."""
    out = uri.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says storage is (perhaps briefly) unreachable rather than that the request is wrong."""
    if isinstance(exc, _PERMANENT) or (isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    try:  # s3fs lets connection errors of botocore/aiohttp through untranslated
        import aiohttp
        import botocore.exceptions as bce

        if isinstance(exc, (bce.ConnectionError, bce.HTTPClientError, aiohttp.ClientError)):
            return True
        if isinstance(exc, bce.ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return status >= 500 or status == 429
    except ImportError:
        pass
    return False


def with_retries(fn: Callable[[], T], uri: str, attempts: int | None = None, base_delay_s: float | None = None) -> T:
    """Call ``fn``, retrying transient storage errors with exponential backoff.

    When every attempt failed, raises :class:`StorageError` naming ``uri`` (credentials
    redacted). Errors that are not transient (a missing key, a refused permission)
    propagate at once.
    """
    attempts = attempts or int(os.environ.get("HELIOBENCH_STORAGE_ATTEMPTS", "5"))
    delay = base_delay_s if base_delay_s is not None else float(os.environ.get("HELIOBENCH_STORAGE_BACKOFF_S", "0.5"))
    t0 = time.monotonic()
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts - 1:
                raise StorageError(redact(
                    f"{uri}: storage unreachable after {attempts} attempts over {time.monotonic() - t0:.0f} s "
                    f"({type(exc).__name__}: {str(exc)[:160]})"
                )) from None
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")


def read_bytes(uri: str) -> bytes:
    """The whole content of ``uri``."""
    fs, path = filesystem(uri)
    return with_retries(lambda: fs.cat_file(path), uri)


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` so that readers see either the old content or all of the new.

    The bytes go to a temporary key beside the target, which is then moved into place
    (a rename on local disks; a server-side copy on S3, where an object appears whole or
    not at all). Retried as a whole on transient errors. A temporary key left by a write
    that failed (a server that kept a truncated upload) is named ``.tmp-*``, which no reader
    pattern matches, and is removed once storage answers again.
    """
    fs, path = filesystem(uri)
    parent, _, name = path.rpartition("/")
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{name}"
    local = not uri.startswith("s3://")

    def _write() -> None:
        if local:
            fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(tmp, data)
        try:
            fs.mv(tmp, path)
        except FileNotFoundError:
            raise ConnectionError(f"{tmp}: temporary key gone before the move") from None  # write it again

    try:
        with_retries(_write, uri)
    except StorageError as exc:
        # Storage is down: removing the temporary key would only fail too. It is removed by
        # the next successful write of this process; meanwhile no reader sees it (``.tmp-*``).
        with _orphans_lock:
            _orphans.append((fs, tmp))
        raise StorageError(f"{exc}; no partial content was written to {uri}") from None
    except BaseException:
        _remove_quietly(fs, tmp)
        raise
    if _orphans:
        _remove_orphans()


#: Temporary keys of writes that failed while storage was down (removed once it is back).
_orphans: list[tuple[fsspec.AbstractFileSystem, str]] = []
_orphans_lock = threading.Lock()


def _remove_orphans() -> None:
    with _orphans_lock:
        pending, _orphans[:] = list(_orphans), []
    for fs, tmp in pending:
        try:
            fs.rm_file(tmp)
        except FileNotFoundError:
            pass
        except Exception:  # noqa: BLE001 - still unreachable: try again after the next write
            with _orphans_lock:
                _orphans.append((fs, tmp))


def _remove_quietly(fs: fsspec.AbstractFileSystem, path: str) -> None:
    try:
        fs.rm_file(path)
    except Exception:  # noqa: BLE001 - already gone, or storage still down
        pass


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

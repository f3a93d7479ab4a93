"""Archive sources: a local folder or file, an ``s3://`` prefix, a JSOC record set, or a
query of a solar data service (``hek:``, ``srs:``, ``helioviewer:``, ``kso:``).

Each source resolves to a list of :class:`SourceFile` (URI, size, modification stamp);
JSOC queries are exported and downloaded first (``heliobench.archive.jsoc``) and then
listed like any local folder; the services' files are downloaded into a subfolder of the
download folder (``heliobench.archive.fetch``) and the files of the query are listed.

Readers judge files by their content, never their name, with one exception made here:
object types that no reader takes (a zarr store's chunks, netCDF and HDF5 files, READMEs,
checksum lists; :data:`SKIPPED_TYPES`) are known by their names and skipped at listing
(:func:`skipped_type`), so that ingest never downloads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from heliobench.archive.fetch import fetcher
from heliobench.errors import HelioBenchError
from heliobench.storage import filesystem, with_retries


@dataclass(frozen=True)
class SourceFile:
    """One file of an archive source, with what storage says about it."""

    uri: str
    size_bytes: int
    stamp: str  # mtime (local) or ETag / LastModified (object storage)


#: File-name extensions of object types no HelioBench reader takes, and what they are.
SKIPPED_TYPES = {
    ".nc": "netCDF", ".nc4": "netCDF", ".cdf": "CDF", ".h5": "HDF5", ".hdf5": "HDF5", ".he5": "HDF5", ".hdf": "HDF",
    ".zarr": "zarr", ".parquet": "parquet", ".npy": "numpy", ".npz": "numpy", ".sav": "IDL save file",
    ".md": "document", ".rst": "document", ".pdf": "document", ".html": "document", ".htm": "document",
    ".sha256": "checksum list", ".sha1": "checksum list", ".md5": "checksum list",
    ".py": "source code", ".ipynb": "notebook", ".log": "log",
}
#: Documents known by a name without an extension.
_DOCUMENT_NAMES = {"README", "LICENSE", "LICENCE", "COPYING", "CHANGELOG", "NOTICE"}


def skipped_type(uri: str) -> str | None:
    """What ``uri`` holds when its name says it is of a type no reader takes (``"netCDF (.nc)"``,
    ``"zarr chunk"``), else None. A file inside a ``*.zarr`` folder is a zarr chunk or metadata."""
    parts = PurePosixPath(uri.split("://", 1)[-1]).parts
    if any(part.lower().endswith(".zarr") for part in parts[:-1]):
        return "zarr chunk"
    name = parts[-1] if parts else ""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in SKIPPED_TYPES:
        return f"{SKIPPED_TYPES[suffix]} ({suffix})"
    if name.upper() in _DOCUMENT_NAMES:
        return "document"
    return None


def _stamp(info: dict) -> str:
    for key in ("ETag", "LastModified", "mtime", "created"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""


def list_source(source: str, download_dir: str | None = None, progress: bool = True) -> list[SourceFile]:
    """All files under ``source`` (recursively), skipping hidden and temporary files; the
    files of a service query after fetching them into ``download_dir`` (with a progress bar
    unless ``progress`` is False; files that failed are reported and left out)."""
    if source.startswith("jsoc:"):
        from heliobench.archive.jsoc import fetch_jsoc

        if download_dir is None:
            raise HelioBenchError(f"{source}: a JSOC source needs a download folder (--download-dir)")
        fetch_jsoc(source, download_dir)
        return list_source(download_dir)
    fetch = fetcher(source)
    if fetch is not None:
        if download_dir is None:
            raise HelioBenchError(f"{source}: a {source.partition(':')[0]}: source needs a download folder (--download-dir)")
        result = fetch(source, download_dir, progress=progress)
        result.report(source)
        return [f for path in result.paths for f in list_source(path)]
    fs, path = filesystem(source)
    if not with_retries(lambda: fs.exists(path), source):
        raise HelioBenchError(f"{source}: no such file or folder")
    protocol = "s3://" if source.startswith("s3://") else ""
    if with_retries(lambda: fs.isdir(path), source):
        infos = with_retries(lambda: fs.find(path, detail=True), source)
    else:
        infos = {path: with_retries(lambda: fs.info(path), source)}
    out = []
    for p, info in sorted(infos.items()):
        if info.get("type") == "directory" or any(part.startswith(".") for part in Path(p).parts[-1:]):
            continue
        uri = f"{protocol}{p}" if protocol else str(Path(p).resolve())
        out.append(SourceFile(uri=uri, size_bytes=int(info.get("size") or 0), stamp=_stamp(info)))
    return out

"""Archive sources: a local folder or file, an ``s3://`` prefix, a JSOC record set, or a
query of a solar data service (``hek:``, ``srs:``, ``helioviewer:``, ``kso:``).

Each source resolves to a list of :class:`SourceFile` (URI, size, modification stamp);
JSOC queries are exported and downloaded first (``heliobench.archive.jsoc``) and then
listed like any local folder; the services' files are downloaded into a subfolder of the
download folder (``heliobench.archive.fetch``) and the files of the query are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heliobench.archive.fetch import fetcher
from heliobench.errors import HelioBenchError
from heliobench.storage import filesystem, with_retries


@dataclass(frozen=True)
class SourceFile:
    """One file of an archive source, with what storage says about it."""

    uri: str
    size_bytes: int
    stamp: str  # mtime (local) or ETag / LastModified (object storage)


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

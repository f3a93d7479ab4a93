"""SCSS-Net hand-drawn polygon labels (coronal holes on AIA 193, active regions on AIA 171).

Each label file has a ``DATE:`` line, a ``RADIUS:`` line (the disk radius in pixels of
the 4096x4096 Helioviewer image the polygons were drawn on), then blocks ``CH: n`` or
``AR: n``, each followed by its ``x y`` vertices. Vertex ``y`` counts rows from the top
of that image (as PIL draws them), so it is flipped with respect to FITS/sunpy rows,
which count from the bottom. The labels come in ZIP archives of such files.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from PIL import Image, ImageDraw

from heliobench.errors import ReaderError
from heliobench.storage import read_bytes

#: Side of the image grid the SCSS-Net vertices refer to (pixels).
GRID_PX = 4096

_BLOCK = re.compile(r"^(?P<kind>CH|AR)\s*:\s*\d+\s*$")


@dataclass(frozen=True)
class ScssLabel:
    """One SCSS-Net label file: its polygons on the 4096-pixel grid, ``y`` counted from the top."""

    uri: str
    date: datetime  # UTC
    radius_px: float  # disk radius on the 4096-pixel grid
    kind: str  # "CH" (coronal holes), "AR" (active regions), "" when the file has no polygon
    polygons: tuple[np.ndarray, ...]  # each (n, 2): x, y (y = row from the top)


def _value(line: str, key: str, uri: str, number: int) -> str:
    if not line.startswith(f"{key}:"):
        raise ReaderError(uri, f"line {number}: expected '{key}: ...', found {line[:40]!r}")
    return line.split(":", 1)[1].strip()


def read_scss_label(text: str, uri: str) -> ScssLabel:
    """Parse one SCSS-Net label file."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise ReaderError(uri, "SCSS label needs a 'DATE:' and a 'RADIUS:' line")
    try:
        date = datetime.fromisoformat(_value(lines[0], "DATE", uri, 1)).replace(tzinfo=timezone.utc)
        radius = float(_value(lines[1], "RADIUS", uri, 2))
    except ValueError as exc:
        raise ReaderError(uri, f"invalid DATE or RADIUS line ({exc})") from None
    kinds: set[str] = set()
    polygons: list[list[tuple[float, float]]] = []
    for number, line in enumerate(lines[2:], start=3):
        block = _BLOCK.match(line)
        if block:
            kinds.add(block["kind"])
            polygons.append([])
            continue
        parts = line.split()
        if not polygons or len(parts) != 2:
            raise ReaderError(uri, f"line {number}: expected a 'CH: n'/'AR: n' block or an 'x y' vertex, found {line[:40]!r}")
        try:
            polygons[-1].append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ReaderError(uri, f"line {number}: vertex {line[:40]!r} is not two numbers") from None
    if len(kinds) > 1:
        raise ReaderError(uri, "SCSS label mixes CH and AR blocks")
    return ScssLabel(
        uri=uri,
        date=date,
        radius_px=radius,
        kind=kinds.pop() if kinds else "",
        polygons=tuple(np.array(p, dtype=float).reshape(-1, 2) for p in polygons),
    )


def iter_scss_zip(path: str | os.PathLike) -> Iterator[ScssLabel]:
    """The labels of an SCSS-Net ZIP archive (local path or URI), in member order."""
    uri = os.fspath(path)
    yield from scss_labels_in_zip(read_bytes(uri), uri)


def scss_labels_in_zip(raw: bytes, uri: str) -> Iterator[ScssLabel]:
    """The labels held by the bytes of an SCSS-Net ZIP archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise ReaderError(uri, f"not a readable ZIP archive ({exc})") from None
    with archive:
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            member_uri = f"zip://{member}::{uri}"
            try:
                text = archive.read(member).decode("utf-8")
            except (zipfile.BadZipFile, UnicodeDecodeError, EOFError) as exc:
                raise ReaderError(member_uri, f"archive member cannot be read ({exc})") from None
            yield read_scss_label(text, member_uri)


def rasterize_scss(label: ScssLabel, size: int) -> np.ndarray:
    """The label's polygons filled on a ``size`` x ``size`` grid (uint8 0/1).

    Row 0 is the bottom row (FITS/sunpy convention), like the Map of the image the
    polygons were drawn on; polygons with fewer than three vertices are skipped.
    """
    scale = size / GRID_PX
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in label.polygons:
        if len(polygon) >= 3:
            scaled = (polygon + 0.5) * scale - 0.5
            draw.polygon([tuple(v) for v in scaled], fill=1)
    return np.asarray(canvas, dtype=np.uint8)[::-1].copy()

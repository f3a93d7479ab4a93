"""SCSS-Net hand-drawn polygon labels (coronal holes on AIA 193, active regions on AIA 171).

Each label file has a ``DATE:`` line, a ``RADIUS:`` line (the disk radius in pixels of
the 4096x4096 Helioviewer image the polygons were drawn on), then blocks ``CH: n`` or
``AR: n``, each followed by its ``x y`` vertices. The labels come in ZIP archives of such
files; a file inside one is addressed as ``zip://MEMBER::ARCHIVE`` (fsspec's chained URL).

Geometry, as SCSS-Net publishes it (``src/custom_data_preparation.ipynb`` in
space-lab-sk/scss-net): the vertices are drawn with PIL's ``ImageDraw.polygon`` on a blank
4096x4096 canvas that is paired, unflipped, with the Helioviewer PNG of ``DATE``
(north up, the disk centred, radius ``RADIUS``). So ``x`` is the column and ``y`` counts
rows from the TOP of a north-up image, the reverse of FITS/sunpy rows, which count from
the bottom: FITS row = 4095 - ``y``.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from PIL import Image, ImageDraw

from heliobench.errors import ReaderError
from heliobench.storage import read_bytes

#: Side of the image grid the SCSS-Net vertices refer to (pixels).
GRID_PX = 4096

#: Maps offsets from the disk centre in disk radii (x west, y north) to 0-based pixel (x, y) of a grid.
ToPixels = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_BLOCK = re.compile(r"^(?P<kind>CH|AR)\s*:\s*\d+\s*$")


@dataclass(frozen=True)
class ScssLabel:
    """One SCSS-Net label file: its polygons on the 4096-pixel grid, ``y`` counted from the top."""

    uri: str
    date: datetime  # UTC
    radius_px: float  # disk radius on the 4096-pixel grid
    kind: str  # "CH" (coronal holes), "AR" (active regions), "" when the file has no polygon
    polygons: tuple[np.ndarray, ...]  # each (n, 2): x, y (y = row from the top)

    def polygons_in_radii(self) -> tuple[np.ndarray, ...]:
        """Each polygon as ``(x, y)`` offsets from the disk centre in disk radii, ``x`` west
        (right) and ``y`` north (up): the frame's centre is ((4096 - 1) / 2, (4096 - 1) / 2)."""
        centre = (GRID_PX - 1) / 2
        return tuple(np.column_stack([p[:, 0] - centre, centre - p[:, 1]]) / self.radius_px for p in self.polygons)


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
    if not radius > 0:
        raise ReaderError(uri, f"line 2: the disk radius must be positive, found {radius}")
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


def read_scss_bytes(raw: bytes, uri: str) -> ScssLabel:
    """Parse the bytes of one SCSS-Net label file (UTF-8 text)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReaderError(uri, f"an SCSS label must be UTF-8 text ({exc})") from None
    return read_scss_label(text, uri)


def member_uri(member: str, archive_uri: str) -> str:
    """The URI of file ``member`` inside the ZIP archive ``archive_uri`` (``zip://MEMBER::ARCHIVE``)."""
    return f"zip://{member}::{archive_uri}"


def zip_members(raw: bytes, uri: str) -> Iterator[tuple[str, bytes | ReaderError]]:
    """Each file of the ZIP archive ``raw`` (folders skipped), in member order: its URI and
    its bytes, or the :class:`ReaderError` naming it when that member cannot be read
    (bad CRC, truncated or unsupported compression). An unreadable archive raises."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except Exception as exc:  # noqa: BLE001 - a damaged central directory fails with several types
        raise ReaderError(uri, f"not a readable ZIP archive ({type(exc).__name__}: {exc})") from None
    with archive:
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            try:
                yield member_uri(member, uri), archive.read(member)
            except Exception as exc:  # noqa: BLE001 - bad CRC, damaged local header or stream, unsupported method...
                yield member_uri(member, uri), ReaderError(member_uri(member, uri), f"archive member cannot be read ({exc})")


def iter_scss_zip(path: str | os.PathLike) -> Iterator[ScssLabel]:
    """The labels of an SCSS-Net ZIP archive (local path or URI), in member order."""
    uri = os.fspath(path)
    yield from scss_labels_in_zip(read_bytes(uri), uri)


def scss_labels_in_zip(raw: bytes, uri: str) -> Iterator[ScssLabel]:
    """The labels held by the bytes of an SCSS-Net ZIP archive (the first bad member raises)."""
    for name, content in zip_members(raw, uri):
        if isinstance(content, ReaderError):
            raise content
        yield read_scss_bytes(content, name)


def fill_polygons(polygons: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Polygons filled on an array of ``shape`` (uint8 0/1).

    Vertices are 0-based pixel ``(x, y)`` = (column, row index of the array), pixel centres
    at integers; vertices that are not finite are dropped, and polygons left with fewer than
    three vertices are skipped.
    """
    ny, nx = shape
    canvas = Image.new("L", (nx, ny), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        vertices = np.asarray(polygon, dtype=float).reshape(-1, 2)
        vertices = vertices[np.isfinite(vertices).all(axis=1)]
        if len(vertices) >= 3:
            draw.polygon([tuple(v) for v in vertices], fill=1)
    return np.asarray(canvas, dtype=np.uint8).copy()


def rasterize_scss(label: ScssLabel, size: int | tuple[int, int], to_pixels: ToPixels | None = None) -> np.ndarray:
    """The label's polygons filled on a grid of ``size`` (``n`` for n x n, or ``(ny, nx)``), uint8 0/1.

    Row 0 is the bottom row (FITS/sunpy convention). ``to_pixels`` places the polygons on
    the grid from their offsets to the disk centre in disk radii (x west, y north; see
    :meth:`ScssLabel.polygons_in_radii`), e.g. through an image's WCS; by default the grid
    is the 4096-pixel frame the polygons were drawn on, scaled to ``size``: north up, the
    disk centred with radius ``RADIUS * size / 4096``.
    """
    shape = (size, size) if isinstance(size, int) else size
    if to_pixels is None:
        ny, nx = shape

        def to_pixels(dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (nx - 1) / 2 + dx * label.radius_px * nx / GRID_PX, (ny - 1) / 2 + dy * label.radius_px * ny / GRID_PX

    placed = (np.column_stack(to_pixels(p[:, 0], p[:, 1])) for p in label.polygons_in_radii())
    return fill_polygons(placed, shape)

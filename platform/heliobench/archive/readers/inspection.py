"""``heliobench inspect URI``: what a file holds, as a JSON-ready dict and as text."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import polars as pl

from heliobench.archive.readers.containers import open_image
from heliobench.archive.readers.formats import describe_start, detect_format
from heliobench.archive.readers.hek import read_hek
from heliobench.archive.readers.images import read_header
from heliobench.archive.readers.keywords import observation_time, text
from heliobench.archive.readers.scss import ScssLabel, read_scss_bytes, read_scss_label, zip_members
from heliobench.archive.readers.srs import read_srs
from heliobench.errors import ReaderError
from heliobench.failures import stage
from heliobench.storage import read_bytes

_AU_M = 1.495978707e11


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _table(df: pl.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(row) for row in df.to_dicts()]


def _image(raw: bytes, uri: str) -> dict[str, Any]:
    """An observation, or a label mask (FITS whose CONTENT names a mask)."""
    from heliobench.archive.labels import MASK_CONTENT  # labels builds on the readers

    image = open_image(raw, uri)
    content = (text(image.header, "CONTENT") or "").upper()
    if content not in MASK_CONTENT:
        return _observation(raw, uri)
    mask = image.decode() > 0
    return _jsonable({
        "kind": "mask",
        "uri": uri,
        "label_kind": MASK_CONTENT[content],
        "obs_time": observation_time(image.header, uri),
        "shape": list(image.shape),
        "fraction": float(mask.mean()),
    })


def _observation(raw: bytes, uri: str) -> dict[str, Any]:
    row = read_header(raw, uri).to_row()
    return _jsonable(
        {"kind": "observation"}
        | row
        | {
            "shape": [row["ny"], row["nx"]],
            "plate_scale": [row["cdelt1"], row["cdelt2"]],
            "plate_scale_unit": f"{row['cunit1']}/pixel",
        }
    )


def _srs(raw: bytes, uri: str) -> dict[str, Any]:
    regions = read_srs(raw, uri)
    issued = regions["issued"][0] if len(regions) else None
    return _jsonable({
        "kind": "srs",
        "uri": uri,
        "issued": issued,
        "counts": dict(Counter(regions["section"].to_list())),
        "regions": _table(regions.drop("issued")),
    })


def _hek(raw: bytes, uri: str) -> dict[str, Any]:
    events = read_hek(raw, uri)
    return _jsonable({
        "kind": "hek",
        "uri": uri,
        "n_events": len(events),
        "by_type": dict(Counter(events["event_type"].to_list())),
        "time_range": [events["start_time"].min(), events["end_time"].max()],
        "tracks": events["track_id"].drop_nulls().n_unique(),
        "events": _table(events),
    })


def _scss_summary(label: ScssLabel) -> dict[str, Any]:
    return {
        "uri": label.uri,
        "date": label.date,
        "radius_px": label.radius_px,
        "label_kind": label.kind,
        "n_polygons": len(label.polygons),
        "vertices_per_polygon": [len(p) for p in label.polygons],
    }


def _scss_zip(raw: bytes, uri: str) -> dict[str, Any]:
    """The labels of an SCSS-Net archive; members that cannot be read or parsed listed apart (as ingest quarantines them)."""
    labels, unreadable = [], []
    for name, content in zip_members(raw, uri):
        try:
            if isinstance(content, ReaderError):
                raise content
            labels.append(read_scss_bytes(content, name))
        except ReaderError as exc:
            unreadable.append({"uri": exc.uri, "reason": exc.reason})
    dates = [label.date for label in labels]
    radii = [label.radius_px for label in labels]
    return _jsonable({
        "kind": "scss_zip",
        "uri": uri,
        "n_files": len(labels),
        "by_kind": dict(Counter(label.kind or "none" for label in labels)),
        "n_polygons": sum(len(label.polygons) for label in labels),
        "date_range": [min(dates), max(dates)] if dates else None,
        "radius_px_range": [min(radii), max(radii)] if radii else None,
        "unreadable": unreadable,
    })


def _scss_text(raw: bytes, uri: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReaderError(uri, "SCSS label that is not UTF-8 text") from None
    return _jsonable({"kind": "scss_label"} | _scss_summary(read_scss_label(text, uri)))


_BY_FORMAT = {
    "fits": _image,
    "fits.gz": _image,
    "jp2": _observation,
    "png": _observation,
    "jpeg": _observation,
    "srs": _srs,
    "json": _hek,
    "zip": _scss_zip,
    "scss": _scss_text,
}


def inspect_uri(uri: str) -> dict[str, Any]:
    """What the file at ``uri`` holds, judged by its content (JSON-serialisable); anything
    that goes wrong with the file is a :class:`ReaderError` naming it."""
    with stage("inspect", uri):
        raw = read_bytes(uri)
        kind = detect_format(raw)
        if kind == "empty":
            raise ReaderError(uri, "empty file (0 bytes)")
        if kind not in _BY_FORMAT:
            raise ReaderError(
                uri, f"not an observation, SRS, HEK or SCSS label file (content starts with {describe_start(raw)})"
            )
        return _BY_FORMAT[kind](raw, uri)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_PIXEL_KINDS = {
    True: "display-scaled: values for viewing, not physical units (never divided by the exposure)",
    False: "physical units",
}


def _format_observation(d: dict[str, Any]) -> list[str]:
    distance_au = d["dsun_obs_m"] / _AU_M if d["dsun_obs_m"] else None
    disk = (
        f"centre ({_fmt(d['disk_x_px'])}, {_fmt(d['disk_y_px'])}) px, radius {_fmt(d['disk_radius_px'])} px"
        if d["disk_radius_px"] is not None
        else "no solar disk (CEA patch)"
    )
    return [
        f"{d['instrument']} {d['channel']} ({d['data_kind']}, {d['file_format']}, level {_fmt(d['level'])})",
        f"observed     {d['obs_time']}",
        f"shape        {d['ny']} x {d['nx']} pixels, unit {_fmt(d['bunit'])}",
        f"pixels       {_PIXEL_KINDS[d['display_scaled']]}",
        f"plate scale  {_fmt(d['cdelt1'], 4)} x {_fmt(d['cdelt2'], 4)} {d['plate_scale_unit']}",
        f"disk         {disk}",
        f"quality      {d['quality']}, image type {_fmt(d['image_type'])}",
        f"wavelength   {_fmt(d['wavelength_angstrom'], 1)} Angstrom, exposure {_fmt(d['exposure_s'], 3)} s",
        f"observer     {_fmt(d['observatory'])} at {_fmt(distance_au, 5)} AU from the Sun",
    ]


def _format_mask(d: dict[str, Any]) -> list[str]:
    return [
        f"{d['label_kind']} label mask of {d['obs_time']}",
        f"shape        {d['shape'][0]} x {d['shape'][1]} pixels, {100 * d['fraction']:.2f}% inside",
    ]


def _format_srs(d: dict[str, Any]) -> list[str]:
    lines = [f"SRS issued {d['issued']}: " + ", ".join(f"{n} in section {s}" for s, n in d["counts"].items())]
    for r in d["regions"]:
        lines.append(
            f"  {r['section']:<3} {r['noaa_number']}  lat {_fmt(r['latitude_deg'], 0):>4} lon {_fmt(r['longitude_deg'], 0):>4}"
            f"  area {_fmt(r['area_msh']):>5} MSH  {_fmt(r['mcintosh_class']):<4} {_fmt(r['mag_type'])}"
        )
    return lines


def _format_hek(d: dict[str, Any]) -> list[str]:
    types = ", ".join(f"{n} {t}" for t, n in d["by_type"].items())
    lines = [f"HEK events: {d['n_events']} ({types}), {d['tracks']} tracks", f"from {d['time_range'][0]} to {d['time_range'][1]}"]
    for e in d["events"]:
        lines.append(
            f"  {e['event_type']} {e['start_time']} .. {e['end_time']}  {e['frm_name']}"
            f"  {_fmt(e['track_id'])}  {_fmt(e['goes_class'])}"
        )
    return lines


def _format_scss_zip(d: dict[str, Any]) -> list[str]:
    kinds = ", ".join(f"{n} {k}" for k, n in d["by_kind"].items())
    first, last = d["date_range"] or (None, None)
    smallest, largest = d["radius_px_range"] or (None, None)
    return [
        f"SCSS-Net label archive: {d['n_files']} files ({kinds}), {d['n_polygons']} polygons",
        f"dates        {_fmt(first)} .. {_fmt(last)}",
        f"disk radius  {_fmt(smallest, 1)} .. {_fmt(largest, 1)} px on the 4096-pixel grid",
    ] + [f"unreadable   {u['uri']}: {u['reason']}" for u in d["unreadable"]]


def _format_scss_label(d: dict[str, Any]) -> list[str]:
    return [
        f"SCSS-Net {d['label_kind'] or 'empty'} label of {d['date']}, disk radius {_fmt(d['radius_px'], 1)} px",
        f"{d['n_polygons']} polygons, vertices: {d['vertices_per_polygon']}",
    ]


_FORMATTERS = {
    "observation": _format_observation,
    "mask": _format_mask,
    "srs": _format_srs,
    "hek": _format_hek,
    "scss_zip": _format_scss_zip,
    "scss_label": _format_scss_label,
}


def format_inspection(d: dict[str, Any]) -> str:
    """The result of :func:`inspect_uri` as human-readable text."""
    return "\n".join([d["uri"], *_FORMATTERS[d["kind"]](d)])

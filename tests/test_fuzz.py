"""Fuzzing the readers: no damaged file stops a job or reaches a user as a traceback.

Real headers (``../shared/realdata``: AIA, HMI, SHARP, MDI, SMARP, EIT, SWAP, TRACE FITS,
Helioviewer JPEG 2000, PNG browse images and masks, SRS, HEK, SCSS-Net) and a simulated
day (JSOC-style AIA and HMI, gzipped Kanzelhöhe FITS, masks, labels) are damaged by
:mod:`fuzzing` (keywords deleted, zeroed, NaN, of the wrong type, huge, in a wrong unit;
bytes truncated, overwritten, inserted, cut). Properties:

* ``heliobench inspect`` answers: the file's description, or one line naming the file and
  the problem (exit 2), never a traceback nor an ``unexpected ...`` error (an exception no
  reader turned into a reason: a kind of failure to fix);
* ingest's per-file work (:func:`read_one`, what each Ray task runs) catalogues or
  quarantines the file with a one-line reason, never raises, never says ``unexpected``;
* ``ingest`` of a folder of damaged and good files completes, every file catalogued or
  quarantined once (members of archives once each), the good ones catalogued;
* ``submit``'s reading of a damaged prediction file (``.npz``) gives the arrays or one line
  naming the file.

``make test`` runs a modest, derandomized set of examples (the ``ci`` profile); ``make fuzz``
runs the ``fuzz`` profile (``HELIOBENCH_FUZZ=fuzz``; ``HELIOBENCH_FUZZ_EXAMPLES`` examples,
default 5000) with hypothesis's statistics.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import REALDATA, REPO
from fuzzing import byte_ops, mutate, mutations
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis import strategies as st

from heliobench.catalog.ingest import ingest, read_one, source_uri
from heliobench.catalog.sources import skipped_type
from heliobench.catalog.tables import load_catalog
from heliobench.cli import main
from heliobench.errors import HelioBenchError
from heliobench.tracking.submissions import validate_submission

PROFILE = os.environ.get("HELIOBENCH_FUZZ", "ci")
_BIG = int(os.environ.get("HELIOBENCH_FUZZ_EXAMPLES", "5000"))
#: (examples per file, examples of a damaged folder) by profile.
_EXAMPLES = {"ci": (100, 2), "fuzz": (_BIG, max(2, _BIG // 250))}[PROFILE]
#: The fuzz profile keeps failing examples under work/ (replayed first by the next run); the explain phase is left out (slow).
_COMMON = {"deadline": None, "derandomize": PROFILE == "ci", "print_blob": True,
           "database": DirectoryBasedExampleDatabase(str(REPO / "work" / "hypothesis")) if PROFILE == "fuzz" else None,
           "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]}

#: Real files damaged by the fuzz tests (relative to the realdata folder), when present.
REAL_SEEDS = (
    "fits/aia/aia_171_level1.fits", "fits/aia/aia_171_cutout.fits", "fits/hmi/resampled_hmi.fits",
    "fits/hmi/sharp_377/hmi.sharp_cea_720s.377.20110215_020000_TAI.magnetogram.fits",
    "fits/hmi/sharp_377/hmi.sharp_cea_720s.377.20110215_020000_TAI.bitmap.fits",
    "fits/mdi/mdi_fd_M_96m_01d.5874.0005_s.fits", "fits/mdi/mdi.smarp_cea_96m.13520.20100714_124800_TAI.magnetogram.fits",
    "fits/eit/hourly_2004-03-01/efz20040301.000010_s.fits", "fits/swap/swap_lv1_20120101_001607.fits",
    "fits/trace/trace_1998-05-19T22:21:43.000_171_1024.fits", "jp2/2024_04_16__13_00_13_908__SOHO_EIT_EIT_171.jp2",
    "jp2/2013_06_24__17_31_30_84__SDO_AIA_AIA_193.jp2", "ch_reiss/images/sdo_aia193_2014_07_15T21_59_55.png",
    "ch_reiss/masks/sdo_aia193_2014_07_15T21_59_55.png", "srs/20020624SRS.txt",
    "hek/events_2017-09-01T000000_2017-09-10T000000.json", "labels/scss_net/ch_custom.zip",
)


#: Catalog columns of an image's geometry: finite wherever known.
GEOMETRY = ("crpix1", "crpix2", "crval1", "crval2", "crota2", "rsun_obs_arcsec", "dsun_obs_m", "hgln_obs_deg",
            "hglt_obs_deg", "disk_x_px", "disk_y_px", "disk_radius_px", "exposure_s", "wavelength_angstrom")


class Seeds(dict):
    """Files to damage: path → bytes (shown by their count: hypothesis prints the arguments of a failing example)."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed files>"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Seeds:
    """Files to damage, by path (the last folder kept: PNG masks are known by their ``masks/`` folder)."""
    from heliobench.archive.sim.config import SimConfig
    from heliobench.archive.sim.day import simulate_day

    sim = tmp_path_factory.mktemp("sim-day")
    simulate_day(str(sim), "2013-05-01", ["2013-05-01T00:00:00"], SimConfig(size=64, seed=5, cadence_s=86400))
    out = Seeds({f"sim/{p.parent.name}/{p.name}": p.read_bytes() for p in sorted(sim.rglob("*")) if p.is_file()})
    for relative in REAL_SEEDS:
        path = REALDATA / relative
        if path.is_file():
            out[f"real/{path.parent.name}/{path.name}"] = _smaller(path) if path.parent.name == "masks" else path.read_bytes()
    return out


def _smaller(path: Path) -> bytes:
    """A 4096² PNG mask at 512² (inspecting the full size takes seconds)."""
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(path) as image:
        image.resize((512, 512), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_damaged(seeds: dict[str, bytes], data: st.DataObject, folder: Path) -> Path:
    key = data.draw(st.sampled_from(sorted(seeds)), label="seed")
    ops = data.draw(mutations(), label="mutation")
    raw, name = mutate(seeds[key], Path(key).name, ops)
    path = folder / Path(key).parent.name / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    """Standard output and error of this process, file descriptors included (C libraries write
    there too), and the warnings Python would print."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        text = io.StringIO()
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield text
            text.writelines(f"{w.category.__name__}: {w.message}\n" for w in caught)  # what a user's terminal would show
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            text.write(tmp.read().decode("utf-8", "replace"))


def check_inspect(path: Path) -> None:
    """``heliobench inspect PATH`` describes the file, or says in one line what is wrong with it."""
    with _captured() as captured:
        status = main(["inspect", str(path)])
    output = captured.getvalue()
    assert "Traceback" not in output, output
    if status == 0:
        assert f"{path}\n" in output, output
        return
    lines = output.strip().splitlines()
    assert status == 2 and len(lines) == 1, output
    assert lines[0].startswith(f"heliobench inspect: error: {path}: "), output
    assert not lines[0].startswith(f"heliobench inspect: error: {path}: unexpected "), output


def check_read_one(path: Path) -> None:
    """Ingest's work on one file: catalogued or quarantined with a one-line, expected reason."""
    rows = read_one(str(path), path.stat().st_size, "fuzz").to_pylist()
    assert rows
    uris = [r["uri"] for r in rows]
    assert len(set(uris)) == len(uris) and {source_uri(u) for u in uris} == {str(path)}
    for row in rows:
        assert row["status"] in ("observation", "label", "quarantine"), row
        if row["status"] == "quarantine":
            assert row["stage"] and row["reason"] and "\n" not in row["reason"], row
            assert not row["reason"].startswith("unexpected "), row
        if row["status"] == "observation":  # a catalogued image has a usable geometry
            assert row["nx"] > 0 and row["ny"] > 0, row
            assert all(math.isfinite(row[k]) and row[k] != 0 for k in ("cdelt1", "cdelt2")), row
            assert all(row[k] is None or math.isfinite(row[k]) for k in GEOMETRY), row
            assert row["disk_radius_px"] is None or row["disk_radius_px"] > 0, row


@settings(max_examples=_EXAMPLES[0], **_COMMON)
@given(data=st.data())
def test_damaged_file_is_described_or_refused_in_one_line(seeds, data) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write_damaged(seeds, data, Path(folder))
        check_inspect(path)
        check_read_one(path)


@settings(max_examples=_EXAMPLES[1], **_COMMON)
@given(data=st.data())
def test_ingest_of_damaged_folder_catalogues_or_quarantines_every_file_once(seeds, ray_session, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        damaged = [_write_damaged(seeds, data, archive / f"{i:02d}") for i in range(data.draw(st.integers(6, 14)))]
        good = []
        for key in [k for k in sorted(seeds) if k.startswith("sim/") and "/aia/" not in k][:4] + [k for k in sorted(seeds) if "/aia/" in k][:2]:
            path = archive / "good" / Path(key).parent.name / Path(key).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(seeds[key])
            good.append(path)
        summary = ingest([str(archive)], str(Path(tmp) / "catalog"), progress=False, max_quarantine=None)
        tables = load_catalog(str(Path(tmp) / "catalog"))
        uris = tables.observations["uri"].to_list() + tables.labels["uri"].to_list() + tables.quarantine["uri"].to_list()
        assert len(set(uris)) == len(uris), "a file catalogued twice"
        listed = {str(p.resolve()) for p in archive.rglob("*") if p.is_file() and not p.name.startswith(".")}
        read = {u for u in listed if skipped_type(u) is None}
        assert {source_uri(u) for u in uris} == read, "a file lost"
        assert summary.files_seen == len(listed) and sum(summary.skipped.values()) == len(listed - read)
        catalogued = set(tables.observations["uri"]) | {source_uri(u) for u in tables.labels["uri"]}
        assert {str(p.resolve()) for p in good} <= catalogued
        assert not [r for r in tables.quarantine["reason"] if r.startswith("unexpected ")]
        assert summary.files_read == len(read) and len(damaged) <= len(read)


@settings(max_examples=_EXAMPLES[0] // 2, **_COMMON)
@given(ops=st.lists(byte_ops(), min_size=1, max_size=3))
def test_damaged_submission_is_refused_in_one_line(ops) -> None:
    """``heliobench submit``'s reading of a prediction file: the arrays, or one line naming the file."""
    ids = ["20170701T000000", "20170702T000000", "20170703T000000"]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{i: np.full((8, 8), 0.5, np.float32) for i in ids})
    raw, _ = mutate(buffer.getvalue(), "predictions.npz", ops)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "predictions.npz"
        path.write_bytes(raw)
        try:
            arrays = validate_submission(path, ids, shape=(8, 8), value_range=(0.0, 1.0), max_bytes=1 << 20)
        except HelioBenchError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), str(exc)
        else:
            assert sorted(arrays) == ids


def test_seeds_cover_every_reader(seeds) -> None:
    """The fuzz tests damage files of every family the readers take (real ones where present)."""
    suffixes = {Path(k).suffix for k in seeds}
    assert {".fits", ".gz", ".json", ".txt", ".csv"} <= suffixes
    if (REALDATA / "README.md").is_file():
        assert {".jp2", ".png", ".zip"} <= suffixes and sum(k.startswith("real/") for k in seeds) == len(REAL_SEEDS)

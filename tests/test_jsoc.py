"""JSOC as an archive source, against a fake JSOC speaking the real JSON protocol."""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from heliobench.archive.jsoc import fetch_jsoc, parse_jsoc_uri
from heliobench.errors import HelioBenchError
from jsoc_server import JsocServer

URI = "jsoc:hmi.M_720s[2017.01.01_00:00_TAI/1d@6h]"
EMAIL = "user@example.org"
#: Slot times (TAI) of the fake archive; the URI selects the first four.
MATCHING = [datetime(2017, 1, 1, h) for h in (0, 6, 12, 18)]
NOT_MATCHING = [datetime(2017, 1, 1, 3), datetime(2017, 1, 2), datetime(2016, 12, 31, 18)]


def source_name(t_rec: datetime) -> str:
    """The name of one record's magnetogram in the fake archive, as JSOC names it."""
    return f"hmi.M_720s.{t_rec:%Y%m%d_%H%M%S}_TAI.1.magnetogram.fits"


def exported_name(t_rec: datetime) -> str:
    """The file name JSOC gives the export of one record (drms' default filenamefmt)."""
    return f"hmi.m_720s.{t_rec:%Y%m%d_%H%M%S}_TAI.1.magnetogram.fits"


def write_hmi(folder: Path, t_rec: datetime) -> None:
    """A small HMI-like magnetogram in ``folder``."""
    header = fits.Header()
    header["TELESCOP"] = "SDO/HMI"
    header["INSTRUME"] = "HMI_SIDE1"
    header["CONTENT"] = "MAGNETOGRAM"
    header["T_REC"] = f"{t_rec:%Y.%m.%d_%H:%M:%S}_TAI"
    header["T_OBS"] = f"{t_rec:%Y.%m.%d_%H:%M:%S}.00_TAI"
    header["DATE-OBS"] = (t_rec - timedelta(seconds=37)).isoformat()  # TAI - UTC in 2017
    header["CTYPE1"], header["CTYPE2"] = "HPLN-TAN", "HPLT-TAN"
    header["CUNIT1"], header["CUNIT2"] = "arcsec", "arcsec"
    header["CDELT1"], header["CDELT2"] = 0.504, 0.504
    header["CRPIX1"], header["CRPIX2"] = 8.5, 8.5
    header["BUNIT"] = "Gauss"
    data = np.full((16, 16), t_rec.hour, dtype=np.float32) + np.arange(16, dtype=np.float32)
    fits.PrimaryHDU(data, header).writeto(folder / source_name(t_rec))


AIA_URI = "jsoc:aia.lev1_euv_12s[2017.01.01_00:00_UTC/1d@6h][171]{image}"
#: AIA slot times (UTC): 12 s slots from 1977.01.01_00:00:00_TAI fall at :11 s in 2017 (TAI - UTC = 37 s).
AIA_MATCHING = [datetime(2017, 1, 1, h, 0, 11) for h in (0, 6, 12, 18)]
AIA_NOT_MATCHING = [datetime(2017, 1, 1, 0, 0, 23), datetime(2017, 1, 2, 0, 0, 11)]


def aia_name(t_rec: datetime, wavelength: int = 171) -> str:
    """The name JSOC gives an exported AIA level-1 image (drms' default filenamefmt)."""
    return f"aia.lev1_euv_12s.{t_rec:%Y-%m-%dT%H%M%S}Z.{wavelength}.image_lev1.fits"


def write_aia(folder: Path, t_rec: datetime, wavelength: int = 171) -> None:
    """A small AIA-level-1-like image in ``folder``."""
    header = fits.Header()
    header["TELESCOP"] = "SDO/AIA"
    header["INSTRUME"] = "AIA_3"
    header["WAVELNTH"] = wavelength
    header["WAVEUNIT"] = "angstrom"
    header["T_REC"] = f"{t_rec:%Y-%m-%dT%H:%M:%S}Z"
    header["T_OBS"] = f"{t_rec:%Y-%m-%dT%H:%M:%S}.57Z"
    header["DATE-OBS"] = f"{t_rec:%Y-%m-%dT%H:%M:%S}.57"
    header["EXPTIME"] = 2.0
    header["CTYPE1"], header["CTYPE2"] = "HPLN-TAN", "HPLT-TAN"
    header["CUNIT1"], header["CUNIT2"] = "arcsec", "arcsec"
    header["CDELT1"], header["CDELT2"] = 0.6, 0.6
    header["CRPIX1"], header["CRPIX2"] = 8.5, 8.5
    header["BUNIT"] = "DN"
    data = np.full((16, 16), t_rec.hour, dtype=np.int16) + np.arange(16, dtype=np.int16)
    fits.PrimaryHDU(data, header).writeto(folder / aia_name(t_rec, wavelength))


@pytest.fixture
def aia_archive(tmp_path: Path) -> Path:
    """A fake aia.lev1_euv_12s: 171 A at the matching slots and others, and 193 A at the same slots."""
    folder = tmp_path / "jsoc_aia"
    folder.mkdir()
    for t_rec in AIA_MATCHING + AIA_NOT_MATCHING:
        write_aia(folder, t_rec)
        write_aia(folder, t_rec, 193)
    return folder


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    folder = tmp_path / "jsoc"
    folder.mkdir()
    for t_rec in MATCHING + NOT_MATCHING:
        write_hmi(folder, t_rec)
    return folder


def fetch(server: JsocServer, dest: Path, uri: str = URI, **kwargs: object) -> list[str]:
    options = {"email": EMAIL, "server_url": server.url, "progress": False, "poll_s": 0.05}
    return fetch_jsoc(uri, str(dest), **{**options, **kwargs})


def downloads(server: JsocServer) -> list[str]:
    return [r.path for r in server.requests if r.method == "GET" and r.path.startswith("/SUM")]


@pytest.mark.parametrize(
    "uri",
    [
        URI,
        "jsoc:hmi.M_720s[2017.01.01_TAI/1d]{magnetogram}",
        "jsoc:hmi.sharp_720s[7115][2017.09.06_TAI]{Br, Bp}",
        "jsoc:aia.lev1_euv_12s[? WAVELNTH=171 ?]",
    ],
)
def test_parse_jsoc_uri_returns_the_query(uri: str) -> None:
    assert parse_jsoc_uri(uri) == uri.removeprefix("jsoc:")


@pytest.mark.parametrize(
    "uri",
    [
        "hmi.M_720s[2017.01.01_TAI/1d]",  # no scheme
        "jsoc:hmi.M_720s",  # whole series: no filter
        "jsoc:[2017.01.01_TAI]",  # no series
        "jsoc:M_720s[2017.01.01_TAI]",  # series without namespace
        "jsoc:hmi.M_720s[2017.01.01_TAI",  # unclosed filter
        "jsoc:hmi.M_720s[]",  # empty filter
        "jsoc:hmi.M_720s[2017.01.01_TAI]{}",  # empty segment list
        "jsoc:hmi.M_720s[2017.01.01_TAI]{magnetogram}x",  # trailing text
    ],
)
def test_malformed_uri_is_refused_before_contacting_jsoc(
    archive: Path, tmp_path: Path, uri: str
) -> None:
    expected = r"not a JSOC URI; expected jsoc:<series>\[<filter>\]"
    with pytest.raises(HelioBenchError, match=expected) as info:
        parse_jsoc_uri(uri)
    assert repr(uri) in str(info.value)
    with JsocServer(archive) as server:
        with pytest.raises(HelioBenchError, match="not a JSOC URI"):
            fetch(server, tmp_path / "out", uri=uri)
        assert server.requests == []


def test_fetch_downloads_exactly_the_matching_files(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out"
    with JsocServer(archive) as server:
        paths = fetch(server, dest, progress=True)
        requests = server.requests

    expected = sorted(exported_name(t) for t in MATCHING)
    assert sorted(Path(p).name for p in paths) == expected
    assert sorted(p.name for p in dest.iterdir()) == expected  # no temporary files left behind
    for t_rec in MATCHING:
        source = archive / source_name(t_rec)
        assert (dest / exported_name(t_rec)).read_bytes() == source.read_bytes()

    [export] = [r.params for r in requests if r.params.get("op") == "exp_request"]
    assert export["ds"] == "hmi.M_720s[2017.01.01_00:00_TAI/1d@6h]"
    assert (export["method"], export["protocol"], export["notify"]) == ("url", "fits", EMAIL)
    assert export["filenamefmt"] == "hmi.m_720s.{T_REC:A}.{CAMERA}.{segment}"
    assert [r.params["op"] for r in requests if r.path.endswith("jsoc_fetch")] == [
        "exp_request",
        "exp_status",  # "processing"
        "exp_status",  # done
    ]
    assert any(r.params.get("op") == "rs_list" for r in requests)
    assert "hmi.M_720s[2017.01.01_00:00_TAI/1d@6h]" in capsys.readouterr().err  # the progress bar


def test_refetch_downloads_only_missing_or_wrong_sized_files(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with JsocServer(archive) as server:
        first = fetch(server, dest)
        assert len(downloads(server)) == len(MATCHING)

        second = fetch(server, dest)
        assert second == first
        assert len(downloads(server)) == len(MATCHING)  # nothing new

        damaged = dest / exported_name(MATCHING[1])
        damaged.write_bytes(b"partial")
        fetch(server, dest)
        [again] = downloads(server)[len(MATCHING) :]
        assert again.endswith(f"/{exported_name(MATCHING[1])}")
    assert damaged.read_bytes() == (archive / source_name(MATCHING[1])).read_bytes()


def test_settings_come_from_the_environment(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with JsocServer(archive) as server:
        monkeypatch.setenv("HELIOBENCH_JSOC_URL", server.url)
        monkeypatch.setenv("JSOC_EMAIL", EMAIL)
        paths = fetch_jsoc(URI, str(tmp_path / "out"), progress=False, poll_s=0.05)
        [export] = [r.params for r in server.requests if r.params.get("op") == "exp_request"]
    assert len(paths) == len(MATCHING)
    assert export["notify"] == EMAIL


def test_empty_record_set_returns_nothing_without_an_export(archive: Path, tmp_path: Path) -> None:
    with JsocServer(archive) as server:
        assert fetch(server, tmp_path / "out", uri="jsoc:hmi.M_720s[2018.01.01_TAI/1d]") == []
        assert not any(r.params.get("op") == "exp_request" for r in server.requests)


def test_missing_email_is_a_clear_error(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JSOC_EMAIL", raising=False)
    expected = r"registered email address: pass email= or set JSOC_EMAIL"
    with JsocServer(archive) as server:
        with pytest.raises(HelioBenchError, match=expected):
            fetch(server, tmp_path / "out", email=None)
        assert server.requests == []


def test_unregistered_email_is_a_clear_error(archive: Path, tmp_path: Path) -> None:
    with JsocServer(archive) as server:
        with pytest.raises(HelioBenchError, match=r"not accept 'someone@example.org'.*register"):
            fetch(server, tmp_path / "out", email="someone@example.org")


def test_unknown_series_names_the_query(archive: Path, tmp_path: Path) -> None:
    uri = "jsoc:aia.lev1_euv_12s[2017.01.01_TAI/1h]"
    with JsocServer(archive) as server:
        expected = rf"{re.escape(uri)}: JSOC at {server.url} refused the request: series not found"
        with pytest.raises(HelioBenchError, match=expected):
            fetch(server, tmp_path / "out", uri=uri)


def test_export_error_names_the_query(archive: Path, tmp_path: Path) -> None:
    with JsocServer(archive, export_error="Export failed: SUMS unavailable") as server:
        with pytest.raises(HelioBenchError) as info:
            fetch(server, tmp_path / "out")
    message = str(info.value)
    assert message.startswith(URI)
    assert "Export failed: SUMS unavailable [status=4]" in message
    assert not (tmp_path / "out").exists()


def test_export_that_never_finishes_times_out(archive: Path, tmp_path: Path) -> None:
    with JsocServer(archive, pending_polls=10**6) as server:
        started = time.monotonic()
        expected = r"JSOC export JSOC_\d{8}_001 still not ready after 0.5 s"
        with pytest.raises(HelioBenchError, match=expected):
            fetch(server, tmp_path / "out", timeout_s=0.5)
    assert time.monotonic() - started < 5


def test_broken_download_leaves_no_partial_file(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with JsocServer(archive, truncate_downloads=True) as server:
        with pytest.raises(HelioBenchError, match=r"broke off"):
            fetch(server, dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_unreachable_server_fails_quickly(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    server_url = f"http://127.0.0.1:{port}"
    expected = rf"{re.escape(URI)}: JSOC at {server_url}/ unreachable"
    with pytest.raises(HelioBenchError, match=expected):
        fetch_jsoc(URI, str(tmp_path / "out"), email=EMAIL, server_url=server_url, progress=False)
    assert time.monotonic() - started < 5


def test_ingest_catalogues_a_jsoc_query(archive: Path, tmp_path: Path, monkeypatch, ray_session) -> None:
    from heliobench.catalog.ingest import ingest
    from heliobench.catalog.tables import load_catalog

    with JsocServer(archive) as server:
        monkeypatch.setenv("HELIOBENCH_JSOC_URL", server.url)
        monkeypatch.setenv("JSOC_EMAIL", EMAIL)
        summary = ingest([URI], str(tmp_path / "catalog"), download_dir=str(tmp_path / "downloads"), progress=False)
    assert summary.new_observations == len(MATCHING) and summary.new_quarantined == 0
    obs = load_catalog(str(tmp_path / "catalog")).observations
    assert set(obs["instrument"]) == {"HMI"} and set(obs["channel"]) == {"magnetogram"}
    assert sorted(Path(u).name for u in obs["uri"]) == sorted(exported_name(t) for t in MATCHING)


def test_fetch_exports_an_aia_series(aia_archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with JsocServer(aia_archive) as server:
        paths = fetch(server, dest, uri=AIA_URI)
        requests = server.requests
    expected = sorted(aia_name(t) for t in AIA_MATCHING)
    assert sorted(Path(p).name for p in paths) == expected
    for t_rec in AIA_MATCHING:
        assert (dest / aia_name(t_rec)).read_bytes() == (aia_archive / aia_name(t_rec)).read_bytes()
    [export] = [r.params for r in requests if r.params.get("op") == "exp_request"]
    assert export["ds"] == AIA_URI.removeprefix("jsoc:")
    assert export["filenamefmt"] == "aia.lev1_euv_12s.{T_REC:A}.{WAVELNTH}.{segment}"


def test_ingest_catalogues_an_aia_query(aia_archive: Path, tmp_path: Path, monkeypatch, ray_session) -> None:
    from heliobench.catalog.ingest import ingest
    from heliobench.catalog.tables import load_catalog

    with JsocServer(aia_archive) as server:
        monkeypatch.setenv("HELIOBENCH_JSOC_URL", server.url)
        monkeypatch.setenv("JSOC_EMAIL", EMAIL)
        summary = ingest([AIA_URI], str(tmp_path / "catalog"), download_dir=str(tmp_path / "downloads"), progress=False)
    assert summary.new_observations == len(AIA_MATCHING) and summary.new_quarantined == 0
    obs = load_catalog(str(tmp_path / "catalog")).observations
    assert set(obs["instrument"]) == {"AIA"} and set(obs["channel"]) == {"171"}

"""The hek:, srs:, helioviewer: and kso: sources against fake services on 127.0.0.1 that serve
recorded material in the real services' formats (tests/fetch_server.py)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import socket
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fetch_server import KSO_PATH, SRS_PATH, FetchServer, Jp2Image
from heliobench.archive.fetch.hek import fetch_hek, parse_hek_uri
from heliobench.archive.fetch.helioviewer import (
    fetch_helioviewer,
    parse_helioviewer_uri,
)
from heliobench.archive.fetch.kso import fetch_kso
from heliobench.archive.fetch.srs import fetch_srs
from heliobench.archive.readers import read_hek
from heliobench.errors import HelioBenchError

AIA_193_JP2 = "2013_06_24__17_31_30_84__SDO_AIA_AIA_193.jp2"
AIA_193_SOURCE = 11  # hvpy.DataSource.AIA_193


@pytest.fixture(scope="module")
def hek_events(realdata: Path) -> list[dict]:
    """The real HEK records of 2017-09-01..09-10 (AR and FL)."""
    [path] = sorted((realdata / "hek").glob("*.json"))
    return json.loads(path.read_text())


def dead_url() -> str:
    """The root URL of a port on 127.0.0.1 that nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def starts_in(event: dict, first: str, last: str) -> bool:
    """Whether the event starts on one of the days ``first``..``last`` (ISO dates)."""
    return first <= event["event_starttime"][:10] <= last


# --- hek: ---------------------------------------------------------------------------------


def test_parse_hek_uri() -> None:
    query = parse_hek_uri("hek:ar,CH[2017-09-01/2017-09-03]@NOAA SWPC Observer")
    assert query.event_types == ("AR", "CH") and query.frm_name == "NOAA SWPC Observer"
    assert (query.span.start, query.span.end) == (datetime(2017, 9, 1), datetime(2017, 9, 4))  # END day included
    assert query.file_name(query.span.days()[0]) == "hek_AR-CH_NOAA-SWPC-Observer_20170901.json"
    for bad in ("hek:AR", "hek:[2017-09-01/2017-09-03]", "hek:AR[2017-09-01]", "hek:AR[2017-09-03/2017-09-01]"):
        with pytest.raises(HelioBenchError, match=re.escape(bad)):
            parse_hek_uri(bad)


def test_hek_writes_the_real_records_one_file_per_day(hek_events: list[dict], tmp_path: Path) -> None:
    with FetchServer(hek_events=hek_events, page_size=20) as server:
        result = fetch_hek("hek:AR,FL[2017-09-05/2017-09-07]", str(tmp_path), progress=False, server_url=f"{server.url}hek/her")
        requests = server.requests
    names = [Path(p).name for p in result.paths]
    assert names == [f"hek_AR-FL_2017090{d}.json" for d in (5, 6, 7)] and result.failures == []
    written = [e for p in result.paths for e in json.loads(Path(p).read_text())["result"]]
    expected = [e for e in hek_events if starts_in(e, "2017-09-05", "2017-09-07")]
    assert len(written) == len(expected) > 20  # each event once, in the file of the day it starts
    for event in expected:  # the raw records, field for field
        assert any(all(w.get(k) == v for k, v in event.items()) for w in written)
    for path in result.paths:
        day = Path(path).stem[-8:]
        events = read_hek(Path(path).read_bytes(), path)
        assert {f"{t:%Y%m%d}" for t in events["start_time"]} == {day}
    first = requests[0].params
    assert (first["cmd"], first["type"], first["cosec"], first["event_type"]) == ("search", "column", "2", "ar,fl")
    assert (first["event_starttime"], first["event_endtime"]) == ("2017-09-05T00:00:00", "2017-09-06T00:00:00")
    assert any(r.params["page"] == "2" for r in requests)  # sunpy followed HEK's pages


def test_hek_method_filter_and_resume(hek_events: list[dict], tmp_path: Path) -> None:
    uri = "hek:FL[2017-09-06/2017-09-07]@SWPC"
    with FetchServer(hek_events=hek_events) as server:
        url = f"{server.url}hek/her"
        first = fetch_hek(uri, str(tmp_path), progress=False, server_url=url)
        asked = len(server.requests)
        again = fetch_hek(uri, str(tmp_path), progress=False, server_url=url)
        assert len(server.requests) == asked  # both days on disk: HEK not asked again
        [query] = {(r.params["param0"], r.params["op0"], r.params["value0"]) for r in server.requests}
    assert query == ("FRM_Name", "=", "SWPC")
    assert again.paths == first.paths and len(first.paths) == 2
    events = [e for p in first.paths for e in json.loads(Path(p).read_text())["result"]]
    assert {(e["event_type"], e["frm_name"]) for e in events} == {("FL", "SWPC")}


def test_hek_unreachable_names_the_url(tmp_path: Path) -> None:
    url = f"{dead_url()}hek/her"
    with pytest.raises(HelioBenchError, match=rf"HEK at {re.escape(url)}\? unreachable"):
        fetch_hek("hek:AR[2017-09-01/2017-09-01]", str(tmp_path), progress=False, server_url=url)


# --- srs: ---------------------------------------------------------------------------------


def test_srs_downloads_the_reports_of_the_range(realdata: Path, tmp_path: Path) -> None:
    with FetchServer(srs_dir=realdata / "srs") as server:
        result = fetch_srs("srs:2000-09-20/2000-10-01", str(tmp_path), progress=False, server_url=server.url + SRS_PATH[1:])
        listed = sorted({r.path for r in server.requests if r.path.endswith("/")})
    expected = ["20000922SRS.txt", "20000927SRS.txt", "20001001SRS.txt"]
    assert [Path(p).name for p in result.paths] == expected and result.failures == []
    for name in expected:
        assert (tmp_path / "srs" / name).read_bytes() == (realdata / "srs" / name).read_bytes()
    assert listed == [f"{SRS_PATH}2000/09/", f"{SRS_PATH}2000/10/"]  # sunpy's scraper read the month folders


def test_srs_failed_file_is_reported_and_the_others_downloaded(realdata: Path, tmp_path: Path) -> None:
    broken = f"{SRS_PATH}2000/09/20000927SRS.txt"
    uri = "srs:2000-09-20/2000-10-01"
    with FetchServer(srs_dir=realdata / "srs", fail_paths={broken}) as server:
        base = server.url + SRS_PATH[1:]
        result = fetch_srs(uri, str(tmp_path), progress=False, server_url=base)
        [failure] = result.failures
        assert failure.url == server.url + broken[1:] and failure.reason == "HTTP 500"
        assert sorted(Path(p).name for p in result.paths) == ["20000922SRS.txt", "20001001SRS.txt"]
        server.fail_paths.clear()
        again = fetch_srs(uri, str(tmp_path), progress=False, server_url=base)
        downloads = [r.path for r in server.requests if r.path.endswith("SRS.txt") and r.status == 200]
    assert len(again.paths) == 3 and again.failures == []
    assert downloads == [f"{SRS_PATH}2000/09/20000922SRS.txt", f"{SRS_PATH}2000/10/20001001SRS.txt", broken]


def test_srs_unreachable_names_the_url(tmp_path: Path) -> None:
    url = dead_url()
    with pytest.raises(HelioBenchError, match=rf"SRS archive at {re.escape(url)} unreachable"):
        fetch_srs("srs:2015-01-01/2015-01-02", str(tmp_path), progress=False, server_url=url)


# --- helioviewer: -------------------------------------------------------------------------


def aia_193(realdata: Path, *dates: datetime) -> list[Jp2Image]:
    """The real AIA 193 JP2, served as the image of each date (ids 1, 2, ...)."""
    return [Jp2Image(AIA_193_SOURCE, d, realdata / "jp2" / AIA_193_JP2, i) for i, d in enumerate(dates, start=1)]


def test_parse_helioviewer_uri() -> None:
    query = parse_helioviewer_uri("helioviewer:AIA_193[2013-06-24T00:00/2013-06-24T06:00@1h]")
    assert query.source.value == AIA_193_SOURCE and len(query.steps()) == 6
    with pytest.raises(HelioBenchError, match="no Helioviewer data source"):
        parse_helioviewer_uri("helioviewer:AIA_999[2013-06-24T00:00/2013-06-24T06:00@1h]")
    with pytest.raises(HelioBenchError, match="not a Helioviewer URI"):
        parse_helioviewer_uri("helioviewer:AIA_193[2013-06-24T00:00/2013-06-24T06:00]")


def test_helioviewer_downloads_the_closest_images(realdata: Path, tmp_path: Path) -> None:
    uri = "helioviewer:AIA_193[2013-06-24T16:00/2013-06-24T19:00@1h]"
    with FetchServer(jp2_images=aia_193(realdata, datetime(2013, 6, 24, 17, 31, 30))) as server:
        result = fetch_helioviewer(uri, str(tmp_path), progress=False, server_url=f"{server.url}v2/")
        requests = server.requests
    # the steps 16:00 (1.5 h away), 17:00 (31.5 min) and 18:00 (28.5 min): only 18:00 is within half a cadence
    assert [Path(p).name for p in result.paths] == ["2013_06_24__17_31_30__AIA_193.jp2"] and result.failures == []
    assert Path(result.paths[0]).read_bytes() == (realdata / "jp2" / AIA_193_JP2).read_bytes()
    closest = [r.params for r in requests if r.path == "/v2/getClosestImage/"]
    assert [p["date"] for p in closest] == [f"2013-06-24T{h}:00:00Z" for h in (16, 17, 18)]
    assert {p["sourceId"] for p in closest} == {str(AIA_193_SOURCE)}
    [jp2] = [r.params for r in requests if r.path == "/v2/getJP2Image/"]
    assert (jp2["date"], jp2["sourceId"]) == ("2013-06-24T17:31:30Z", str(AIA_193_SOURCE))


def test_helioviewer_failed_image_is_reported_and_resumed(realdata: Path, tmp_path: Path) -> None:
    uri = "helioviewer:AIA_193[2013-06-24T17:00/2013-06-24T18:59@30min]"
    images = aia_193(realdata, datetime(2013, 6, 24, 17, 1, 30), datetime(2013, 6, 24, 18, 1, 30))
    with FetchServer(jp2_images=images, failing_images={2}) as server:
        api = f"{server.url}v2/"
        result = fetch_helioviewer(uri, str(tmp_path), progress=False, server_url=api)
        [failure] = result.failures
        assert failure.url == f"{api}getJP2Image/?date=2013-06-24T18:01:30Z&sourceId=11" and failure.reason == "HTTP 500"
        assert [Path(p).name for p in result.paths] == ["2013_06_24__17_01_30__AIA_193.jp2"]
        server.failing_images.clear()
        again = fetch_helioviewer(uri, str(tmp_path), progress=False, server_url=api)
        jp2_dates = [r.params["date"] for r in server.requests if r.path == "/v2/getJP2Image/"]
    assert len(again.paths) == 2 and again.failures == []
    assert jp2_dates == ["2013-06-24T17:01:30Z", "2013-06-24T18:01:30Z", "2013-06-24T18:01:30Z"]  # 17:01 not again


def test_helioviewer_error_answer_is_reported(tmp_path: Path) -> None:
    with FetchServer() as server:  # no images: the API answers {"error": ...}
        result = fetch_helioviewer("helioviewer:HMI_MAG[2022-08-02T10:00/2022-08-02T11:00@1h]", str(tmp_path), progress=False, server_url=f"{server.url}v2/")
    [failure] = result.failures
    assert result.paths == [] and "No images available" in failure.reason and "getClosestImage" in failure.url


def test_helioviewer_unreachable_names_the_url(tmp_path: Path) -> None:
    api = f"{dead_url()}v2/"
    with pytest.raises(HelioBenchError, match=rf"Helioviewer API at {re.escape(api)} unreachable"):
        fetch_helioviewer("helioviewer:AIA_193[2013-06-24T00:00/2013-06-24T01:00@1h]", str(tmp_path), progress=False, server_url=api)


# --- kso: ---------------------------------------------------------------------------------


def write_kso(folder: Path, t: datetime) -> str:
    """A small Kanzelhöhe-like H-alpha file named as the KSO archive names them."""
    header = fits.Header()
    for key, value in {
        "DATE-OBS": t.isoformat(), "TIMESYS": "UTC", "ORIGIN": "KANZELHOEHE", "TELESCOP": "KANZELHOEHE",
        "INSTRUME": "H-ALPHA", "WAVELNTH": 6563, "WAVEUNIT": "ANG", "EXP_TIME": 4.0,
        "CENTER_X": 15.5, "CENTER_Y": 15.5, "SOLAR_R": 14.0,
    }.items():
        header[key] = value
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.full((32, 32), 1000, dtype=np.int16), header).writeto(buffer)
    name = f"kanz_halph_fr_{t:%Y%m%d_%H%M%S}.fts.gz"
    (folder / name).write_bytes(gzip.compress(buffer.getvalue()))
    return name


def test_kso_downloads_the_files_of_the_range(tmp_path: Path) -> None:
    archive = tmp_path / "kso_archive"
    archive.mkdir()
    inside = [write_kso(archive, datetime(2015, 1, 10, h, 26, 29)) for h in (7, 10)]
    write_kso(archive, datetime(2015, 1, 11, 8))
    with FetchServer(kso_dir=archive) as server:
        result = fetch_kso("kso:2015-01-10/2015-01-10", str(tmp_path / "out"), progress=False, server_url=server.url)
        listed = {r.path for r in server.requests if r.path.endswith("/")}
    assert [Path(p).name for p in result.paths] == inside and result.failures == []
    assert listed == {f"{KSO_PATH}2015/"}
    for name in inside:
        assert (tmp_path / "out" / "kso" / name).read_bytes() == (archive / name).read_bytes()


# --- ingest -------------------------------------------------------------------------------


def test_ingest_catalogues_every_fetched_source(
    realdata: Path, hek_events: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, ray_session,
) -> None:
    from heliobench.catalog.tables import load_catalog
    from heliobench.cli import main

    kso = tmp_path / "kso_archive"
    kso.mkdir()
    kso_name = write_kso(kso, datetime(2015, 1, 10, 10, 26, 29))
    broken = f"{SRS_PATH}2015/03/20150306SRS.txt"
    images = aia_193(realdata, datetime(2013, 6, 24, 17, 31, 30))
    with FetchServer(hek_events=hek_events, srs_dir=realdata / "srs", jp2_images=images, kso_dir=kso, fail_paths={broken}) as server:
        monkeypatch.setenv("HELIOBENCH_HEK_URL", f"{server.url}hek/her")
        monkeypatch.setenv("HELIOBENCH_SRS_URL", server.url + SRS_PATH[1:])
        monkeypatch.setenv("HELIOBENCH_HELIOVIEWER_URL", f"{server.url}v2")
        monkeypatch.setenv("HELIOBENCH_KSO_URL", server.url)
        sources = [
            "hek:AR,FL[2017-09-01/2017-09-02]", "srs:2015-01-01/2015-03-06",
            "helioviewer:AIA_193[2013-06-24T17:00/2013-06-24T19:00@1h]", "kso:2015-01-10/2015-01-10",
        ]
        with caplog.at_level(logging.WARNING):
            code = main(["ingest", *sources, "--catalog", str(tmp_path / "catalog"), "--download-dir", str(tmp_path / "downloads"), "--quiet"])
    assert code == 0
    assert f"could not fetch {server.url}{broken[1:]} (HTTP 500)" in caplog.text
    tables = load_catalog(str(tmp_path / "catalog"))
    assert tables.quarantine.height == 0, tables.quarantine.to_dicts()
    labels = {(k, Path(u).name) for k, u in tables.labels.select("kind", "uri").iter_rows()}
    assert labels == {("hek", "hek_AR-FL_20170901.json"), ("hek", "hek_AR-FL_20170902.json"), ("srs", "20150101SRS.txt")}
    obs = {(i, c, Path(u).name) for i, c, u in tables.observations.select("instrument", "channel", "uri").iter_rows()}
    assert obs == {("AIA", "193", "2013_06_24__17_31_30__AIA_193.jp2"), ("KSO", "halpha", kso_name)}

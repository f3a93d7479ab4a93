"""Smoke test of the performance suite (``benchmarks/perf``): every benchmark function runs
at its tiny size in this process (the suite's shared Ray session) and returns table rows
with the expected columns. No timing is asserted: that is ``make bench``'s job.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf"

#: module -> words the measures of its rows must mention
EXPECTED = {
    "ingest": ["header cataloguing", "decode+prep+shards", "decode ceiling, HelioBench reader", "decode ceiling, astropy",
               "end to end", "of the wall time", "time/file vs 1x"],
    "training_input": ["Ray Data from shards vs DataLoader"],
    "catalog_scale": ["pair + assign_splits", "peak RSS"],
    "leaderboard_scale": ["rank() over", "naive mlflow.search_runs"],
    "gpu_readiness": ["matmul throughput", "ScssNet", "pix2pix", "quality generator", "GOTURN", "DetectNet"],
}


def _module(name: str):
    if str(PERF) not in sys.path:
        sys.path.insert(0, str(PERF))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def perf_workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("perf")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_benchmark_returns_rows(name, perf_workdir, ray_session):
    common = _module("common")
    out = _module(name).run(size="tiny", workdir=perf_workdir, isolate=False)
    assert set(out) >= {"rows", "details"}
    assert out["rows"], f"{name} returned no rows"
    for r in out["rows"]:
        assert tuple(r) == common.ROW_KEYS, r
        assert r["met"] in ("yes", "no", "n/a"), r
        assert r["value"] is None or isinstance(r["value"], (int, float)), r
    measures = " | ".join(r["measure"] for r in out["rows"])
    for word in EXPECTED[name]:
        assert word in measures, f"{name}: no row about {word!r} in {measures}"
    text = common.format_table(out["rows"])
    assert text.splitlines()[0].split() == list(common.ROW_KEYS)


def test_table_and_legend_formatting():
    common = _module("common")
    rows = [common.row("a", 1234.5, "files/s", 10.0, 123.45, "ratio >= 1.8", True), common.row("b", None, "s")]
    text = common.format_table(rows)
    assert "1,234" in text and "yes" in text and "n/a" in text
    run_all = _module("run_all")
    assert set(run_all.BENCHMARKS) == set(EXPECTED)


def test_pairing_a_catalog_read_lazily_matches_pairing_it_in_memory(tmp_path):
    """``load_catalog`` opens the observation table without reading it and pairing reads only what it
    needs (the catalog-scale memory fix); the samples are those of the table held in memory, also with
    two members on one channel (an offset frame), a label member and rows out of time order."""
    from datetime import datetime, timedelta, timezone

    import polars as pl

    from heliobench.archive.observation import CATALOG_SCHEMA, QUARANTINE_SCHEMA
    from heliobench.catalog.pairing import pair
    from heliobench.catalog.tables import LABELS_SCHEMA, CatalogTables, empty_frame, load_catalog, save_catalog
    from heliobench.specs import DatasetCard, load_card

    t0 = datetime(2017, 7, 1, tzinfo=timezone.utc)
    rows = []
    for inst, channel, offset_s in (("HMI", "magnetogram", -37), ("AIA", "193", 7), ("AIA", "171", 2), ("AIA", "94", 0)):
        for step in range(60):
            if (step * 7 + len(channel)) % 11 == 0:
                continue  # some gaps
            t = t0 + timedelta(minutes=12 * step, seconds=offset_s)
            rows.append({"uri": f"/d/{inst}_{channel}_{step}.fits", "instrument": inst, "channel": channel,
                         "obs_time": t, "checksum": f"{inst}{channel}{step}"})
    rows.reverse()  # not in time order
    obs = pl.DataFrame(rows).select(
        [pl.col(c) if c in rows[0] else pl.lit(None).alias(c) for c in CATALOG_SCHEMA.names]
    ).cast(pl.from_arrow(CATALOG_SCHEMA.empty_table()).schema)
    labels = pl.DataFrame([{"uri": f"/l/ch_{d}.fits", "kind": "ch_mask", "time_start": t0 + timedelta(hours=3 * d),
                            "time_end": t0 + timedelta(hours=3 * d + 3), "checksum": f"m{d}", "size_bytes": 1,
                            "source_mtime": "", "ingested_at": t0} for d in range(5)]).cast(empty_frame(LABELS_SCHEMA).schema)
    in_memory = CatalogTables(obs, labels, empty_frame(QUARANTINE_SCHEMA))
    save_catalog(str(tmp_path), in_memory)

    base = load_card("sdo_sim").model_dump()
    base["members"] = [
        {"key": "hmi", "instrument": "HMI", "channel": "magnetogram"},
        {"key": "aia_193", "instrument": "AIA", "channel": "193"},
        {"key": "aia_193_before", "instrument": "AIA", "channel": "193", "offset_min": -24},
        {"key": "aia_171", "instrument": "AIA", "channel": "171", "tolerance_min": 1},
        {"key": "ch", "label": "ch_mask", "match": "before", "tolerance_min": 240},
    ]
    base["reference"] = "hmi"
    card = DatasetCard.model_validate(base)

    lazy = load_catalog(str(tmp_path))
    assert "not read yet" in repr(lazy)
    got, want = pair(lazy, card), pair(in_memory, card)
    assert "not read yet" in repr(lazy)  # pairing never read the whole table
    assert got.samples.height > 20 and got.unmatched_by_member == want.unmatched_by_member
    assert got.references == want.references
    assert got.samples.equals(want.samples)
    assert lazy.observations.sort("uri").equals(obs.sort("uri"))  # read in full on first use

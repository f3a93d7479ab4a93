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
    "ingest": ["header cataloguing", "decode+prep+shards", "decode ceiling", "end to end", "time/file vs 1x"],
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

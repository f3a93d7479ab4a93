"""The demo's short-run settings are valid for the specs they override (checked without running the demo)."""

from __future__ import annotations

from pathlib import Path

from heliobench.demo import DEMO_CHANNEL_SELECTION, DEMO_RUNS, _channel_selection_spec, _specs
from heliobench.models import build_model, n_parameters
from heliobench.specs import load_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_every_benchmark_has_a_short_run_whose_overrides_apply() -> None:
    specs = _specs(128)
    names = {p.stem for p in BENCHMARKS.glob("*.yaml")}
    assert set(specs) == names - {"aia_channel_selection"}  # that one runs as a grid subset
    assert len(DEMO_RUNS) == len(specs)  # one short run each
    for name, spec in specs.items():
        published = load_benchmark(name)
        # a short run: fewer epochs, or as many with a narrower network
        assert spec.training.epochs < published.training.epochs or (
            spec.training.epochs == published.training.epochs
            and n_parameters(build_model(spec)) < n_parameters(build_model(published))), name
        assert spec.resolution_px in (128, 256), name


def test_channel_selection_subset_is_in_the_grid() -> None:
    spec = _channel_selection_spec(128)
    channels = set(spec.inputs + spec.targets)
    for trial in DEMO_CHANNEL_SELECTION:
        assert set(trial["inputs"]) <= channels and set(trial["targets"]) <= channels
        assert not set(trial["inputs"]) & set(trial["targets"])

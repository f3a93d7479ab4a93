"""HelioBench: standardized, leakage-safe benchmarks for solar-physics deep learning.

``heliobench.load_benchmark(name, dataset=..., shards=...)`` gives a benchmark's splits,
transforms and evaluator for your own training loop (:mod:`heliobench.api`).
"""

__version__ = "0.1.0"

__all__ = ["Benchmark", "load_benchmark", "__version__"]


def __getattr__(name: str):
    # The API imports torch; `import heliobench` (the CLI's first import) stays light.
    if name in ("Benchmark", "load_benchmark"):
        from heliobench import api

        return getattr(api, name)
    raise AttributeError(f"module 'heliobench' has no attribute {name!r}")

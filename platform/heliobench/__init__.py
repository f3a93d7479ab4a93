"""HelioBench: standardized, leakage-safe benchmarks for solar-physics deep learning."""

__version__ = "0.1.0"

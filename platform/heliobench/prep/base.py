"""What every preprocessing step shares: a name, a version, parameters and a hash."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from heliobench.errors import ConfigError, HelioBenchError
from heliobench.prep.image import PrepImage


class PrepError(HelioBenchError):
    """An observation cannot be preprocessed (names the observation and says why)."""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Step(ABC):
    """One preprocessing step: ``apply`` maps a :class:`PrepImage` to a new one.

    Subclasses set ``name`` and ``version`` (bump the version whenever the output for the
    same parameters changes) and store their constructor arguments in ``params`` as
    plain JSON values, so that ``{"step": name, **params}`` rebuilds the step.
    """

    name: ClassVar[str]
    version: ClassVar[int]

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = params

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the step's output; its hash is the hash of this."""
        return {"step": self.name, "version": self.version, "params": self.params}

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`fingerprint`."""
        return sha256_text(canonical_json(self.fingerprint()))

    @abstractmethod
    def apply(self, image: PrepImage) -> PrepImage:
        """The preprocessed image."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


class GeometricStep(Step):
    """A step that moves pixels; ``Pipeline.apply_label`` carries label masks through these."""

    @abstractmethod
    def transform_label(self, mask: np.ndarray, image: PrepImage) -> np.ndarray:
        """A label mask on ``image``'s grid carried to the grid ``apply(image)`` returns."""


def finite_number(step: str, key: str, value: Any) -> float:
    """``value`` as a finite float, or ConfigError naming the step and key."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{step}: {key} must be a finite number, got {value!r}")
    return float(value)


def positive_number(step: str, key: str, value: Any) -> float:
    """``value`` as a float > 0, or ConfigError naming the step and key."""
    number = finite_number(step, key, value)
    if number <= 0:
        raise ConfigError(f"{step}: {key} must be > 0, got {value!r}")
    return number


def int_in_range(step: str, key: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (no upper bound if ``high`` is None), or ConfigError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        expected = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        raise ConfigError(f"{step}: {key} must be {expected}, got {value!r}")
    return int(value)


def positive_int(step: str, key: str, value: Any) -> int:
    """``value`` as an int > 0, or ConfigError naming the step and key."""
    return int_in_range(step, key, value, 1)


def ordered_range(step: str, low_key: str, low: float, high_key: str, high: float) -> None:
    """ConfigError unless ``low < high``."""
    if not low < high:
        raise ConfigError(f"{step}: {low_key} must be below {high_key}, got {low!r} >= {high!r}")

"""Mount Wilson magnetic classes and the class maps that turn them into integer labels.

Spellings are the canonical ones of the SRS reader (``Beta-Gamma-Delta``); :func:`encode`
also accepts the older abbreviations and any case or hyphenation (``bgd``, ``BETA GAMMA``).

Class maps (a region whose class a map leaves out is no sample of that map):

* ``full``: the eight Mount Wilson classes, one label each.
* ``paper4``: the four classes of de Oliveira & Gradvohl (2020), one label each, every
  other class left out. The paper lists them (in DIGITS' alphabetical folder order) as
  Alpha, "Alpha-Gamma", Beta and Beta-Gamma with 223/111/408/774 images. "Alpha-Gamma" is
  no Mount Wilson class and no SRS report uses it; the smallest of the four classes can
  only be the fourth most frequent SRS type, Beta-Gamma-Delta (Gamma alone is under 1% of
  regions), so HelioBench reads it as Beta-Gamma-Delta. Labels are in complexity order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from heliobench.archive.readers.srs import MT_WILSON
from heliobench.errors import ConfigError

#: The Mount Wilson classes, simplest first.
MT_WILSON_CLASSES: tuple[str, ...] = (
    "Alpha", "Beta", "Gamma", "Beta-Gamma",
    "Delta", "Beta-Delta", "Beta-Gamma-Delta", "Gamma-Delta",
)

#: The four classes of the ``paper4`` map, label order (see the module docstring).
PAPER4_CLASSES: tuple[str, ...] = ("Alpha", "Beta", "Beta-Gamma", "Beta-Gamma-Delta")

_MAPS: dict[str, tuple[str, ...]] = {"full": MT_WILSON_CLASSES, "paper4": PAPER4_CLASSES}


def class_names(name: str) -> tuple[str, ...]:
    """The class names of map ``name`` in label order (label i is ``class_names(name)[i]``)."""
    if name not in _MAPS:
        raise ConfigError(f"unknown class map {name!r} (known: {', '.join(sorted(_MAPS))})")
    return _MAPS[name]


def class_map(name: str) -> dict[str, int]:
    """The Mount Wilson classes map ``name`` keeps -> their integer labels."""
    return {cls: label for label, cls in enumerate(class_names(name))}


def label_lookup(name: str) -> np.ndarray:
    """Label under map ``name`` of each index into :data:`MT_WILSON_CLASSES` (-1: left out)."""
    mapping = class_map(name)
    return np.array([mapping.get(cls, -1) for cls in MT_WILSON_CLASSES], dtype=np.int64)


def canonical(label: str) -> str:
    """The canonical Mount Wilson spelling of ``label``; ValueError naming it if unknown."""
    letters = re.sub(r"[^A-Z]", "", label.upper())
    if letters not in MT_WILSON:
        raise ValueError(
            f"unknown Mount Wilson class {label!r} (expected one of {', '.join(MT_WILSON_CLASSES)})")
    return MT_WILSON[letters]


def encode(labels: Iterable[str], name: str) -> np.ndarray:
    """Integer labels of Mount Wilson class names under map ``name`` (-1 for a class it leaves out).

    Raises ValueError naming every unknown class at once.
    """
    labels = list(labels)
    canon = [_canonical_or_none(label) for label in labels]
    unknown = sorted({label for label, c in zip(labels, canon) if c is None})
    if unknown:
        raise ValueError(
            f"unknown Mount Wilson classes {unknown} (expected one of {', '.join(MT_WILSON_CLASSES)})")
    lookup = label_lookup(name)
    return np.array([lookup[MT_WILSON_CLASSES.index(c)] for c in canon], dtype=np.int64)


def _canonical_or_none(label: str) -> str | None:
    """The canonical spelling, None when ``label`` is no Mount Wilson class."""
    try:
        return canonical(label)
    except ValueError:
        return None

"""Mount Wilson magnetic classes and the class maps that turn them into integer labels.

Spellings are the canonical ones of the SRS reader (``Beta-Gamma-Delta``); :func:`encode`
also accepts the older abbreviations and any case or hyphenation (``bgd``, ``BETA GAMMA``).

Class maps (a region whose class a map leaves out is no sample of that map):

* ``full``: the eight Mount Wilson classes, one label each.
* ``paper4``: the four classes of de Oliveira & Gradvohl (2020), Helioviewer's α, α-γ, β and
  β-γ (223/111/408/774 images in the paper), labelled in the paper's (DIGITS' alphabetical
  folder) order A, AG, B, BG. NOAA SRS reports the eight Mount Wilson classes; they reach
  the four by their polarity layout — unipolar (α), bipolar (β), or too mixed to be called
  bipolar (γ) — with the γ complexity kept and the δ qualifier (opposite umbrae in one
  penumbra) dropped, which the four classes do not carry:

  ================  ======
  SRS class         paper4
  ================  ======
  Alpha             α
  Gamma             α-γ
  Gamma-Delta       α-γ
  Beta              β
  Beta-Delta        β
  Beta-Gamma        β-γ
  Beta-Gamma-Delta  β-γ
  Delta             (left out: a qualifier without a layout)
  ================  ======

  α-γ is no Mount Wilson class; it is read as the non-bipolar complex layout, γ. SRS reports
  γ for under 1% of regions, against 7% α-γ in the paper's Helioviewer set, so α-γ is rare
  here and its precision and recall are often undefined (NaN) on small test splits.
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
PAPER4_CLASSES: tuple[str, ...] = ("Alpha", "Alpha-Gamma", "Beta", "Beta-Gamma")

#: The ``paper4`` class of each Mount Wilson class it keeps (see the module docstring).
PAPER4_FROM_MT_WILSON: dict[str, str] = {
    "Alpha": "Alpha", "Gamma": "Alpha-Gamma", "Gamma-Delta": "Alpha-Gamma", "Beta": "Beta", "Beta-Delta": "Beta",
    "Beta-Gamma": "Beta-Gamma", "Beta-Gamma-Delta": "Beta-Gamma",
}

#: Map name -> (class names in label order, Mount Wilson class -> class name).
_MAPS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "full": (MT_WILSON_CLASSES, {c: c for c in MT_WILSON_CLASSES}),
    "paper4": (PAPER4_CLASSES, PAPER4_FROM_MT_WILSON),
}


def _map(name: str) -> tuple[tuple[str, ...], dict[str, str]]:
    if name not in _MAPS:
        raise ConfigError(f"unknown class map {name!r} (known: {', '.join(sorted(_MAPS))})")
    return _MAPS[name]


def class_names(name: str) -> tuple[str, ...]:
    """The class names of map ``name`` in label order (label i is ``class_names(name)[i]``)."""
    return _map(name)[0]


def class_map(name: str) -> dict[str, int]:
    """The Mount Wilson classes map ``name`` keeps -> their integer labels."""
    names, mapping = _map(name)
    return {mt_wilson: names.index(target) for mt_wilson, target in mapping.items()}


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

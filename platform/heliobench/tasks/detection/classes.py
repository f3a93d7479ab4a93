"""Mount Wilson magnetic classes and the class maps that turn them into integer labels.

Spellings are the canonical ones of the SRS reader (``Beta-Gamma-Delta``); :func:`encode`
also accepts the older abbreviations and any case or hyphenation (``bgd``, ``BETA GAMMA``).

Class maps:

* ``mt_wilson``: the eight Mount Wilson classes, one label each.
* ``paper4``: four labels, Alpha / Beta / Beta-Gamma / Beta-Gamma-Delta, for the four-class
  classifier of de Oliveira & Gradvohl (2020). Every class goes to the simplest of the four
  that contains all of its configuration, a ladder of growing magnetic complexity:
  Gamma (a mixed group with no clear bipole, very rare) joins Beta-Gamma, and every class
  with a delta spot (Delta, Beta-Delta, Gamma-Delta, Beta-Gamma-Delta) joins
  Beta-Gamma-Delta, the flare-productive end. *The paper's text could not be consulted
  when this map was written*: the four class names and the mapping are this reduction,
  not a quotation, and must be checked against the paper before comparing numbers.
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

#: The four classes of the ``paper4`` map, label order.
PAPER4_CLASSES: tuple[str, ...] = ("Alpha", "Beta", "Beta-Gamma", "Beta-Gamma-Delta")

_PAPER4_OF = {
    "Alpha": "Alpha",
    "Beta": "Beta",
    "Gamma": "Beta-Gamma",
    "Beta-Gamma": "Beta-Gamma",
    "Delta": "Beta-Gamma-Delta",
    "Beta-Delta": "Beta-Gamma-Delta",
    "Beta-Gamma-Delta": "Beta-Gamma-Delta",
    "Gamma-Delta": "Beta-Gamma-Delta",
}

_MAPS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "mt_wilson": (MT_WILSON_CLASSES, {name: name for name in MT_WILSON_CLASSES}),
    "paper4": (PAPER4_CLASSES, _PAPER4_OF),
}


def class_names(name: str) -> tuple[str, ...]:
    """The class names of map ``name`` in label order (label i is ``class_names(name)[i]``)."""
    return _lookup(name)[0]


def class_map(name: str) -> dict[str, int]:
    """Every Mount Wilson class -> its integer label under map ``name``."""
    names, target = _lookup(name)
    return {cls: names.index(target[cls]) for cls in MT_WILSON_CLASSES}


def canonical(label: str) -> str:
    """The canonical Mount Wilson spelling of ``label``; ValueError naming it if unknown."""
    letters = re.sub(r"[^A-Z]", "", label.upper())
    if letters not in MT_WILSON:
        raise ValueError(
            f"unknown Mount Wilson class {label!r} (expected one of {', '.join(MT_WILSON_CLASSES)})")
    return MT_WILSON[letters]


def encode(labels: Iterable[str], name: str) -> np.ndarray:
    """Integer labels of Mount Wilson class names under map ``name``.

    Raises ValueError naming every unknown class at once.
    """
    mapping = class_map(name)
    labels = list(labels)
    canon = [_canonical_or_none(label) for label in labels]
    unknown = sorted({label for label, c in zip(labels, canon) if c is None})
    if unknown:
        raise ValueError(
            f"unknown Mount Wilson classes {unknown} (expected one of {', '.join(MT_WILSON_CLASSES)})")
    return np.array([mapping[c] for c in canon], dtype=np.int64)


def _canonical_or_none(label: str) -> str | None:
    """The canonical spelling, None when ``label`` is no Mount Wilson class."""
    try:
        return canonical(label)
    except ValueError:
        return None


def _lookup(name: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The (class names, class -> target name) of map ``name``; ConfigError if unknown."""
    if name not in _MAPS:
        raise ConfigError(f"unknown class map {name!r} (known: {', '.join(sorted(_MAPS))})")
    return _MAPS[name]

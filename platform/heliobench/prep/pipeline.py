"""A pipeline: an ordered list of steps, built from a dataset card, hashed as a whole."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from heliobench.errors import ConfigError
from heliobench.prep.base import GeometricStep, PrepError, Step, canonical_json, positive_int, sha256_text
from heliobench.prep.calibrate import DegradationCorrection, ExposureNormalize
from heliobench.prep.image import PrepImage
from heliobench.prep.limb import LimbDarkeningNormalize
from heliobench.prep.register import Register
from heliobench.prep.scale import (
    ClipScale,
    ContrastNormalize,
    FillNaN,
    Log2Scale,
    PercentileScale,
    ZeroOffDisk,
)

if TYPE_CHECKING:
    import sunpy.map

#: Every step a configuration can name, by its ``name``.
STEP_TYPES: dict[str, type[Step]] = {
    step_type.name: step_type
    for step_type in (
        ExposureNormalize,
        DegradationCorrection,
        Register,
        ClipScale,
        Log2Scale,
        PercentileScale,
        ContrastNormalize,
        LimbDarkeningNormalize,
        FillNaN,
        ZeroOffDisk,
    )
}

#: AIA's level-1.5 field of view: 4096 pixels of 0.6 arcsec.
AIA_FOV_ARCSEC = 4096 * 0.6
#: Disk radius / image width in the default pipelines: a 976" Sun in AIA's field (as SDOML).
DISK_RADIUS_FRACTION = 976.0 / AIA_FOV_ARCSEC



def registered_disk_mask(size_px: int, fraction: float = 0.99) -> np.ndarray:
    """Pixels within ``fraction`` of the disk radius on a ``size_px``² grid of the default pipelines
    (centre (n − 1)/2, radius n · DISK_RADIUS_FRACTION); binning a registered image by a whole
    factor keeps this geometry."""
    centre = (size_px - 1) / 2
    yy, xx = np.ogrid[:size_px, :size_px]
    return np.hypot(xx - centre, yy - centre) < fraction * size_px * DISK_RADIUS_FRACTION


#: Keys a recorded step (``Pipeline.describe()``) carries besides its parameters.
_RECORD_KEYS = ("step", "version", "hash")


class Pipeline:
    """Steps applied in order; the same pipeline serves shard writing and ``predict``."""

    def __init__(self, steps: list[Step]):
        for step in steps:
            if not isinstance(step, Step):
                raise TypeError(f"a Pipeline takes Step instances, got {step!r}")
        self.steps: tuple[Step, ...] = tuple(steps)

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON list of the step hashes (order matters)."""
        return sha256_text(canonical_json([step.hash for step in self.steps]))

    def describe(self) -> list[dict[str, Any]]:
        """One dict per step, ``{"step", "version", **params, "hash"}``; ``from_config`` rebuilds it."""
        return [{"step": s.name, "version": s.version, **s.params, "hash": s.hash} for s in self.steps]

    def load(self, raw: bytes, uri: str) -> PrepImage:
        """Observation file ``uri`` (its bytes ``raw``) as the image :meth:`run` takes: the
        geometry from its header, instrument, channel and time as the catalog records them
        (the reader's), the pixels decoded and checked, already binned by
        :meth:`input_binning` (RICE images are averaged while they are decoded: the same
        numbers without ever holding the full-resolution image). Bad files raise
        :class:`~heliobench.errors.ReaderError` or :class:`~heliobench.prep.base.PrepError`."""
        from heliobench.archive.readers.containers import open_image
        from heliobench.archive.readers.images import decode_pixels, understand

        observation = understand(open_image(raw, uri))
        image = PrepImage.from_observation(observation)
        binning = self.input_binning(image)
        return image.with_data(decode_pixels(observation.image, binning), binning=binning)

    def input_binning(self, image: PrepImage) -> int:
        """The box size the pipeline averages ``image`` over before anything else: a first
        registration's :meth:`Register.box_size`, else 1. An image handed to :meth:`run`
        binned by it (``PrepImage.binning``) gives the same result as the full image."""
        first = self.steps[0] if self.steps else None
        return first.box_size(image) if isinstance(first, Register) else 1

    def run(
        self, source: sunpy.map.GenericMap | PrepImage, mask: np.ndarray | None = None
    ) -> tuple[PrepImage, np.ndarray | None]:
        """The preprocessed image and, if given, the label ``mask`` carried along the geometric steps."""
        image = _as_image(source)
        if image.binning != 1:
            expected = self.input_binning(image)
            if mask is not None or image.binning != expected:
                raise PrepError(f"{image.observation}: an image binned {image.binning} x {image.binning} (with "
                                f"{'a' if mask is not None else 'no'} label mask) does not fit this pipeline, which "
                                f"bins its input {expected} x {expected}")
        for step in self.steps:
            if mask is not None and isinstance(step, GeometricStep):
                mask = step.transform_label(mask, image)
            image = step.apply(image)
        return image, mask

    def apply(self, source: sunpy.map.GenericMap | PrepImage) -> np.ndarray:
        """The preprocessed pixels (float32)."""
        return self.run(source)[0].data

    def apply_label(self, mask: np.ndarray, source: sunpy.map.GenericMap | PrepImage) -> np.ndarray:
        """A label mask on ``source``'s grid, carried through the geometric steps only."""
        image = _as_image(source)
        geometric = [step for step in self.steps if isinstance(step, GeometricStep)]
        for index, step in enumerate(geometric):
            mask = step.transform_label(mask, image)
            if index + 1 < len(geometric):
                image = step.apply(image)
        return mask

    @classmethod
    def from_config(cls, items: list[dict[str, Any]], source: str) -> Pipeline:
        """Build from YAML-style dicts ``{"step": "register", "size_px": 256, ...}``.

        ``source`` names the file (and key) for error messages. ``version`` and ``hash``
        keys, as ``describe()`` writes them, are checked against the rebuilt step.
        """
        if not isinstance(items, list):
            raise ConfigError(f"{source}: expected a list of preprocessing steps, got {type(items).__name__}")
        return cls([_step_from_config(item, f"{source}: step {index}") for index, item in enumerate(items)])

    def __repr__(self) -> str:
        return f"Pipeline({list(self.steps)!r})"


def default_pipeline(instrument: str, size_px: int, channel: str | None = None) -> Pipeline:
    """The standard preprocessing of an instrument, registered to ``size_px``² with a fixed disk radius.

    AIA: register, exposure normalisation, degradation correction (aiapy's factor from the
    response table aiapy ships, see :class:`DegradationCorrection`), NaN -> 0. The pointing
    is the level-1 header's (CRPIX/CRVAL/CROTA2): no aiapy pointing table is fetched.
    Display-scaled images (Helioviewer JPEG 2000, PNG) skip both photometric steps.
    HMI line-of-sight magnetograms (``channel`` None or ``magnetogram``): register, clip
    ±3000 G -> [-1, 1] (Park et al. 2019), NaN -> 0; other HMI channels (continuum,
    Dopplergrams): register, NaN -> 0.
    KSO H-alpha: register, limb-darkening normalisation, NaN -> 0.

    Registering first means the per-image divisions (exposure, degradation) touch the
    ``size_px``² output instead of the full frame; both are divisions by one number per
    image, which commute with the box mean and bilinear interpolation of ``register`` up
    to float rounding.
    """
    radius_px = positive_int("default_pipeline", "size_px", size_px) * DISK_RADIUS_FRACTION
    register = Register(size_px, radius_px=radius_px)
    field = channel in (None, "magnetogram")
    steps = {
        "AIA": [register, ExposureNormalize(), DegradationCorrection(), FillNaN(0.0)],
        "HMI": [register, ClipScale(-3000.0, 3000.0, -1.0, 1.0), FillNaN(0.0)] if field else [register, FillNaN(0.0)],
        "KSO": [register, LimbDarkeningNormalize(5), FillNaN(0.0)],
    }
    key = instrument.upper()
    if key not in steps:
        raise ConfigError(f"no default pipeline for instrument {instrument!r}; known: {', '.join(steps)}")
    return Pipeline(steps[key])


def _as_image(source: sunpy.map.GenericMap | PrepImage) -> PrepImage:
    return source if isinstance(source, PrepImage) else PrepImage.from_map(source)


def _step_from_config(item: Any, where: str) -> Step:
    """One step from its config dict; ConfigError naming ``where``, the key and what was expected."""
    if not isinstance(item, dict) or "step" not in item:
        raise ConfigError(f"{where}: expected a mapping with a 'step' key, got {item!r}")
    name = item["step"]
    if name not in STEP_TYPES:
        raise ConfigError(f"{where}: unknown step {name!r}; known steps: {', '.join(sorted(STEP_TYPES))}")
    step_type = STEP_TYPES[name]
    parameters = inspect.signature(step_type).parameters
    kwargs = {key: value for key, value in item.items() if key not in _RECORD_KEYS}
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise ConfigError(f"{where} ({name}): unknown key(s) {unknown}; {name} accepts {list(parameters)}")
    required = [key for key, p in parameters.items() if p.default is inspect.Parameter.empty]
    missing = [key for key in required if key not in kwargs]
    if missing:
        raise ConfigError(f"{where} ({name}): missing required key(s) {missing}")
    try:
        step = step_type(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if "version" in item and item["version"] != step.version:
        raise ConfigError(
            f"{where} ({name}): version {item['version']!r} was recorded, this HelioBench implements "
            f"version {step.version}; re-run preprocessing instead of mixing versions"
        )
    if "hash" in item and item["hash"] != step.hash:
        raise ConfigError(
            f"{where} ({name}): recorded hash {item['hash']} differs from the rebuilt step's {step.hash} "
            "(did a referenced table change?)"
        )
    return step

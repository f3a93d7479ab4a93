"""``heliobench predict``: a trained model on files a user brings (FITS, JP2, PNG).

FITS and JP2 inputs, and full-disk PNG/JPEG browse images whose file name gives the
instrument, channel and time (:mod:`heliobench.archive.readers.raster`), go through the
dataset card's preprocessing pipeline for the benchmark's first input member — the very
code that made the training shards. Other PNG/JPEG inputs (cut-outs, figures) are taken
as display images already framed like the model's inputs: converted to grey in [0, 1]
and resized. The task writes its outputs (masks, boxes, translated
channels, quality maps) with :meth:`~heliobench.tasks.base.Task.predict_files`.

An input that cannot be read, validated or preprocessed gets an error record (``input``,
``stage``, ``error``) instead of outputs, and the others are predicted on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from astropy.io import fits

from heliobench.engine.evaluate import load_run_model, run_spec
from heliobench.errors import ReaderError
from heliobench.failures import DEFAULT_MAX_SHARE, StageFailure, check_share, stage
from heliobench.prep import Pipeline
from heliobench.prep.image import PrepImage
from heliobench.shards import member_pipelines
from heliobench.specs import BenchmarkSpec
from heliobench.storage import read_bytes
from heliobench.tasks import get_task
from heliobench.tasks.base import InputImage
from heliobench.tracking import runs

#: Photospheric solar radius (m) used by SDO pipelines (RSUN_REF).
RSUN_REF_M = 696_000_000.0
_RASTER = (b"\x89PNG", b"\xff\xd8\xff")


def _raster(raw: bytes, uri: str, size: int) -> np.ndarray:
    import io

    from PIL import Image

    try:
        img = Image.open(io.BytesIO(raw)).convert("L").resize((size, size), Image.BILINEAR)
    except Exception as exc:  # noqa: BLE001 - PIL reports damaged images with many types (OSError, SyntaxError...)
        raise ReaderError(uri, f"not a readable PNG/JPEG image ({type(exc).__name__}: {exc})") from None
    return np.flipud(np.asarray(img, dtype=np.float32) / 255.0)  # row 0 = south, as registered maps


def _names_observation(uri: str) -> bool:
    """Whether a PNG/JPEG's name gives instrument, channel and time (a full-disk browse image)."""
    from heliobench.archive.readers.raster import name_parts

    try:
        name_parts(uri)
    except ReaderError:
        return False
    return True


def wcs_header(image: PrepImage) -> fits.Header:
    """A FITS header with the registered image's helioprojective WCS, time and observer radius."""
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "HPLN-TAN", "HPLT-TAN"
    h["CUNIT1"], h["CUNIT2"] = "arcsec", "arcsec"
    h["CDELT1"], h["CDELT2"] = image.scale_arcsec
    h["CRPIX1"], h["CRPIX2"] = image.reference_px[0] + 1, image.reference_px[1] + 1
    h["CRVAL1"], h["CRVAL2"] = image.reference_arcsec
    (h["PC1_1"], h["PC1_2"]), (h["PC2_1"], h["PC2_2"]) = image.rotation_matrix
    h["DATE-OBS"] = image.obs_time.strftime("%Y-%m-%dT%H:%M:%S.%f")  # UTC, without an offset suffix (FITS)
    h["RSUN_OBS"] = image.rsun_arcsec
    h["RSUN_REF"] = RSUN_REF_M
    h["DSUN_OBS"] = (RSUN_REF_M / math.tan(math.radians(image.rsun_arcsec / 3600)), "from RSUN_OBS and RSUN_REF")
    h["ORIGIN"] = "HelioBench"
    h["HB_INPUT"] = (f"{image.instrument} {image.channel}", "instrument and channel of the input")
    return h


def _input_image(uri: str, pipeline: Pipeline, size_px: int) -> InputImage:
    """One input read and preprocessed; a :class:`StageFailure` naming it when it is bad."""
    with stage("read", uri):
        raw = read_bytes(uri)
    stem = Path(uri).name.split(".")[0]
    if raw.startswith(_RASTER) and not _names_observation(uri):
        with stage("decode", uri):
            return InputImage(stem, _raster(raw, uri, size_px), None)
    with stage("map", uri):
        image = pipeline.load(raw, uri)
    with stage("preprocess", uri):
        image, _ = pipeline.run(image)
    return InputImage(stem, image.data, image)


def predict_files(spec: BenchmarkSpec, run_id: str, inputs: list[str], out: str, tracking_uri: str | None = None,
                  options: dict[str, str] | None = None, max_failed: float | None = DEFAULT_MAX_SHARE) -> list[dict]:
    """Predict on every input (in the order given); returns the task's records of the files
    written, then an error record (``input``, ``stage``, ``error``) per input that failed.

    Raises :class:`~heliobench.failures.TooManyFailures` (its ``result`` the records), once
    the good inputs are predicted, when more than ``max_failed`` of the inputs failed (None: no limit).
    """
    client = runs.connect(tracking_uri)
    trained = run_spec(client, run_id, spec)
    model = load_run_model(client, run_id, trained)
    task = get_task(trained.task)
    pipeline = member_pipelines(trained.card(), trained.resolution_px)[trained.inputs[0]]
    images, errors = [], []
    for uri in inputs:
        try:
            images.append(_input_image(uri, pipeline, trained.resolution_px))
        except StageFailure as failure:
            errors.append({"input": uri, "stage": failure.stage, "error": failure.reason})
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = (task.predict_files(trained, model, images, out_dir, options or {}) if images else []) + errors
    check_share(len(errors), len(inputs), max_failed, "inputs failed", "the error records above", records)
    return records

"""``heliobench predict``: a trained model on files a user brings (FITS, JP2, PNG).

FITS and JP2 inputs go through the dataset card's preprocessing pipeline for the
benchmark's input member and the benchmark's input scaling — the very code that made
the training shards. PNG/JPEG inputs are display-scaled images already (as SCSS-Net's
training PNGs): converted to grey in [0, 1] and resized. Outputs per input: the
probability mask as PNG, a FITS mask on the registered grid with its WCS (the input's
observer and time), and an overlay figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from astropy.io import fits

from heliobench.engine.evaluate import load_run_model, run_spec
from heliobench.errors import ReaderError
from heliobench.prep.image import PrepImage
from heliobench.shards import member_pipelines
from heliobench.specs import BenchmarkSpec
from heliobench.storage import read_bytes
from heliobench.tasks import get_task
from heliobench.tracking import runs

_RASTER = (b"\x89PNG", b"\xff\xd8\xff")


def _raster(raw: bytes, uri: str, size: int) -> np.ndarray:
    import io

    from PIL import Image

    try:
        img = Image.open(io.BytesIO(raw)).convert("L").resize((size, size), Image.BILINEAR)
    except OSError as exc:
        raise ReaderError(uri, f"not a readable PNG/JPEG image ({exc})") from None
    return np.flipud(np.asarray(img, dtype=np.float32) / 255.0)  # row 0 = south, as registered maps


def _wcs_header(image: PrepImage) -> fits.Header:
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "HPLN-TAN", "HPLT-TAN"
    h["CUNIT1"], h["CUNIT2"] = "arcsec", "arcsec"
    h["CDELT1"], h["CDELT2"] = image.scale_arcsec
    h["CRPIX1"], h["CRPIX2"] = image.reference_px[0] + 1, image.reference_px[1] + 1
    h["CRVAL1"], h["CRVAL2"] = image.reference_arcsec
    (h["PC1_1"], h["PC1_2"]), (h["PC2_1"], h["PC2_2"]) = image.rotation_matrix
    h["DATE-OBS"] = image.obs_time.isoformat()
    h["RSUN_OBS"] = image.rsun_arcsec
    h["ORIGIN"] = "HelioBench"
    h["HB_INPUT"] = (f"{image.instrument} {image.channel}", "instrument and channel of the input")
    return h


def predict_files(spec: BenchmarkSpec, run_id: str, inputs: list[str], out: str, tracking_uri: str | None = None,
                  threshold: float = 0.5) -> list[dict]:
    """Predict every input; returns one record per input with the files written."""
    from heliobench.archive.readers import read_map

    client = runs.connect(tracking_uri)
    trained = run_spec(client, run_id, spec)
    model = load_run_model(client, run_id, trained)
    task = get_task(trained.task)
    card = trained.card()
    pipeline = member_pipelines(card, trained.resolution_px)[trained.inputs[0]]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for uri in inputs:
        raw = read_bytes(uri)
        stem = Path(uri).name.split(".")[0]
        header = None
        if raw.startswith(_RASTER):
            model_in = torch.from_numpy(_raster(raw, uri, trained.resolution_px)[None, None].copy())
        else:
            image, _ = pipeline.run(read_map(raw, uri))
            header = _wcs_header(image)
            model_in = task.inputs(trained, {trained.inputs[0]: image.data[None]})
        prob = task.predict(model, model_in).numpy()[0, 0]
        mask = (prob > threshold).astype(np.uint8)
        records.append(_write_outputs(out_dir, stem, model_in.numpy()[0, 0], prob, mask, header))
    return records


def _write_outputs(out_dir: Path, stem: str, image: np.ndarray, prob: np.ndarray, mask: np.ndarray, header) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    png = out_dir / f"{stem}_mask.png"
    Image.fromarray(np.flipud(mask * 255).astype(np.uint8)).save(png)
    fits_path = out_dir / f"{stem}_mask.fits"
    hdr = header.copy() if header is not None else fits.Header()
    hdr["BUNIT"] = "probability"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(prob.astype(np.float32), hdr, name="PROBABILITY"),
                  fits.ImageHDU(mask, hdr, name="MASK")]).writeto(fits_path, overwrite=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(image, origin="lower", cmap="gray")
    axes[0].set_title(f"{stem}: input")
    axes[1].imshow(image, origin="lower", cmap="gray")
    axes[1].contour(mask, levels=[0.5], colors="orange", linewidths=0.8)
    axes[1].set_title("prediction (p > 0.5)")
    for ax in axes:
        ax.axis("off")
    overlay = out_dir / f"{stem}_overlay.png"
    fig.tight_layout()
    fig.savefig(overlay, dpi=90)
    plt.close(fig)
    return {"input": stem, "mask_png": str(png), "mask_fits": str(fits_path), "overlay": str(overlay), "fraction": float(mask.mean()),
            "probabilities": prob}

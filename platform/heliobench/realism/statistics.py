"""Statistics of one full-disk image (a :class:`~heliobench.realism.disks.DiskImage`).

Intensities are taken relative to the median of the disk (``r < 0.95 R``), so that
instruments, exposures and degradation drop out; magnetograms stay in gauss. Spatial
frequencies are in cycles per solar radius, so images of any resolution line up.
"""

from __future__ import annotations

import numpy as np

from heliobench.realism.disks import DiskImage

#: On-disk pixels for histograms and medians: inside this radius (limb pixels mix disk and sky).
DISK_RSUN = 0.95
#: Radial bins of the limb profile (solar radii).
LIMB_EDGES = np.round(np.arange(0.0, 1.2501, 0.01), 4)
#: Frequency bins of the power spectrum (cycles per solar radius).
K_EDGES = np.geomspace(2.0, 1024.0, 37)
#: Half-side of the central square whose power spectrum is taken (solar radii; fully on the disk).
SPECTRUM_BOX_RSUN = 0.6


def disk_values(image: DiskImage, rmax: float = DISK_RSUN) -> np.ndarray:
    """Finite pixel values on the disk (``r < rmax``)."""
    values = image.data[image.distance_rsun() < rmax]
    return values[np.isfinite(values)].astype(np.float64)


def disk_median(image: DiskImage) -> float:
    """Median of the disk (``r < 0.95 R``)."""
    values = disk_values(image)
    if values.size == 0:
        raise ValueError(f"{image.uri}: no valid pixels on the disk")
    return float(np.median(values))


def log_intensity_ratios(image: DiskImage) -> np.ndarray:
    """log10 of on-disk intensities over the disk median (positive pixels only)."""
    values = disk_values(image)
    values = values[values > 0]
    return np.log10(values / np.median(values))


def limb_profile(image: DiskImage, edges: np.ndarray = LIMB_EDGES) -> np.ndarray:
    """Median intensity over the disk median in each ring of ``edges`` (solar radii); NaN where empty."""
    r = image.distance_rsun().ravel()
    values = image.data.ravel().astype(np.float64) / disk_median(image)
    keep = np.isfinite(values) & (r < edges[-1])
    ring = np.digitize(r[keep], edges) - 1
    profile = np.full(len(edges) - 1, np.nan)
    order = np.argsort(ring, kind="stable")
    ring, sorted_values = ring[order], values[keep][order]
    bounds = np.searchsorted(ring, np.arange(len(edges)))
    for i in range(len(edges) - 1):
        if bounds[i + 1] > bounds[i]:
            profile[i] = np.median(sorted_values[bounds[i]:bounds[i + 1]])
    return profile


def power_spectrum(image: DiskImage, relative: bool = True, edges: np.ndarray = K_EDGES) -> np.ndarray:
    """Azimuthally averaged spatial power spectrum of the central on-disk square.

    ``relative``: of ``I / median - 1`` (intensities); else of the values themselves
    (magnetograms, gauss²). Hann-windowed, normalised by the window's power, averaged in the
    frequency bins ``edges`` (cycles per solar radius); NaN above the Nyquist frequency.
    Missing pixels count as the mean.
    """
    half = int(SPECTRUM_BOX_RSUN * image.radius_px)
    cx, cy = (int(round(c)) for c in image.centre_px)
    box = image.data[cy - half:cy + half, cx - half:cx + half].astype(np.float64)
    if relative:
        box = box / disk_median(image) - 1.0
    box = np.where(np.isfinite(box), box, np.nanmean(box))
    box -= box.mean()
    n = box.shape[0]
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fft2(box * window)) ** 2 / (window**2).sum()
    freq = np.fft.fftfreq(n)
    k = np.hypot(*np.meshgrid(freq, freq, indexing="ij")) * image.radius_px  # cycles per solar radius
    nyquist = 0.5 * image.radius_px
    which = np.digitize(k.ravel(), edges) - 1
    ok = (which >= 0) & (which < len(edges) - 1) & (k.ravel() <= nyquist)
    sums = np.bincount(which[ok], power.ravel()[ok], minlength=len(edges) - 1)
    counts = np.bincount(which[ok], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def coronal_hole_fraction(image: DiskImage) -> float:
    """Share of the disk (``r < 1``) inside the image's coronal-hole mask."""
    if image.mask is None:
        raise ValueError(f"{image.uri}: no coronal-hole mask")
    on_disk = image.distance_rsun() < 1.0
    return float(image.mask[on_disk].mean())


def coronal_hole_contrast(image: DiskImage) -> float:
    """Mean coronal-hole intensity over the median of the rest of the disk (``r < 0.95 R``);
    NaN when the image has no coronal hole there."""
    if image.mask is None:
        raise ValueError(f"{image.uri}: no coronal-hole mask")
    on_disk = (image.distance_rsun() < DISK_RSUN) & np.isfinite(image.data)
    hole, quiet = image.data[on_disk & image.mask], image.data[on_disk & ~image.mask]
    if hole.size == 0 or quiet.size == 0:
        return float("nan")
    return float(hole.mean() / np.median(quiet))


def mean_curve(curves: list[np.ndarray]) -> np.ndarray:
    """The mean of curves point by point, ignoring NaN (NaN where every curve is NaN)."""
    stack = np.vstack(curves)
    counts = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)


def bin_centres(edges: np.ndarray, geometric: bool = False) -> np.ndarray:
    """Centres of bins (geometric means for log-spaced bins)."""
    return np.sqrt(edges[1:] * edges[:-1]) if geometric else 0.5 * (edges[1:] + edges[:-1])

"""Image statistics of the simulator against the real full-disk images, family by family.

Each real image is paired with the simulated image of the family's product nearest to it
in time (the report simulates each real file's own date and time, so the Sun is at the
same phase of the cycle and seen at the same B0; images from before SDO a whole number of
solar cycles later, see :func:`~heliobench.realism.simulated.partner_time`). Both go to the same physical units
(the simulated image through the real file's display curve where it has one) and to the
same resolution (the coarser disk radius of the two) before any statistic is taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heliobench.realism import figures
from heliobench.realism.disks import DiskImage
from heliobench.realism.distances import LOG_RMS, REL, W1_DEX, W1_GAUSS, log_ratio_rms, relative_error, wasserstein
from heliobench.realism.reference import FAMILIES, Family, Reference
from heliobench.realism.simulated import SimImage, SimulatedFiles, load_simulated, partner_time
from heliobench.realism.statistics import (
    K_EDGES,
    LIMB_EDGES,
    bin_centres,
    coronal_hole_contrast,
    coronal_hole_fraction,
    disk_median,
    disk_values,
    limb_profile,
    log_intensity_ratios,
    mean_curve,
    power_spectrum,
)
from heliobench.realism.table import Row

#: The limb profile's summary: I / disk median in the ring starting here (solar radii).
LIMB_SUMMARY_RSUN = 0.98
#: The power spectrum's summary: log-log slope over this band (cycles per solar radius).
SLOPE_BAND = (4.0, 64.0)


@dataclass(frozen=True)
class Pair:
    """A real image and its simulated partner, in the same units and at the same resolution."""

    real: DiskImage
    simulated: DiskImage
    gap_days: float  # between the real image's partner time and the simulated image


def nearest(images: list[SimImage], real: DiskImage) -> SimImage:
    """The simulated image nearest in time to ``real``'s partner time (:func:`partner_time`)."""
    when = partner_time(real.obs_time)
    return min(images, key=lambda i: abs((i.obs_time - when).total_seconds()))


def make_pairs(family: Family, real_images: list[DiskImage], files: SimulatedFiles,
               cache: dict[tuple[str, bool], DiskImage] | None = None) -> list[Pair]:
    """Each real image of ``family`` with its simulated partner (``cache`` keeps loaded simulated images)."""
    cache = {} if cache is None else cache
    products = files.of(*family.simulated)
    pairs = []
    for real in real_images:
        partner = nearest(products, real)
        key = (partner.uri, family.coronal_holes)
        if key not in cache:
            cache[key] = load_simulated(files, partner, with_mask=family.coronal_holes)
        simulated = cache[key]
        if family.curve is not None:
            simulated = simulated.with_values(family.curve.round_trip(simulated.data, simulated.exposure_s))
        radius = min(real.radius_px, simulated.radius_px)
        gap = abs((partner.obs_time - partner_time(real.obs_time)).total_seconds()) / 86400.0
        pairs.append(Pair(real.at_radius(radius), simulated.at_radius(radius), gap))
    return pairs


def _slope(k: np.ndarray, power: np.ndarray) -> float:
    band = (k >= SLOPE_BAND[0]) & (k <= SLOPE_BAND[1]) & np.isfinite(power) & (power > 0)
    if band.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log10(k[band]), np.log10(power[band]), 1)[0])


def _per_second(image: DiskImage) -> float:
    return disk_median(image) / (image.exposure_s or 1.0)


def _missing_rows(family: Family, real: list[DiskImage], note: str) -> list[Row]:
    """The family's rows without a simulated side (``note`` says why)."""
    specs = [("field", f"{family.title}: on-disk B_LOS distribution", W1_GAUSS)] if family.kind == "field" else [
        ("histogram", f"{family.title}: on-disk intensity histogram", W1_DEX),
        ("limb", f"{family.title}: radial limb profile", LOG_RMS)]
    specs.append(("spectrum", f"{family.title}: spatial power spectrum", LOG_RMS))
    if family.absolute:
        specs.append(("disk_median", f"{family.title}: disk median (DN/s)", REL))
    if family.coronal_holes:
        specs += [("ch_fraction", f"{family.title}: coronal-hole area fraction", REL),
                  ("ch_contrast", f"{family.title}: coronal-hole contrast", REL)]
    return [Row(f"{family.key}.{name}", statistic, "", None, None, float("nan"), metric, "", None, 0, len(real), note)
            for name, statistic, metric in specs]


def family_rows(family: Family, pairs: list[Pair], figure_dir: Path) -> list[Row]:
    """The statistics of one family's image pairs, with their figures."""
    source = f"{len(pairs)} real file(s): " + ", ".join(sorted({p.real.name for p in pairs}))
    gap = max(p.gap_days for p in pairs)
    note = family.display_note + (f"; simulated images up to {gap:.0f} days from the real files' dates" if gap > 1 else "")
    n = len(pairs)
    field = family.kind == "field"
    gallery = figures.image_pair(pairs[0].real, pairs[0].simulated, field, figure_dir / f"{family.key}.images.png")
    rows = []

    def row(name: str, statistic: str, summary: str, sim, real, distance: float, metric, figure: str, extra: str = "") -> None:
        rows.append(Row(f"{family.key}.{name}", f"{family.title}: {statistic}", summary, sim, real, distance, metric,
                        source, figure, n, n, "; ".join(filter(None, (note, extra, f"images side by side: {gallery}")))))

    if field:
        sim_b = np.concatenate([disk_values(p.simulated) for p in pairs])
        real_b = np.concatenate([disk_values(p.real) for p in pairs])
        fig = figures.histograms(sim_b, real_b, "B_LOS (G)", f"{family.title}: on-disk B_LOS", figure_dir / f"{family.key}.field.png")
        row("field", "on-disk B_LOS distribution", "99th percentile of |B_LOS| (G)", float(np.percentile(np.abs(sim_b), 99)),
            float(np.percentile(np.abs(real_b), 99)), wasserstein(sim_b, real_b), W1_GAUSS, fig)
    else:
        sim_r = np.concatenate([log_intensity_ratios(p.simulated) for p in pairs])
        real_r = np.concatenate([log_intensity_ratios(p.real) for p in pairs])
        fig = figures.histograms(sim_r, real_r, "log10(I / disk median)", f"{family.title}: on-disk intensity",
                                 figure_dir / f"{family.key}.histogram.png")
        row("histogram", "on-disk intensity histogram", "std of log10(I / disk median) (dex)", float(np.std(sim_r)),
            float(np.std(real_r)), wasserstein(sim_r, real_r), W1_DEX, fig)
        sim_l = [limb_profile(p.simulated) for p in pairs]
        real_l = [limb_profile(p.real) for p in pairs]
        r = bin_centres(LIMB_EDGES)
        at = int(np.searchsorted(LIMB_EDGES, LIMB_SUMMARY_RSUN))
        fig = figures.curves(r, sim_l, real_l, "r / R_sun", "median I / disk median", f"{family.title}: radial profile",
                             figure_dir / f"{family.key}.limb.png")
        row("limb", "radial limb profile", f"I / disk median at {LIMB_SUMMARY_RSUN}-{LIMB_EDGES[at + 1]} R",
            float(np.nanmean([c[at] for c in sim_l])), float(np.nanmean([c[at] for c in real_l])),
            log_ratio_rms(np.vstack(sim_l), np.vstack(real_l)), LOG_RMS, fig)
    k = bin_centres(K_EDGES, geometric=True)
    sim_p = [power_spectrum(p.simulated, relative=not field) for p in pairs]
    real_p = [power_spectrum(p.real, relative=not field) for p in pairs]
    unit = "G²" if field else "(δI/I)²"
    fig = figures.curves(k, sim_p, real_p, "spatial frequency (cycles per solar radius)", f"power ({unit})",
                         f"{family.title}: power spectrum of the central disk", figure_dir / f"{family.key}.spectrum.png", log_x=True)
    row("spectrum", "spatial power spectrum", f"log-log slope over {SLOPE_BAND[0]:g}-{SLOPE_BAND[1]:g} cycles/R",
        _slope(k, mean_curve(sim_p)), _slope(k, mean_curve(real_p)),
        log_ratio_rms(np.vstack(sim_p), np.vstack(real_p)), LOG_RMS, fig)
    labels = [f"{p.real.obs_time:%Y-%m-%d}" for p in pairs]
    if family.absolute:
        sim_m, real_m = [_per_second(p.simulated) for p in pairs], [_per_second(p.real) for p in pairs]
        fig = figures.paired_values(labels, sim_m, real_m, "disk median (DN/s)", f"{family.title}: disk median",
                                    figure_dir / f"{family.key}.disk_median.png")
        row("disk_median", "disk median (DN/s)", "mean over images of the disk median (DN/s)", float(np.mean(sim_m)),
            float(np.mean(real_m)), relative_error(float(np.mean(sim_m)), float(np.mean(real_m))), REL, fig,
            "level-1 counts, not corrected for degradation, on both sides")
    if family.coronal_holes:
        sim_f = [coronal_hole_fraction(p.simulated) for p in pairs]
        real_f = [coronal_hole_fraction(p.real) for p in pairs]
        fig = figures.paired_values(labels, sim_f, real_f, "share of the disk", f"{family.title}: coronal-hole area",
                                    figure_dir / f"{family.key}.ch_fraction.png")
        row("ch_fraction", "coronal-hole area fraction", "mean share of the disk in coronal holes", float(np.mean(sim_f)),
            float(np.mean(real_f)), relative_error(float(np.mean(sim_f)), float(np.mean(real_f))), REL, fig,
            "real: CHRONNOS masks; simulated: the simulator's own coronal-hole masks")
        sim_c = [coronal_hole_contrast(p.simulated) for p in pairs]
        real_c = [coronal_hole_contrast(p.real) for p in pairs]
        fig = figures.paired_values(labels, sim_c, real_c, "mean CH intensity / quiet-Sun median",
                                    f"{family.title}: coronal-hole contrast", figure_dir / f"{family.key}.ch_contrast.png")
        sim_mean, real_mean = float(np.nanmean(sim_c)), float(np.nanmean(real_c))
        row("ch_contrast", "coronal-hole contrast", "mean CH intensity / median of the rest of the disk", sim_mean, real_mean,
            relative_error(sim_mean, real_mean), REL, fig, "images without a coronal hole on the disk (r < 0.95 R) left out")
    return rows


def compare_images(reference: Reference, files: SimulatedFiles, figure_dir: Path) -> list[Row]:
    """Rows of every image family that has real files: real files against the simulated archive ``files``."""
    products = files.products()
    cache: dict = {}
    rows = []
    for family in FAMILIES:
        real_images = reference.family_images(family)
        if not real_images:
            continue
        if family.simulated not in products:
            rows += _missing_rows(family, real_images, f"the simulated archive has no {' '.join(family.simulated)} images")
        else:
            rows += family_rows(family, make_pairs(family, real_images, files, cache), figure_dir)
    return rows

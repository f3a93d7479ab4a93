"""The report's figures (matplotlib, no display needed): simulated in orange, real in blue."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from heliobench.realism.disks import DiskImage
from heliobench.realism.statistics import mean_curve

SIM, REAL = "tab:orange", "tab:blue"


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path.name


def image_pair(real: DiskImage, simulated: DiskImage, field: bool, path: Path) -> str:
    """The real and the simulated image side by side, on the same scale."""
    fig = Figure(figsize=(9, 4.6))
    for ax, image, who in zip(fig.subplots(1, 2), (real, simulated), ("real", "simulated"), strict=True):
        if field:
            shown, kwargs, label = image.data, {"cmap": "gray", "vmin": -200, "vmax": 200}, "B_LOS (G)"
        else:
            inside = image.distance_rsun() < 0.95
            median = np.nanmedian(image.data[inside])
            with np.errstate(invalid="ignore", divide="ignore"):
                shown = np.log10(np.where(image.data > 0, image.data / median, np.nan))
            kwargs, label = {"cmap": "inferno", "vmin": -1.0, "vmax": 1.0}, "log10(I / disk median)"
        im = ax.imshow(shown, origin="lower", **kwargs)
        if image.mask is not None:
            ax.contour(image.mask.astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set_title(f"{who}: {image.name}\n{image.obs_time:%Y-%m-%d %H:%M}", fontsize=8)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    return _save(fig, path)


def histograms(simulated: np.ndarray, real: np.ndarray, xlabel: str, title: str, path: Path,
               bins: int | np.ndarray = 80, log_y: bool = True, discrete: bool = False) -> str:
    """Normalised histograms of two samples."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    both = np.concatenate([simulated, real])
    if discrete:
        bins = np.arange(np.floor(both.min()) - 0.5, np.ceil(both.max()) + 1.5)
    elif np.isscalar(bins):
        lo, hi = np.percentile(both, [0.05, 99.95])
        bins = np.linspace(lo, hi, int(bins))
    ax.hist(real, bins=bins, density=True, histtype="step", color=REAL, lw=1.5, label=f"real (n={len(real):,})")
    ax.hist(simulated, bins=bins, density=True, histtype="step", color=SIM, lw=1.5, label=f"simulated (n={len(simulated):,})")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def curves(x: np.ndarray, simulated: Sequence[np.ndarray], real: Sequence[np.ndarray], xlabel: str, ylabel: str,
           title: str, path: Path, log_x: bool = False, log_y: bool = True) -> str:
    """Per-image curves (thin) and their means (thick) of both sides."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for group, colour, who in ((real, REAL, "real"), (simulated, SIM, "simulated")):
        for c in group:
            ax.plot(x, c, color=colour, lw=0.5, alpha=0.35)
        if len(group):
            ax.plot(x, mean_curve(list(group)), color=colour, lw=2, label=f"{who} (mean of {len(group)})")
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def paired_values(labels: Sequence[str], simulated: Sequence[float], real: Sequence[float], ylabel: str, title: str,
                  path: Path) -> str:
    """One value per image pair, simulated next to real."""
    fig = Figure(figsize=(max(6, 0.45 * len(labels) + 2), 4))
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x - 0.2, real, 0.4, color=REAL, label="real")
    ax.bar(x + 0.2, simulated, 0.4, color=SIM, label="simulated")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def butterfly(sim_year: np.ndarray, sim_lat: np.ndarray, real_year: np.ndarray, real_lat: np.ndarray,
              sim_means: dict[int, float], real_means: dict[int, float], title: str, path: Path) -> str:
    """Latitudes of groups over time (butterfly diagram) and the yearly mean |latitude|."""
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    left.scatter(real_year, real_lat, s=2, color=REAL, alpha=0.3, label="real")
    left.scatter(sim_year, sim_lat, s=2, color=SIM, alpha=0.5, label="simulated")
    left.set_xlabel("year")
    left.set_ylabel("latitude (deg)")
    left.legend(fontsize=8, markerscale=4)
    for means, colour, who in ((real_means, REAL, "real"), (sim_means, SIM, "simulated")):
        years = sorted(means)
        right.plot(np.array(years) + 0.5, [means[y] for y in years], "o-", color=colour, label=who)
    right.set_xlabel("year")
    right.set_ylabel("mean |latitude| (deg)")
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def joy(sim_lat: np.ndarray, sim_tilt: np.ndarray, real_lat: np.ndarray, real_tilt: np.ndarray,
        sim_slope: float, real_slope: float, title: str, path: Path) -> str:
    """Tilt against latitude: points, means in 5° bins, and the fitted Joy's-law lines."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    edges = np.arange(-40, 41, 5)
    centres = 0.5 * (edges[1:] + edges[:-1])
    x = np.array([-40.0, 40.0])
    for lat, tilt, slope, colour, who in ((real_lat, real_tilt, real_slope, REAL, "real"),
                                          (sim_lat, sim_tilt, sim_slope, SIM, "simulated")):
        ax.scatter(lat, tilt, s=3, color=colour, alpha=0.2)
        which = np.digitize(lat, edges) - 1
        means = [np.mean(tilt[which == i]) if np.sum(which == i) >= 5 else np.nan for i in range(len(centres))]
        ax.plot(centres, means, "o", color=colour, label=f"{who}: 5° bin means")
        if np.isfinite(slope):
            ax.plot(x, slope * x, "-", color=colour, label=f"{who}: tilt = {slope:.2f} × latitude")
    ax.set_ylim(-45, 45)
    ax.set_xlabel("latitude (deg)")
    ax.set_ylabel("tilt, clockwise (deg)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def class_bars(simulated: dict[str, float], real: dict[str, float], title: str, path: Path) -> str:
    """Shares of categories, simulated next to real."""
    keys = sorted(set(simulated) | set(real), key=lambda k: -real.get(k, 0.0) - simulated.get(k, 0.0))
    return paired_values(keys, [simulated.get(k, 0.0) for k in keys], [real.get(k, 0.0) for k in keys], "share", title, path)

"""Sunspot-group statistics of the simulator against the Kislovodsk table (2010-2020) and
the real NOAA SRS reports, or published values where those files are absent.

The simulated side is what the simulator writes: its SRS reports (positions, areas, spot
counts, Mount Wilson classes) and its HMI magnetograms, on which tilts are measured as
the Kislovodsk table measures them (:func:`heliobench.realism.regions.measure_tilts`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from heliobench.realism import figures, published
from heliobench.realism.distances import REL, RMS_DEG, TV, W1_DEG, W1_LOG_AREA, W1_SPOTS, relative_error, rms_difference, \
    total_variation, wasserstein
from heliobench.realism.reference import Reference
from heliobench.realism.regions import (
    MIN_AREA_MSH,
    MIN_GROUPS_PER_YEAR,
    TILT_SCHEMA,
    class_shares,
    decimal_year,
    folded_tilts,
    joy_fit,
    measure_tilts,
    sporer_drift,
    srs_groups,
    yearly_mean_abs_latitude,
)
from heliobench.realism.simulated import SimulatedFiles
from heliobench.realism.table import Row

#: The Kislovodsk table's span, used to sample the simulated cycle when the table is absent.
KISLOVODSK_SPAN = (datetime(2010, 7, 23), datetime(2020, 8, 19))
KISLOVODSK_SOURCE = "Kislovodsk sunspot groups 2010-2020 (tables/kislovodsk_sunspot_groups.csv, Illarionov & Tlatov 2022)"


def simulated_tilts(files: SimulatedFiles, groups: pl.DataFrame, span: tuple[datetime, datetime]) -> pl.DataFrame:
    """Tilts measured on every simulated HMI magnetogram within ``span`` that has an SRS report
    valid within a day of it (the groups are rotated to the magnetogram's time)."""
    frames = []
    start, end = (t.replace(tzinfo=timezone.utc) for t in span)
    report_times = groups["date"].unique().sort()
    for image in files.of("HMI", "magnetogram"):
        if not start <= image.obs_time <= end or report_times.is_empty():
            continue
        # the SRS whose positions (valid at 00:00 UT) are nearest in time, within a day
        valid = min(report_times, key=lambda t: abs((t - image.obs_time).total_seconds()))
        if abs((valid - image.obs_time).total_seconds()) <= 86400.0:
            frames.append(measure_tilts(image.uri, groups.filter(pl.col("date") == valid)))
    return pl.concat(frames) if frames else pl.DataFrame(schema=TILT_SCHEMA)


def _mt_wilson_text(shares: dict[str, float]) -> str:
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k} {v:.0%}" for k, v in top)


#: The rows this module gives: key -> (statistic, distance).
STATISTICS = {
    "groups.area": ("sunspot-group areas", W1_LOG_AREA),
    "groups.latitude": ("sunspot-group latitudes", W1_DEG),
    "groups.spots": ("spots per group (complexity)", W1_SPOTS),
    "groups.sporer": ("Spörer's law: yearly mean |latitude|", RMS_DEG),
    "groups.joy": ("Joy's law slope", REL),
    "groups.tilt": ("sunspot-group tilts", W1_DEG),
    "srs.mt_wilson": ("Mount Wilson class frequencies", TV),
}


def _missing(key: str, note: str) -> Row:
    statistic, metric = STATISTICS[key]
    return Row(key, statistic, "", None, None, float("nan"), metric, "", None, 0, 0, note)


def compare_regions(reference: Reference, files: SimulatedFiles, figure_dir: Path) -> list[Row]:
    """Rows of the sunspot-group and Mount Wilson statistics (:data:`STATISTICS`)."""
    regions = files.srs_regions()
    if regions is None:
        return [_missing(key, "the simulated archive has no SRS reports") for key in STATISTICS]
    kis = reference.kislovodsk
    span = (kis["date"].min(), kis["date"].max()) if kis is not None else KISLOVODSK_SPAN
    start, end = (t.replace(tzinfo=timezone.utc) for t in span)
    groups = srs_groups(regions)
    era = groups.filter((pl.col("date") >= start) & (pl.col("date") <= end))
    if era.is_empty():
        note = f"the simulated archive has no SRS report between {start:%Y-%m-%d} and {end:%Y-%m-%d}"
        rows = [_missing(key, note) for key in STATISTICS if key.startswith("groups.")]
    else:
        tilts = simulated_tilts(files, groups, span)
        sim_source = (f"simulated: {len(era)} region-days from {era['date'].n_unique()} SRS reports, "
                      f"tilts on {tilts['date'].n_unique()} magnetograms")
        rows = _group_rows(kis, era, tilts, figure_dir, sim_source)
    return rows + [_mt_wilson_row(reference, regions, figure_dir)]


def _row(key: str, summary: str, sim, real, distance: float, figure: str, n_sim: int, n_real: int, source: str,
         note: str = "") -> Row:
    statistic, metric = STATISTICS[key]
    return Row(key, statistic, summary, sim, real, distance, metric, source, figure, n_sim, n_real, note)


def _group_rows(kis: pl.DataFrame | None, era: pl.DataFrame, tilts: pl.DataFrame, figure_dir: Path,
                sim_source: str) -> list[Row]:
    """Areas, latitudes, spot counts, Spörer, Joy and tilts of the simulated groups ``era`` and ``tilts``."""
    rows = []
    no_table = "no Kislovodsk table under the real-data folder, and no published value used"
    if kis is not None:
        sim_area = era.filter(pl.col("area_msh") >= MIN_AREA_MSH)["area_msh"].to_numpy().astype(float)
        real_area = kis.filter(pl.col("area_msh") >= MIN_AREA_MSH)["area_msh"].to_numpy()
        fig = figures.histograms(np.log10(sim_area), np.log10(real_area), "log10(area / MSH)", "sunspot-group areas",
                                 figure_dir / "groups.area.png", bins=40, log_y=False)
        rows.append(_row("groups.area", "median area (MSH)", float(np.median(sim_area)) if sim_area.size else float("nan"),
                         float(np.median(real_area)), wasserstein(np.log10(sim_area), np.log10(real_area)), fig,
                         len(sim_area), len(real_area), KISLOVODSK_SOURCE,
                         f"groups of at least {MIN_AREA_MSH:g} MSH within 60° of the central meridian; simulated areas as "
                         f"the SRS reports them (NOAA rounds to 10 MSH); {sim_source}"))
        sim_lat, real_lat = era["latitude_deg"].abs().to_numpy(), kis["latitude_deg"].abs().to_numpy()
        fig = figures.histograms(sim_lat, real_lat, "|latitude| (deg)", "sunspot-group latitudes",
                                 figure_dir / "groups.latitude.png", bins=np.arange(0, 46, 2.5), log_y=False)
        rows.append(_row("groups.latitude", "mean |latitude| (deg)", float(np.mean(sim_lat)), float(np.mean(real_lat)),
                         wasserstein(sim_lat, real_lat), fig, len(sim_lat), len(real_lat), KISLOVODSK_SOURCE, sim_source))
        sim_spots, real_spots = era["spots"].drop_nulls().to_numpy(), kis["spots"].to_numpy()
        fig = figures.histograms(sim_spots, real_spots, "spots in the group", "spots per group",
                                 figure_dir / "groups.spots.png", discrete=True)
        rows.append(_row("groups.spots", "mean number of spots", float(np.mean(sim_spots)) if sim_spots.size else float("nan"),
                         float(np.mean(real_spots)), wasserstein(sim_spots, real_spots), fig, len(sim_spots), len(real_spots),
                         KISLOVODSK_SOURCE, "the table's own 'complexity' (a principal-component count of the group's mask) "
                         f"has no counterpart in SRS reports; the number of spots (NOAA 'NN', Kislovodsk 'nspots') stands for it; {sim_source}"))
    else:
        rows += [_missing(key, no_table) for key in ("groups.area", "groups.latitude", "groups.spots")]
    rows.append(_sporer_row(kis, era, figure_dir, sim_source))
    # Joy's law and tilts
    sim_t = tilts.filter(pl.col("spots") >= 2)
    sim_lat_t, sim_tilt = sim_t["latitude_deg"].to_numpy(), sim_t["tilt_deg"].to_numpy()
    sim_slope, sim_error = joy_fit(sim_lat_t, sim_tilt)
    if kis is not None:
        real_t = kis.filter(pl.col("spots") >= 2)
        real_lat_t, real_tilt = real_t["latitude_deg"].to_numpy(), real_t["tilt_deg"].to_numpy()
        (real_slope, real_error), source = joy_fit(real_lat_t, real_tilt), KISLOVODSK_SOURCE
    else:
        real_lat_t = real_tilt = np.array([])
        real_slope, real_error, source = published.JOY_SLOPE.value, published.JOY_SLOPE.error, published.JOY_SLOPE.citation
    fig = figures.joy(sim_lat_t, sim_tilt, real_lat_t, real_tilt, sim_slope, real_slope,
                      "Joy's law: group tilt against latitude", figure_dir / "groups.joy.png")
    tilt_note = ("groups with two or more spots; simulated tilts measured on the simulated HMI magnetograms "
                 f"(principal axis of the spot pixels, |B|/mu >= 800 G), real ones from white-light spots; {sim_source}")
    rows.append(_row("groups.joy", "tilt / latitude (least squares through 0)", sim_slope, real_slope,
                     relative_error(sim_slope, real_slope), fig, len(sim_t), len(real_tilt), source,
                     f"slopes ± standard error: simulated {sim_slope:.2f} ± {sim_error:.2f}, real {real_slope:.2f} ± "
                     f"{real_error:.2f}; {tilt_note}"))
    if kis is None:
        return rows + [_missing("groups.tilt", no_table)]
    sim_fold, real_fold = folded_tilts(sim_lat_t, sim_tilt), folded_tilts(real_lat_t, real_tilt)
    fig = figures.histograms(sim_fold, real_fold, "tilt × sign(latitude) (deg)", "sunspot-group tilts",
                             figure_dir / "groups.tilt.png", bins=np.arange(-90, 91, 7.5), log_y=False)
    rows.append(_row("groups.tilt", "std of tilt × sign(latitude) (deg)", float(np.std(sim_fold)) if sim_fold.size else float("nan"),
                     float(np.std(real_fold)), wasserstein(sim_fold, real_fold), fig, len(sim_fold), len(real_fold),
                     KISLOVODSK_SOURCE, tilt_note))
    return rows


def _sporer_row(kis: pl.DataFrame | None, era: pl.DataFrame, figure_dir: Path, sim_source: str) -> Row:
    """Spörer's law: the yearly mean |latitude| against Kislovodsk's, else Hathaway's (2011) law."""
    sim_yearly = yearly_mean_abs_latitude(era["date"], era["latitude_deg"])
    if kis is not None:
        real_yearly = yearly_mean_abs_latitude(kis["date"], kis["latitude_deg"])
        real_points = (decimal_year(kis["date"]), kis["latitude_deg"].to_numpy())
        source, n_real = KISLOVODSK_SOURCE, len(kis)
    else:
        real_yearly = {y: (float(published.sporer_latitude_deg(y + 0.5)), MIN_GROUPS_PER_YEAR) for y in sorted(sim_yearly)}
        real_points = (np.array([]), np.array([]))
        source, n_real = published.SPORER.citation, 0
    common = [y for y in sorted(set(sim_yearly) & set(real_yearly))
              if min(sim_yearly[y][1], real_yearly[y][1]) >= MIN_GROUPS_PER_YEAR]
    fig = figures.butterfly(decimal_year(era["date"]), era["latitude_deg"].to_numpy(), *real_points,
                            {y: m for y, (m, _) in sim_yearly.items()}, {y: m for y, (m, _) in real_yearly.items()},
                            "Spörer's law: latitudes over the cycle", figure_dir / "groups.sporer.png")
    return _row("groups.sporer", "drift of the mean |latitude| 2011-2018 (deg/yr)", sporer_drift(sim_yearly),
                sporer_drift(real_yearly), rms_difference([sim_yearly[y][0] for y in common], [real_yearly[y][0] for y in common]),
                fig, len(era), n_real, source,
                f"years with at least {MIN_GROUPS_PER_YEAR} groups on both sides: {', '.join(map(str, common)) or 'none'}; {sim_source}")


def _mt_wilson_row(reference: Reference, regions: pl.DataFrame, figure_dir: Path) -> Row:
    """Mount Wilson class shares against the real SRS reports, on the same days where the archive has them."""
    if reference.srs is None:
        return _missing("srs.mt_wilson", "no real SRS reports under the real-data folder")
    real_regions = reference.srs.filter(pl.col("section") == "I")
    if real_regions["mag_type"].drop_nulls().is_empty():
        return _missing("srs.mt_wilson", "the real SRS reports list no region with a Mount Wilson class")
    days = sorted(set(real_regions["issued"].dt.date().to_list()))
    spotted = regions.filter(pl.col("section") == "I")
    same = spotted.filter(pl.col("issued").dt.date().is_in(days))
    sim_regions = same if not same.is_empty() else spotted
    sim_shares, real_shares = class_shares(sim_regions["mag_type"]), class_shares(real_regions["mag_type"])
    fig = figures.class_bars(sim_shares, real_shares, "Mount Wilson classes", figure_dir / "srs.mt_wilson.png")
    return _row("srs.mt_wilson", "three commonest classes", _mt_wilson_text(sim_shares), _mt_wilson_text(real_shares),
                total_variation(sim_shares, real_shares), fig, sim_regions["mag_type"].drop_nulls().len(),
                real_regions["mag_type"].drop_nulls().len(),
                f"{reference.srs['issued'].n_unique()} real NOAA SRS reports ({days[0]} .. {days[-1]})",
                "simulated SRS of the same days" if not same.is_empty() else "simulated SRS of all days (none on the real days)")

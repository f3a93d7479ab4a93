"""HelioBench performance suite (``make bench``): every benchmark once, one table of ratios
measured in this run, written to ``work/bench/results.json``.

    .venv/bin/python benchmarks/perf/run_all.py [--tiny] [--only ingest,catalog_scale] [--workdir DIR] [--out FILE] [--markdown FILE]

Simulated archives, synthetic catalogs and the MLflow store are built on the first run and
cached under ``work/bench/`` (about 9 GB with the 10M-row catalog); later runs reuse them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

BENCHMARKS = ("ingest", "training_input", "catalog_scale", "leaderboard_scale", "gpu_readiness")

LEGEND = """\
ratio: throughputs (files/s, samples/s) value / baseline = speed-up; leaderboard baseline / value = speed-up;
time per file and time vs linear extrapolation value / baseline = growth (<= 1.2 counts as linear);
memory peak / input table; decode ceiling value / ceiling = share of the ceiling;
GPU readiness FLOP floor / measured step = share of the device's matmul peak (1 = at the floor).
met: yes/no against the target; n/a where the row has no target (context or CPU stand-in)."""


def _key(d: dict, k: int):
    """``d[k]`` whether the dict came through JSON (string keys) or not."""
    return d[k] if k in d else d[str(k)]


def notes_for(details: dict) -> list[str]:
    """Short notes drawn from the raw measurements (what limits the rows that miss)."""
    notes = []
    ing = details.get("ingest", {}).get("configs", {})
    for key, c in sorted(ing.items()):
        for name in ("big", "small"):
            part = c.get(name, {})
            act = part.get("shards_activity")
            if act and part.get("shards_s"):
                busy = act["execute_s"] / (part["shards_s"] * c["ray_cpus"])
                cpu = ""
                if part.get("shards_cpu_s") is not None:
                    cpu = (f"; CPU time of the driver and all Ray processes per file: cataloguing "
                           f"{1000 * part['header_cpu_s'] / part['files_catalogued']:.0f} ms, shards "
                           f"{1000 * part['shards_cpu_s'] / part['files_decoded']:.0f} ms")
                notes.append(f"ingest {name} archive, {c.get('nodes', 1)} node(s), Ray CPUs {c['ray_cpus']}: write_shards "
                             f"{part['shards_s']:.1f} s for {part['files_decoded']} files ({part['samples']} samples in "
                             f"{part['shards_written']} shards, runs {', '.join(f'{t:.1f}' for t in part['shards_all_s'])} s); "
                             f"Ray workers busy {100 * busy:.0f} % of wall x CPUs, {act['deserialize_s']:.1f} s unpickling arguments{cpu}")
    seq = details.get("ingest", {}).get("baselines", {})
    for name, b in seq.items():
        s = b["sequential"]
        one = _key(b["decode"], 1)
        reader = f", HelioBench reader (bytes + header + decode) {1000 * one['reader_seconds'] / one['files']:.0f} ms"
        notes.append(f"ingest {name} archive, sequential loop per file: sunpy.map.Map {1000 * s['map_s'] / s['files']:.0f} ms, "
                     f"preprocessing {1000 * s['prep_s'] / s['files']:.0f} ms, np.save {1000 * s['save_s'] / s['files']:.0f} ms; "
                     f"astropy decode alone {1000 * one['seconds'] / one['files']:.0f} ms{reader}")
        prof = b.get("profile")
        if prof:
            parts = ", ".join(f"{k} {100 * v / prof['seconds']:.0f} %" for k, v in
                              sorted(prof["parts_s"].items(), key=lambda kv: -kv[1]))
            within = ", ".join(f"{k} {100 * v / prof['seconds']:.0f} %" for k, v in prof.get("details_s", {}).items())
            notes.append(f"ingest {name} archive, cProfile of one sample as write_shards prepares it "
                         f"({prof['files']} files, {prof['seconds']:.2f} s): {parts}" + (f" ({within})" if within else ""))
    cat = details.get("catalog_scale", {}).get("results", {})
    if cat:
        last = cat[max(cat, key=int)]
        notes.append(f"catalog_scale: largest size {last['rows']:,} rows; load_catalog {last['load_s']:.2f} s (opens the "
                     f"table, reads it lazily); whole table in memory {last['table_estimated_bytes'] / 1e9:.2f} GB (polars "
                     f"estimate); RSS after load {(last['input_rss_bytes'] or 0) / 1e9:.2f} GB, peak over load + pair + "
                     f"splits {(last['peak_rss_bytes'] or 0) / 1e9:.2f} GB, child process peak incl. the profiled run "
                     f"{last['process_maxrss_bytes'] / 1e9:.2f} GB")
        if all("cpu_s" in r for r in cat.values()):
            notes.append("catalog_scale: CPU seconds of pair + splits per million rows (all threads; growth with size "
                         "that load from other processes does not blur): "
                         + ", ".join(f"{_key(cat, n)['rows'] / 1e6:.0f}M {_key(cat, n)['cpu_s'] / (_key(cat, n)['rows'] / 1e6):.2f} s"
                                     for n in sorted(int(k) for k in cat)))
        if last.get("profile_top"):
            notes.append("catalog_scale profile (cProfile, cumulative time of each call made from heliobench/catalog):")
            notes += [f"    {line.strip()}" for line in last["profile_top"][:6]]
    lb = details.get("leaderboard_scale")
    if lb:
        st = lb["store"]
        how = (f"{st['api_runs']:,} through the MLflow API, {st['bulk_runs']:,} written in bulk"
               if "api_runs" in st else "through the MLflow API")
        notes.append(f"leaderboard_scale: naive baseline over {lb['naive_basis']}; store of {st['runs']:,} runs "
                     f"created in {st['create_s']:.0f} s ({how})")
    ti = details.get("training_input")
    if ti:
        rd = ti["ray_data"]
        notes.append(f"training_input: Ray Data epochs of {rd['epoch_samples']} samples (hard-linked copies of the shard "
                     f"files) took {', '.join(f'{t:.1f}' for t in rd['epoch_s'])} s (fastest counts); DataLoader epochs "
                     f"{', '.join(f'{t:.1f}' for t in ti['dataloader_small']['epoch_s'])} s (1024²), "
                     f"{', '.join(f'{t:.1f}' for t in ti['dataloader_big']['epoch_s'])} s (4096²)")
    gpu = details.get("gpu_readiness")
    if gpu and gpu.get("device") != "cuda":
        notes.append("gpu_readiness: no GPU on this machine; the script ran on the CPU at small sizes (see each row). "
                     "On a GPU it uses the reference sizes and the same table rows.")
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (a functional check, seconds)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--workdir", default=None, help="cache and scratch folder (default work/bench)")
    parser.add_argument("--out", default=None, help="JSON results file (default <workdir>/results.json)")
    parser.add_argument("--markdown", default=None, help="also write the table as markdown to this file")
    args = parser.parse_args()
    size = "tiny" if args.tiny else "full"
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    root = common.workdir(args.workdir)
    out_path = Path(args.out) if args.out else root / "results.json"
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    before = common.machine()
    print(f"HelioBench performance suite ({size}) on {before['cores']} cores, {before['cpu_model']}, "
          f"{before['memory_gib']} GiB, GPU: {before['gpu'] or 'none'}; load average {before['load_average'][0]:.2f}", flush=True)
    if before["load_average"][0] > 0.5 * before["cores"]:
        print(f"WARNING: load average {before['load_average'][0]:.1f} on {before['cores']} cores: other processes compete "
              "for the CPUs, so parallel speed-ups will read low", flush=True)
    rows, details, seconds, failures = [], {}, {}, {}
    for name in chosen:
        waited = common.settle()
        print(f"[{time.perf_counter() - t0:6.0f} s] {name} ... (waited {waited:.0f} s for idle CPUs)", flush=True)
        b0 = time.perf_counter()
        try:
            out = importlib.import_module(name).run(size=size, workdir=root)
            rows += out["rows"]
            details[name] = out["details"]
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            rows.append(common.row(f"{name}: FAILED ({type(exc).__name__})", None, "-", target="runs", ok=False))
        seconds[name] = time.perf_counter() - b0
        print(f"[{time.perf_counter() - t0:6.0f} s] {name} done in {seconds[name]:.0f} s", flush=True)
    total = time.perf_counter() - t0
    after = common.machine()
    try:
        notes = notes_for(details)
    except Exception as exc:  # noqa: BLE001 - a note must never cost the measurements
        traceback.print_exc()
        notes = [f"(notes failed: {type(exc).__name__}: {exc})"]
    print()
    print(f"Machine: {before['cores']} cores, CPU {before['cpu_model']}, {before['memory_gib']} GiB RAM, "
          f"GPU {before['gpu'] or 'none'}; load average {before['load_average'][0]:.2f} before, "
          f"{after['load_average'][0]:.2f} after; python {before['python']}, ray {before['versions']['ray']}, "
          f"torch {before['versions']['torch']}, polars {before['versions']['polars']}")
    print(f"Run: {size}, {started:%Y-%m-%d %H:%M} UTC, {total / 60:.1f} min including cache builds "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())})")
    print()
    print(common.format_table(rows))
    print()
    print(LEGEND)
    if notes:
        print()
        print("Notes:")
        for note in notes:
            print(f"  {note}")
    met = [r["met"] for r in rows]
    print()
    print(f"targets met: {met.count('yes')} of {met.count('yes') + met.count('no')}")
    result = {
        "suite": "heliobench-perf", "size": size, "started": started.isoformat(), "seconds": total,
        "seconds_per_benchmark": seconds, "machine": before, "load_average_after": after["load_average"],
        "rows": rows, "legend": LEGEND, "notes": notes, "failures": failures, "details": details,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1, default=str))
    if args.markdown:
        Path(args.markdown).write_text(common.format_markdown(rows) + "\n")
    print(f"results written to {out_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

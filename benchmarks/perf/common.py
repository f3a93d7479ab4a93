"""Shared pieces of the performance suite: result rows, the work folder, the cached
simulated archives, and running one configuration in a fresh subprocess.

Every benchmark module exposes ``run(size="full"|"tiny", workdir=None, isolate=True)``
returning ``{"rows": [...], "details": {...}}``. ``isolate=True`` runs each configuration
(for example Ray with ``num_cpus=1`` and then ``num_cpus=2``) in its own Python process
so that ``ray.init`` can change; ``isolate=False`` runs it in the calling process and
joins whatever Ray session is there (the smoke test's shared session).

Run a benchmark module on its own: ``.venv/bin/python benchmarks/perf/ingest.py [--tiny]``.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
REPO = HERE.parents[1]
#: Default cache and scratch folder (``work/`` is not committed).
WORK = REPO / "work" / "bench"

#: Where subprocess logs go (set by :func:`workdir`).
LOG_DIR = WORK / "logs"

ROW_KEYS = ("measure", "value", "unit", "baseline", "ratio", "target", "met")

_CHILD_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "1",
    "PYTHONUNBUFFERED": "1",
    "TQDM_DISABLE": "1",
}
os.environ.update({k: v for k, v in _CHILD_ENV.items() if k not in os.environ})


# --- result rows -----------------------------------------------------------------------


def row(
    measure: str,
    value: float | None,
    unit: str,
    baseline: float | None = None,
    ratio: float | None = None,
    target: str | None = None,
    ok: bool | None = None,
) -> dict[str, Any]:
    """One line of the table; ``ok`` None means the row has no target here (``met`` n/a)."""
    return {
        "measure": measure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target or "-",
        "met": "n/a" if ok is None else ("yes" if ok else "no"),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(v: Any) -> str:
    """A number in a few significant digits, or the text as is."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2e}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain fixed-width text table of ``rows`` (columns ROW_KEYS)."""
    cells = [[fmt(r[k]) for k in ROW_KEYS] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) if cells else len(k) for i, k in enumerate(ROW_KEYS)]
    right = {"value", "baseline", "ratio"}
    lines = ["  ".join(k.ljust(w) for k, w in zip(ROW_KEYS, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append("  ".join(v.rjust(w) if k in right else v.ljust(w) for k, v, w in zip(ROW_KEYS, c, widths)))
    return "\n".join(lines)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as markdown (value with its unit), as the README shows it."""
    lines = ["| measure | value | baseline | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        value = "-" if r["value"] is None else f"{fmt(r['value'])} {r['unit']}"
        lines.append(f"| {r['measure']} | {value} | {fmt(r['baseline'])} | {fmt(r['ratio'])} | {r['target']} | {r['met']} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load and library versions of this machine."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    versions = {}
    for name in ("ray", "torch", "polars", "pyarrow", "astropy", "sunpy", "mlflow", "numpy"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - a missing library is just not reported
            versions[name] = None
    return {
        "cores": cores,
        "cpu_model": model,
        "memory_gib": mem_gib,
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": _gpu_name(),
        "versions": versions,
    }


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        return None


# --- folders and caches -----------------------------------------------------------------


def workdir(path: str | Path | None) -> Path:
    """The benchmark work folder (created)."""
    global LOG_DIR
    p = Path(path) if path is not None else WORK
    p.mkdir(parents=True, exist_ok=True)
    LOG_DIR = p / "logs"
    return p


def fresh(path: Path) -> Path:
    """An empty folder at ``path`` (whatever was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def cached(folder: Path, params: dict, build: Callable[[Path], Any], log: Callable[[str], None] = print) -> Path:
    """``folder`` built once by ``build(folder)`` for ``params``; rebuilt when params differ.

    A ``.done.json`` marker holding ``params`` says the folder is complete.
    """
    marker = folder / ".done.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return folder
        except json.JSONDecodeError:
            pass
    log(f"  building {folder} (cached for later runs) ...")
    t0 = time.perf_counter()
    fresh(folder)
    build(folder)
    marker.write_text(json.dumps(params))
    log(f"  built {folder.name} in {time.perf_counter() - t0:.0f} s")
    return folder


#: Simulated archives per benchmark size. ``big``: AIA and HMI at 4096² (RICE tile-compressed,
#: as JSOC exports them), 4 time steps over 2 UTC days so that the simulation runs as 2 Ray
#: tasks in parallel; ``small``: 1024², 16 days at 12 h (32 steps) for the 1x/4x/16x scaling
#: (1 day = 24 image files). H-alpha is not benchmarked here, so it is simulated tiny.
ARCHIVES = {
    "full": {
        "big": {"start": "2017-07-01T00:00:00", "end": "2017-07-03T00:00:00", "cadence": "12h", "size": 4096, "days": 2},
        "small": {"start": "2017-07-01T00:00:00", "end": "2017-07-17T00:00:00", "cadence": "12h", "size": 1024, "days": 16},
    },
    "tiny": {
        # one 2-step archive serves as both (the smoke test checks the plumbing, not speed)
        "big": {"start": "2017-07-01T00:00:00", "end": "2017-07-03T00:00:00", "cadence": "1d", "size": 32, "days": 2},
        "small": {"start": "2017-07-01T00:00:00", "end": "2017-07-03T00:00:00", "cadence": "1d", "size": 32, "days": 2},
    },
}
SIM_SEED = 11
HALPHA_SIZE = 32


def _simulate(archives: dict[str, dict], root: Path) -> dict[str, str]:
    """Simulate (or reuse) every archive of ``archives`` under ``root``; returns their folders."""
    from heliobench.archive.sim import simulate_archive

    out = {}
    for name, a in archives.items():
        params = {k: a[k] for k in ("start", "end", "cadence", "size")} | {"seed": SIM_SEED, "halpha": HALPHA_SIZE}

        def build(folder: Path, a=a) -> None:
            simulate_archive(str(folder), a["start"], a["end"], a["cadence"], size=a["size"], seed=SIM_SEED,
                             progress=False, halpha_size=HALPHA_SIZE)

        out[name] = str(cached(root / f"archive-{a['size']}", params, build))
    return out


def archives(size: str, root: Path, isolate: bool) -> dict[str, str]:
    """The cached simulated archives of benchmark ``size`` (simulated on first use)."""
    spec = ARCHIVES[size]
    if all(_archive_ready(root, a) for a in spec.values()) or not isolate:
        if not isolate:
            from heliobench.raysession import ensure_ray

            ensure_ray()
        return _simulate(spec, root)
    return call(isolate, "common", "_simulate_child", {"size": size, "root": str(root)}, cpus=None)["result"]


def _archive_ready(root: Path, a: dict) -> bool:
    marker = root / f"archive-{a['size']}" / ".done.json"
    if not marker.is_file():
        return False
    params = {k: a[k] for k in ("start", "end", "cadence", "size")} | {"seed": SIM_SEED, "halpha": HALPHA_SIZE}
    return json.loads(marker.read_text()) == params


def _simulate_child(size: str, root: str) -> dict[str, str]:
    from heliobench.raysession import ensure_ray

    ensure_ray(num_cpus=os.cpu_count())
    return _simulate(ARCHIVES[size], Path(root))


def day_folders(archive: str | Path, days: int) -> list[str]:
    """Sources holding the first ``days`` UTC days of an archive's AIA, HMI and mask files."""
    root = Path(archive)
    found: list[str] = []
    for family in ("aia", "hmi", "labels/masks/ch", "labels/masks/ar"):
        base = root / family
        leaves = sorted(p for p in base.glob("*/*/*") if p.is_dir())
        found += [str(p) for p in leaves[:days]]
    return found


# --- subprocesses -----------------------------------------------------------------------


def call(isolate: bool, module: str, func: str, kwargs: dict, cpus: int | None = None,
         timeout_s: float = 1800, log_dir: Path | None = None) -> dict[str, Any]:
    """Run ``module.func(**kwargs)`` in a fresh process (``isolate``) or here.

    Returns ``{"result": ..., "maxrss_bytes": ..., "seconds": ...}``; in a subprocess the peak
    RSS is the child's own (``os.wait4`` rusage), here it is this process's peak so far.
    ``cpus`` is passed as ``num_cpus`` when the function starts Ray (the function's concern).
    """
    t0 = time.perf_counter()
    if not isolate:
        import resource

        fn = getattr(importlib.import_module(module), func)
        result = fn(**kwargs)
        return {"result": result, "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "seconds": time.perf_counter() - t0}
    with tempfile.TemporaryDirectory(prefix="hb-perf-") as tmp:
        args_path, out_path = Path(tmp) / "args.json", Path(tmp) / "out.json"
        args_path.write_text(json.dumps({"module": module, "func": func, "kwargs": kwargs}))
        log = log_dir or LOG_DIR
        log.mkdir(parents=True, exist_ok=True)
        log_path = log / f"{module}.{func}.{int(time.time() * 1000)}.log"
        env = os.environ | _CHILD_ENV
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen([sys.executable, str(HERE / "common.py"), "--child", str(args_path), str(out_path)],
                                    stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
            timer = threading.Timer(timeout_s, proc.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out_path.is_file():
            tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])
            raise RuntimeError(f"{module}.{func} failed in a subprocess (exit {proc.returncode}); log {log_path}:\n{tail}")
        result = json.loads(out_path.read_text())
    return {"result": result, "maxrss_bytes": usage.ru_maxrss * 1024, "seconds": time.perf_counter() - t0}


def _child_main(args_path: str, out_path: str) -> None:
    sys.path.insert(0, str(HERE))
    spec = json.loads(Path(args_path).read_text())
    fn = getattr(importlib.import_module(spec["module"]), spec["func"])
    try:
        result = fn(**spec["kwargs"])
    finally:
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()
    Path(out_path).write_text(json.dumps(result, default=str))


def settle(max_s: float = 60.0, busy_below: float = 0.1, window_s: float = 1.0) -> float:
    """Wait until the CPUs are idle (busy less than ``busy_below`` of a ``window_s`` window,
    from ``/proc/stat``) or ``max_s`` passed; the seconds waited (0 off Linux).

    What a finished benchmark leaves running (Ray's GCS, raylet and dashboard take seconds to
    shut down after its child process) must not share the CPUs with the next one's timings.
    """
    def cpu_times() -> list[int] | None:
        try:
            return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        before = cpu_times()
        if before is None:
            return 0.0
        time.sleep(window_s)
        delta = [b - a for a, b in zip(before, cpu_times() or before)]
        idle = delta[3] + (delta[4] if len(delta) > 4 else 0)  # idle + iowait
        if sum(delta) and 1 - idle / sum(delta) < busy_below:
            break
    return time.perf_counter() - t0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def start_ray(cpus: int | None, isolate: bool, address: str | None = None) -> int:
    """Start Ray with ``cpus`` CPUs in a fresh process, join the cluster at ``address``, or
    (not ``isolate``) join the session here; returns the CPUs Ray has."""
    import ray

    from heliobench.raysession import ensure_ray

    ensure_ray(address=address, num_cpus=cpus if isolate and not address else None)
    return int(ray.cluster_resources().get("CPU", 0))


#: Object store of each simulated node (the default, 30 % of the memory per node, would
#: promise several times the machine's memory to 4 nodes).
NODE_OBJECT_STORE_BYTES = 512 * 2**20


def start_cluster(nodes: int, cpus: int):
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` nodes of ``cpus`` CPUs on 127.0.0.1 (the
    caller joins it at ``.address`` and calls ``.shutdown()``)."""
    from ray.cluster_utils import Cluster

    node = {"num_cpus": cpus, "node_ip_address": "127.0.0.1", "object_store_memory": NODE_OBJECT_STORE_BYTES}
    cluster = Cluster(initialize_head=True, head_node_args=node | {"include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    return cluster


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and all its descendants
    (Ray's raylets, object stores and workers it started), from ``/proc``; 0 off Linux."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[pid] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += children.get(pid, [])
    return total


def quiet_ray_data() -> None:
    """No progress bars from Ray Data (they cost time and clutter logs)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def main_for(module_run: Callable[..., dict]) -> None:
    """``python benchmarks/perf/<module>.py [--tiny] [--workdir DIR]``: run one benchmark and print its rows."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (seconds), as the smoke test")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    out = module_run(size="tiny" if args.tiny else "full", workdir=args.workdir)
    print(format_table(out["rows"]))
    print(json.dumps(out["details"], indent=1, default=str))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: common.py --child ARGS.json OUT.json (internal)")

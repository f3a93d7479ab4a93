"""GPU readiness: training-step time of each reference model against the floor set by its
FLOP count and the device's measured matmul throughput.

For every model: one training step (forward, a loss, backward, Adam step) at the model's
reference input size on a GPU; the FLOPs of forward + backward are counted with
``torch.utils.flop_counter.FlopCounterMode``; the device's throughput is the best of
several float32 ``n x n`` matmuls; floor = FLOPs / throughput; ratio = floor / measured
step (the share of matmul peak the step reaches, 1 = at the floor).

Without a GPU (this machine) the same script runs on the CPU at small sizes and every row
says so ("CPU, at 64² instead of 256²").

Reference models and sizes (GPU): ScssNet (segmentation) 256², pix2pix U-Net generator
(translation, Park et al. 2019) 1024², quality generator (Jarolim et al. 2020) 128², GOTURN
regressor (tracking) 128² crops, DetectNet (detection) 1024².
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import common
from common import row

#: name: (GPU size, CPU size, batch on GPU, batch on CPU)
MODELS = {
    "segmentation ScssNet": (256, 64, 8, 2),
    "translation pix2pix generator": (1024, 64, 1, 1),
    "quality generator": (128, 32, 8, 2),
    "tracking GOTURN regressor": (128, 64, 32, 4),
    "detection DetectNet": (1024, 64, 4, 1),
}
SIZES = {
    "full": {"steps": 5, "matmul_n": {"cuda": 8192, "cpu": 2048}, "tiny_scale": 1},
    "tiny": {"steps": 1, "matmul_n": {"cuda": 1024, "cpu": 256}, "tiny_scale": 2},
}


def build(name: str, size: int, narrow: bool = False):
    """The model (published widths; ``narrow`` shrinks them for the smoke test) and a function
    making one batch of inputs (a tuple) for ``size``² images."""
    import torch

    if name.startswith("segmentation"):
        from heliobench.tasks.segmentation.model import ScssNet

        model = ScssNet(in_channels=1, out_channels=1, base_filters=4 if narrow else 32, depth=4)
        return model, lambda b: (torch.rand(b, 1, size, size),)
    if name.startswith("translation"):
        from heliobench.tasks.translation.model import UNetGenerator

        model = UNetGenerator(1, 1, image_size=size, base_features=8 if narrow else 64, max_features=32 if narrow else 512)
        return model, lambda b: (torch.rand(b, 1, size, size) * 2 - 1,)
    if name.startswith("quality"):
        from heliobench.tasks.quality.model import Generator, QualityModelConfig

        config = QualityModelConfig(base_filters=8, res_blocks=1) if narrow else QualityModelConfig()
        return Generator(config), lambda b: (torch.rand(b, 1, size, size) * 2 - 1,)
    if name.startswith("tracking"):
        from heliobench.tasks.tracking.model import GoturnRegressor

        model = GoturnRegressor(in_channels=1, crop_size=size, hidden=32 if narrow else 512)
        return model, lambda b: (torch.rand(b, 1, size, size), torch.rand(b, 1, size, size))
    if name.startswith("detection"):
        from heliobench.specs import load_benchmark
        from heliobench.tasks.detection.model import DetectNet

        grid = {k: load_benchmark("ar_detection").model.params[k] for k in ("stride", "upsample")}  # the paper's
        return DetectNet(in_channels=1, width=0.25 if narrow else 1.0, **grid), lambda b: (torch.rand(b, 1, size, size),)
    raise KeyError(name)


def _loss(out):
    """A scalar touching every output (tensors or named tuples of tensors)."""
    if isinstance(out, tuple):
        return sum(o.float().mean() for o in out)
    return out.float().mean()


def matmul_flops_per_s(device: str, n: int, repeats: int = 5) -> float:
    """Best float32 matmul throughput (FLOP/s) of ``n x n`` by ``n x n`` on ``device``."""
    import torch

    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        (a @ b).sum().item()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure_child(size: str) -> dict[str, Any]:
    """Step time, FLOPs and floor of every model on the best device here."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cfg = SIZES[size]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    peak = matmul_flops_per_s(device, cfg["matmul_n"][device])
    out: dict[str, Any] = {"device": device, "device_name": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                           "threads": torch.get_num_threads(), "matmul_flops_per_s": peak, "models": {}}
    for name, (gpu_px, cpu_px, gpu_b, cpu_b) in MODELS.items():
        px, batch = (gpu_px, gpu_b) if device == "cuda" else (cpu_px, cpu_b)
        if cfg["tiny_scale"] > 1:
            px, batch = max(32, px // cfg["tiny_scale"]), 1
        torch.manual_seed(0)
        model, make = build(name, px, narrow=cfg["tiny_scale"] > 1)
        model = model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        inputs = tuple(t.to(device) for t in make(batch))

        def step():
            opt.zero_grad(set_to_none=True)
            _loss(model(*inputs)).backward()
            opt.step()

        with FlopCounterMode(display=False) as counter:
            opt.zero_grad(set_to_none=True)
            _loss(model(*inputs)).backward()
        flops = counter.get_total_flops()
        step()  # warm-up
        _sync(device)
        times = []
        for _ in range(cfg["steps"]):
            t0 = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - t0)
        measured = min(times)
        out["models"][name] = {"size_px": px, "reference_px": gpu_px, "batch": batch, "flops": flops,
                               "step_s": measured, "floor_s": flops / peak,
                               "parameters": sum(p.numel() for p in model.parameters())}
    return out


def run(size: str = "full", workdir: str | Path | None = None, isolate: bool = True) -> dict[str, Any]:
    """GPU-readiness benchmark: rows for the table and the raw measurements."""
    common.workdir(workdir)
    res = common.call(isolate, "gpu_readiness", "measure_child", {"size": size})["result"]
    device = res["device"]
    rows = [row(f"gpu readiness [{device}{'' if device == 'cuda' else ', no GPU here'}]: float32 matmul throughput",
                res["matmul_flops_per_s"] / 1e9, "GFLOP/s")]
    for name, m in res["models"].items():
        where = (f"GPU, {m['size_px']}²" if device == "cuda"
                 else f"CPU, at {m['size_px']}² instead of {m['reference_px']}²")
        if size == "tiny":
            where += ", narrow widths"
        rows.append(row(f"gpu readiness [{where}, batch {m['batch']}]: {name} train step (vs FLOP floor)",
                        1000 * m["step_s"], "ms", 1000 * m["floor_s"], m["floor_s"] / m["step_s"]))
    return {"rows": rows, "details": res}


if __name__ == "__main__":
    common.main_for(run)

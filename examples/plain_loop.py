"""Train a model of your own in a plain PyTorch loop on a HelioBench benchmark, then submit it.

The Python API gives the benchmark's splits, the reference task's transforms and its
evaluator; the loop, the model and the optimiser are yours. The test split's targets are
never handed out: the script writes the test predictions, which ``heliobench submit`` scores.
After ``make demo`` (128-pixel shards in ./work)::

    python examples/plain_loop.py --shards work/shards/sdo_sim-park2019-128 --set resolution_px=128 --out preds.npz
    heliobench submit ch_segmentation --shards work/shards/sdo_sim-park2019-128 --set resolution_px=128 \\
        --predictions preds.npz --name small-unet-plain-loop
    heliobench leaderboard ch_segmentation    # the row says "submission", by you
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import heliobench

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_unet import SmallUNet  # noqa: E402 - the model of the other example, next to this file


def train(bench: heliobench.Benchmark, epochs: int, batch_size: int, lr: float, width: int, seed: int = 0) -> SmallUNet:
    """A plain loop: batches from the API, the task's transforms, your model, loss and optimiser."""
    torch.manual_seed(seed)
    model = SmallUNet(len(bench.spec.inputs), len(bench.spec.targets), width=width)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    primary = bench.spec.primary_metric
    for epoch in range(epochs):
        model.train()
        losses = []
        for batch in bench.dataloader("train", batch_size=batch_size, seed=seed + epoch):
            x, y = bench.inputs(batch), bench.targets(batch)
            loss = F.binary_cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val = bench.evaluator("val", n_boot=200).score(model)
        print(f"epoch {epoch + 1}/{epochs}: train loss {sum(losses) / len(losses):.4f}, val {primary} {val[primary]:.3f} "
              f"[{val[f'{primary}_ci_low']:.3f}, {val[f'{primary}_ci_high']:.3f}]")
    return model


def main(argv: list[str] | None = None) -> Path:
    """Train, then write the test predictions as a ``heliobench submit`` file; returns its path."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="ch_segmentation", help="a segmentation benchmark (default ch_segmentation)")
    p.add_argument("--dataset", help="dataset card (default: the benchmark's own)")
    p.add_argument("--shards", help="shard folder (default: the workspace's, as `heliobench shard` writes them)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="spec overrides, e.g. resolution_px=128")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=8, help="SmallUNet filters (default 8)")
    p.add_argument("--out", default="preds.npz", help="the submission file to write (default preds.npz)")
    a = p.parse_args(argv)
    bench = heliobench.load_benchmark(a.benchmark, dataset=a.dataset, shards=a.shards, overrides=a.set)
    print(f"{bench}: {len(bench.dataset('train'))} train, {len(bench.dataset('val'))} val samples, "
          f"manifest {bench.manifest_hash[:12]}")
    model = train(bench, a.epochs, a.batch_size, a.lr, a.width)
    out = bench.write_submission(model, a.out)
    options = (f" --dataset {a.dataset}" if a.dataset else "") + "".join(f" --set {item}" for item in a.set)
    print(f"test predictions: {out}\nsubmit them: heliobench submit {a.benchmark}{options} --shards {bench.shards} "
          f"--predictions {out} --name NAME")
    return out


if __name__ == "__main__":
    main()

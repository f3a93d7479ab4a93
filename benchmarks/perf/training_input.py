"""Training input: samples/s that the Ray Data pipeline delivers from the shards, against a
plain torch DataLoader (2 workers) that opens the FITS files of every sample and
preprocesses them.

Samples are those of the ``ch_segmentation`` benchmark: AIA 193 Å input and the CH mask
target at 256². The shards are written once (cached) from the 1024² simulated archive.

* Ray Data, as ``engine/train.py`` feeds Ray Train:
  ``heliobench.engine.data.read_parquet_files(shard files, columns)`` then
  ``iter_batches(batch_size=8, batch_format="numpy", local_shuffle_buffer_size=32)`` every
  epoch, batches turned into torch tensors; Ray with ``num_cpus=2``, one warm-up epoch, then
  ``epochs`` timed epochs (the fastest counts, on both sides: the machine may be shared). An
  epoch reads ``repeat`` hard-linked copies of the shard files, so that it has a realistic
  ~1000 samples rather than the 32 simulated ones (per-epoch start-up would otherwise dominate).
* DataLoader: a map-style dataset whose ``__getitem__`` runs ``sunpy.map.Map(file)`` and the
  default pipeline on the AIA file and the mask file (as ``heliobench.shards`` would),
  ``num_workers=2``, ``persistent_workers=True``, shuffle, one warm-up epoch; on the same
  1024² files (listed twice: 64 samples an epoch) and on the 4096² files of the big archive.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import common
from common import row

SIZES = {
    "full": {"days": 16, "size_px": 256, "batch_size": 8, "epochs": 3, "repeat": 32, "dl_epochs": 2, "small_copies": 2,
             "big_copies": 4, "big_epochs": 2},
    "tiny": {"days": 2, "size_px": 16, "batch_size": 2, "epochs": 1, "repeat": 1, "dl_epochs": 1, "small_copies": 1,
             "big_copies": 1, "big_epochs": 1},
}
MEMBERS = ("aia_193", "ch_mask")
TARGET = 5.0


def setup_child(archive: str, folder: str, size: str, isolate: bool = True) -> dict[str, Any]:
    """Shards of the ch_segmentation members from ``archive`` (cached in ``folder``)."""
    import json

    import ingest

    cfg = SIZES[size]
    import os
    import shutil

    params = {"archive": archive, "days": cfg["days"], "size_px": cfg["size_px"], "members": list(MEMBERS),
              "repeat": cfg["repeat"]}

    def build(path: Path) -> None:
        common.start_ray(None, isolate)
        common.quiet_ray_data()
        out = ingest.pipeline(common.day_folders(archive, cfg["days"]), path, cfg["size_px"], members=MEMBERS,
                              samples_per_shard=32)
        index = json.loads((path / "shards" / "index.json").read_text())
        shards = [s["uri"] for s in index["shards"] if s["split"] == "train"]
        epoch = path / "epoch"
        epoch.mkdir()
        files = []
        for r in range(cfg["repeat"]):  # an epoch of `repeat` copies (hard links) of the shard set
            for i, uri in enumerate(shards):
                dest = epoch / f"copy{r:03d}-shard-{i:05d}.parquet"
                try:
                    os.link(uri, dest)
                except OSError:
                    shutil.copyfile(uri, dest)
                files.append(str(dest))
        (path / "samples.json").write_text(json.dumps({"keys": out["keys"], "uris": out["uris"], "shards": files,
                                                       "epoch_samples": out["samples"] * cfg["repeat"]}))

    common.cached(Path(folder), params, build)
    return json.loads((Path(folder) / "samples.json").read_text())


def ray_data_child(shards: list[str], epoch_samples: int, size: str, isolate: bool = True) -> dict[str, Any]:
    """Samples/s of the training reader → iter_batches (Ray with 2 CPUs), after one warm-up epoch."""
    import torch

    from heliobench.engine.data import read_parquet_files

    cfg = SIZES[size]
    cpus = common.start_ray(2, isolate)
    common.quiet_ray_data()

    def epoch(seed: int) -> int:
        ds = read_parquet_files(shards, ["sample_id", *MEMBERS])
        n = 0
        for batch in ds.iter_batches(batch_size=cfg["batch_size"], batch_format="numpy",
                                     local_shuffle_buffer_size=4 * cfg["batch_size"], local_shuffle_seed=seed):
            x = torch.as_tensor(batch["aia_193"]).unsqueeze(1)
            y = torch.as_tensor(batch["ch_mask"]).float().unsqueeze(1)
            assert y.shape[0] == x.shape[0]
            n += int(x.shape[0])
        if n != epoch_samples:
            raise RuntimeError(f"an epoch gave {n} samples, expected {epoch_samples}")
        return n

    epoch(0)
    times = []
    for e in range(cfg["epochs"]):
        seconds, n = common.timed(lambda: epoch(e + 1))
        times.append(seconds)
    return {"samples": n, "seconds": min(times), "epoch_s": times, "epochs": cfg["epochs"], "epoch_samples": n,
            "ray_cpus": cpus}


class FitsSamples:
    """Map-style dataset: every item opens and preprocesses the FITS files of one sample."""

    def __init__(self, samples: list[list[str]], size_px: int):
        self.samples, self.size_px = samples, size_px
        self._pipe = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        import numpy as np
        import sunpy.map
        import torch

        from heliobench.prep import default_pipeline

        if self._pipe is None:
            self._pipe = default_pipeline("AIA", self.size_px)
        image_uri, mask_uri = self.samples[i]
        x = self._pipe.apply(sunpy.map.Map(image_uri))
        mask_map = sunpy.map.Map(mask_uri)
        y = (self._pipe.apply_label(np.asarray(mask_map.data), mask_map) > 0).astype(np.uint8)
        return torch.from_numpy(x).unsqueeze(0), torch.from_numpy(y).unsqueeze(0)


def dataloader_child(samples: list[list[str]], size: str, workers: int = 2, epochs: int | None = None) -> dict[str, Any]:
    """Samples/s of a torch DataLoader (``workers`` processes) reading FITS per sample."""
    from torch.utils.data import DataLoader

    cfg = SIZES[size]
    loader = DataLoader(FitsSamples(samples, cfg["size_px"]), batch_size=cfg["batch_size"], shuffle=True,
                        num_workers=workers, persistent_workers=True)
    for _ in loader:  # warm-up epoch: worker start-up and imports
        pass
    times = []
    for _ in range(epochs or cfg["dl_epochs"]):
        t0 = time.perf_counter()
        n = 0
        for x, _y in loader:
            n += int(x.shape[0])
        times.append(time.perf_counter() - t0)
    return {"samples": n, "seconds": min(times), "epoch_s": times, "workers": workers}


def _big_samples(archive: str, copies: int) -> list[list[str]]:
    """(AIA 193, CH mask) pairs of the 4096² archive, in time order, listed ``copies`` times."""
    root = Path(archive)
    images = sorted(str(p) for p in root.glob("aia/*/*/*/*.193.image_lev1.fits"))
    masks = sorted(str(p) for p in root.glob("labels/masks/ch/*/*/*/*.fits"))
    if len(images) != len(masks) or not images:
        raise RuntimeError(f"{archive}: {len(images)} AIA 193 files but {len(masks)} CH masks")
    return [list(p) for p in zip(images, masks)] * copies


def run(size: str = "full", workdir: str | Path | None = None, isolate: bool = True) -> dict[str, Any]:
    """Training-input benchmark: rows for the table and the raw measurements."""
    cfg = SIZES[size]
    root = common.workdir(workdir)
    archives = common.archives(size, root, isolate)
    folder = root / f"train-shards-{common.ARCHIVES[size]['small']['size']}"
    setup = common.call(isolate, "training_input", "setup_child",
                        {"archive": archives["small"], "folder": str(folder), "size": size, "isolate": isolate})["result"]
    ray_data = common.call(isolate, "training_input", "ray_data_child",
                           {"shards": setup["shards"], "epoch_samples": setup["epoch_samples"], "size": size,
                            "isolate": isolate})["result"]
    small = common.call(isolate, "training_input", "dataloader_child",
                        {"samples": setup["uris"] * cfg["small_copies"], "size": size})["result"]
    big = common.call(isolate, "training_input", "dataloader_child",
                      {"samples": _big_samples(archives["big"], cfg["big_copies"]), "size": size,
                       "epochs": cfg["big_epochs"]})["result"]
    rate = ray_data["samples"] / ray_data["seconds"]
    rows = []
    for name, dl in ((common.ARCHIVES[size]["small"]["size"], small), (common.ARCHIVES[size]["big"]["size"], big)):
        base = dl["samples"] / dl["seconds"]
        rows.append(row(f"training input {cfg['size_px']}²: Ray Data from shards vs DataLoader(2 workers) on {name}² FITS",
                        rate, "samples/s", base, rate / base, f"ratio >= {TARGET}", rate / base >= TARGET))
    return {"rows": rows, "details": {"ray_data": ray_data, "dataloader_small": small, "dataloader_big": big,
                                      "shard_files_per_epoch": len(setup["shards"]), "size": size}}


if __name__ == "__main__":
    common.main_for(run)

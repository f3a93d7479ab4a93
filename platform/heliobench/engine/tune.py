"""``heliobench tune``: Ray Tune over the same epoch loop, every trial an MLflow child run.

The driver creates one parent run for the search; each trial opens (or, after a resume,
reopens) a child run tagged with the parent's id and its trial id. A trial stopped by
ASHA never runs code after its last report, so a Tune callback on the driver closes
child runs and attaches the trial's final model. An interrupted search resumes with
``Tuner.restore``; metric logging is idempotent by step, so replayed epochs are not
logged twice.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Param

from heliobench.engine.checkpoints import kept_weights_folder, load_weights, save_model
from heliobench.engine.data import check_compatible, iter_batches, read_index, read_shards, split_uris
from heliobench.engine.loop import LoopContext, fit
from heliobench import logfile
from heliobench.errors import HelioBenchError
from heliobench.models import build_model, plugin_tags
from heliobench.raysession import ensure_ray
from heliobench.storage import arrow_storage
from heliobench.specs import BenchmarkSpec, SearchSpace
from heliobench.tracking import runs


@dataclass
class TuneSummary:
    """A finished search."""

    parent_run_id: str
    name: str
    trials: int
    best_config: dict
    best_metric: float
    metric: str
    seconds: float
    first_metric: float  # the first trial's (what the search started from)


def flat_overrides(overrides: dict) -> dict:
    """A trial's overrides with groups expanded: a key naming no spec field (no dot and not
    ``inputs``/``targets``, e.g. ``channels``) holds a mapping of several overrides, so that one
    grid dimension can set several keys together (``{inputs: [aia_131], targets: [aia_94]}``)."""
    flat = {}
    for key, value in overrides.items():
        if isinstance(value, dict) and "." not in key and key not in ("inputs", "targets"):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def trial_spec(config: dict) -> BenchmarkSpec:
    """The benchmark spec of one trial: the base spec with the trial's overrides."""
    base = BenchmarkSpec.model_validate_json(config["spec"])
    return base.with_overrides([*_override_items(config["overrides"]), f"training.epochs={config['max_epochs']}"])


def _override_items(overrides: dict) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in sorted(flat_overrides(overrides).items())]


def member_specs(spec: BenchmarkSpec, space: SearchSpace) -> list[BenchmarkSpec]:
    """The specs a search can reach that differ in members: one per combination of the grid
    and choice dimensions that set ``inputs``/``targets`` (directly or in a group), else ``spec``.
    The shards must hold the members of every one of them."""
    def sets_members(key: str, values: list) -> bool:
        return key in ("inputs", "targets") or any(isinstance(v, dict) and {"inputs", "targets"} & set(v) for v in values)

    dims = {k: d.values for k, d in space.space.items() if d.type in ("grid", "choice") and sets_members(k, d.values)}
    return [spec.with_overrides(_override_items(dict(zip(dims, combo)))) for combo in itertools.product(*dims.values())]


class TuneTrialContext(LoopContext):
    """Loop context inside a Ray Tune trial (one process; shards read directly)."""

    def __init__(self, spec: BenchmarkSpec, shards: str, client, run_id: str):
        index = read_index(shards)
        check_compatible(index, spec, shards)
        cols = ["sample_id", *spec.inputs, *spec.targets]
        self._train = read_shards(split_uris(index, "train"), cols)
        self._val = read_shards(split_uris(index, "val"), cols)
        self._client, self._run_id = client, run_id

    def train_batches(self, epoch, batch_size, seed):
        return iter_batches(self._train, batch_size, seed)

    def val_batches(self, batch_size):
        return iter_batches(self._val, batch_size)

    def latest_checkpoint(self):
        import ray.tune

        return ray.tune.get_checkpoint()

    def report(self, metrics, checkpoint_dir):
        import ray.tune

        ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint.from_directory(str(checkpoint_dir)))

    def log_epoch(self, metrics, step):
        runs.log_metrics_once(self._client, self._run_id, metrics, step)


def _child_run(client, config: dict, spec: BenchmarkSpec, trial_id: str) -> str:
    # The parent's experiment and user: on a server with accounts the trial logs with the
    # cluster's account, whose own experiment is not the user's (runs.experiment_name).
    parent = client.get_run(config["parent_run_id"])
    exp = parent.info.experiment_id
    found = client.search_runs([exp], f"tags.`heliobench.trial_id` = '{trial_id}' and tags.`mlflow.parentRunId` = '{config['parent_run_id']}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(exp, run_name=f"{config['name']}-{trial_id}", tags={
        "mlflow.parentRunId": config["parent_run_id"], runs.TAG_BENCHMARK: spec.name, runs.TAG_KIND: "trial", "mlflow.user": parent.data.tags.get("mlflow.user", runs.user()),
        "heliobench.trial_id": trial_id, "heliobench.model": spec.model.name, "heliobench.git_commit": config["git_commit"],
        "heliobench.manifest_hash": config["manifest_hash"], "heliobench.preprocessing_hash": config["preprocessing_hash"],
        **config["plugin_tags"],
    })
    params = [Param(k, json.dumps(v)) for k, v in sorted(config["overrides"].items())]
    client.log_batch(run.info.run_id, params=params)
    return run.info.run_id


def tune_trial(config: dict) -> None:
    """Ray Tune trainable: one trial of the search."""
    import ray.tune

    spec = trial_spec(config)
    client = runs.MlflowClient(config["tracking_uri"])
    run_id = _child_run(client, config, spec, ray.tune.get_context().get_trial_id())
    fit({"spec": spec.model_dump(mode="json"), "run_id": run_id}, TuneTrialContext(spec, config["shards"], client, run_id))


def _domains(space: SearchSpace) -> dict:
    from ray import tune

    makers = {
        "choice": lambda d: tune.choice(d.values),
        "grid": lambda d: tune.grid_search(d.values),
        "uniform": lambda d: tune.uniform(d.low, d.high),
        "loguniform": lambda d: tune.loguniform(d.low, d.high),
        "randint": lambda d: tune.randint(int(d.low), int(d.high)),
    }
    return {key: makers[d.type](d) for key, d in space.space.items()}


def _close_runs_callback(tracking_uri: str):
    from ray import tune

    class CloseChildRuns(tune.Callback):
        """Finish each trial's child run on the driver and attach its final model."""

        def _close(self, trial, status: str) -> None:
            client = runs.MlflowClient(tracking_uri)
            found = client.search_runs(
                [client.get_run(trial.config["parent_run_id"]).info.experiment_id],
                f"tags.`heliobench.trial_id` = '{trial.trial_id}' and tags.`mlflow.parentRunId` = '{trial.config['parent_run_id']}'",
                max_results=1,
            )
            if not found:
                return
            run_id = found[0].info.run_id
            if trial.checkpoint is not None and status == "FINISHED":
                spec = trial_spec(trial.config)
                model = build_model(spec)
                with trial.checkpoint.as_directory() as folder, tempfile.TemporaryDirectory() as tmp:
                    load_weights(model, kept_weights_folder(Path(folder), spec.training.keep))
                    save_model(model, spec.model_dump(mode="json"), Path(tmp) / "model")
                    runs.log_model_folder(client, run_id, Path(tmp) / "model")
            client.set_terminated(run_id, status)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._close(trial, "FINISHED")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._close(trial, "FAILED")

    return CloseChildRuns()


def _trial_bar(total: int):
    """A progress bar of finished trials (a Tune callback)."""
    from ray import tune
    from tqdm import tqdm

    class TrialBar(tune.Callback):
        bar = None  # made when the search starts: the Tuner pickles its callbacks before

        def setup(self, **info):
            self.bar = tqdm(total=total, unit="trial", desc="tune")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.bar.update(1)

        def on_trial_error(self, iteration, trials, trial, **info):
            self.bar.update(1)

        def on_experiment_end(self, trials, **info):
            self.bar.close()

    return TrialBar()


def tune_benchmark(
    spec: BenchmarkSpec,
    space: SearchSpace,
    shards: str,
    num_samples: int | None = None,
    scheduler: str = "asha",
    resume: bool = False,
    tracking_uri: str | None = None,
    storage: str | None = None,
    name: str | None = None,
    use_gpu: bool = False,
    progress: bool = False,
) -> TuneSummary:
    """Run (or resume) a hyperparameter search of ``spec`` over ``space``.

    ``progress``: a bar of finished trials (Tune's status tables go to the log file while
    the command is quiet, :mod:`heliobench.logfile`). Local shard folders are made absolute:
    trials run in folders of their own.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    t0 = time.perf_counter()
    if space.benchmark != spec.name:
        raise HelioBenchError(f"search space is for benchmark {space.benchmark}, not {spec.name}")
    if "://" not in shards:
        shards = str(Path(shards).resolve())
    client = runs.connect(tracking_uri)
    exp = runs.experiment_id(client, spec.name)
    name = name or f"tune-{spec.name}"
    storage_uri = storage or str(runs.workspace() / "ray_results")
    storage_fs, storage_path = arrow_storage(storage_uri)
    path = f"{storage_path.rstrip('/')}/{name}"
    metric = space.metric or f"val_{spec.primary_metric}"
    mode = "max" if spec.direction == "maximize" else "min"
    ensure_ray()
    index = read_index(shards)
    for reachable in member_specs(spec, space):
        check_compatible(index, reachable, shards)
    parents = client.search_runs([exp], f"tags.`heliobench.tune_name` = '{name}' and tags.`heliobench.kind` = 'tune'", max_results=1)
    if resume:
        if not parents or not tune.Tuner.can_restore(path, storage_filesystem=storage_fs):
            raise HelioBenchError(f"--resume: no interrupted search named {name!r} under {storage_path}")
        parent_id = parents[0].info.run_id
        client.update_run(parent_id, status="RUNNING")
    else:
        if parents and tune.Tuner.can_restore(path, storage_filesystem=storage_fs):
            raise HelioBenchError(f"a search named {name!r} exists; use --resume to continue it or --name for a new one")
        parent = client.create_run(exp, run_name=name, tags={
            runs.TAG_BENCHMARK: spec.name, runs.TAG_KIND: "tune", "heliobench.tune_name": name, "mlflow.user": runs.user(),
            "heliobench.git_commit": runs.git_commit(), "heliobench.manifest_hash": index["manifest_hash"],
            "heliobench.model": spec.model.name, **plugin_tags(spec),
        })
        parent_id = parent.info.run_id
        client.log_batch(parent_id, params=[
            Param("space", json.dumps(space.model_dump(mode="json")["space"])[:6000]),
            Param("scheduler", scheduler),
            Param("num_samples", str(num_samples or space.num_samples)),
        ])
    param_space = {
        "overrides": _domains(space), "spec": spec.model_dump_json(), "parent_run_id": parent_id,
        "tracking_uri": client.tracking_uri, "shards": shards, "max_epochs": space.max_epochs, "name": name,
        "git_commit": runs.git_commit(), "manifest_hash": index["manifest_hash"], "preprocessing_hash": index["preprocessing_hash"],
        "plugin_tags": plugin_tags(spec),
    }
    trainable = tune.with_resources(tune_trial, {"cpu": 1, "gpu": 1 if use_gpu else 0})
    callbacks = [_close_runs_callback(client.tracking_uri)]
    if progress:
        grid = math.prod(len(d.values) for d in space.space.values() if d.type == "grid")
        callbacks.append(_trial_bar(grid * (num_samples or space.num_samples)))
    if resume:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True, param_space=param_space, storage_filesystem=storage_fs)
    else:
        sched = (ASHAScheduler(max_t=space.max_epochs, grace_period=space.grace_period, reduction_factor=space.reduction_factor)
                 if scheduler == "asha" else FIFOScheduler())
        # Configurations drawn from the spec's seed: the same search samples the same trials.
        sampler = BasicVariantGenerator(random_state=spec.training.seed)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(metric=metric, mode=mode, scheduler=sched, search_alg=sampler,
                                        num_samples=num_samples or space.num_samples),
            run_config=tune.RunConfig(name=name, storage_path=storage_path, storage_filesystem=storage_fs, callbacks=callbacks),
        )
    with logfile.captured_prints():
        results = tuner.fit()
    best = results.get_best_result(metric=metric, mode=mode)
    if best is None or best.metrics is None:
        client.set_terminated(parent_id, "FAILED")
        raise HelioBenchError(f"search {name}: no trial reported {metric}")
    best_overrides = best.config["overrides"]
    first = min((r for r in results if r.metrics and metric in r.metrics), key=lambda r: r.metrics["trial_id"])
    client.log_batch(parent_id, params=[Param("best_config", json.dumps(best_overrides))])
    runs.log_metrics_once(client, parent_id, {f"best_{metric}": best.metrics[metric], f"first_{metric}": first.metrics[metric],
                                              "trials": len(results)}, step=0)
    client.set_terminated(parent_id, "FINISHED")
    return TuneSummary(parent_id, name, len(results), best_overrides, float(best.metrics[metric]), metric,
                       time.perf_counter() - t0, float(first.metrics[metric]))

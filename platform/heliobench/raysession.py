"""One place that starts or joins Ray, kept on loopback."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: Ray 2.60 rewrites 127.0.0.1 to the primary interface unless this is set before init.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

#: Credentials Ray Tune copies from the driver's environment into every trial's runtime
#: environment, which Ray's runtime-env agent then writes to its log in plain text.
_CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"})


def keep_credentials_out_of_ray() -> None:
    """Stop Ray Tune from shipping the driver's S3 credentials to trials in their runtime env.

    Ray logs runtime environments (``runtime_env_agent.log``), credentials included. Trials,
    like every other Ray worker here, take credentials from their node's environment: the
    lab environment on a cluster, the driver's own on a local Ray started by this process.
    """
    import sys

    if "ray.tune" not in sys.modules:
        return
    import ray.tune.execution.class_cache as class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = frozenset(class_cache.ENV_VARS_TO_PROPAGATE) - _CREDENTIALS


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``; ``auto`` finds a local one), else
    start a local one on 127.0.0.1.

    Does nothing when Ray is already initialised in this process. Without an address the
    local instance is always a new one: a bare ``ray.init()`` would join whichever cluster
    was started last on this machine (``/tmp/ray/ray_current_cluster``), which on a shared
    machine may be somebody else's. While the command is quiet (:mod:`heliobench.logfile`),
    Ray's log lines and its workers' output go to the log file.
    """
    import ray

    from heliobench import logfile

    keep_credentials_out_of_ray()
    if ray.is_initialized():
        return
    import ray.data  # noqa: F401 - configures its logger on import, so it is routed after

    logfile.route("ray", "ray.data")
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict = {"log_to_driver": True, "include_dashboard": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", **kwargs)
    logfile.route_worker_output()


@contextmanager
def one_map_job(progress: bool) -> Iterator[None]:
    """Ray Data settings for a job of one map over items the driver holds (ingest's reads,
    shard writing), with progress bars when ``progress``; the previous settings come back after.

    Ray Data 2.60 learns the cluster's CPUs from its autoscaling coordinator actor by an
    asynchronous call refreshed once a second, so each execution sees zero CPUs for its
    first second, and its per-operator reservation then admits one task at a time: a
    job of a few seconds ran mostly on one CPU (cataloguing the bench's 48 4096² files on 2
    CPUs took 1.73 s, 0.91 s with the reservation off). The reservation shares resources
    between the operators of a longer pipeline; a single map has none to share, so it is
    switched off here.
    """
    import ray.data

    context = ray.data.DataContext.get_current()
    before = context.enable_progress_bars, context.op_resource_reservation_enabled
    context.enable_progress_bars, context.op_resource_reservation_enabled = progress, False
    try:
        yield
    finally:
        context.enable_progress_bars, context.op_resource_reservation_enabled = before


#: ``len(sys.modules)`` when :func:`freeze_imported_objects` last froze (0: never).
_modules_frozen = 0


def freeze_imported_objects() -> None:
    """Keep the objects of the modules imported so far out of full garbage collections.

    A Ray worker that has run an ingest or shard task holds about 466,000 objects (sunpy,
    astropy, torch, pyarrow, Ray). Every full collection walked them all: 0.19 s added to
    about one in eight of the bench's shard runs on the 2-core development machine, in both
    workers at the same moment since they run the same code. ``gc.freeze`` moves them to
    the permanent generation, where collections no longer look; objects made later are
    collected as before, and reference counting still frees frozen ones. Collects first and
    freezes only when modules were imported since the last call, so a worker pays it after
    its first task of each kind and never again.
    """
    global _modules_frozen
    if len(sys.modules) == _modules_frozen:
        return
    gc.collect()
    gc.freeze()
    _modules_frozen = len(sys.modules)

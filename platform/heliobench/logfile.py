"""Quiet by default: Ray's and MLflow's own log lines go to the workspace log file.

The ``heliobench`` command calls :func:`quiet` before a verb runs (unless ``--verbose``).
From then on Python warnings, the records of the ``ray``, ``ray.data``, ``mlflow`` and
``alembic`` loggers (Ray's start-up lines, Ray Data's progress logs, MLflow's database
set-up) and the output of every Ray worker (Ray Train and Tune workers, Ray Data tasks,
their warnings) are written to ``WORKSPACE/logs/heliobench.log`` instead of the terminal,
which keeps the progress bars (not MLflow's per-download ones) and HelioBench's own
lines; errors of those loggers still reach the terminal too. Libraries configure their
loggers when imported, so the places that start them route them:
:func:`heliobench.raysession.ensure_ray` (``ray``, ``ray.data`` and the worker output) and
:func:`heliobench.tracking.runs.connect` (``mlflow``, ``alembic``); Ray Tune prints its
status tables, which :func:`captured_prints` sends to the file. Until :func:`quiet` is
called (library use), nothing changes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

_WORKER_HANDLER = "ray_print_logs"
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _LogFile(logging.FileHandler):
    """The log file, created (with its folder) at the first line written, each command headed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)
        self.header = ""
        self.setFormatter(_FORMAT)
        self.setLevel(logging.INFO)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        stream = super()._open()
        stream.write(self.header)
        self.header = ""
        return stream

    def begin(self, command: str) -> None:
        """Head the lines of a new command (written with its first line)."""
        header = f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: heliobench {command}\n"
        self.acquire()
        try:
            if self.stream is None:
                self.header = header
            else:
                self.stream.write(header)
        finally:
            self.release()

    def write_lines(self, text: str) -> None:
        """Write lines as they are (Ray's forwarded output)."""
        self.acquire()
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(text)
            self.stream.flush()
        finally:
            self.release()


_handler: _LogFile | None = None
_routed: set[str] = set()


def log_path() -> Path | None:
    """The log file while quiet, else None."""
    return Path(_handler.baseFilename) if _handler is not None else None


def quiet(path: Path | str, command: str = "") -> Path:
    """From now on, send third-party log records and Ray worker output to ``path`` (appended;
    created at its first line)."""
    global _handler
    path = Path(path).resolve()
    if _handler is None or Path(_handler.baseFilename) != path:
        old, _handler = _handler, _LogFile(path)
        if old is not None:  # another workspace in the same process: the routed loggers follow
            for name in _routed:
                logging.getLogger(name).removeHandler(old)
            old.close()
            route(*_routed)
    _handler.begin(command)
    logging.captureWarnings(True)
    route("py.warnings")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per model download
    return path


def route(*names: str) -> None:
    """Records of these loggers to the log file, and only their errors to the terminal (while quiet)."""
    for name in names:
        _route(logging.getLogger(name))
        if _handler is not None:
            _routed.add(name)


def _route(logger: logging.Logger) -> None:
    if _handler is None:
        return
    terminal = [h for h in logger.handlers if _is_terminal(h)]
    for h in terminal:
        h.setLevel(logging.ERROR)
    if not terminal:
        fallback = logging.StreamHandler()
        fallback.setLevel(logging.ERROR)
        logger.addHandler(fallback)
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
    logger.propagate = False


def _is_terminal(handler: logging.Handler) -> bool:
    """A handler writing to the standard streams (Ray's PlainRayHandler is a StreamHandler too);
    not a file, nor a handler the root logger also has (the application's own, e.g. pytest's
    capture, which must keep its level)."""
    return (isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            and handler not in logging.getLogger().handlers)


class _PrintsToLog(io.TextIOBase):
    def write(self, text: str) -> int:
        if _handler is not None:
            _handler.write_lines(text)
        return len(text)


@contextlib.contextmanager
def captured_prints() -> Iterator[None]:
    """While quiet, what is printed to standard output in the block (Ray Tune's status tables)
    goes to the log file; progress bars (standard error) stay on the terminal."""
    if _handler is None:
        yield
        return
    with contextlib.redirect_stdout(_PrintsToLog()):
        yield


def route_worker_output() -> None:
    """After ``ray.init``: the lines Ray forwards from its workers and its raylet to the file
    (no-op unless quiet).

    Ray prints worker output through a handler of its ``global_worker_stdstream_dispatcher``
    (its mechanism for forwarding worker output, also used by Ray Client), which is swapped
    here, and the raylet's warnings (worker start-up, memory) through ``print_to_stdstream``
    of ``ray._private.worker``, which is replaced by the same writer.
    """
    if _handler is None:
        return
    import ray._private.worker as ray_worker
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    dispatcher.remove_handler(_WORKER_HANDLER)  # Ray's printer of worker output on the terminal
    dispatcher.add_handler(_WORKER_HANDLER, _write_worker_lines)
    ray_worker.print_to_stdstream = _write_worker_lines
    _handler.setFormatter(_FORMAT)  # ray.init gives its format to every handler of the "ray" logger


def _write_worker_lines(data: dict, ignore_prefix: bool = False) -> None:
    """Write forwarded lines (``{"lines", "pid", "actor_name", ...}``) with their origin."""
    if _handler is not None:
        prefix = f"({data.get('actor_name') or data.get('task_name') or 'worker'} pid={data.get('pid')}) "
        _handler.write_lines("".join(f"{prefix}{line}\n" for line in data.get("lines", [])))

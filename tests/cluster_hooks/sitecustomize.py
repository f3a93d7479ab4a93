"""Test instrumentation for the Ray nodes of ``tests/cluster_run.py`` (never installed).

A node started with this folder on ``PYTHONPATH`` and ``HELIOBENCH_TEST_MARKERS`` set makes
every Python process on it record, in that folder, each object it reads through
``heliobench.storage.read_bytes`` (one file per process), after sleeping
``HELIOBENCH_TEST_SLOW_READ_S`` seconds: the test driver sees that the node is at work and
can kill it in the middle of a task.
"""

import os

if os.environ.get("HELIOBENCH_TEST_MARKERS"):
    import time

    import heliobench.storage as _storage

    _read_bytes = _storage.read_bytes
    _markers = os.environ["HELIOBENCH_TEST_MARKERS"]
    _delay = float(os.environ.get("HELIOBENCH_TEST_SLOW_READ_S", "0"))

    def read_bytes(uri: str) -> bytes:
        with open(os.path.join(_markers, f"reads-{os.getpid()}"), "a") as f:
            f.write(uri + "\n")
        time.sleep(_delay)
        return _read_bytes(uri)

    _storage.read_bytes = read_bytes

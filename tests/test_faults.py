"""Faults against real processes: the S3-compatible server and the MLflow server stopped mid-work.

Object storage: a ``moto_server`` of this module's own (in memory), reached through a TCP
proxy that can throttle the upload and cut every connection, as a network outage or a
stopped server does:

- stopped mid-write and restarted: the write is retried with backoff and completes;
- down for good: a :class:`StorageError` names the URI (and no credential) after the
  bounded retries, and a reader watching the key throughout never sees a partial object
  — only the old content, then the whole new one once storage is back.

Tracking: the MLflow server stopped and restarted while metrics are being logged (see
``tests/test_shared_tracking.py``, which has the PostgreSQL-backed server).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import load_lab_services

from heliobench import storage
from heliobench.errors import StorageError

services = load_lab_services()  # infra/local/services.py

pytestmark = pytest.mark.slow  # real servers stopped and restarted (`make test-fast` leaves them out)

BUCKET = "faults"


class Moto:
    """A moto_server of our own that the test can stop (SIGKILL) and start again on its port."""

    def __init__(self, log: Path):
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = None
        self.start()

    def start(self) -> float:
        t0 = time.time()
        self.proc = services.start_moto(self.port, self.log)
        services.create_buckets(self.url, [BUCKET])  # moto forgets everything when stopped
        return time.time() - t0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class Proxy:
    """A TCP proxy to ``target_port``: throttles uploads, counts their bytes, cuts and restores."""

    def __init__(self, target_port: int):
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.target = target_port
        self.rate: float | None = None  # upload bytes per second
        self.bytes_up = 0
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(64)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                if up:
                    self.bytes_up += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def moto(tmp_path):
    server = Moto(tmp_path / "moto.log")
    yield server
    if server.proc.poll() is None:
        server.proc.terminate()
        server.proc.wait(10)


@pytest.fixture
def proxy(moto, monkeypatch):
    p = Proxy(moto.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)  # every heliobench.storage call goes through it
    yield p
    try:
        p.cut()
    except OSError:
        pass


def _direct(moto):
    """An s3fs client straight to the server (not through the proxy), no cache."""
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=moto.url, skip_instance_cache=True, use_listings_cache=False)


def _wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_s3_server_stopped_mid_write_and_restarted(moto, proxy, monkeypatch):
    """A shard written while the S3 server dies and comes back: retried, complete, no temporary key left."""
    monkeypatch.setenv("HELIOBENCH_STORAGE_ATTEMPTS", "6")
    monkeypatch.setenv("HELIOBENCH_STORAGE_BACKOFF_S", "1")
    uri = f"s3://{BUCKET}/shards/train/shard-00000.parquet"
    payload = os.urandom(3 * 1024 * 1024)
    proxy.rate = 1.5e6
    outcome: dict = {}

    def write():
        t0 = time.time()
        try:
            storage.write_bytes_atomic(uri, payload)
            outcome["seconds"] = time.time() - t0
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    writer = threading.Thread(target=write)
    writer.start()
    _wait_for(lambda: proxy.bytes_up > 600_000, 60, "the upload to start")
    stopped = time.time()
    moto.stop()  # the server dies mid-upload
    proxy.cut()
    time.sleep(2)
    restart_s = moto.start()  # same port, empty: the bucket is created again before clients get through
    proxy.rate = None
    proxy.restore()
    writer.join(120)
    assert "error" not in outcome, outcome.get("error")
    recovered_s = time.time() - stopped
    print(f"\n[fault] S3 server killed mid-write; restarted in {restart_s:.1f} s; write complete {recovered_s:.1f} s after the kill")
    fs = _direct(moto)
    assert fs.cat_file(uri[5:]) == payload
    assert not [k for k in fs.find(BUCKET) if ".tmp-" in k], "temporary key left behind"
    assert storage.read_bytes(uri) == payload


def test_s3_outage_never_exposes_a_partial_object_and_names_the_uri(moto, proxy, monkeypatch):
    """Storage unreachable for good mid-write: a clear error naming the URI; readers only ever see
    the old object; once storage is back the write goes through whole."""
    monkeypatch.setenv("HELIOBENCH_STORAGE_ATTEMPTS", "2")
    monkeypatch.setenv("HELIOBENCH_STORAGE_BACKOFF_S", "0.5")
    uri = f"s3://{BUCKET}/catalog/catalog.parquet"
    old, new = os.urandom(200_000), os.urandom(3 * 1024 * 1024)
    storage.write_bytes_atomic(uri, old)
    digests = {hashlib.sha256(old).hexdigest(): "old", hashlib.sha256(new).hexdigest(): "new"}
    seen: list[str] = []
    stop = threading.Event()
    fs = _direct(moto)

    def watch():  # a reader straight at the server, all along
        while not stop.is_set():
            try:
                seen.append(digests.get(hashlib.sha256(fs.cat_file(uri[5:])).hexdigest(), "PARTIAL"))
            except FileNotFoundError:
                seen.append("MISSING")
            time.sleep(0.05)

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    proxy.rate = 1.5e6
    outcome: dict = {}

    def write():
        t0 = time.time()
        try:
            storage.write_bytes_atomic(uri, new)
        except Exception as exc:  # noqa: BLE001
            outcome["error"], outcome["seconds"] = exc, time.time() - t0

    writer = threading.Thread(target=write)
    writer.start()
    _wait_for(lambda: proxy.bytes_up > 600_000, 60, "the upload to start")
    proxy.cut()  # and it stays down
    writer.join(180)
    err = outcome.get("error")
    assert isinstance(err, StorageError), f"expected StorageError, got {err!r}"
    message = str(err)
    print(f"\n[fault] S3 unreachable mid-write: StorageError after {outcome['seconds']:.1f} s: {message[:160]}")
    assert uri in message and "unreachable after 2 attempts" in message
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in message and os.environ["AWS_ACCESS_KEY_ID"] not in message
    with pytest.raises(StorageError, match=f"{uri}: storage unreachable"):
        storage.read_bytes(uri)
    assert fs.cat_file(uri[5:]) == old, "the target changed although the write failed"
    # moto may keep a truncated upload (real S3 refuses a body shorter than its Content-Length):
    # at most a hidden temporary key (dot-prefixed: skipped by pyarrow's and Ray Data's
    # dataset discovery, matched by no HelioBench reader).
    leftovers = [k for k in fs.find(BUCKET) if k != uri[5:]]
    assert all(k.rsplit("/", 1)[-1].startswith(".tmp-") for k in leftovers), leftovers
    proxy.rate = None
    proxy.restore()
    storage.write_bytes_atomic(uri, new)  # storage back: the same write now goes through
    time.sleep(0.3)
    stop.set()
    reader.join(5)
    assert fs.cat_file(uri[5:]) == new
    assert set(seen) <= {"old", "new"} and seen[0] == "old" and seen[-1] == "new", sorted(set(seen))
    assert not [k for k in fs.find(BUCKET) if ".tmp-" in k], "the failed write's temporary key was not cleaned up"

"""Run the native C2PA reader in worker processes that can be timed out and killed.

A hang inside c2pa-rs (a hostile manifest, a bug) must not stall a scan or hold a service
thread forever, and a thread cannot be killed. So :class:`ReaderPool` keeps up to ``size``
long-lived child processes (:mod:`.c2pa_worker`), started on demand and reused across
calls; each read gets a deadline, and a worker that misses it is killed with SIGKILL and
replaced on the next call::

    pool = ReaderPool(size=2, timeout_s=20)
    text = pool.read(data, trust_anchors_pem)   # manifest store JSON, or None
    # raises ReaderTimeout (worker killed), ReaderCrashed (worker died) or ReaderFailed
    # (the reader raised: .type / .message / .is_c2pa)

The process-wide pool behind :func:`read_isolated` is sized by ``SENTINELLE_C2PA_WORKERS``
(default: the CPU count, at most 4) with ``SENTINELLE_C2PA_TIMEOUT_S`` (default 20 s) per
read; ``SENTINELLE_C2PA_ISOLATION=0`` reads in-process instead (no kill possible; for
measuring the overhead, see ``bench/provenance/bench_c2pa_isolation.py``). Waiting for a free
worker is bounded by the same deadline. A forked child process starts its own pool.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import c2pa_worker as proto

try:  # Linux/macOS; the pipe-size tweak is Linux-only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ENV_WORKERS = "SENTINELLE_C2PA_WORKERS"
ENV_TIMEOUT = "SENTINELLE_C2PA_TIMEOUT_S"
ENV_ISOLATION = "SENTINELLE_C2PA_ISOLATION"
DEFAULT_TIMEOUT_S = 20.0
START_TIMEOUT_S = 60.0
"""How long a new worker may take to import c2pa and say it is ready."""


class ReaderTimeout(Exception):
    """The worker did not answer before the deadline; it has been killed."""


class ReaderCrashed(Exception):
    """The worker died (or could not start) while reading."""


class ReaderFailed(Exception):
    """The reader raised inside the worker; ``type``/``message``/``is_c2pa`` describe it."""

    def __init__(self, type_name: str, message: str, is_c2pa: bool) -> None:
        super().__init__(message)
        self.type = type_name
        self.message = message
        self.is_c2pa = is_c2pa


#: The only variables a worker inherits: it parses hostile bytes, so it gets no secrets
#: (master key, database URL, API keys...) to leak if the parser were ever exploited.
WORKER_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


def worker_env(extra_path: Iterable[str | Path] = ()) -> dict[str, str]:
    """The environment a C2PA worker starts with (see :data:`WORKER_ENV_KEYS`)."""
    env = {k: os.environ[k] for k in WORKER_ENV_KEYS if k in os.environ}
    env["PYTHONPATH"] = _python_path(extra_path)
    return env


def _python_path(extra: Iterable[str | Path]) -> str:
    here = Path(__file__).resolve().parents[2]  # the directory holding the package
    parts = [str(p) for p in extra] + [str(here)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def _widen_pipe(fd: int) -> None:
    """Ask Linux for a pipe buffer of up to 1 MiB (best effort; the default is 64 KiB)."""
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsz is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, setsz, 1 << 20)


class _Worker:
    """One child process speaking :mod:`.c2pa_worker`'s protocol."""

    def __init__(self, reader: str, extra_path: tuple[str, ...]) -> None:
        env = worker_env(extra_path)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentinelle.provenance.c2pa_worker", "--reader", reader],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except OSError as e:
            raise ReaderCrashed(f"cannot start the C2PA worker: {e}") from e
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        _widen_pipe(self._in)  # a 12 MP JPEG in a few writes, not 40 wake-ups of 64 KiB
        try:
            ready = self._recv(1, time.monotonic() + START_TIMEOUT_S)
        except (ReaderTimeout, ReaderCrashed):
            self.kill()
            raise ReaderCrashed("the C2PA worker did not start") from None
        if ready != proto.READY:
            self.kill()
            raise ReaderCrashed("the C2PA worker did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _send(self, buf: bytes | memoryview, deadline: float) -> None:
        view = memoryview(buf)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReaderTimeout("C2PA worker did not take the request in time")
            _, writable, _ = select.select([], [self._in], [], left)
            if not writable:
                continue
            try:
                n = os.write(self._in, view[: 1 << 20])
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as e:
                raise ReaderCrashed(f"C2PA worker exited ({e})") from e
            view = view[n:]

    def _recv(self, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        left = n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise ReaderTimeout("C2PA worker did not answer in time")
            readable, _, _ = select.select([self._out], [], [], wait)
            if not readable:
                continue
            chunk = os.read(self._out, min(left, 1 << 20))
            if not chunk:
                raise ReaderCrashed(f"C2PA worker exited (status {self.proc.poll()})")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def call(self, data: bytes, pem: str | None, deadline: float) -> str | None:
        pem_raw = (pem or "").encode("utf-8")
        self._send(proto.REQUEST.pack(len(pem_raw), len(data)) + pem_raw, deadline)
        self._send(data, deadline)
        status, size = proto.REPLY.unpack(self._recv(proto.REPLY.size, deadline))
        payload = self._recv(size, deadline) if size else b""
        if status == proto.STATUS_NONE:
            return None
        if status == proto.STATUS_STORE:
            return payload.decode("utf-8")
        info = json.loads(payload)
        raise ReaderFailed(str(info.get("type")), str(info.get("message")), bool(info.get("c2pa")))

    def kill(self) -> None:
        """SIGKILL the child and reap it (never blocks on a hung child)."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class ReaderPool:
    """Up to ``size`` reusable C2PA workers, each read bounded by ``timeout_s``."""

    def __init__(
        self,
        size: int = 2,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        reader: str = proto.DEFAULT_READER,
        extra_path: Iterable[str | Path] = (),
    ) -> None:
        if size < 1 or timeout_s <= 0:
            raise ValueError("size must be >= 1 and timeout_s > 0")
        self.size = size
        self.timeout_s = float(timeout_s)
        self.reader = reader
        self.extra_path = tuple(str(p) for p in extra_path)
        self._idle: list[_Worker] = []
        self._started = 0
        self._cond = threading.Condition()
        self._closed = False
        self.killed = 0  # workers killed for missing a deadline (for tests and metrics)

    def _acquire(self, deadline: float) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise ReaderCrashed("the C2PA reader pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._started < self.size:
                    self._started += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReaderTimeout("no C2PA worker became free in time")
                self._cond.wait(left)
        try:
            return _Worker(self.reader, self.extra_path)
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        with self._cond:
            self._started -= 1
            self._cond.notify()

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if self._closed:
                worker.kill()
                self._started -= 1
                return
            self._idle.append(worker)
            self._cond.notify()

    def read(
        self, data: bytes, pem: str | None = None, timeout_s: float | None = None
    ) -> str | None:
        """The manifest store JSON of ``data`` (None: no manifest), read in a worker."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        worker = self._acquire(deadline)
        try:
            result = worker.call(data, pem, deadline)
        except ReaderFailed:
            self._release(worker)
            raise
        except ReaderTimeout:
            worker.kill()
            self.killed += 1
            self._forget()
            raise
        except BaseException:
            worker.kill()
            self._forget()
            raise
        self._release(worker)
        return result

    def pids(self) -> list[int]:
        """Process ids of the idle workers (for tests)."""
        with self._cond:
            return [w.pid for w in self._idle]

    def close(self) -> None:
        """Kill every idle worker; busy ones are killed when their read returns."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._started -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.kill()


# --- the process-wide pool --------------------------------------------------------------

_pool: ReaderPool | None = None
_pool_lock = threading.Lock()


def isolation_enabled() -> bool:
    return os.environ.get(ENV_ISOLATION, "1").strip().lower() not in ("0", "false", "no", "off")


def default_timeout_s() -> float:
    try:
        value = float(os.environ.get(ENV_TIMEOUT, "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        value = DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def default_pool() -> ReaderPool:
    """The shared pool (created on first use; sized from the environment)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            try:
                size = int(os.environ.get(ENV_WORKERS, "") or min(4, os.cpu_count() or 1))
            except ValueError:
                size = min(4, os.cpu_count() or 1)
            _pool = ReaderPool(size=max(1, size), timeout_s=default_timeout_s())
        return _pool


@contextlib.contextmanager
def use_pool(pool: ReaderPool) -> Iterator[ReaderPool]:
    """Make ``pool`` the process-wide pool for the ``with`` block (test and plug-in hook)."""
    global _pool
    with _pool_lock:
        previous, _pool = _pool, pool
    try:
        yield pool
    finally:
        with _pool_lock:
            _pool = previous


def read_isolated(data: bytes, pem: str | None, timeout_s: float | None = None) -> str | None:
    """:meth:`ReaderPool.read` on the shared pool."""
    return default_pool().read(data, pem, timeout_s)


def _close_default() -> None:
    if _pool is not None:
        _pool.close()


def _after_fork() -> None:
    # The parent's workers belong to the parent: a forked child starts its own.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


atexit.register(_close_default)
os.register_at_fork(after_in_child=_after_fork)

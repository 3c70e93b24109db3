"""The worker's side of the engine's compiled kernels: the warm-up at its start, and a job's
"compiling kernels" phase while its process compiles.

A worker process started by `descent serve` / `descent worker` (Worker(warm_up=True)) configures
the engine's backend at its start (worker.engine.accel.configure: DESCENT_FUSED_KERNELS, numba's
disk cache at DESCENT_KERNEL_CACHE_DIR, before any kernel is defined), then `prepare` loads the
kernels jobs use before its first claim, or, once it finds it must compile them, compiles them
while the worker runs jobs (worker.runner). Workers made in-process (the tests) configure
nothing: the engine's first pass configures the compiled backend with numba's own cache, and
kernels compile on first use, as the engine does anywhere else.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from multiprocessing.process import BaseProcess
from pathlib import Path

from worker.engine import accel
from worker.engine.accel import Backend
from worker.engine.accel.warmup import DTYPE_NAMES, warm_up  # imports no kernel module
from worker.engine.losses import LOSS_NAMES, LossName

log = logging.getLogger("descent.worker")
COMPILING = "compiling kernels"  # the job's progress.phase while numba compiles for it


class WarmUp:
    """`prepare` in a thread of its own, started by the constructor, which returns once the
    kernels are loaded from the disk cache (quick: the first claim waits for it) or as
    soon as readying them turns out slow: a compilation starts (a machine's first start, a cache
    an interrupted start left half-filled) or another worker is filling the cache. The worker
    then claims jobs while the thread goes on; a job that calls a kernel not compiled yet
    compiles it, or waits for the thread to (numba compiles one kernel at a time in a process).
    """

    def __init__(self, backend: Backend, threads: int, stopping: threading.Event) -> None:
        self.seconds: float | None = None  # set once readying has ended
        settled = threading.Event()

        def ready() -> None:
            try:
                self.seconds = prepare(backend, threads, stopping.is_set, slow=settled.set)
            except Exception:  # jobs still run: each compiles the kernels it calls
                log.exception("the kernels' warm-up failed; jobs compile the kernels they use")
            finally:
                settled.set()

        self._thread = threading.Thread(target=ready, name="kernel-warm-up", daemon=True)
        self._thread.start()
        settled.wait()
        if self._thread.is_alive():
            log.info("claiming jobs while the kernels compile")

    def join(self) -> None:
        """Wait for the end (`stopping` ends it after the kernel being compiled)."""
        self._thread.join()


def prepare(
    backend: Backend,
    threads: int,
    stop: Callable[[], bool],
    *,
    losses: Iterable[LossName] = LOSS_NAMES,
    dtypes: Iterable[str] = DTYPE_NAMES,
    slow: Callable[[], None] = lambda: None,
) -> float:
    """Warm the kernels of these losses and dtypes up on `threads` threads (a job's budget),
    loaded from or compiled into backend.kernel_cache, asking `stop()` between kernels; the
    seconds it took. `backend` is what accel.configure returned: nothing to do on NumPy.
    `slow()` is called when it turns out to take long: a compilation starts (loads from the
    disk cache are quick), or another process is filling the cache."""
    if not backend.compiled:
        log.info("the engine runs on NumPy (DESCENT_FUSED_KERNELS, or no numba): no warm-up")
        return 0.0
    started = time.perf_counter()
    from worker.engine.accel import jit  # configure imported it already

    cache_dir = backend.kernel_cache
    where = cache_dir or "no disk cache"
    # Said before it starts: on a machine's first start (an empty cache) compiling takes a while.
    log.info(
        "readying the compiled kernels from %s (compiled into it on this machine's first start, "
        "loaded from it after)",
        where,
    )
    hits, misses = jit.cache_stats()
    losses, dtypes = list(losses), list(dtypes)
    with (
        jit.compiling(lambda active: slow() if active else None),
        filling_turn(cache_dir, stop, slow) if cache_dir else nullcontext(),
    ):
        helper = _helper(cache_dir, threads, losses[1:], dtypes) if cache_dir else None
        done = warm_up(threads, losses[:1], dtypes, stop)
        if helper is not None:
            while helper.is_alive() and not stop():
                helper.join(0.2)
            if helper.is_alive():
                helper.terminate()
            helper.join()
        done += warm_up(threads, losses[1:], dtypes, stop)  # loaded from what the helper filled
    loaded, compiled = jit.cache_stats()[0] - hits, jit.cache_stats()[1] - misses
    seconds = time.perf_counter() - started
    log.info(
        "kernels warmed up in %.2fs: %d loaded from %s, %d compiled (%s)",
        seconds,
        loaded,
        where,
        compiled,
        ", ".join(f"{w.name} {w.seconds:.2f}s" for w in done) or "stopped",
    )
    return seconds


def _filled(cache_dir: Path) -> bool:
    return any(cache_dir.rglob("*.nbi"))


@contextmanager
def filling_turn(
    cache_dir: Path, stop: Callable[[], bool], waiting: Callable[[], None] = lambda: None
) -> Iterator[None]:
    """Held by the one process that fills an empty cache. Workers starting together on a machine
    (`descent serve --workers N`, or several `descent worker`) would otherwise each compile every
    kernel, N compilations sharing the cores; instead the others wait here for the cache to be
    filled, then load from it side by side (a filled cache is let go of at once). `waiting()` is
    called when a wait starts, `stop()` ends it; a file system without locks just lets everybody
    compile."""
    try:
        lock = open(cache_dir / ".filling.lock", "a")  # noqa: SIM115 (held across the yield)
    except OSError:
        yield
        return
    with lock:
        waited = False
        while not stop():
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    waiting()
                    log.info("another worker is filling the kernel cache %s: waiting to load "
                             "from it", cache_dir)  # fmt: skip
                    waited = True
                time.sleep(0.2)
                continue
            except OSError:
                break
            if _filled(cache_dir):
                fcntl.flock(lock, fcntl.LOCK_UN)
            break
        yield  # closing the file lets go of the lock


def _helper(
    cache_dir: Path, threads: int, losses: list[LossName], dtypes: list[str]
) -> BaseProcess | None:
    """On a machine's first start (an empty cache), a process compiling the kernels of `losses`
    into the disk cache while this one compiles the others: numba compiles on one core.
    Each loss has kernels of its own, so the two never write the same cache entries."""
    if not losses or (os.cpu_count() or 1) < 2 or _filled(cache_dir):
        return None  # a cache with entries is loaded, not compiled: no help needed
    spawn = multiprocessing.get_context("spawn")  # numba's threads do not survive a fork
    helper = spawn.Process(
        target=_compile_into, args=(cache_dir, threads, losses, dtypes), daemon=True
    )
    helper.start()
    return helper


def _compile_into(cache_dir: Path, threads: int, losses: list[LossName], dtypes: list[str]) -> None:
    # A fresh process: its backend configured first, as a worker's is.
    if accel.configure("compiled", cache_dir).kernel_cache is not None:
        warm_up(threads, losses, dtypes)


def watch(report: Callable[[str | None], None]) -> AbstractContextManager[None]:
    """While the block runs, report(COMPILING) when numba starts compiling in this process and
    report(None) when it is done (nothing on the NumPy backend)."""
    if not accel.active().compiled:
        return nullcontext()
    from worker.engine.accel import jit

    return jit.compiling(lambda active: report(COMPILING if active else None))


if __name__ == "__main__":
    # `python -m worker.compiled_kernels DIR`: fills the kernel cache DIR with every kernel a
    # worker warms up (or finds them there), on as many threads as a worker uses. A process of
    # its own, so that the backend is configured before any kernel is defined; the tests and the
    # benchmarks run it before they start workers.
    prepare(accel.configure("compiled", Path(sys.argv[1])), os.cpu_count() or 1, lambda: False)

"""Threads for the engine's passes: a per-context cap, a process-wide pool of helpers, and one
thread for work that overlaps them.

NumPy releases the GIL inside BLAS calls made by np.dot and inside ufunc loops over more than a
few hundred elements, so Python threads can multiply in parallel. `limit_threads(n)` caps the
threads of the passes run inside it, the way threadpoolctl caps OpenBLAS's; by default a pass may
use every CPU the process may run on. The helper threads live in one pool, created on first use
(and again in a forked child); idle, they wait on a queue and cost nothing. `background` work
(the next minibatch's gather) runs on a thread of its own, so that it overlaps passes that keep
every helper busy (a population's slabs) instead of waiting behind them.

While the engine runs threads of its own, BLAS must not add its own on top: OpenBLAS threads
each call of a few million multiply-adds, and two engine threads each calling a 2-thread BLAS put
four busy threads on two cores, which makes both the full-batch pass and the SGD recipe with its
prefetch slower than on one thread (bench.concurrency). `single_threaded_blas()` holds BLAS to one
thread for such a block; large products outside it (blocked search) keep BLAS's threads.
"""

import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")

_max_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "descent_engine_threads", default=None
)


@contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the engine's passes inside this block (in this context) on at most `n` threads."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    token = _max_threads.set(n)
    try:
        yield
    finally:
        _max_threads.reset(token)


def max_threads() -> int:
    """The cap set by `limit_threads`, else the number of CPUs this process may run on."""
    limit = _max_threads.get()
    if limit is not None:
        return limit
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded libraries once (about a millisecond)


def blas_libraries_changed() -> None:
    """A BLAS library was loaded after the first scan (SciPy's, accel.blas): scan again."""
    _blas_controller.cache_clear()


_blas_single: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "descent_blas_single", default=False
)


def blas_capped() -> bool:
    """Whether a `single_threaded_blas` block is in effect (in this context)."""
    return _blas_single.get()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread inside this block (process-wide: every thread's BLAS calls).

    Nested blocks cost nothing: only the outermost one (in this context) sets and restores.
    """
    if _blas_single.get():
        yield
        return
    token = _blas_single.set(True)
    try:
        with _blas_controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        _blas_single.reset(token)


class _Helpers:
    """The process-wide pool of helper threads, grown on demand, rebuilt after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0
        self._pid = 0

    def pool(self, size: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._size < size or self._pid != os.getpid():
                old, same_process = self._pool, self._pid == os.getpid()
                self._pool = ThreadPoolExecutor(size, thread_name_prefix="engine-pass")
                self._size, self._pid = size, os.getpid()
                if old is not None and same_process:
                    old.shutdown(wait=False)
            return self._pool


_helpers = _Helpers()
_background = _Helpers()


def background(fn: Callable[..., T], *args: Any) -> "Future[T]":
    """fn(*args), started now on a helper thread (for work that overlaps the caller's)."""
    return _background.pool(1).submit(fn, *args)


def run_parallel(tasks: Sequence[Callable[[int], T]], threads: int) -> list[T]:
    """Every task's result, in task order.

    The caller and threads - 1 helpers take the tasks in turn; a task is called with the slot of
    the thread running it (0 for the caller, 1.. for helpers), for per-thread scratch space. The
    first exception is re-raised once every thread has stopped.
    """
    if threads <= 1 or len(tasks) <= 1:
        return [task(0) for task in tasks]
    results: list[tuple[T] | None] = [None] * len(tasks)
    lock = threading.Lock()
    taken = iter(range(len(tasks)))
    failed = threading.Event()

    def take_tasks(slot: int) -> None:
        while not failed.is_set():
            with lock:
                i = next(taken, None)
            if i is None:
                return
            try:
                results[i] = (tasks[i](slot),)
            except BaseException:
                failed.set()
                raise

    # Helpers start with an empty context: run them in a copy of ours, so that the caller's
    # np.errstate (and thread limit) applies inside them too.
    context = contextvars.copy_context()
    pool = _helpers.pool(threads - 1)
    helpers = [pool.submit(context.copy().run, take_tasks, slot) for slot in range(1, threads)]
    try:
        take_tasks(0)
    finally:
        errors = [helper.exception() for helper in helpers]  # waits for every helper
    for error in errors:
        if error is not None:
            raise error
    done = [result for result in results if result is not None]
    if len(done) != len(tasks):
        raise RuntimeError("a task of run_parallel did not run")
    return [result[0] for result in done]

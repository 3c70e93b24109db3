"""numba helpers for the engine's compiled kernels (worker.engine.accel.fused): a typed njit
decorator, a software prefetch, numba's settings for this process, where the compiled code is
cached, and a hook that tells when a compilation runs.

numba and llvmlite ship no type stubs; `kernel` keeps the decorated function's signature for
mypy. Kernels are compiled on first call and cached on disk. The worker chooses the directory
(worker.engine.accel.configure, DESCENT_KERNEL_CACHE_DIR) before any kernel is defined;
elsewhere (tests, the benchmarks) numba's own choice stands: a `__pycache__` next to the source,
or when that is not writable, its per-user cache directory (NUMBA_CACHE_DIR overrides both).
When no directory is writable, numba refuses cache=True outright (RuntimeError "no locator
available", at import): `kernel` then compiles without a disk cache, in every process.

Importing this module sets nothing: `apply_process_settings` does, called by `configure` and, in
a process where nothing configured the engine, before the first parallel launch.
"""

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils as _cgutils
from numba.core import event as _event
from numba.extending import intrinsic

cgutils: Any = _cgutils  # partly annotated: its helpers are untyped
event: Any = _event  # numba's compiler events (untyped)
numba_any: Any = numba  # config and threading functions are not exported to mypy

F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger(__name__)

_settings_lock = threading.Lock()
_settings_applied = False


def apply_process_settings() -> None:
    """numba's settings for the engine's kernels, made once per process; each one that the user
    set in the environment wins.

    Each takes effect only when made before numba reads it: the threading layer and
    GOMP_SPINCOUNT before the first parallel launch (`parallel_ready` makes them then, if nothing
    did sooner), the CPU features before the first kernel is defined (`configure` at a worker's
    start, or the first pass that asks for the backend, before it imports the kernel modules).
    """
    global _settings_applied
    with _settings_lock:
        if _settings_applied:
            return
        # Parallel drivers may be launched from several Python threads at once (tests, a pass
        # inside a helper thread): only OpenMP and TBB allow that; numba's fallback layer
        # (workqueue) aborts the process.
        if "NUMBA_THREADING_LAYER" not in os.environ:
            numba_any.config.THREADING_LAYER = "threadsafe"
        # After a parallel loop GNU OpenMP's threads spin before they sleep. Its default spin
        # makes launches cheapest, but with more busy threads than cores (two uncoordinated
        # workers on one host) the spinning threads take the cores the other job needs, and both
        # jobs slow down far more than they do on Python threads. A much shorter spin still
        # bridges the gap between two SGD steps, so single jobs keep most of the gain, and jobs
        # sharing cores stop burning them (bench.sgd, bench.concurrency measure both). Read when
        # libgomp loads (numba's first parallel launch).
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ.setdefault("GOMP_SPINCOUNT", "3000")
        # Read when numba's code generator starts (the first kernel defined).
        if "NUMBA_CPU_FEATURES" not in os.environ:
            features = _host_vector_features()
            if features is not None:
                numba_any.config.CPU_FEATURES = features
        _settings_applied = True


def vector_features(host: str) -> str | None:
    """numba's CPU features for AVX-512 hosts: the host's, with LLVM's preference for 256-bit
    vectors turned off; None where there is nothing to change.

    LLVM tunes Intel server cores from Skylake-X on (Ice Lake, Sapphire and Emerald Rapids) to
    prefer 256-bit vectors, so on them the kernels' loops compiled to ymm registers only: half
    of what each FMA could do (their accumulators are laid out for 16 float32 lanes). AMD's
    Zen 4 has no such preference, so this changes nothing there.
    """
    if "+avx512f" not in host.split(","):
        return None
    return f"{host},-prefer-256-bit"


def _host_vector_features() -> str | None:
    from llvmlite import binding as llvm

    try:
        return vector_features(llvm.get_host_cpu_features().flatten())
    except RuntimeError:  # llvmlite cannot read this host's features: numba's own default
        return None


def kernel(fn: F) -> F:
    """fn compiled without the GIL (nogil: engine threads run slabs in parallel), with NumPy's
    error model (no ZeroDivisionError checks), cached on disk where numba finds a writable cache
    directory.

    Of fastmath, only reassociation (sums split over vector lanes) and contraction (fused
    multiply-adds): the no-NaN / no-inf assumptions of full fastmath would let NaN and inf
    vanish from a diverging run's loss, which training must see."""
    return _compiled(fn, "kernel", fastmath={"reassoc", "contract"}, error_model="numpy")


# Every function compiled through `_compiled`, so that `use_cache_dir` can move their caches.
_dispatchers: list[Any] = []
# False once the worker's cache directory turned out unwritable: no disk cache from then on.
_disk_cache = True
# The directory `use_cache_dir` chose; None while numba caches where it does by default.
_cache_dir: Path | None = None


def _compiled(fn: F, what: str, **options: Any) -> F:
    """njit(nogil=True, **options)(fn), cached on disk unless numba finds nowhere to write."""
    if _disk_cache:
        try:
            dispatcher = njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError as error:  # no writable cache directory
            _log.warning("numba %s %s compiled without a disk cache: %s", what, fn.__name__, error)
            dispatcher = njit(nogil=True, **options)(fn)
    else:
        dispatcher = njit(nogil=True, **options)(fn)
    _dispatchers.append(dispatcher)
    return cast(F, dispatcher)


def use_cache_dir(path: Path) -> bool:
    """Cache compiled kernels in `path` (created if missing) instead of numba's default places.

    numba reads its cache directory (numba.config.CACHE_DIR, which NUMBA_CACHE_DIR sets at
    import) when a function is decorated, so call this (worker.engine.accel.configure does)
    before the kernel modules are imported;
    kernels decorated already are moved too (their caches are made again, the compiled code they
    hold stays). The environment is left alone: a NUMBA_* variable changed after numba's import
    makes its compiler reload the whole configuration, undoing what this module set.
    False, after a warning, when `path` cannot be written: kernels decorated from then on
    compile without a disk cache, in every process."""
    global _disk_cache, _cache_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()  # the test numba makes of a cache directory
    except OSError as error:
        _disk_cache, _cache_dir = False, None
        _log.warning(
            "kernel cache directory %s is not writable (%s): compiled kernels will not be cached "
            "on disk, so every worker start compiles them again (set DESCENT_KERNEL_CACHE_DIR to "
            "a writable directory)",
            path,
            error,
        )
        return False
    _disk_cache, _cache_dir = True, path
    numba_any.config.CACHE_DIR = str(path.resolve())
    for dispatcher in _dispatchers:
        dispatcher.enable_caching()
    return True


def cache_dir() -> Path | None:
    """The directory `use_cache_dir` last chose, if it was writable; else None (numba's own
    places, or no disk cache)."""
    return _cache_dir


def cache_stats() -> tuple[int, int]:
    """(loads from the disk cache, compilations) of the engine's kernels in this process."""
    hits = sum(sum(d.stats.cache_hits.values()) for d in _dispatchers)
    misses = sum(sum(d.stats.cache_misses.values()) for d in _dispatchers)
    return hits, misses


class _CompileWatch(event.Listener):  # type: ignore[misc]
    """Calls report(True) when a compilation starts while none runs, report(False) when the last
    one running ends. A kernel's compilation nests its callees', and Python threads running slabs
    may compile at once: only the outermost start and end are reported."""

    def __init__(self, report: Callable[[bool], None]) -> None:
        self._report = report
        self._lock = threading.Lock()
        self._running = 0

    def on_start(self, _event: Any) -> None:
        with self._lock:
            self._running += 1
            first = self._running == 1
        if first:
            self._report(True)

    def on_end(self, _event: Any) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self._report(False)


@contextmanager
def compiling(report: Callable[[bool], None]) -> Iterator[None]:
    """Within the block, report(True) when numba starts compiling (in any thread of this process:
    loads from the disk cache do not count) and report(False) when it is done."""
    with event.install_listener("numba:compile", _CompileWatch(report)):
        yield


def _prefetch_typer(typingctx: Any, arr: Any, idx: Any) -> Any:
    """prefetch(a, i): a hint to read &a[i] (a 1-D array, i in range) into L2; returns nothing."""
    signature = types.void(arr, idx)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        array_type = sig.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, array, [args[1]], wraparound=False
        )
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn_type = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fn_type, "llvm.prefetch.p0")
        # read (0), locality 2 (L2 and up), data cache (1)
        builder.call(fn, [builder.bitcast(pointer, i8p), i32(0), i32(2), i32(1)])
        return context.get_dummy_value()

    return signature, codegen


prefetch = cast(Callable[[Any, Any], None], intrinsic(_prefetch_typer))


def parallel_driver(fn: F) -> F:
    """fn compiled with numba's parallel loops (prange), without the GIL, cached like `kernel`.

    Its threads come from numba's threading layer, which this module restricts to a thread-safe
    one (OpenMP or TBB; see `parallel_ready`)."""
    return _compiled(fn, "driver", parallel=True)


def _probe(out: Any) -> None:
    for i in prange(out.shape[0]):
        out[i] = i


class _ParallelLayer:
    """Whether numba's parallel drivers can run in this process, found out once per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known = False
        self._ok = False
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """In a child forked after the parent found out: GNU OpenMP's thread pool did not
        survive the fork, and launching again can hang; Python threads from here on."""
        self._lock = threading.Lock()  # another thread may have held the parent's
        if self._known:
            self._ok = False

    def ready(self, threads: int) -> bool:
        if not self._known:  # the lock only until the answer is known
            with self._lock:
                if not self._known:
                    self._ok = self._load()
                    self._known = True  # after _ok: a thread that sees it known sees the answer
        if self._ok:
            numba_any.set_num_threads(min(threads, numba_any.config.NUMBA_NUM_THREADS))
        return self._ok

    @staticmethod
    def _load() -> bool:
        apply_process_settings()  # a process whose engine nobody configured: before the launch
        try:
            # Compiled here, not at import: after the worker chose the cache directory.
            _compiled(_probe, "probe", parallel=True)(np.zeros(2))
        except Exception as error:  # no thread-safe layer here (no libgomp, no tbb)
            _log.info("numba has no thread-safe threading layer here (%s): Python threads", error)
            return False
        return str(numba_any.threading_layer()) in ("omp", "tbb")


_parallel = _ParallelLayer()


def parallel_ready(threads: int) -> bool:
    """Whether a parallel driver may run now; if so, it will run on `threads` threads (numba's
    count for the calling thread, at most NUMBA_NUM_THREADS). False where numba has no thread-safe
    layer, or in a process forked from one that launched numba's threads."""
    return _parallel.ready(threads)

"""Which backend the engine's loss passes run on in this process: compiled kernels or NumPy.

A worker process chooses once, at its start (worker.runner, from the fused_kernels and
kernel_cache_dir settings), before anything defines, compiles or launches a kernel: numba reads
its CPU features when the first kernel is defined and its threading layer at the first parallel
launch, and libgomp reads GOMP_SPINCOUNT when it loads. Elsewhere (the engine used as a library)
nobody has to: the first pass that asks (`active`) configures the compiled backend with numba's
own cache directory, before it imports a kernel module. Code that imports a kernel module itself
(the tests' process, the benchmarks) configures first; without, the kernels give the same
results, but on the vector width numba picks by default.

Importing the engine changes nothing in the process: numba's configuration and the environment
are set by `configure` (and, for a kernel used with nothing configured, by its first parallel
launch: worker.engine.accel.jit.parallel_ready), never at import. This module imports no numba.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BackendName = Literal["compiled", "numpy"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    """The backend in effect: its name, and for the compiled one the directory its kernels are
    cached in on disk (None: wherever numba caches by default, or nowhere when that directory
    was not writable)."""

    name: BackendName
    kernel_cache: Path | None = None

    @property
    def compiled(self) -> bool:
        return self.name == "compiled"


_lock = threading.Lock()
_active: Backend | None = None


def configure(backend: BackendName, cache_dir: Path | None = None) -> Backend:
    """Run the engine's passes on `backend` in this process from now on; the backend in effect.

    compiled: numba's settings for the kernels (worker.engine.accel.jit.apply_process_settings:
    a thread-safe threading layer, a short OpenMP spin, the full vector width on AVX-512 hosts;
    NUMBA_THREADING_LAYER, OMP_WAIT_POLICY, GOMP_SPINCOUNT and NUMBA_CPU_FEATURES set by the user
    win), made once per process, and with `cache_dir` the kernels' disk cache there (created if
    missing; a directory that cannot be written is warned about and leaves them uncached). Where
    numba does not import, the NumPy backend is what takes effect.
    numpy: every pass on NumPy, the path the kernels are tested against; numba is not imported.

    Call it before a kernel module is imported (the first kernel defined fixes numba's CPU
    features). Called again (tests and benchmarks comparing the two paths), it switches the
    backend; without `cache_dir` the kernels stay cached where they were.
    """
    global _active
    with _lock:
        _active = _compiled(cache_dir) if backend == "compiled" else Backend("numpy")
        return _active


def active() -> Backend:
    """The backend in effect; where nothing configured one, the compiled backend is configured
    now (numba's own cache directory), or NumPy where numba does not import."""
    global _active
    chosen = _active
    if chosen is None:
        with _lock:
            if _active is None:  # another thread may have configured while this one waited
                _active = _compiled(None)
            chosen = _active
    return chosen


def _compiled(cache_dir: Path | None) -> Backend:
    try:
        from worker.engine.accel import jit
    except ImportError as error:  # numba or llvmlite missing from this install
        _log.warning("numba does not import here (%s): the engine's passes run on NumPy", error)
        return Backend("numpy")
    jit.apply_process_settings()
    if cache_dir is not None:
        jit.use_cache_dir(cache_dir)
    return Backend("compiled", jit.cache_dir())

"""The engine's compiled kernels in the worker: the backend a worker process configures at its
start (fused_kernels), where numba caches the kernels (kernel_cache_dir), the warm-up before a
worker's first claim, and the "compiling kernels" phase of a job that waits for a compilation.

The subprocess tests start from a fresh process with a fresh cache directory: what numba holds in
memory or in its caches here says nothing about what a worker process finds. None of them
asserts a duration: a warm process is recognised by numba's own counts of loads from the disk
cache (hits) and compilations (misses).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numba import njit, prange

from service.db.session import Database
from service.jobs import service
from service.settings import Settings
from tests.worker.conftest import job_status, submit
from worker import compiled_kernels, train_job
from worker.context import Heartbeat
from worker.engine import accel
from worker.engine import train as engine_train
from worker.engine.accel import Backend, jit
from worker.runner import Worker

REPO = Path(__file__).resolve().parents[2]


def run_python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`script` in a fresh interpreter at the repository's root; its result must be 0."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.suffix in (".nbi", ".nbc"))


# ---- the setting ---------------------------------------------------------------------------------
def test_the_kernel_cache_defaults_to_kernels_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DESCENT_KERNEL_CACHE_DIR", raising=False)
    monkeypatch.setenv("DESCENT_DATA_DIR", str(tmp_path / "data"))
    assert Settings().kernel_cache_dir == tmp_path / "data" / "kernels"
    assert Settings(data_dir=tmp_path / "other").kernel_cache_dir == tmp_path / "other" / "kernels"

    monkeypatch.setenv("DESCENT_KERNEL_CACHE_DIR", "")  # set but empty: unset
    assert Settings().kernel_cache_dir == tmp_path / "data" / "kernels"
    monkeypatch.setenv("DESCENT_KERNEL_CACHE_DIR", str(tmp_path / "kernels"))
    assert Settings().kernel_cache_dir == tmp_path / "kernels"
    assert "kernel" in (Settings.model_fields["kernel_cache_dir"].description or "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("1", True), ("true", True), ("0", False), ("false", False), ("no", False),
     ("off", False)],
)  # fmt: skip
def test_descent_fused_kernels_chooses_the_backend(
    value: str | None, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DESCENT_FUSED_KERNELS", raising=False)
    if value is not None:
        monkeypatch.setenv("DESCENT_FUSED_KERNELS", value)
    assert Settings().fused_kernels is expected


# ---- where numba caches ------------------------------------------------------------------------
CACHE_TWO_KERNELS = """
    import json, sys
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    import before                      # a kernel defined before the cache directory is chosen
    from worker.engine import accel
    from worker.engine.accel import jit
    assert accel.configure("compiled", Path(sys.argv[1])).kernel_cache == Path(sys.argv[1])
    import after                       # and one defined after
    assert before.f(np.ones(3)) == 3.0 and after.g(np.ones(3)) == 6.0
    print(json.dumps({"stats": jit.cache_stats(),
                      "paths": [before.f.stats.cache_path, after.g.stats.cache_path]}))
"""


def test_the_cache_dir_holds_kernels_defined_before_and_after_it_is_chosen(tmp_path: Path) -> None:
    modules, cache = tmp_path / "modules", tmp_path / "cache" / "kernels"  # made if missing
    modules.mkdir()
    for name, fn, body in (("before", "f", "x.sum()"), ("after", "g", "2.0 * x.sum()")):
        source = f"from worker.engine.accel.jit import kernel\n\n\n@kernel\ndef {fn}(x):\n"
        (modules / f"{name}.py").write_text(source + f"    return {body}\n")

    first = json.loads(run_python(CACHE_TWO_KERNELS, str(cache), str(modules)).stdout)
    second = json.loads(run_python(CACHE_TWO_KERNELS, str(cache), str(modules)).stdout)

    assert all(Path(path).parent == cache.resolve() for path in first["paths"])
    assert len([name for name in cache_files(cache) if name.endswith(".nbi")]) == 2
    assert first["stats"] == [0, 2]  # (loads, compilations): both compiled, into `cache`
    assert second["stats"] == [2, 0]  # a new process loads both from there


def test_an_unwritable_cache_dir_warns_and_turns_the_disk_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(jit, "_disk_cache", True)  # restored after the test
    monkeypatch.setattr(jit, "_cache_dir", jit._cache_dir)
    configured = jit.numba_any.config.CACHE_DIR
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be made under a file, whoever we are

    with caplog.at_level(logging.WARNING, logger=jit.__name__):
        assert accel.configure("compiled", blocker / "kernels") == Backend("compiled", None)

    assert "not writable" in caplog.text and str(blocker / "kernels") in caplog.text
    assert jit._disk_cache is False  # kernels decorated from now on: no disk cache
    assert configured == jit.numba_any.config.CACHE_DIR  # unchanged


# ---- the warm-up ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fused_kernels", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("warm_up", [True, False])
def test_a_warming_worker_configures_the_backend_then_loads_the_kernels_before_its_first_claim(
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    warm_up: bool,
    fused_kernels: bool,
) -> None:
    settings = settings.model_copy(update={"fused_kernels": fused_kernels})
    job_id = submit(database, settings)
    calls: list[tuple[str, Any]] = []

    def configure(backend: accel.BackendName, cache_dir: Path | None) -> Backend:
        calls.append(("configure", (backend, cache_dir)))
        return Backend(backend, cache_dir if backend == "compiled" else None)

    def fake_warm_up(*_args: object) -> list[object]:
        with database.read() as session:
            calls.append(("warm up", job_status(session, job_id)))
        return []

    monkeypatch.setattr(accel, "configure", configure)  # the test process's backend stays
    monkeypatch.setattr(compiled_kernels, "warm_up", fake_warm_up)
    monkeypatch.setattr(compiled_kernels, "_helper", lambda *_args: None)
    worker = Worker(settings, warm_up=warm_up)

    assert worker.run(burst=True) == 1

    if warm_up and fused_kernels:
        # One loss's kernels, then the others' (which a helper process compiles meanwhile).
        warmed = [("warm up", "queued")] * 2
        assert calls == [("configure", ("compiled", settings.kernel_cache_dir)), *warmed]
        assert worker.warm_up_seconds is not None
    elif warm_up:  # the NumPy backend: nothing to warm up
        assert calls == [("configure", ("numpy", settings.kernel_cache_dir))]
        assert worker.warm_up_seconds == 0.0
    else:  # in-process workers leave their process's backend alone and compile on first use
        assert calls == [] and worker.warm_up_seconds is None
    worker.database.dispose()


def test_a_worker_that_has_to_compile_the_kernels_runs_jobs_meanwhile(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the warm-up finds it must compile (a machine's first start: nothing to load), it goes
    on in a thread while the worker claims and runs jobs: a job does not queue behind the
    compilation. The worker's run ends only once the warm-up has ended."""
    job_id = submit(database, settings)
    seen: list[str] = []

    @njit()  # made here: numba compiles it in this process, whatever it cached
    def fresh(x: Any) -> Any:
        return x + 1.0

    def compiling_until_the_job_is_done(*_args: object) -> list[object]:
        fresh(1.0)  # a compilation: the warm-up is slow
        for _ in range(300):  # then it lasts until the job is over (30 s at most)
            with database.read() as session:
                seen.append(job_status(session, job_id))
            if seen[-1] == "succeeded":
                break
            time.sleep(0.1)
        return []

    monkeypatch.setattr(accel, "configure", lambda *_args: Backend("compiled", None))
    monkeypatch.setattr(compiled_kernels, "warm_up", compiling_until_the_job_is_done)
    worker = Worker(settings, warm_up=True)

    assert worker.run(burst=True) == 1

    assert seen[-1] == "succeeded"  # the job ended while the warm-up went on
    assert worker.warm_up_seconds is not None  # run() returned after the warm-up ended
    worker.database.dispose()


WARM_UP = """
    import json, logging, sys
    from pathlib import Path
    from worker import compiled_kernels
    from worker.engine import accel
    from worker.engine.accel import jit
    logging.basicConfig(level=logging.INFO)
    slow = []
    compiled_kernels.prepare(
        accel.configure("compiled", Path(sys.argv[1])), 2, lambda: False, losses=("softmax",),
        dtypes=("float32",), slow=lambda: slow.append(1)
    )
    print(json.dumps([*jit.cache_stats(), len(slow) > 0]))
"""


def test_the_warm_up_compiles_into_the_cache_dir_and_a_restart_loads_from_it(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "kernels"

    first = run_python(WARM_UP, str(cache))
    files = cache_files(cache)
    second = run_python(WARM_UP, str(cache))

    loaded, compiled, slow = json.loads(first.stdout)
    assert compiled > 0 and loaded == 0
    assert slow  # it compiled: a worker claims jobs meanwhile
    assert any(name.startswith("fused_c10.softmax_gather_slabs") for name in files)
    assert any(name.startswith("fused_c10.softmax_slab_slabs") for name in files)
    assert "kernels warmed up" in first.stderr and f"from {cache}" in first.stderr
    loaded, compiled, slow = json.loads(second.stdout)
    assert compiled == 0 and loaded > 0
    assert not slow  # loads only: a worker's first claim waits for them
    assert cache_files(cache) == files


WARM_UP_TWO_LOSSES = WARM_UP.replace('losses=("softmax",)', 'losses=("softmax", "svm")')


def test_a_helper_process_compiles_the_other_losses_kernels_meanwhile(tmp_path: Path) -> None:
    """On an empty cache the worker compiles one loss's kernels while a helper process compiles
    the others' into the cache, from which the worker then loads them."""
    cache = tmp_path / "kernels"

    warmed = run_python(WARM_UP_TWO_LOSSES, str(cache))

    loaded, compiled, _ = json.loads(warmed.stdout)
    files = cache_files(cache)
    assert any(name.startswith("fused_c10.svm_gather_slabs") for name in files)
    assert any(name.startswith("fused_c10.softmax_gather_slabs") for name in files)
    assert compiled > 0  # the softmax kernels, here
    assert loaded > 0  # the SVM kernels, which the helper compiled


# ---- a job that waits for a compilation ----------------------------------------------------------
def test_a_job_waiting_for_a_compilation_shows_compiling_kernels_then_null(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    @njit(parallel=True)  # made here: numba compiles it in this process, whatever it cached
    def fresh(out: Any) -> None:
        for i in prange(out.shape[0]):
            out[i] = i

    engine_run = engine_train.run  # what worker.train_job calls

    def compile_then_run(*args: Any, **kwargs: Any) -> Any:
        fresh(np.zeros(4))
        return engine_run(*args, **kwargs)

    shown: list[str | None] = []  # the job's progress.phase in the API after each phase write
    renew_all = Heartbeat.renew_all

    def watched(self: Heartbeat, values: dict[str, Any]) -> None:
        renew_all(self, values)
        if "progress_phase" in values:
            with database.read() as session:
                job = service.get(session, self.leader.job_id)
                shown.append(service.to_out(job).progress.phase)

    monkeypatch.setattr(train_job, "run", compile_then_run)
    monkeypatch.setattr(Heartbeat, "renew_all", watched)
    job_id = submit(database, settings)
    worker = Worker(settings)  # not warmed up

    worker.run(burst=True)

    assert shown[:1] == [compiled_kernels.COMPILING]
    assert shown[1:] in ([], [None])  # the job may end before the next write: `finish` clears it
    with database.read() as session:
        job = service.to_out(service.get(session, job_id))
    assert job.status == "succeeded" and job.progress.phase is None
    worker.database.dispose()


# ---- one process fills an empty cache ------------------------------------------------------------
def _enter_in_thread(
    cache_dir: Path, stop: Any = lambda: False, waiting: Any = lambda: None
) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """A thread that takes its filling turn and holds it until `leave` is set: (entered, leave,
    the thread)."""
    entered, leave = threading.Event(), threading.Event()

    def take_turn() -> None:
        with compiled_kernels.filling_turn(cache_dir, stop, waiting):
            entered.set()
            leave.wait(30)

    thread = threading.Thread(target=take_turn)
    thread.start()
    return entered, leave, thread


def test_workers_wait_while_one_fills_an_empty_cache_then_load_side_by_side(
    tmp_path: Path,
) -> None:
    first_in, first_leave, first = _enter_in_thread(tmp_path)
    assert first_in.wait(5)
    second_waits = threading.Event()
    second_in, second_leave, second = _enter_in_thread(tmp_path, waiting=second_waits.set)
    assert not second_in.wait(0.6), "a second worker compiled while the first filled the cache"
    assert second_waits.is_set()  # said so: its worker claims jobs meanwhile
    (tmp_path / "kernel.nbi").write_bytes(b"")  # the first worker filled the cache
    first_leave.set()
    assert second_in.wait(5)
    # A filled cache is let go of at once: a third worker loads beside the second.
    third_in, third_leave, third = _enter_in_thread(tmp_path)
    assert third_in.wait(5)
    for leave, thread in ((second_leave, second), (third_leave, third)):
        leave.set()
        thread.join(5)
    first.join(5)


def test_a_stopping_worker_stops_waiting_for_its_turn(tmp_path: Path) -> None:
    first_in, first_leave, first = _enter_in_thread(tmp_path)
    assert first_in.wait(5)
    stopping = threading.Event()
    second_in, second_leave, second = _enter_in_thread(tmp_path, stopping.is_set)
    assert not second_in.wait(0.4)
    stopping.set()
    assert second_in.wait(5)
    for leave, thread in ((first_leave, first), (second_leave, second)):
        leave.set()
        thread.join(5)

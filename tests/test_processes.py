"""Worker processes of `descent serve`: they share the cores (BLAS threads per worker), and a
worker that dies is started again while /readyz says the service is short of workers."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service import processes
from service.app import create_app
from service.settings import Settings


@pytest.mark.parametrize(("cores", "workers", "threads"), [(2, 1, 2), (2, 2, 1), (2, 4, 1),
                                                            (8, 3, 2)])  # fmt: skip
def test_cores_are_divided_among_workers(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, threads: int
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cores)

    assert processes.blas_threads_per_worker(workers) == threads


SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def fast_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "RESTART_DELAY", 0.2)
    monkeypatch.setattr(processes, "SUPERVISE_SECONDS", 0.02)


@pytest.mark.usefixtures("fast_restarts")
def test_a_worker_process_that_dies_is_started_again() -> None:
    workers = processes.WorkerProcesses(2, command=SLEEPER)
    workers.start()
    try:
        assert wait_for(lambda: workers.running() == 2)
        victim = workers.children[0]
        victim.kill()  # as the OOM killer or kill -9 would
        victim.wait()

        assert workers.running() == 1
        assert wait_for(lambda: workers.running() == 2)
        assert workers.children[0].pid != victim.pid
        assert workers.restarts == 1
    finally:
        workers.stop(timeout=5)
    assert workers.running() == 0


@pytest.mark.usefixtures("fast_restarts")
def test_a_worker_that_keeps_dying_is_restarted_later_each_time() -> None:
    workers = processes.WorkerProcesses(1, command=[sys.executable, "-c", "raise SystemExit(3)"])
    workers.start()
    try:
        assert wait_for(lambda: workers.restarts >= 3)
        # 0.2 + 0.4 + 0.8 s between the deaths: the delay doubled each time.
        assert workers._slots[0].delay >= 1.6
    finally:
        workers.stop(timeout=5)


def test_stop_does_not_restart_the_workers_it_stops() -> None:
    workers = processes.WorkerProcesses(1, command=SLEEPER)
    workers.start()
    workers.stop(timeout=5)
    time.sleep(0.5)

    assert workers.running() == 0
    assert workers.restarts == 0


def test_readyz_is_503_while_fewer_workers_run_than_asked_for(
    settings: Settings,
) -> None:
    class Workers:
        count = 2
        alive = 1

        def running(self) -> int:
            return self.alive

    app = create_app(settings)
    with TestClient(app) as client:
        app.state.workers = Workers()
        short = client.get("/readyz")
        assert short.status_code == 503
        assert short.json()["detail"].startswith("1 of 2 worker processes run")
        app.state.workers.alive = 2
        assert client.get("/readyz").status_code == 200
        app.state.workers = None  # API only (or workers run elsewhere): the database decides
        assert client.get("/readyz").status_code == 200

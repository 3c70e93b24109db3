"""Worker child processes (`python -m worker`) started and stopped by `descent serve`.

The service starts workers as separate processes and never imports the worker runner itself.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

log = logging.getLogger("descent.processes")
PARENT_PID_ENV = "DESCENT_PARENT_PID"
BLAS_THREADS_ENV = "DESCENT_BLAS_THREADS"


def blas_threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def lower_priority(niceness: int) -> None:
    """Make this process at least `niceness` nice (never less nice than it already is).

    Linux sets a niceness per thread: call this before the process starts threads, which then
    inherit it (the worker does, first thing).
    """
    if niceness > 0 and os.getpriority(os.PRIO_PROCESS, 0) < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


def worker_command(*, burst: bool = False) -> list[str]:
    return [sys.executable, "-m", "worker", "--concurrency", "1", *(["--burst"] if burst else [])]


class WorkerProcesses:
    """N worker child processes; stop() forwards SIGTERM, then kills stragglers."""

    def __init__(self, count: int, *, burst: bool = False) -> None:
        self.count = count
        self.burst = burst
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        # Concurrent jobs must not oversubscribe the cores: share them among the workers.
        env.setdefault(BLAS_THREADS_ENV, str(blas_threads_per_worker(self.count)))
        for _ in range(self.count):
            self.children.append(subprocess.Popen(worker_command(burst=self.burst), env=env))
        log.info("started %d worker process(es)", self.count)

    def signal_all(self, signum: int) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every child to exit; False if some are still running after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for child in self.children:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                child.wait(remaining)
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, timeout: float = 30.0) -> None:
        self.signal_all(signal.SIGTERM)
        if not self.wait(timeout):
            log.warning("workers did not stop within %.0fs: killing them", timeout)
            self.signal_all(signal.SIGKILL)
            self.wait()

    @property
    def exit_codes(self) -> list[int | None]:
        return [child.returncode for child in self.children]

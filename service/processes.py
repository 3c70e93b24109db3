"""Worker child processes (`python -m worker`) started, supervised and stopped by `descent serve`.

The service starts workers as separate processes and never imports the worker runner itself. A
worker that dies (killed, out of memory, crashed) is started again after a delay that doubles
with each quick death, so a worker that cannot start does not spin; its job is not lost either
way: the lease it held expires and the job is reclaimed. `/readyz` reports the service not ready
while fewer workers run than were asked for.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("descent.processes")
PARENT_PID_ENV = "DESCENT_PARENT_PID"
BLAS_THREADS_ENV = "DESCENT_BLAS_THREADS"
RESTART_DELAY = 1.0  # seconds before a dead worker is started again, doubled after a quick death
MAX_RESTART_DELAY = 30.0
STABLE_SECONDS = 60.0  # a worker that lived this long died of something new: restart it promptly
SUPERVISE_SECONDS = 0.2  # how often the supervisor looks at its children


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
    """N worker child processes, restarted when they die; stop() forwards SIGTERM, then kills
    stragglers."""

    def __init__(
        self, count: int, *, burst: bool = False, command: list[str] | None = None
    ) -> None:
        self.count = count
        self.burst = burst
        self.command = command or worker_command(burst=burst)
        self.children: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self._started_at: list[float] = []
        self._delay: list[float] = []
        self._due: list[float | None] = []  # when a dead child is to be started again
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        # Concurrent jobs must not oversubscribe the cores: share them among the workers.
        env.setdefault(BLAS_THREADS_ENV, str(blas_threads_per_worker(self.count)))
        return subprocess.Popen(self.command, env=env)

    def start(self) -> None:
        with self._lock:
            for _ in range(self.count):
                self.children.append(self._spawn())
                self._started_at.append(time.monotonic())
                self._delay.append(RESTART_DELAY)
                self._due.append(None)
        log.info("started %d worker process(es)", self.count)
        if not self.burst:  # burst workers exit when the queue is empty: nothing to restart
            self._supervisor = threading.Thread(
                target=self._supervise, name="worker-supervisor", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_SECONDS):
            with self._lock:
                if self._stopping.is_set():
                    return
                for index, child in enumerate(self.children):
                    self._look_after(index, child)

    def _look_after(self, index: int, child: subprocess.Popen[bytes]) -> None:
        code = child.poll()
        if code is None:
            return
        now = time.monotonic()
        due = self._due[index]
        if due is None:
            lived = now - self._started_at[index]
            if lived >= STABLE_SECONDS:
                self._delay[index] = RESTART_DELAY
            delay = self._delay[index]
            self._due[index] = now + delay
            log.warning(
                "worker process %d exited with code %s after %.1fs: starting another in %.1fs",
                child.pid, code, lived, delay,
            )  # fmt: skip
        elif now >= due:
            replacement = self.children[index] = self._spawn()
            self._started_at[index] = now
            self._due[index] = None
            self._delay[index] = min(MAX_RESTART_DELAY, self._delay[index] * 2)
            self.restarts += 1
            log.info("worker process %d started in place of %d", replacement.pid, child.pid)

    def running(self) -> int:
        """How many worker processes are alive now."""
        with self._lock:
            return sum(child.poll() is None for child in self.children)

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
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        self.signal_all(signal.SIGTERM)
        if not self.wait(timeout):
            log.warning("workers did not stop within %.0fs: killing them", timeout)
            self.signal_all(signal.SIGKILL)
            self.wait()

    @property
    def exit_codes(self) -> list[int | None]:
        return [child.returncode for child in self.children]


_served: WorkerProcesses | None = None


def serve_with(workers: WorkerProcesses | None) -> None:
    """Record the workers `descent serve` runs beside the API in this process (for /readyz)."""
    global _served
    _served = workers


def served() -> WorkerProcesses | None:
    return _served

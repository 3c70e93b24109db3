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
from dataclasses import dataclass

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


@dataclass
class _Slot:
    """One worker the supervisor keeps running: its process, and when to replace it if it died."""

    process: subprocess.Popen[bytes]
    started_at: float
    delay: float = RESTART_DELAY  # before the next replacement; doubles after a quick death
    due: float | None = None  # when the dead process is replaced


class WorkerProcesses:
    """N worker child processes, restarted when they die; stop() forwards SIGTERM, then kills
    stragglers."""

    def __init__(
        self, count: int, *, burst: bool = False, command: list[str] | None = None
    ) -> None:
        self.count = count
        self.burst = burst
        self.command = command or worker_command(burst=burst)
        self.restarts = 0
        self._slots: list[_Slot] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    @property
    def children(self) -> list[subprocess.Popen[bytes]]:
        return [slot.process for slot in self._slots]

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        # Concurrent jobs must not oversubscribe the cores: share them among the workers.
        env.setdefault(BLAS_THREADS_ENV, str(blas_threads_per_worker(self.count)))
        return subprocess.Popen(self.command, env=env)

    def start(self) -> None:
        with self._lock:
            self._slots = [_Slot(self._spawn(), time.monotonic()) for _ in range(self.count)]
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
                for slot in self._slots:
                    self._look_after(slot)

    def _look_after(self, slot: _Slot) -> None:
        code = slot.process.poll()
        if code is None:
            return
        now = time.monotonic()
        if slot.due is None:
            lived = now - slot.started_at
            if lived >= STABLE_SECONDS:
                slot.delay = RESTART_DELAY
            slot.due = now + slot.delay
            log.warning(
                "worker process %d exited with code %s after %.1fs: starting another in %.1fs",
                slot.process.pid, code, lived, slot.delay,
            )  # fmt: skip
        elif now >= slot.due:
            dead, slot.process = slot.process, self._spawn()
            slot.started_at, slot.due = now, None
            slot.delay = min(MAX_RESTART_DELAY, slot.delay * 2)
            self.restarts += 1
            log.info("worker process %d started in place of %d", slot.process.pid, dead.pid)

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

"""Run worker processes: one in this process, or N children with signals forwarded to them.

Signals: the first SIGTERM/SIGINT asks a worker to stop claiming and hand its running job back at
the next step batch; a second one exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from service.processes import PARENT_PID_ENV, WorkerProcesses
from service.settings import Settings

log = logging.getLogger("descent.supervisor")


def run_single(settings: Settings, *, burst: bool) -> int:
    """Run one worker in this process until it is told to stop."""
    from worker.runner import Worker

    worker = Worker(settings, warm_up=True)  # a worker process: it readies the kernels
    signals_seen = 0

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second signal: exiting now")
            os._exit(128 + signum)
        log.info("signal %d: finishing up (send again to exit at once)", signum)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _watch_parent(worker.stopping)
    try:
        worker.run(burst=burst)
    finally:
        worker.database.dispose()
    return 0


def _watch_parent(stopping: threading.Event) -> None:
    """Stop when the process that started us (descent serve) is gone, so no worker is orphaned."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return

    def _watch() -> None:
        while not stopping.wait(1.0):
            if os.getppid() != int(parent):
                log.warning("parent process %s is gone: stopping", parent)
                stopping.set()

    threading.Thread(target=_watch, name="parent-watch", daemon=True).start()


def run_many(count: int, *, burst: bool) -> int:
    """Run `count` worker processes in the foreground, forwarding signals to them."""
    processes = WorkerProcesses(count, burst=burst)

    def _forward(signum: int, _frame: FrameType | None) -> None:
        processes.signal_all(signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    processes.start()
    processes.wait()
    return 0 if all(code == 0 for code in processes.exit_codes) else 1

"""Worker processes started the way `descent serve` starts them run niced (DESCENT_WORKER_NICE)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from service.processes import WorkerProcesses


def thread_niceness(pid: int) -> list[int]:
    """The niceness of every thread of a process (Linux keeps one per thread)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        found.append(int(fields[16]))  # field 19 of stat(5); the split starts at field 3
    return found


def once_running(pid: int, timeout: float = 30.0) -> list[int]:
    """The threads' niceness once the worker runs its loop: it has started its parent watcher,
    a second thread, which it does after setting its priority."""
    deadline = time.monotonic() + timeout
    while len(found := thread_niceness(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("setting", "niceness"), [(None, 10), ("4", 4), ("0", 0)])
def test_a_started_worker_lowers_its_own_priority(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    tmp_path: Path,
    setting: str | None,
    niceness: int,
) -> None:
    monkeypatch.setenv("DESCENT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DESCENT_DATA_DIR", str(tmp_path / "data"))
    if setting is None:  # the default
        monkeypatch.delenv("DESCENT_WORKER_NICE", raising=False)
    else:
        monkeypatch.setenv("DESCENT_WORKER_NICE", setting)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    workers = WorkerProcesses(1)
    workers.start()
    try:
        (child,) = workers.children
        found = once_running(child.pid)
        assert child.poll() is None
        assert len(found) >= 2
        assert set(found) == {max(ours, niceness)}  # at least that nice; 0 leaves it alone
    finally:
        workers.stop(timeout=30)
    assert os.getpriority(os.PRIO_PROCESS, 0) == ours  # the parent (the API) keeps its priority

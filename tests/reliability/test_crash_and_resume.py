"""Real worker processes killed mid-job: the job resumes elsewhere and ends bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from service.db.session import Database
from service.jobs import queue, service
from service.settings import Settings
from tests.reliability.conftest import (
    LONG_JOB,
    attempts,
    checkpoint_step,
    history,
    status,
    submit,
    wait_until,
    weights,
)
from worker.retry import in_transaction
from worker.runner import Worker

StartWorker = Callable[..., subprocess.Popen[bytes]]


def assert_same_as_uninterrupted(database: Database, settings: Settings, job_id: str) -> None:
    reference = submit(database, settings, LONG_JOB)
    with Worker(settings) as worker:
        worker.run(burst=True)

    assert status(database, reference) == "succeeded"
    resumed, straight = history(database, job_id), history(database, reference)
    assert len(resumed) == len(straight)
    assert resumed == straight
    np.testing.assert_array_equal(weights(database, job_id), weights(database, reference))


def _children(pid: int) -> list[int]:
    return [int(kid) for task in Path(f"/proc/{pid}/task").glob("*")
            for kid in (task / "children").read_text().split()]  # fmt: skip


def _running(pid: int) -> bool:
    """Alive and not a zombie (Linux /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_worker_killed_with_sigkill_loses_nothing_but_time(
    settings: Settings, database: Database, start_worker: StartWorker
) -> None:
    job_id = submit(database, settings, LONG_JOB)
    victim = start_worker()
    wait_until(lambda: checkpoint_step(database, job_id) > 0, what="a first checkpoint")
    # Its history writer (and multiprocessing's resource tracker, which starting it started).
    helpers = _children(victim.pid)
    assert helpers

    victim.kill()
    victim.wait()
    wait_until(lambda: not any(map(_running, helpers)), what="its helpers to exit with it")
    assert status(database, job_id) == "running"  # nobody has noticed yet
    rescuer = start_worker()
    wait_until(lambda: status(database, job_id) != "running", timeout=120, what="the job to end")

    assert status(database, job_id) == "succeeded"
    first, second = attempts(database, job_id)
    assert first.outcome is None  # that attempt died mid-run
    assert second.outcome == "succeeded"
    assert second.resumed_from is not None and second.resumed_from > 0
    rescuer.terminate()
    rescuer.wait()
    assert_same_as_uninterrupted(database, settings, job_id)


def test_a_worker_stopped_with_sigterm_hands_its_job_back(
    settings: Settings, database: Database, start_worker: StartWorker
) -> None:
    job_id = submit(database, settings, LONG_JOB)
    leaving = start_worker()
    wait_until(lambda: checkpoint_step(database, job_id) > 0, what="a first checkpoint")

    leaving.send_signal(signal.SIGTERM)

    assert leaving.wait(timeout=30) == 0
    assert status(database, job_id) == "queued"
    handed_back_at = checkpoint_step(database, job_id)
    assert handed_back_at > 0
    rescuer = start_worker()
    wait_until(lambda: status(database, job_id) != "queued", what="another worker to take it")
    wait_until(lambda: status(database, job_id) != "running", timeout=120, what="the job to end")

    assert status(database, job_id) == "succeeded"
    first, second = attempts(database, job_id)
    assert first.outcome == "queued"
    assert second.resumed_from == handed_back_at
    rescuer.terminate()
    rescuer.wait()
    assert_same_as_uninterrupted(database, settings, job_id)


def test_a_job_whose_workers_keep_dying_fails_as_worker_lost(
    settings: Settings, database: Database
) -> None:
    limited = settings.model_copy(update={"max_worker_losses": 2, "lease_seconds": -1.0})
    job_id = submit(database, settings, LONG_JOB)
    for owner in ("w1", "w2"):  # two claims whose workers vanish (their leases are already over)
        assert in_transaction(database, partial(queue.claim, owner=owner, lease_seconds=-1.0))

    with Worker(limited) as worker:
        worker.run(burst=True)

    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "failed"
        assert job.error is not None and job.error["type"] == "worker_lost"
        assert job.attempts == 2


def _writer_of(pid: int) -> int:
    """The worker's history writer process (its child running multiprocessing's spawn entry)."""
    for kid in _children(pid):
        command = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"multiprocessing.spawn" in command and b"resource_tracker" not in command:
            return kid
    raise AssertionError(f"worker {pid} has no history writer")


def test_a_killed_history_writer_costs_its_flush_not_the_job(
    settings: Settings, database: Database, start_worker: StartWorker
) -> None:
    job_id = submit(database, settings, LONG_JOB)
    worker = start_worker()
    wait_until(lambda: checkpoint_step(database, job_id) > 0, what="a first checkpoint")

    os.kill(_writer_of(worker.pid), signal.SIGKILL)
    wait_until(lambda: len(attempts(database, job_id)) >= 2, what="the job to be taken again")
    wait_until(lambda: status(database, job_id) != "running", timeout=120, what="the job to end")

    assert status(database, job_id) == "succeeded"
    first, second = attempts(database, job_id)[:2]
    assert first.outcome == "queued"  # handed back, not failed
    assert second.resumed_from is not None and second.resumed_from > 0
    worker.terminate()
    worker.wait()
    assert_same_as_uninterrupted(database, settings, job_id)

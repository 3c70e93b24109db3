from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy.orm import Session

from service.db.session import Database
from service.jobs import queue, service
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.runner import Worker


def submit(database: Database, settings: Settings, **overrides: Any) -> str:
    """Queue a small blobs job through the service layer, as POST /jobs would."""
    spec: dict[str, Any] = {
        "dataset": {"name": "blobs"},
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "batch_size": 16, "iterations": 50},
    }
    spec.update(overrides)
    with database.write() as session:
        job = service.submit(session, JobSpec.model_validate(spec), settings)
        session.commit()
        return job.id


def job_status(session: Session, job_id: str) -> str:
    return service.get(session, job_id).status


def internal_error(database: Database, failed_id: str, healthy_id: str) -> str:
    """The message of a job that failed with an internal_error beside one that succeeded (the
    worker went on)."""
    with database.read() as session:
        assert service.get(session, healthy_id).status == "succeeded"
        failed = service.get(session, failed_id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["type"] == "internal_error"
    return str(failed.error["message"])


def hand_back_after_a_checkpoint(database: Database, settings: Settings, *job_ids: str) -> None:
    """Run the jobs on a worker until each has a checkpoint past step 0, then stop that worker:
    the jobs are handed back to the queue, to be resumed from their checkpoints."""
    first = Worker(settings)
    thread = threading.Thread(target=first.run)
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        with database.read() as session:
            found = [queue.get_checkpoint(session, job_id) for job_id in job_ids]
        if all(checkpoint is not None and checkpoint.step > 0 for checkpoint in found):
            break
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.01)
    first.stopping.set()
    thread.join()
    first.close()
    with database.read() as session:
        assert {service.get(session, job_id).status for job_id in job_ids} == {"queued"}

"""The job queue's SQL: claim a job, renew its lease, store its arrays and checkpoints, end it.

The one place the queue's statements live; the worker runs them (worker.runner claims,
worker.context and worker.history_writer renew, write and finish). The API's own statements on
these tables (submit, cancel, delete) are in service.jobs.repository and service.jobs.service.

Every statement that touches a claimed job is guarded by `lease_owner = :owner`, so a worker that
lost its lease (the job was reclaimed elsewhere) can no longer write to it: the caller runs the
guarded lease renewal first in each transaction and rolls back if it matched nothing. The
statements stay in one module, longer than most, so that every guard can be checked in one read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

import numpy as np
from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.db.base import Base, utcnow
from service.db.models import Checkpoint, Job, JobArray, JobAttempt
from service.db.notify import job_queued
from service.history import writes


class LeaseLost(Exception):
    """Another worker holds the job now (our lease expired); stop touching it."""


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    spec: dict[str, Any]
    attempts: int
    created_at: datetime
    started_at: datetime
    progress_total: int  # what progress.step counts up to, set at submit
    sweep_id: str | None = None


def database_now(session: Session) -> datetime:
    """The database's clock, in UTC. Leases are set and compared on it, not on the worker's: with
    workers on several hosts, one whose clock is off by minutes would otherwise take jobs whose
    leases are live, or hold leases that lapse at once for everybody else."""
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.scalar(text("SELECT CURRENT_TIMESTAMP"))
        return value.astimezone(UTC)
    raw = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    return datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def _claimable(now: datetime) -> Any:
    return or_(
        Job.status == "queued",
        and_(Job.status == "running", Job.lease_expires_at < now),
    )


def fail_exhausted(session: Session, max_losses: int) -> int:
    """Fail jobs whose worker was lost (lease expired) for the `max_losses`-th time.

    Only lost workers count: a job handed back by a worker that shut down cleanly is not lost.
    """
    now = database_now(session)
    error = {
        "type": "worker_lost",
        "message": f"the worker running this job was lost {max_losses} time(s)",
    }
    stmt = (
        update(Job)
        .where(
            Job.status == "running",
            Job.lease_expires_at < now,
            Job.lost_count + 1 >= max_losses,
        )
        .values(
            status="failed",
            error=error,
            lost_count=Job.lost_count + 1,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def _claimed(now: datetime, owner: str, lease_seconds: float) -> dict[str, Any]:
    """What a claim sets on a job row."""
    return {
        "status": "running",
        "attempts": Job.attempts + 1,
        # Taking over a running job means its worker was lost.
        "lost_count": Job.lost_count + case((Job.status == "running", 1), else_=0),
        "lease_owner": owner,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "progress_phase": None,  # what a lost worker was waiting for is over
        "started_at": func.coalesce(Job.started_at, now),
        "updated_at": now,
    }


_RETURNED = (Job.id, Job.spec, Job.attempts, Job.created_at, Job.started_at, Job.progress_total,
             Job.sweep_id)  # fmt: skip


def _record(session: Session, rows: list[Any], owner: str, now: datetime) -> list[ClaimedJob]:
    """Each claimed row's attempt in job_attempts, and the rows as ClaimedJobs."""
    session.add_all(JobAttempt(job_id=row.id, attempt=row.attempts, worker=owner, started_at=now)
                    for row in rows)  # fmt: skip
    session.flush()
    return [ClaimedJob(**row._asdict()) for row in rows]


def claim(session: Session, owner: str, lease_seconds: float) -> ClaimedJob | None:
    """Claim the oldest queued job (or one whose lease expired) in one statement.

    PostgreSQL: the sub-select locks with FOR UPDATE SKIP LOCKED, so concurrent workers take
    different jobs. SQLite: the caller's transaction began with BEGIN IMMEDIATE, which serializes
    claims. The attempt is recorded in job_attempts, whose primary key (job, attempt) makes
    running the same attempt twice impossible.
    """
    now = database_now(session)
    candidate = (
        select(Job.id)
        .where(_claimable(now))
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Job)
        .where(Job.id == candidate)
        .values(**_claimed(now, owner, lease_seconds))
        .returning(*_RETURNED)
        .execution_options(synchronize_session=False)
    )
    row = session.execute(stmt).one_or_none()
    if row is None:
        return None
    return _record(session, [row], owner, now)[0]


def claim_companions(
    session: Session,
    owner: str,
    lease_seconds: float,
    leader: ClaimedJob,
    how_many: Callable[[int, int], int],
    joins: Callable[[dict[str, Any]], bool],
) -> list[ClaimedJob]:
    """Claim claimable trials of the leader's sweep (queued, or running with an expired lease:
    a population whose worker was lost is taken again as one) that can train with it: the spec
    passes `joins`, and the trial is at the leader's step (the same checkpoint step, or none for
    both). `how_many(found, running)` of the `found` ones, the first ones, where `running` counts
    the sweep's other trials running on a live lease that pass `joins`. In the leader's claim
    transaction; rows other workers hold are skipped."""
    if leader.sweep_id is None:
        return []
    now = database_now(session)
    others = session.execute(
        select(Job.spec).where(
            Job.sweep_id == leader.sweep_id,
            Job.status == "running",
            Job.lease_expires_at >= now,
            Job.id != leader.id,
        )
    ).scalars()
    running = sum(1 for spec in others if joins(spec))
    at_step = select(Checkpoint.step).where(Checkpoint.job_id == leader.id).scalar_subquery()
    leader_step = session.scalar(select(at_step))
    rows = session.execute(
        select(Job.id, Job.spec, Checkpoint.step)
        .outerjoin(Checkpoint, Checkpoint.job_id == Job.id)
        .where(Job.sweep_id == leader.sweep_id, _claimable(now), Job.id != leader.id)
        .order_by(Job.id)
        .with_for_update(skip_locked=True, of=Job)
    ).all()
    found = [row.id for row in rows if row.step == leader_step and joins(row.spec)]
    chosen = found[: how_many(len(found), running)]
    if not chosen:
        return []
    stmt = (
        update(Job)
        .where(Job.id.in_(chosen), _claimable(now))
        .values(**_claimed(now, owner, lease_seconds))
        .returning(*_RETURNED)
        .execution_options(synchronize_session=False)
    )
    claimed = sorted(session.execute(stmt).all(), key=lambda row: row.id)
    return _record(session, claimed, owner, now)


def has_claimable(session: Session) -> bool:
    stmt = select(Job.id).where(_claimable(database_now(session))).limit(1)
    return session.execute(stmt).first() is not None


class Renewal(NamedTuple):
    """One job's lease renewal in `renew_many`, and the columns set with it."""

    job_id: str
    owner: str
    lease_seconds: float
    values: Mapping[str, Any]


def renew_many(session: Session, renewals: Sequence[Renewal]) -> dict[str, bool]:
    """Renew these leases and set each one's `values` (the same columns for every job), in two
    statements whatever their number: one UPDATE run for every job (executemany), then one
    SELECT of the rows it renewed. Returns, for each job renewed, whether a cancel was requested;
    a job another worker holds now is absent (nothing of it is set)."""
    if not renewals:
        return {}
    columns = sorted(renewals[0].values)
    if any(sorted(r.values) != columns for r in renewals):
        raise ValueError("every renewal of one call must set the same columns")
    now = database_now(session)
    held_by_owner = and_(
        Job.id == bindparam("job"), Job.lease_owner == bindparam("owner"), Job.status == "running"
    )
    stmt = (
        update(cast(Table, Job.__table__))  # Core: an executemany, not the ORM's bulk update
        .where(held_by_owner)
        .values(
            lease_expires_at=bindparam("expires"),
            updated_at=now,
            **{column: bindparam(f"set_{column}") for column in columns},
        )
    )
    session.connection().execute(stmt, [
        {"job": r.job_id, "owner": r.owner, "expires": now + timedelta(seconds=r.lease_seconds),
         **{f"set_{column}": r.values[column] for column in columns}}
        for r in renewals
    ])  # fmt: skip
    owners = {r.job_id: r.owner for r in renewals}
    rows = session.execute(
        select(Job.id, Job.lease_owner, Job.cancel_requested).where(
            Job.id.in_(list(owners)), Job.status == "running"
        )
    )
    return {row.id: bool(row.cancel_requested) for row in rows if row.lease_owner == owners[row.id]}


def renew(session: Session, job_id: str, owner: str, lease_seconds: float, **values: Any) -> bool:
    """`renew_many` of one job; raises LeaseLost (and sets nothing) if another worker holds it
    now."""
    held = renew_many(session, [Renewal(job_id, owner, lease_seconds, values)])
    if job_id not in held:
        raise LeaseLost(job_id)
    return held[job_id]


def _upsert(session: Session, model: type[Base], values: dict[str, Any]) -> None:
    """Insert a row, or update every other column of the row with the same primary key.

    One statement where `session.merge` takes two (a SELECT, then an INSERT or an UPDATE).
    """
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    stmt = insert(model).values(values)
    keys = [column.name for column in inspect(model).primary_key]
    changed = {name: stmt.excluded[name] for name in values if name not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed))


def put_array(session: Session, job_id: str, name: str, array: np.ndarray, step: int) -> None:
    contiguous = np.ascontiguousarray(array)
    values = {"job_id": job_id, "name": name, "step": step, "dtype": str(contiguous.dtype),
              "shape": list(contiguous.shape), "data": contiguous.tobytes(),
              "updated_at": utcnow()}  # fmt: skip
    _upsert(session, JobArray, values)


def put_checkpoint(session: Session, job_id: str, attempt: int, step: int, payload: bytes) -> None:
    values = {"job_id": job_id, "step": step, "attempt": attempt, "payload": payload,
              "created_at": utcnow()}  # fmt: skip
    _upsert(session, Checkpoint, values)


def get_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    return session.get(Checkpoint, job_id)


def start_over(session: Session, job_id: str) -> None:
    """Drop what an earlier attempt wrote (its history, arrays and checkpoint), before the job
    starts again from step 0."""
    writes.reset_history(session, job_id)
    session.execute(delete(JobArray).where(JobArray.job_id == job_id))
    session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))


def record_resume(session: Session, job_id: str, attempt: int, step: int) -> None:
    session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == job_id, JobAttempt.attempt == attempt)
        .values(resumed_from=step)
    )


def end_attempt(session: Session, job_id: str, attempt: int, outcome: str) -> None:
    session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == job_id, JobAttempt.attempt == attempt)
        .values(outcome=outcome, ended_at=utcnow())
    )


def finish(session: Session, job_id: str, owner: str, status: str, **values: Any) -> bool:
    """Move a claimed job to a terminal state; False if this worker no longer holds it."""
    now = utcnow()
    if status == "succeeded":
        values.setdefault("progress_step", Job.progress_total)
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(
            status=status,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
            progress_phase=None,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
    return True


def losses(session: Session, job_id: str) -> int:
    """How many times the job's run was lost so far."""
    return int(session.scalar(select(Job.lost_count).where(Job.id == job_id)) or 0)


def release(session: Session, job_id: str, owner: str, *, lost: bool = False) -> bool:
    """Hand a job back to the queue for another worker to take at once: a worker shutting down,
    or one that `lost` part of the job's run (its writer process died), which counts towards
    max_worker_losses like a lost worker (fail_exhausted ends the job past them)."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(
            status="queued",
            lease_owner=None,
            lease_expires_at=None,
            progress_phase=None,
            lost_count=Job.lost_count + int(lost),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    released = session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
    if released:
        job_queued(session)
    return bool(released)

"""What the sweeps resource shows: a sweep's status, counts, best trial and leaderboard.

The summary (status, counts, best trial) comes from per-sweep aggregates computed in SQL, for a
page of sweeps (GET /sweeps, polled by the dashboard) as for one, so that its cost does not grow
with the trials; one sweep's leaderboard ranks the trials it lists anyway.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.orm import Session

from service.db.models import Sweep
from service.jobs.service import decode_cursor, encode_cursor
from service.sweeps import repository
from service.sweeps.repository import Trial
from service.sweeps.schemas import (
    MAXIMIZED,
    Counts,
    LeaderboardEntry,
    Ranked,
    SweepJob,
    SweepOut,
    SweepPage,
    SweepSummary,
)


def _value(trial: Trial, metric: str) -> float | None:
    value = trial.metrics.get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def status(sweep: Sweep, counts: Counts) -> str:
    if counts.queued or counts.running:
        started = counts.running or counts.succeeded or counts.failed or counts.pruned
        return "running" if started else "queued"
    if sweep.cancel_requested:
        return "cancelled"
    return "succeeded" if counts.succeeded else "failed"


def _ranked(sweep: Sweep, trials: list[Trial]) -> list[Ranked]:
    """Succeeded trials, best first by the sweep's metric (ties: the earlier trial)."""
    scored = [(t, v) for t in trials if t.status == "succeeded" and (v := _value(t, sweep.metric))
              is not None]  # fmt: skip
    sign = -1.0 if sweep.metric in MAXIMIZED else 1.0
    scored.sort(key=lambda pair: sign * pair[1])
    return [
        Ranked(
            job_id=t.id,
            params=t.params,
            value=v,
            val_accuracy=_value(t, "val_accuracy"),
            test_accuracy=_value(t, "test_accuracy"),
        )
        for t, v in scored
    ]


def _summary(
    sweep: Sweep, counts: Counts, best: Ranked | None, last_finished_at: datetime | None
) -> SweepSummary:
    state = status(sweep, counts)
    done = state in ("succeeded", "failed", "cancelled")
    return SweepSummary(
        id=sweep.id, name=sweep.name, status=state, method=sweep.method, metric=sweep.metric,
        n_trials=sweep.n_trials, counts=counts, best=best, created_at=sweep.created_at,
        finished_at=last_finished_at if done else None,
    )  # fmt: skip


def to_out(session: Session, sweep: Sweep) -> SweepOut:
    trials = repository.trials(session, sweep.id)
    leaderboard = [
        LeaderboardEntry(rank=i + 1, **entry.model_dump())
        for i, entry in enumerate(_ranked(sweep, trials))
    ]
    jobs = [
        SweepJob(id=t.id, status=t.status, params=t.params, metrics=t.metrics, error=t.error)
        for t in trials
    ]
    (summary,) = summaries(session, [sweep])
    return SweepOut(**summary.model_dump(), request=sweep.request, jobs=jobs,
                    leaderboard=leaderboard)  # fmt: skip


def summaries(session: Session, sweeps: list[Sweep]) -> list[SweepSummary]:
    """The summaries of these sweeps, from two aggregate reads over all their trials."""
    ids = [sweep.id for sweep in sweeps]
    tallies = repository.tallies(session, ids)
    leaders = repository.leaders(session, ids)
    items = []
    for sweep in sweeps:
        tally = tallies.get(sweep.id, repository.Tally({}, None))
        leader = leaders.get(sweep.id)
        best = None if leader is None else Ranked(**leader._asdict())
        items.append(_summary(sweep, Counts(**tally.counts), best, tally.last_finished_at))
    return items


def list_page(session: Session, *, cursor: str | None, limit: int) -> SweepPage:
    before = decode_cursor(cursor) if cursor else None
    sweeps = repository.page(session, before_id=before, limit=limit + 1)
    has_more = len(sweeps) > limit
    items = summaries(session, list(sweeps[:limit]))
    return SweepPage(items=items, next_cursor=encode_cursor(items[-1].id) if has_more else None)

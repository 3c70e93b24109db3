"""The rules of the sweeps resource: expand a space into trials, validate each like POST /jobs,
queue them as ordinary jobs, cancel them, and delete a finished sweep with its trials.

Drawing and validating trials is in sweeps.trials, what a sweep shows in sweeps.reads.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service import idempotency
from service.db.base import utcnow
from service.db.models import TERMINAL_STATUSES, Job, Sweep
from service.errors import Conflict, InvalidInput, NotFound
from service.ids import new_id
from service.jobs import budget
from service.jobs import repository as jobs_repository
from service.jobs import service as jobs_service
from service.jobs.service import ensure_queue_room
from service.settings import Settings
from service.sweeps import reads, repository, trials
from service.sweeps.halving import halving_problems
from service.sweeps.schemas import Counts, SweepRequest
from service.sweeps.trials import trial_name

SUBMIT_SCOPE = "POST /sweeps"  # the Idempotency-Key scope of submissions


def submit(session: Session, request: SweepRequest, settings: Settings) -> Sweep:
    base = request.base.model_dump(mode="json", exclude_unset=True)
    draws = trials.draw(request, settings)
    if len(draws) > settings.max_queued_jobs:  # would never fit: not worth a retry
        loc = trials.size_field(request)
        message = f"{len(draws)} trials; the queue holds at most {settings.max_queued_jobs} jobs"
        raise InvalidInput("The sweep is larger than the queue", [(loc, message)])
    problems = trials.unranked_problems(request, draws)
    if problems:
        raise InvalidInput("The sweep's trials would have nothing to rank them by", problems)
    checked = [trials.check(session, base, p, i, settings) for i, p in enumerate(draws)]
    if request.successive_halving is not None:
        problems = halving_problems(request.successive_halving, [spec for spec, _ in checked])
        if problems:
            raise InvalidInput("Successive halving cannot run on these trials", problems)
    points = sum(budget.history_points(spec) for spec, _ in checked)
    if points > settings.max_sweep_history_points:
        loc = trials.size_field(request)
        message = (
            f"its {len(checked)} trials would store {points} history points together, over the "
            f"{settings.max_sweep_history_points} allowed (DESCENT_MAX_SWEEP_HISTORY_POINTS): ask "
            "for fewer trials, or fewer points each (base.optimizer.iterations, base.log_every)"
        )
        raise InvalidInput("The sweep's trials would store too much history", [(loc, message)])
    ensure_queue_room(session, len(checked), settings)
    now = utcnow()
    stored = request.model_dump(mode="json")
    stored["base"] = base
    stored["space"] = {path: d.model_dump(mode="json", exclude_none=True)
                       for path, d in request.space.items()}  # fmt: skip
    sweep = Sweep(id=new_id(), name=request.name, method=request.method, metric=request.metric,
                  request=stored, n_trials=len(draws), cancel_requested=False,
                  created_at=now)  # fmt: skip
    jobs = [
        Job(
            id=new_id(),
            name=trial_name(spec.name or request.name, params),
            task=spec.task,
            status="queued",
            spec=c.stored_spec,
            dataset_ref=c.dataset_ref,
            progress_step=0,
            progress_total=c.total_steps,
            metrics={},
            timings={},
            attempts=0,
            cancel_requested=False,
            created_at=now,
            sweep_id=sweep.id,
            params=params,
        )
        for (spec, c), params in zip(checked, draws, strict=True)
    ]
    repository.add(session, sweep, jobs)
    return sweep


def get(session: Session, sweep_id: str, *, for_update: bool = False) -> Sweep:
    sweep = repository.get(session, sweep_id, for_update=for_update)
    if sweep is None:
        raise NotFound(f"No sweep with id {sweep_id!r}")
    return sweep


def _counts(session: Session, sweep_id: str) -> Counts:
    tally = repository.tallies(session, [sweep_id]).get(sweep_id)
    return Counts() if tally is None else Counts(**tally.counts)


def cancel(session: Session, sweep_id: str) -> Sweep:
    sweep = get(session, sweep_id, for_update=True)
    counts = _counts(session, sweep_id)
    if not (counts.queued or counts.running):
        raise Conflict(f"Sweep {sweep_id} has already finished ({reads.status(sweep, counts)})")
    sweep.cancel_requested = True
    jobs_repository.cancel(session, Job.sweep_id == sweep_id)
    session.flush()
    return sweep


def delete(session: Session, sweep_id: str) -> None:
    """Delete a finished sweep with its trials, each as DELETE /jobs/{id} deletes a job, and the
    Idempotency-Key that created it: a replay of that key then submits the sweep again."""
    sweep = get(session, sweep_id, for_update=True)
    held = jobs_repository.lock_for_delete(session, Job.sweep_id == sweep_id)
    live = [job for job in held if job.status not in TERMINAL_STATUSES]
    if live:
        raise Conflict(
            f"Sweep {sweep_id} has {len(live)} queued or running trial(s): cancel it first "
            f"(POST /sweeps/{sweep_id}/cancel), then delete it once they have stopped"
        )
    jobs_service.delete_finished(session, held, f"A trial of sweep {sweep_id}")
    repository.remove(session, sweep.id)
    idempotency.forget(session, SUBMIT_SCOPE, sweep_id)

"""The rules of the sweeps resource: expand a space into trials, validate each like POST /jobs,
queue them as ordinary jobs, and summarize them (status, leaderboard, best) when read."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import Job, Sweep
from service.errors import Conflict, InvalidInput, NotFound
from service.ids import new_id
from service.jobs import budget, validation
from service.jobs import repository as jobs_repository
from service.jobs.service import decode_cursor, encode_cursor, ensure_queue_room
from service.jobs.spec import JobSpec
from service.settings import Settings
from service.sweeps import repository, space
from service.sweeps.halving import halving_problems
from service.sweeps.repository import Trial
from service.sweeps.schemas import (
    MAXIMIZED,
    Counts,
    LeaderboardEntry,
    Ranked,
    SweepJob,
    SweepOut,
    SweepPage,
    SweepRequest,
    SweepSummary,
)

DEFAULT_RANDOM_TRIALS = 20
Problem = tuple[tuple[str | int, ...], str]


def _trial_params(request: SweepRequest, settings: Settings) -> list[dict[str, Any]]:
    problems: list[Problem] = list(space.space_problems(request.space, request.method))
    limit = settings.max_sweep_trials
    if not problems and request.method == "grid":
        size = space.grid_size(request.space)
        if size > limit:
            problems.append((("body", "space"), f"the grid has {size} points; at most {limit}"))
        elif request.trials is not None and request.trials != size:
            problems.append((("body", "trials"), f"a grid runs all its {size} points"))
    trials = request.trials or DEFAULT_RANDOM_TRIALS
    if request.method == "random" and trials > limit:
        problems.append((("body", "trials"), f"may not exceed {limit}"))
    if problems:
        raise InvalidInput("Invalid sweep space", problems)
    if request.method == "grid":
        return space.grid(request.space)
    return space.random(request.space, trials, request.seed)


def _locate(loc: tuple[Any, ...], msg: str, params: dict[str, Any], trial: int) -> Problem:
    path = space.swept_path(loc, list(params))
    if path is None:
        return (("body", "base", *loc), msg)
    return (("body", "space", path), f"trial {trial} ({path}={params[path]!r}): {msg}")


def _check_trial(
    session: Session, base: dict[str, Any], params: dict[str, Any], trial: int, settings: Settings
) -> tuple[JobSpec, validation.CheckedSpec]:
    """Validate one trial's spec exactly as POST /jobs would; 422 naming the path at fault."""
    try:
        spec = JobSpec.model_validate(space.apply(base, params))
    except ValidationError as exc:
        problems = [_locate(tuple(e["loc"]), e["msg"], params, trial) for e in exc.errors()]
        raise InvalidInput(f"Trial {trial} is not a valid job spec", problems) from None
    try:
        return spec, validation.check(session, spec, settings)
    except InvalidInput as exc:
        problems = [
            _locate(tuple(e["loc"][1:]), str(e["msg"]), params, trial)  # drop the leading "body"
            for e in exc.errors
        ]
        raise InvalidInput(f"Trial {trial}: {exc.detail}", problems) from None


NAME_MAX = 200  # jobs.name is a VARCHAR(200)


def trial_name(prefix: str | None, params: dict[str, Any]) -> str:
    """A trial's job name: the base job's (or the sweep's) name and its parameters, e.g.
    "svm grid: learning_rate=0.03, reg=0.1", so that the trials tell themselves apart in lists
    and comparisons."""
    label = ", ".join(
        f"{path.rsplit('.', 1)[-1]}={f'{value:.3g}' if isinstance(value, float) else value}"
        for path, value in params.items()
    )
    name = f"{prefix}: {label}" if prefix else label
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"


def _size_field(request: SweepRequest) -> tuple[str, str]:
    """The field that sets how many trials a sweep has."""
    return ("body", "trials") if request.method == "random" else ("body", "space")


def submit(session: Session, request: SweepRequest, settings: Settings) -> Sweep:
    base = request.base.model_dump(mode="json", exclude_unset=True)
    draws = _trial_params(request, settings)
    if len(draws) > settings.max_queued_jobs:  # would never fit: not worth a retry
        loc = _size_field(request)
        message = f"{len(draws)} trials; the queue holds at most {settings.max_queued_jobs} jobs"
        raise InvalidInput("The sweep is larger than the queue", [(loc, message)])
    checked = [_check_trial(session, base, p, i, settings) for i, p in enumerate(draws)]
    if request.successive_halving is not None:
        problems = halving_problems(request.successive_halving, [spec for spec, _ in checked])
        if problems:
            raise InvalidInput("Successive halving cannot run on these trials", problems)
    points = sum(budget.history_points(spec) for spec, _ in checked)
    if points > settings.max_sweep_history_points:
        loc = _size_field(request)
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


# ---- reading ---------------------------------------------------------------------------------
def _value(trial: Trial, metric: str) -> float | None:
    value = trial.metrics.get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _pruned(trial: Trial) -> bool:
    return trial.status == "cancelled" and (trial.error or {}).get("type") == "pruned"


def _counts(trials: list[Trial]) -> Counts:
    counts = Counts()
    for trial in trials:
        key = "pruned" if _pruned(trial) else trial.status
        setattr(counts, key, getattr(counts, key) + 1)
    return counts


def _status(sweep: Sweep, counts: Counts) -> str:
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


def _summary(sweep: Sweep, trials: list[Trial]) -> SweepSummary:
    counts = _counts(trials)
    status = _status(sweep, counts)
    ranked = _ranked(sweep, trials)
    finished = [t.finished_at for t in trials if t.finished_at is not None]
    done = status in ("succeeded", "failed", "cancelled")
    return SweepSummary(
        id=sweep.id, name=sweep.name, status=status, method=sweep.method, metric=sweep.metric,
        n_trials=sweep.n_trials, counts=counts, best=ranked[0] if ranked else None,
        created_at=sweep.created_at, finished_at=max(finished) if done and finished else None,
    )  # fmt: skip


def to_out(session: Session, sweep: Sweep) -> SweepOut:
    trials = repository.trials(session, [sweep.id])
    summary = _summary(sweep, trials)
    leaderboard = [
        LeaderboardEntry(rank=i + 1, **entry.model_dump())
        for i, entry in enumerate(_ranked(sweep, trials))
    ]
    jobs = [
        SweepJob(id=t.id, status=t.status, params=t.params, metrics=t.metrics, error=t.error)
        for t in trials
    ]
    return SweepOut(**summary.model_dump(), request=sweep.request, jobs=jobs,
                    leaderboard=leaderboard)  # fmt: skip


def list_page(session: Session, *, cursor: str | None, limit: int) -> SweepPage:
    before = decode_cursor(cursor) if cursor else None
    sweeps = repository.page(session, before_id=before, limit=limit + 1)
    has_more = len(sweeps) > limit
    sweeps = list(sweeps[:limit])
    by_sweep: dict[str, list[Trial]] = {sweep.id: [] for sweep in sweeps}
    for trial in repository.trials(session, list(by_sweep)):
        by_sweep[trial.sweep_id].append(trial)
    items = [_summary(sweep, by_sweep[sweep.id]) for sweep in sweeps]
    return SweepPage(items=items, next_cursor=encode_cursor(items[-1].id) if has_more else None)


def cancel(session: Session, sweep_id: str) -> Sweep:
    sweep = get(session, sweep_id, for_update=True)
    counts = _counts(repository.trials(session, [sweep.id]))
    if not (counts.queued or counts.running):
        raise Conflict(f"Sweep {sweep_id} has already finished ({_status(sweep, counts)})")
    sweep.cancel_requested = True
    jobs_repository.cancel(session, Job.sweep_id == sweep_id)
    session.flush()
    return sweep

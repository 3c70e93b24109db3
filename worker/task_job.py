"""Run the non-train tasks: gradient check, step-size sweep, loss landscape."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from service.db.models import JobArray
from service.jobs.spec import JobSpec
from worker.context import JobContext, Outcome
from worker.engine.byte_rows import as_float
from worker.engine.gradcheck import gradient_check
from worker.engine.landscape import landscape
from worker.engine.nonfinite import NonFinite
from worker.engine.stepsweep import step_size_sweep
from worker.prepared_data import PreparedData
from worker.training import loss_args


def json_safe(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become None (never served as JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _weights_of(context: JobContext, job_id: str) -> np.ndarray:
    with context.database.read() as session:
        stored = session.get(JobArray, (job_id, "W"))
        if stored is None:
            raise ValueError(f"job {job_id} has no weights")
        return np.frombuffer(stored.data, dtype=stored.dtype).reshape(stored.shape).copy()


class _Stopped(Exception):
    """The task was cancelled (or its worker is shutting down) between two of its blocks."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.status)
        self.outcome = outcome


class _Progress:
    """Called by a task between blocks of its work with the count done: writes it as the job's
    progress every flush interval, and stops the task when a cancel came or the worker stops."""

    def __init__(self, context: JobContext) -> None:
        self.context = context
        self.last = time.monotonic()

    def share(self, total: int) -> Callable[[float], None]:
        """For a task that reports the share of its work done: counted in `total` units."""
        return lambda done: self(int(done * total))

    def __call__(self, done: int) -> None:
        if time.monotonic() - self.last < self.context.settings.flush_seconds:
            return
        self.last = time.monotonic()
        if self.context.flush([], step=done, metrics={}):
            raise _Stopped(Outcome("cancelled"))
        if self.context.stopping.is_set():
            raise _Stopped(Outcome("queued"))  # a task starts over when it is taken again


def run_task(context: JobContext, data: PreparedData) -> Outcome:
    try:
        result = _result(context, data, context.spec)
    except NonFinite as exc:
        return Outcome("failed", {"error": {"type": "non_finite", "message": str(exc)}})
    except _Stopped as stopped:
        return stopped.outcome
    finally:
        context.settle()
    return Outcome("succeeded", {"result": json_safe(result)})


def _result(context: JobContext, data: PreparedData, spec: JobSpec) -> Any:
    """The task's result; its parameters are the spec's field named after it (the only task
    field the spec holds)."""
    # The tasks work on the whole float X: rows kept as bytes are decoded for the job.
    X, y, n_classes = as_float(data.X_train), data.y_train, data.n_classes
    progress = _Progress(context)
    common = loss_args(spec.model)
    if (check := spec.gradient_check) is not None:
        # progress.total counts the checks; they all come out of one pass over the data.
        return gradient_check(X, y, n_classes, num_checks=check.num_checks, h=check.h,
                              init_scale=check.init_scale,
                              progress=progress.share(context.claimed.progress_total),
                              seed=spec.seed, **common)  # fmt: skip
    if (sweep := spec.step_size_sweep) is not None:
        return step_size_sweep(X, y, n_classes, exponents=sweep.exponents,
                               init_scale=sweep.init_scale, progress=progress, seed=spec.seed,
                               **common)  # fmt: skip
    if (grid := spec.landscape) is not None:
        W = None if grid.around is None else _weights_of(context, grid.around).astype(X.dtype)
        return landscape(
            X, y, n_classes, dims=grid.dims, points=grid.points, span=grid.span, W=W,
            init_scale=grid.init_scale, examples=grid.examples, progress=progress, seed=spec.seed,
            **common,
        )  # fmt: skip
    raise ValueError(f"unknown task {spec.task!r}")

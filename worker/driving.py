"""Drive a chunked engine run: write each chunk, checkpoint when due, stop on cancel or shutdown."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import numpy as np

from service.history.writes import Points
from worker.context import JobContext, Outcome


class ChunkLike(Protocol):
    @property
    def done(self) -> bool: ...


C = TypeVar("C", bound=ChunkLike)


def drive(
    context: JobContext,
    chunks: Iterable[C],
    *,
    points_of: Callable[[C], list[Points]],
    metrics: Callable[[], dict[str, float]],
    step: Callable[[], int],
    snapshot: Callable[[], tuple[bytes, np.ndarray]],
    check: Callable[[], Outcome | None] | None = None,
) -> Outcome | None:
    """Consume `chunks`; None when the run completed, else the cancelled / handed-back Outcome.

    `snapshot()` returns (checkpoint bytes, W to serve from /weights); it is called only when a
    checkpoint is due, and always before a job is handed back. `check()`, after each written
    chunk but the last, may end the run early with an Outcome (a sweep's pruned trial).
    """
    try:
        for chunk in chunks:
            points = points_of(chunk)
            due = not chunk.done and context.checkpoint_due(step())
            checkpoint, weights = snapshot() if due else (None, None)
            cancel = context.flush(
                points, step=step(), metrics=metrics(), checkpoint=checkpoint, weights=weights
            )
            if cancel:
                return Outcome("cancelled", {"metrics": metrics()})
            if context.stopping.is_set() and not chunk.done:
                return Outcome("queued")
            if check is not None and not chunk.done:
                context.settle()  # check() reads this chunk's points back
                if (early := check()) is not None:
                    return early
        return None
    finally:
        # Whatever ends the run, its last write is done (or its error raised) before it ends.
        context.settle()


def finite_points(series: str, steps: np.ndarray, values: np.ndarray) -> Points:
    """The series' points, non-finite values left out (SQLite and JSON cannot hold them)."""
    keep = np.isfinite(values)
    return Points(series, steps[keep].tolist(), values[keep].tolist())

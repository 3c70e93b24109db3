"""Successive halving, worker side: stop a sweep's trial early when it falls behind at a rung.

The rule is service.sweeps.halving's. A trial's chunks end at its rungs, and the chunk that
reaches a rung has recorded the rung's val_accuracy (written by the time it is checked, so trials
running elsewhere see it): the trial is judged there against the values every trial of its sweep
has recorded at that rung so far, and a pruned one stops at the rung with that step's W and
metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from service.sweeps import repository as sweep_repository
from service.sweeps.halving import keeps, rungs
from worker.context import JobContext, Outcome

log = logging.getLogger("descent.worker")


class Pruner:
    def __init__(
        self,
        context: JobContext,
        sweep_id: str,
        eta: int,
        rung_steps: list[int],
        min_steps: int,
        *,
        step: Callable[[], int],
        weights: Callable[[], np.ndarray],
        metrics: Callable[[], dict[str, Any]],
    ) -> None:
        self.context, self.sweep_id, self.eta = context, sweep_id, eta
        self.rungs = list(rung_steps)
        # Chunks of min_steps steps end at every rung (rungs are multiples of it), so even a run
        # fast enough to be one chunk is checked at each rung, and stops there if pruned.
        self.chunk_steps = max(1, min_steps)
        self._step, self._weights, self._metrics = step, weights, metrics

    def _values_at(self, rung: int) -> dict[str, float]:
        with self.context.database.read() as session:
            return sweep_repository.values_at(session, self.sweep_id, "val_accuracy", rung)

    def check(self) -> Outcome | None:
        """None to go on; the pruned Outcome (W stored first) when the trial falls behind."""
        step = self._step()
        while self.rungs and self.rungs[0] <= step:
            rung = self.rungs.pop(0)
            values = self._values_at(rung)
            own = values.get(self.context.job_id)
            if own is None or keeps(own, list(values.values()), self.eta):
                continue
            ranked = sorted(values.values(), reverse=True)
            needed = ranked[max(1, len(ranked) // self.eta) - 1]
            message = (
                f"val_accuracy {own:.4f} at step {rung} is not in the top 1/{self.eta} of the "
                f"{len(values)} trials that reached this rung (needed {needed:.4f})"
            )
            log.info("job %s pruned: %s", self.context.job_id, message)
            self.context.put_arrays({"W": (self._weights(), step)})
            error = {"type": "pruned", "message": message, "step": rung}
            return Outcome("cancelled", {"metrics": self._metrics(), "error": error})
        return None


def pruner_for(
    context: JobContext,
    *,
    start: int,
    step: Callable[[], int],
    weights: Callable[[], np.ndarray],
    metrics: Callable[[], dict[str, Any]],
) -> Pruner | None:
    """A Pruner when this job is a trial of a sweep with successive halving, else None."""
    with context.database.read() as session:
        found = sweep_repository.sweep_of(session, context.job_id)
    if found is None:
        return None
    sweep_id, request = found
    options = request.get("successive_halving")
    if not options:
        return None
    iterations = context.spec.gradient_optimizer().iterations
    # A resumed trial already passed the rungs before its checkpoint.
    steps = [r for r in rungs(int(options["min_steps"]), int(options["eta"]), iterations)
             if r >= start]  # fmt: skip
    return Pruner(context, sweep_id, int(options["eta"]), steps, int(options["min_steps"]),
                  step=step, weights=weights, metrics=metrics)  # fmt: skip

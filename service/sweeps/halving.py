"""Successive halving for sweeps: the rule, shared by the API (validation) and the workers.

Asynchronous successive halving (ASHA-style, as a stopping rule): rung k is at step
min_steps·eta^k, for every rung below the trial's last step. When a trial records its
val_accuracy at a rung, it goes on only if that value is at least the ⌊n/eta⌋-th best (at least
the best when n < eta) of the n values recorded at that rung by the sweep's trials so far, itself
included. The first trial to reach a rung always goes on; later ones must beat the running
top 1/eta. A stopped trial ends `cancelled` with error.type `pruned` and keeps its history and the
weights it had. The decision is taken by the trial's worker when the step batch holding the rung
has been written (batches end at least every min_steps steps, so within min_steps steps of the
rung), against whatever the other trials have written by then: no trial waits for another.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.jobs.spec import JobSpec
from service.jobs.spec_optimizers import RandomLocalSearch, RandomSearch
from service.sweeps.schemas import SuccessiveHalving

Problem = tuple[tuple[str | int, ...], str]


def rungs(min_steps: int, eta: int, iterations: int) -> list[int]:
    """Rung steps min_steps·eta^k below the last step (iterations - 1)."""
    steps, step = [], min_steps
    while step < iterations - 1:
        steps.append(step)
        step *= eta
    return steps


def keeps(value: float, values: Sequence[float], eta: int) -> bool:
    """Whether a trial with `value` at a rung goes on; `values` are all recorded there (its own
    included)."""
    ranked = sorted(values, reverse=True)
    keep = max(1, len(ranked) // eta)
    return value >= ranked[keep - 1]


def halving_problems(options: SuccessiveHalving, specs: Sequence[JobSpec]) -> list[Problem]:
    """Why successive halving cannot run on these trials (empty when it can)."""
    loc = ("body", "successive_halving")
    for spec in specs:
        optimizer = spec.optimizer
        if (
            spec.task != "train"
            or optimizer is None
            or isinstance(optimizer, RandomSearch | RandomLocalSearch)
        ):
            return [(loc, "needs train jobs with a gradient-descent optimizer")]
        if spec.eval_every == 0 or options.min_steps % spec.eval_every:
            return [
                ((*loc, "min_steps"), f"must be a multiple of eval_every ({spec.eval_every}), "
                 "so that every rung has a val_accuracy")
            ]  # fmt: skip
    return []

"""What a population records of a stretch of steps: each member's losses, learning rates and
accuracies, as worker.engine.train.Chunk holds one run's."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import IntArray
from worker.engine.train import Chunk, Evaluation


@dataclass(frozen=True)
class PopulationEval:
    step: int
    train_accuracy: NDArray[np.float64]  # one per member in `members`
    val_accuracy: NDArray[np.float64]


@dataclass(frozen=True)
class PopulationChunk:
    """A stretch of steps of every member, as `train.Chunk` holds one run's.

    losses and learning_rates are (members, steps); `diverged` maps each member that left at a
    non-finite loss to (step, loss), its W left as it was when it made that loss (its history
    stops before that step). `predictions` (on the last chunk, with evaluation on) maps each
    member to its labels on train and val with the final W.
    """

    members: tuple[int, ...]
    steps: IntArray
    losses: NDArray[np.float64]
    learning_rates: NDArray[np.float64]
    evals: tuple[PopulationEval, ...]
    done: bool
    diverged: Mapping[int, tuple[int, float]] = field(default_factory=dict)
    predictions: Mapping[int, Mapping[str, IntArray]] | None = None

    def of(self, member: int) -> Chunk:
        """Member `member`'s share, as `train.run` would have yielded it for the run alone."""
        position = self.members.index(member)
        kept = ~np.isnan(self.losses[position])
        evals = tuple(
            Evaluation(e.step, float(e.train_accuracy[position]), float(e.val_accuracy[position]))
            for e in self.evals
            if not np.isnan(e.val_accuracy[position]) or not np.isnan(e.train_accuracy[position])
        )
        predictions = None if self.predictions is None else self.predictions.get(member)
        rates = self.learning_rates[position][kept]
        return Chunk(self.steps[kept], self.losses[position][kept], rates, evals, self.done,
                     predictions)  # fmt: skip


class ChunkRecord:
    """What a chunk has recorded so far, for the members it started with (NaN where a member
    had left)."""

    def __init__(self, members: tuple[int, ...]) -> None:
        self.members = members
        self.steps: list[int] = []
        self.losses: list[NDArray[np.float64]] = []
        self.learning_rates: list[NDArray[np.float64]] = []
        self.evals: list[PopulationEval] = []
        self.diverged: dict[int, tuple[int, float]] = {}
        self.predictions: dict[int, dict[str, IntArray]] | None = None

    def spread(self, values: NDArray[np.float64], current: list[int]) -> NDArray[np.float64]:
        out = np.full(len(self.members), np.nan)
        out[[self.members.index(m) for m in current]] = values
        return out

    def add_step(self, step: int, losses: NDArray[np.float64], lrs: NDArray[np.float64],
                 current: list[int]) -> None:  # fmt: skip
        self.steps.append(step)
        self.losses.append(self.spread(losses, current))
        self.learning_rates.append(self.spread(lrs, current))

    def add_eval(self, result: PopulationEval, current: list[int]) -> None:
        self.evals.append(PopulationEval(result.step, self.spread(result.train_accuracy, current),
                                         self.spread(result.val_accuracy, current)))  # fmt: skip

    def finish(self, done: bool) -> PopulationChunk:
        shape = (len(self.steps), len(self.members))
        return PopulationChunk(
            members=self.members,
            steps=np.array(self.steps, dtype=np.int64),
            losses=np.array(self.losses, dtype=np.float64).reshape(shape).T.copy(),
            learning_rates=np.array(self.learning_rates, dtype=np.float64).reshape(shape).T.copy(),
            evals=tuple(self.evals),
            done=done,
            diverged=self.diverged,
            predictions=self.predictions,
        )

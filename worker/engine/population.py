"""Minibatch gradient descent for K runs at once that differ only in learning rate and reg.

The course's search over learning rates and regularization strengths trains one recipe per
pair: the same data, the same initial W (same seed) and the same minibatches (the same
Generator), so only lr and reg tell the runs apart. Stacked side by side, the K weight matrices
take one step together: the minibatch is read once, the scores of every run are one product of
K*C columns, and every run's gradient is one more. A run of the population follows the same path
as the run alone (`worker.engine.train.run`), up to the rounding of these wider products.

Layout: the population's weights are Wt (D, K*C) in Fortran order, run k's W (C, D) being
scales[k] * Wt[:, k*C:(k+1)*C].T (a contiguous block), so that both products read and write
contiguous blocks (S = Xb @ Wt, Wt += Xb.T @ dS). The positive factor per run carries plain SGD's
weight decay, W <- (1 - 2 lr reg) W - lr dW: the step multiplies a run's factor instead of every
entry of its W, and adds its data gradient into Wt inside the product (population_steps). A member
leaves the population (`remove`) when it diverges or its job stops early; the others go on.
"""

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray
from worker.engine.optimizers import RuleState
from worker.engine.population_chunks import ChunkRecord, PopulationChunk
from worker.engine.population_steps import PopulationSteps
from worker.engine.train import TrainData, TrainState
from worker.engine.train_config import TrainConfig


def shared_part(config: TrainConfig) -> TrainConfig:
    """What runs of one population must share: the config with its learning rate and reg set
    aside."""
    return replace(config, learning_rate=1.0, reg=0.0)


def can_share_steps(config: TrainConfig) -> bool:
    """Whether a run can train in a population: analytic gradients (a numerical one costs a
    pass per entry of W, which no wider product helps)."""
    return config.gradient == "analytic"


@dataclass
class Population:
    """The runs training together: their configs, which of them are still in, and their state.

    `members` are the indices (into `configs`) of the runs still training, in the order of their
    column blocks in `Wt` and of their factors in `scales` (float64); the rule's state arrays of
    W's shape share Wt's layout.
    """

    configs: Sequence[TrainConfig]
    n_classes: int
    Wt: FloatArray
    scales: NDArray[np.float64]
    rule_state: RuleState
    rng: np.random.Generator
    step: int = 0
    members: list[int] = field(default_factory=list)

    def columns(self, member: int) -> slice:
        position = self.members.index(member)
        return slice(position * self.n_classes, (position + 1) * self.n_classes)

    def member_state(self, member: int) -> TrainState:
        """Member `member`'s state as a run alone holds it (copies): W (C, D), its rule state,
        and the population's Generator and step."""
        cols = self.columns(member)
        rule_state = {
            key: value[:, cols].T.copy() if value.shape == self.Wt.shape else value.copy()
            for key, value in self.rule_state.items()
        }  # fmt: skip
        scale = self.scales[self.members.index(member)]
        W = self.Wt[:, cols].T.copy()  # C-ordered, as the block is
        if scale != 1.0:
            W *= W.dtype.type(scale)
        rng = np.random.default_rng()
        rng.bit_generator.state = self.rng.bit_generator.state
        return TrainState(W=W, rule_state=rule_state, rng=rng, step=self.step)

    def member_unscaled(self, member: int) -> tuple[FloatArray, float]:
        """Member `member`'s W as the population holds it: its block (C, D) (a copy) and its
        factor. A population started from these (`from_states`) continues bit for bit, which
        one started from member_state's W (the product, rounded) would not."""
        return self.Wt[:, self.columns(member)].T.copy(), float(
            self.scales[self.members.index(member)]
        )

    def remove(self, leaving: Sequence[int]) -> None:
        """Take these members out; the others keep training."""
        gone = set(leaving)
        if not gone:
            return
        C, width = self.n_classes, self.Wt.shape
        keep = [position for position, member in enumerate(self.members) if member not in gone]
        cols = np.concatenate([np.arange(p * C, (p + 1) * C) for p in keep] or [np.arange(0)])
        self.rule_state = {
            key: np.asfortranarray(value[:, cols]) if value.shape == width else value
            for key, value in self.rule_state.items()
        }
        self.Wt = np.asfortranarray(self.Wt[:, cols])
        self.scales = self.scales[keep]
        self.members = [self.members[p] for p in keep]


def check_configs(configs: Sequence[TrainConfig]) -> None:
    """Raise ValueError unless the configs can train as one population."""
    if not configs:
        raise ValueError("a population needs at least one run")
    shared = shared_part(configs[0])
    for config in configs:
        if shared_part(config) != shared:
            raise ValueError("runs of a population may differ only in learning_rate and reg")
        if not can_share_steps(config):
            raise ValueError("runs with numerical gradients train alone")


def from_states(
    configs: Sequence[TrainConfig],
    states: Sequence[TrainState],
    unscaled: Sequence[tuple[FloatArray, float]] | None = None,
) -> Population:
    """The population of these runs, each at its own state (all at the same step, with the same
    Generator state: fresh runs of one seed, or checkpoints of one population). `unscaled`, one
    per run (`Population.member_unscaled` of a checkpointed population), replaces the states'
    W."""
    check_configs(configs)
    if len(states) != len(configs) or (unscaled is not None and len(unscaled) != len(configs)):
        raise ValueError("one state per config")
    first = states[0]
    for state in states:
        if state.step != first.step or state.W.shape != first.W.shape:
            raise ValueError("the runs of a population must be at the same step, with one shape")
        if state.rng.bit_generator.state != first.rng.bit_generator.state:
            raise ValueError("the runs of a population must share their Generator's state")
    blocks = [state.W for state in states] if unscaled is None else [W for W, _ in unscaled]
    if any(W.shape != first.W.shape or W.dtype != first.W.dtype for W in blocks):
        raise ValueError("the runs' W must share a shape and dtype")
    # Run k's W (C, D) is the k-th block of rows of the stack: its transpose is Wt in Fortran order.
    Wt = np.concatenate(blocks, axis=0).T
    scales = np.ones(len(configs)) if unscaled is None else np.array([s for _, s in unscaled])
    rule_state: RuleState = {}
    for key, value in first.rule_state.items():
        if value.shape == first.W.shape:
            rule_state[key] = np.concatenate([state.rule_state[key] for state in states]).T
        else:  # shared by every member (Adam's step count)
            rule_state[key] = value.copy()
    return Population(
        configs=configs, n_classes=first.W.shape[0], Wt=Wt, scales=scales,
        rule_state=rule_state, rng=first.rng, step=first.step, members=list(range(len(configs))),
    )  # fmt: skip


def run_population(
    population: Population,
    data: TrainData,
    *,
    chunk_steps: int = 1000,
    chunk_seconds: float | None = None,
) -> Generator[PopulationChunk, None, None]:
    """Train every member from `population.step` to the runs' iterations, yielding a
    PopulationChunk where `train.run` yields a Chunk (multiples of `chunk_steps`, and after
    `chunk_seconds`).

    Between chunks the caller may `population.remove` members (cancelled, pruned); a member
    whose loss turns non-finite is taken out here and reported in the chunk's `diverged`.
    The history follows `train.run`'s: the loss and learning rate of every `log_every`-th step
    and of the last, accuracies at step 0 and every `eval_every` steps on the evaluation rows,
    and at the last step on every row with the final W.
    """
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
    steps = PopulationSteps(population, data)
    config = steps.config
    last, log_every, eval_every = config.iterations - 1, config.log_every, config.eval_every
    while population.members:
        members = tuple(population.members)
        chunk = ChunkRecord(members)
        stop = min((population.step // chunk_steps + 1) * chunk_steps, config.iterations)
        deadline = None if chunk_seconds is None else time.perf_counter() + chunk_seconds
        prefetched = False
        with np.errstate(all="ignore"):
            while population.step < stop and population.members:
                # A prefetched step always runs, so a chunk never ends with the Generator one
                # batch ahead of population.step (as in train.run).
                past_deadline = deadline is not None and time.perf_counter() >= deadline
                if not prefetched and past_deadline and chunk.steps:
                    break
                step, current = population.step, list(population.members)
                if eval_every and step == 0 and step != last:
                    chunk.add_eval(steps.evaluate(population, 0, every_row=False)[0], current)
                prefetched = step + 1 < stop and not past_deadline
                losses, lrs = steps.step(population, prefetch_next=prefetched)
                finite = np.isfinite(losses)
                if step % log_every == 0 or step == last:
                    # A member's history stops before the step of its non-finite loss.
                    chunk.add_step(step, np.where(finite, losses, np.nan),
                                   np.where(finite, lrs, np.nan), current)  # fmt: skip
                if not finite.all():
                    bad = [m for m, ok in zip(current, finite, strict=True) if not ok]
                    chunk.diverged.update(
                        {m: (step, float(value)) for m, value, ok
                         in zip(current, losses, finite, strict=True) if not ok}
                    )  # fmt: skip
                    population.remove(bad)
                    current = list(population.members)
                    if not current:
                        steps.sampler.cancel_prefetch()  # the population ends here
                        break
                if eval_every and population.step % eval_every == 0 and population.step < last:
                    chunk.add_eval(
                        steps.evaluate(population, population.step, every_row=False)[0], current
                    )
                if step == last and eval_every:
                    # Step `last` with the final W, as `train.run` records it.
                    final, labels = steps.evaluate(population, last, every_row=True)
                    chunk.add_eval(final, current)
                    chunk.predictions = {
                        member: {split: labels[split][:, position] for split in labels}
                        for position, member in enumerate(current)
                    }
        done = population.step >= config.iterations or not population.members
        yield chunk.finish(done)
        if done:
            return

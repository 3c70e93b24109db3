"""Minibatch gradient descent for K runs at once that differ only in learning rate and reg.

The course's search over learning rates and regularization strengths trains one recipe per
pair: the same data, the same initial W (same seed) and the same minibatches (the same
Generator), so only lr and reg tell the runs apart. Stacked side by side, the K weight matrices
take one step together: the minibatch is read once, the scores of every run are one product of
K*C columns, and every run's gradient is one more. A run of the population follows the same path
as the run alone (`worker.engine.train.run`), up to the rounding of these wider products.

Layout: the population's weights are Wt (D, K*C), run k's W (C, D) being Wt[:, k*C:(k+1)*C].T,
so that both products write contiguous blocks (S = Xb @ Wt, G = Xb.T @ dS). A member leaves the
population (`remove`) when it diverges or its job stops early; the others go on.
"""

import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.metrics import eval_split
from worker.engine.optimizers import SGD, RuleState
from worker.engine.population_loss import data_losses
from worker.engine.sampling import BatchSampler
from worker.engine.train import Chunk, Evaluation, TrainData, TrainState
from worker.engine.train_config import TrainConfig

# Rows scored per product when a population predicts a whole split, which bounds the scores'
# memory (rows x K*C) whatever the split's size.
PREDICT_ROWS = 4096


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
    column blocks in `Wt`; the rule's state arrays of W's shape share Wt's layout.
    """

    configs: Sequence[TrainConfig]
    n_classes: int
    Wt: FloatArray
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
            key: (np.ascontiguousarray(value[:, cols].T) if value.shape == self.Wt.shape
                  else value.copy())
            for key, value in self.rule_state.items()
        }  # fmt: skip
        W = np.ascontiguousarray(self.Wt[:, cols].T)
        rng = np.random.default_rng()
        rng.bit_generator.state = self.rng.bit_generator.state
        return TrainState(W=W, rule_state=rule_state, rng=rng, step=self.step)

    def remove(self, leaving: Sequence[int]) -> None:
        """Take these members out; the others keep training."""
        gone = set(leaving)
        if not gone:
            return
        C, width = self.n_classes, self.Wt.shape
        keep = [position for position, member in enumerate(self.members) if member not in gone]
        cols = np.concatenate([np.arange(p * C, (p + 1) * C) for p in keep] or [np.arange(0)])
        self.rule_state = {
            key: np.ascontiguousarray(value[:, cols]) if value.shape == width else value
            for key, value in self.rule_state.items()
        }
        self.Wt = np.ascontiguousarray(self.Wt[:, cols])
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


def from_states(configs: Sequence[TrainConfig], states: Sequence[TrainState]) -> Population:
    """The population of these runs, each at its own state (all at the same step, with the same
    Generator state: fresh runs of one seed, or checkpoints of one population)."""
    check_configs(configs)
    if len(states) != len(configs):
        raise ValueError("one state per config")
    first = states[0]
    for state in states:
        if state.step != first.step or state.W.shape != first.W.shape:
            raise ValueError("the runs of a population must be at the same step, with one shape")
        if state.rng.bit_generator.state != first.rng.bit_generator.state:
            raise ValueError("the runs of a population must share their Generator's state")
    Wt = np.ascontiguousarray(np.concatenate([state.W.T for state in states], axis=1))
    rule_state: RuleState = {}
    for key, value in first.rule_state.items():
        if value.shape == first.W.shape:
            rule_state[key] = np.ascontiguousarray(
                np.concatenate([state.rule_state[key].T for state in states], axis=1)
            )
        else:  # shared by every member (Adam's step count)
            rule_state[key] = value.copy()
    return Population(
        configs, first.W.shape[0], Wt, rule_state, first.rng, first.step, list(range(len(configs)))
    )


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


def predict_all(Wt: FloatArray, X: FloatArray, n_classes: int) -> IntArray:
    """Each member's highest-scoring class per row: (N, members), int64, in blocks of rows."""
    n_rows, members = X.shape[0], Wt.shape[1] // n_classes
    labels = np.empty((n_rows, members), dtype=np.int64)
    for start in range(0, n_rows, PREDICT_ROWS):
        scores = np.asarray(X[start : start + PREDICT_ROWS]) @ Wt
        stop = start + scores.shape[0]
        labels[start:stop] = scores.reshape(-1, members, n_classes).argmax(axis=2)
    return labels


def _accuracies(labels: IntArray, y: IntArray) -> NDArray[np.float64]:
    if labels.shape[0] == 0:
        return np.full(labels.shape[1], np.nan)
    hits: NDArray[np.float64] = (labels == np.asarray(y)[:, np.newaxis]).mean(axis=0)
    return hits


class _Steps:
    """The population's fixed parts and its step."""

    def __init__(self, population: Population, data: TrainData) -> None:
        config = population.configs[0]
        self.config, self.data = config, data
        self.loss_name = config.make_loss().name
        self.rule = config.make_rule()
        self.plain_sgd = isinstance(self.rule, SGD)
        self._buffer: FloatArray | None = None
        self.schedules = [c.make_schedule() for c in population.configs]
        self.regs = np.array([c.reg for c in population.configs])
        self.sampler = BatchSampler(
            data.X_train, data.y_train, config.batch_size, config.sampling, config.seed
        )
        sample = config.eval_sample if config.eval_every else None
        self.eval_train = eval_split(data.X_train, data.y_train, sample)
        self.eval_val = eval_split(data.X_val, data.y_val, sample)

    def _product(self, Wt: FloatArray) -> FloatArray:
        """A buffer of Wt's shape for the gradient's product, kept from step to step (a fresh
        one each step would be mapped in afresh by the kernel, page by page)."""
        if self._buffer is None or self._buffer.shape != Wt.shape or self._buffer.dtype != Wt.dtype:
            self._buffer = np.empty_like(Wt)
        return self._buffer

    def step(self, population: Population) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """One update of every member; the members' losses (before it) and learning rates. A
        member whose loss is not finite gets a W of no use: the caller takes it out."""
        members, C = population.members, population.n_classes
        X_batch, y_batch = self.sampler.batch(population.step, population.rng)
        X_batch, n_rows = np.asarray(X_batch), X_batch.shape[0]
        lrs = np.array([self.schedules[m](population.step) for m in members])
        regs = self.regs[members]
        Wt, dtype = population.Wt, population.Wt.dtype
        S = X_batch @ Wt
        # S becomes each member's score gradient dS, in place.
        losses = data_losses(self.loss_name, self.config.delta, S, y_batch, C)
        # In W's dtype, as a run alone sums its reg term (which then overflows at the same W).
        squares = np.einsum("ij,ij->j", Wt, Wt).reshape(-1, C).sum(axis=1)
        losses = losses / n_rows + regs * squares
        if self.plain_sgd:
            # W -= lr (dS.T X / N + 2 reg W): W decays by 1 - 2 lr reg, then takes the product
            # of X with dS scaled by -lr / N per member.
            S *= np.repeat(-lrs / n_rows, C).astype(dtype)
            if regs.any():
                Wt *= np.repeat(1.0 - 2.0 * lrs * regs, C).astype(dtype)
            Wt += np.matmul(X_batch.T, S, out=self._product(Wt))
        else:
            S *= dtype.type(1.0 / n_rows)
            G = np.matmul(X_batch.T, S, out=self._product(Wt))
            G += np.repeat(2.0 * regs, C).astype(dtype) * Wt
            lr_columns = np.repeat(lrs, C).astype(dtype)
            population.Wt, population.rule_state = self.rule.update(
                G,
                population.rule_state,
                Wt,
                lr_columns,  # type: ignore[arg-type]
            )
        population.step += 1
        return losses, lrs

    def evaluate(self, population: Population, step: int, *, every_row: bool) -> tuple[
        PopulationEval, dict[str, IntArray]
    ]:  # fmt: skip
        C = population.n_classes
        (X_t, y_t), (X_v, y_v) = (
            ((self.data.X_train, self.data.y_train), (self.data.X_val, self.data.y_val))
            if every_row
            else (self.eval_train, self.eval_val)
        )
        labels = {"train": predict_all(population.Wt, X_t, C),
                  "val": predict_all(population.Wt, X_v, C)}  # fmt: skip
        result = PopulationEval(
            step, _accuracies(labels["train"], y_t), _accuracies(labels["val"], y_v)
        )
        return result, labels


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
    steps = _Steps(population, data)
    config = steps.config
    last, log_every, eval_every = config.iterations - 1, config.log_every, config.eval_every
    while population.members:
        members = tuple(population.members)
        chunk = _ChunkRecord(members)
        stop = min((population.step // chunk_steps + 1) * chunk_steps, config.iterations)
        deadline = None if chunk_seconds is None else time.perf_counter() + chunk_seconds
        with np.errstate(all="ignore"):
            while population.step < stop and population.members:
                if deadline is not None and chunk.steps and time.perf_counter() >= deadline:
                    break
                step, current = population.step, list(population.members)
                if eval_every and step == 0 and step != last:
                    chunk.add_eval(steps.evaluate(population, 0, every_row=False)[0], current)
                losses, lrs = steps.step(population)
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


class _ChunkRecord:
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

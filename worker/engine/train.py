"""The minibatch gradient-descent loop, run in resumable chunks.

W is (C, D) classes x features with the bias last; X is (N, D) already preprocessed in the run's
dtype (floats, or rows kept as bytes: worker.engine.byte_rows); y is int64 (N,). `run` mutates a
TrainState (W, update-rule state, Generator, step) so the caller can checkpoint it between chunks
and resume with identical results.

One module, longer than most, because the loop's state, its chunks, its history and its
divergence check are read together: what a resumed run repeats is decided in all of them.
"""

import math
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from worker.engine.accel.parallel import single_threaded_blas
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import ByteRows, Features, as_float
from worker.engine.datasets import Dataset
from worker.engine.metrics import accuracy, eval_split, label_accuracy, predict
from worker.engine.numerical import loss_and_numerical_gradient
from worker.engine.optimizers import RuleState
from worker.engine.preprocess import Preprocessor
from worker.engine.sampling import BatchSampler
from worker.engine.train_config import TrainConfig


@dataclass(frozen=True)
class TrainData:
    """Prepared arrays: features preprocessed (bias column included) in the run's dtype."""

    X_train: Features
    y_train: IntArray
    X_val: Features
    y_val: IntArray


def prepare_data(dataset: Dataset, preprocessor: Preprocessor, dtype: str) -> TrainData:
    """Apply `preprocessor` to the train and val splits, in `dtype`."""
    return TrainData(
        preprocessor.transform(dataset.X_train, dtype),
        dataset.y_train,
        preprocessor.transform(dataset.X_val, dtype),
        dataset.y_val,
    )


@dataclass
class TrainState:
    """Everything a run needs to continue: checkpoint it between chunks."""

    W: FloatArray
    rule_state: RuleState
    rng: np.random.Generator
    step: int = 0


def init_state(config: TrainConfig, n_classes: int, n_features: int) -> TrainState:
    """W = init_scale * standard_normal((C, D)) from default_rng(seed), cast to the run's dtype."""
    rng = np.random.default_rng(config.seed)
    W = (config.init_scale * rng.standard_normal((n_classes, n_features))).astype(config.np_dtype)
    return TrainState(W=W, rule_state=config.make_rule().init(W), rng=rng)


class Evaluation(NamedTuple):
    step: int
    train_accuracy: float
    val_accuracy: float


@dataclass(frozen=True)
class Chunk:
    """History of a stretch of steps.

    losses[i] is the minibatch loss at steps[i] before that step's update, learning_rates[i] the
    rate that update used. evals at step s use W before step s's update, except the one at the
    last step, which uses the final W (after every update), so it scores the weights returned.
    That one alone is on every row of train and val, and `predictions` (set only on the chunk
    holding it) are its predicted labels by split ("train", "val"), for a caller to score the
    returned W without predicting those splits again.
    """

    steps: IntArray
    losses: NDArray[np.float64]
    learning_rates: NDArray[np.float64]
    evals: tuple[Evaluation, ...]
    done: bool
    predictions: Mapping[str, IntArray] | None = None


class Diverged(Exception):
    """The loss became NaN or infinite at `step`."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"loss became {loss} at step {step}")
        self.step = step
        self.loss = loss


class _History:
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.learning_rates: list[float] = []
        self.evals: list[Evaluation] = []
        self.predictions: dict[str, IntArray] | None = None
        self.last_step_to_evaluate: int | None = None
        self.steps_run = 0

    def chunk(self, done: bool) -> Chunk:
        return Chunk(
            steps=np.array(self.steps, dtype=np.int64),
            losses=np.array(self.losses, dtype=np.float64),
            learning_rates=np.array(self.learning_rates, dtype=np.float64),
            evals=tuple(self.evals),
            done=done,
            predictions=self.predictions,
        )


def _check(state: TrainState, config: TrainConfig, data: TrainData) -> None:
    n_classes, n_features = state.W.shape
    for name in ("X_train", "X_val"):
        X = getattr(data, name)
        if X.dtype != config.np_dtype or X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(
                f"{name} must be {config.dtype} (N, {n_features}), got {X.dtype} {X.shape}"
            )
    if state.W.dtype != config.np_dtype:
        raise ValueError(f"W is {state.W.dtype}, the run is {config.dtype}")
    for name in ("y_train", "y_val"):
        y = getattr(data, name)
        X = getattr(data, "X" + name[1:])
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold one integer label per row of X")
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}")


class _Loop:
    """One run's fixed parts; `advance` performs steps and records their history."""

    def __init__(self, config: TrainConfig, data: TrainData, W: FloatArray) -> None:
        if config.gradient != "analytic" and isinstance(data.X_train, ByteRows):
            # Finite differences work on the whole float X (worker.engine.numerical): decoded
            # once per run, not once per step.
            data = replace(data, X_train=as_float(data.X_train))
        self.config, self.data = config, data
        self.loss = config.make_loss()
        self.rule = config.make_rule()
        self.schedule = config.make_schedule()
        self.sampler = BatchSampler(
            data.X_train, data.y_train, config.batch_size, config.sampling, config.seed
        )
        # Minibatches read in place where the compiled gather kernels apply (decided once per
        # run): the sampler's rows, no gather copy and so no prefetch; the same losses and W,
        # bit for bit, as the gathered batches (LossFunction.loss_grad_rows). in_place holds X
        # (a memmap as a plain array) and y (int64) as the kernels take them.
        self.in_place: tuple[Features, IntArray] | None = None
        if (
            config.batch_size is not None
            and config.gradient == "analytic"
            and self.loss.reads_rows_in_place(W, data.X_train, data.y_train)
        ):
            y_train = np.ascontiguousarray(data.y_train, dtype=np.int64)
            X_train = data.X_train
            X_read = X_train if isinstance(X_train, ByteRows) else np.asarray(X_train)
            self.in_place = (X_read, y_train)
        # The (X, y) of train and val that evaluations before the last step score.
        sample = config.eval_sample if config.eval_every else None
        self.eval_train = eval_split(data.X_train, data.y_train, sample)
        self.eval_val = eval_split(data.X_val, data.y_val, sample)

    def loss_grad(self, W: FloatArray, X: Features, y: IntArray) -> tuple[float, FloatArray]:
        config = self.config
        if config.gradient == "analytic":
            return self.loss.loss_grad(W, X, y)
        loss, grad = loss_and_numerical_gradient(
            self.loss, W, as_float(X), y, h=config.h, difference=config.difference
        )
        return loss, grad.astype(W.dtype, copy=False)

    def evaluate(self, step: int, W: FloatArray) -> Evaluation:
        """Accuracy on the evaluation rows of train and val (`eval_rows`)."""
        return Evaluation(step, accuracy(W, *self.eval_train), accuracy(W, *self.eval_val))

    def evaluate_all(self, step: int, W: FloatArray, history: _History) -> Evaluation:
        """Accuracy on every row of train and val, their predicted labels kept in `history`."""
        data = self.data
        history.predictions = {"train": predict(W, data.X_train), "val": predict(W, data.X_val)}
        return Evaluation(
            step,
            label_accuracy(history.predictions["train"], data.y_train),
            label_accuracy(history.predictions["val"], data.y_val),
        )

    def advance(
        self, state: TrainState, stop: int, history: _History, deadline: float | None = None
    ) -> None:
        """Run steps up to `stop`, or until time.perf_counter() passes `deadline`.

        While step s computes, the sampler prefetches step s + 1's batch on a helper thread
        (same rows, same use of the Generator). A prefetched step always runs, so that a chunk
        never ends with the Generator one batch ahead of `state.step`: the deadline is checked
        before the prefetch, and nothing is prefetched past `stop`. Minibatches read in place
        (`in_place`) are neither gathered nor prefetched. The last step's evaluation, on every
        row, is only noted in `history` (`last_step_to_evaluate`): `run` takes it.
        """
        config = self.config
        last, log_every, eval_every = config.iterations - 1, config.log_every, config.eval_every
        prefetched = False
        for step in range(state.step, stop):
            if (
                not prefetched
                and deadline is not None
                and history.steps_run
                and time.perf_counter() >= deadline
            ):
                return
            history.steps_run += 1
            lr = self.schedule(step)
            if self.in_place is not None:
                rows = self.sampler.rows(step, state.rng)
                assert rows is not None  # a minibatch
                loss, grad = self.loss.loss_grad_rows(state.W, *self.in_place, rows)
            else:
                X_batch, y_batch = self.sampler.batch(step, state.rng)
                prefetched = step + 1 < stop and (
                    deadline is None or time.perf_counter() < deadline
                )
                if prefetched:
                    self.sampler.prefetch(step + 1, state.rng)
                loss, grad = self.loss_grad(state.W, X_batch, y_batch)
            if not math.isfinite(loss):
                raise Diverged(step, loss)
            if step % log_every == 0 or step == last:
                history.steps.append(step)
                history.losses.append(loss)
                history.learning_rates.append(lr)
            if eval_every and step == 0 and step != last:
                history.evals.append(self.evaluate(0, state.W))
            state.W, state.rule_state = self.rule.update(grad, state.rule_state, state.W, lr)
            state.step = step + 1
            # The accuracy "at step s" is W's after s updates. It is taken as soon as that W
            # exists, in the chunk that made it: a chunk ending at step s has then recorded
            # step s (a sweep's trial judged there stops with that step's W and metrics).
            if eval_every and state.step % eval_every == 0 and state.step < last:
                history.evals.append(self.evaluate(state.step, state.W))
            if step == last and eval_every:
                history.last_step_to_evaluate = step  # on every row, by `run`


def run(
    state: TrainState,
    config: TrainConfig,
    data: TrainData,
    *,
    chunk_steps: int = 1000,
    chunk_seconds: float | None = None,
) -> Generator[Chunk, None, None]:
    """Train from `state.step` to `config.iterations`, yielding a Chunk at every multiple of
    `chunk_steps` and, with `chunk_seconds`, as soon as a chunk has run that long (at least one
    step each).

    The last Chunk has done=True. On a NaN/Inf loss at step s this yields a Chunk with the
    history before s (done=False), then raises Diverged(s, loss); `state` then holds the W
    that produced that loss. Same config and seed give bit-identical losses and W, whether the
    run goes straight through or is resumed from a saved state.
    """
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
    _check(state, config, data)
    loop = _Loop(config, data, state.W)
    while True:
        history = _History()
        # Chunks end at the multiples of chunk_steps (a resumed run's first one is shorter), so
        # that a step a caller must stop at (a sweep's rung) is always a chunk's end.
        stop = min((state.step // chunk_steps + 1) * chunk_steps, config.iterations)
        deadline = None if chunk_seconds is None else time.perf_counter() + chunk_seconds
        try:
            # Overflow on the way to divergence is expected; it is reported as Diverged instead.
            # BLAS on one thread for the whole chunk (the passes ask for it anyway; setting it
            # once here saves a few microseconds per step).
            with np.errstate(all="ignore"):
                with single_threaded_blas():
                    loop.advance(state, stop, history, deadline)
                if history.last_step_to_evaluate is not None:
                    # Every row of train and val, after the one-thread block: products this
                    # large run faster on the BLAS threads the caller allows.
                    final = loop.evaluate_all(history.last_step_to_evaluate, state.W, history)
                    history.evals.append(final)
        except Diverged:
            loop.sampler.cancel_prefetch()  # the run ends here, its Generator one batch ahead
            yield history.chunk(done=False)
            raise
        except BaseException:
            loop.sampler.cancel_prefetch()  # leave no helper gathering into the sampler's buffers
            raise
        done = state.step >= config.iterations
        yield history.chunk(done)
        if done:
            return

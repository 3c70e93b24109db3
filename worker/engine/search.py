"""Random search and random local search (the note's strategies 1 and 2), in resumable chunks.

W is (C, D) classes x features with the bias last; X (N, D) is the preprocessed training set in
the run's dtype, y int64 (N,). Every candidate is scored on the whole of X:

- random search: trial t draws W_t = scale * randn(C, D) and keeps the lowest loss;
- random local search: starts at init_scale * randn(C, D); step t proposes W + step_size * dW_t,
  dW_t = randn(C, D), and moves there only if the loss drops (strictly).

Speed: X is read once per block of `block_size` candidates, in one product stack @ X.T (scores
are class-major, (C, N) per candidate; see scoreloss). Both losses depend only on score
differences, so each candidate contributes its rows 1..C-1 minus row 0: C - 1 products per
candidate, not C. The proposals of local search do not depend on W, so their scores are computed
for a whole block up front and added to the current scores T_W: after an acceptance the rest of
the block is re-based on the new T_W, which gives the sequential result exactly.

Bit-identity: BLAS may round a row of a product differently depending on the product's size
(NumPy's OpenBLAS does for small shapes), so step t is always multiplied in slot t % block_size of
a product of the same shape. `sequential=True` (the reference path) puts one candidate in that
product at a time and decides before drawing the next; it matches the blocked path bit for bit
(losses, accepted steps, W) for the same block_size, and so does any chunking or resume.
"""

import math
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.losses import LOSS_NAMES, LossName
from worker.engine.scoreloss import correct_index, data_loss, each_data_loss, l2
from worker.engine.search_parts import (
    DTypeName,
    SearchChunk,
    SearchHistory,
    check_inputs,
    np_dtype,
    run_in_chunks,
)

__all__ = [
    "LocalSearchConfig",
    "LocalSearchState",
    "RandomSearchConfig",
    "RandomSearchState",
    "SearchChunk",
    "init_local_search_state",
    "init_random_search_state",
    "run_local_search",
    "run_random_search",
]


@dataclass(frozen=True)
class _Common:
    loss: LossName = "svm"
    reg: float = 0.0
    delta: float = 1.0
    block_size: int = 64
    log_every: int = 1
    dtype: DTypeName = "float32"
    seed: int = 0

    def _validate(self, steps: tuple[str, int], scales: dict[str, float]) -> None:
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"unknown loss {self.loss!r}: expected one of {', '.join(LOSS_NAMES)}")
        if not (math.isfinite(self.reg) and self.reg >= 0.0):
            raise ValueError(f"reg must be >= 0, got {self.reg}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name, value in (steps, ("block_size", self.block_size), ("log_every", self.log_every)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, scale in scales.items():
            if not (math.isfinite(scale) and scale >= 0.0):
                raise ValueError(f"{name} must be >= 0, got {scale}")


@dataclass(frozen=True)
class RandomSearchConfig(_Common):
    """`trials` draws of W = scale * randn(C, D); invalid values raise ValueError."""

    trials: int = 1000
    scale: float = 1e-4

    def __post_init__(self) -> None:
        self._validate(("trials", self.trials), {"scale": self.scale})


@dataclass(frozen=True)
class LocalSearchConfig(_Common):
    """`iterations` proposals W + step_size * randn(C, D) from W0 = init_scale * randn(C, D)."""

    iterations: int = 1000
    init_scale: float = 0.001
    step_size: float = 1e-4

    def __post_init__(self) -> None:
        scales = {"init_scale": self.init_scale, "step_size": self.step_size}
        self._validate(("iterations", self.iterations), scales)


@dataclass
class RandomSearchState:
    """Resume point: W/loss of the last trial, the best so far (zeros and inf before any)."""

    rng: np.random.Generator
    W: FloatArray
    best_W: FloatArray
    loss: float = math.inf
    best_loss: float = math.inf
    step: int = 0


@dataclass
class LocalSearchState:
    """Resume point. `scores` = (W[1:] - W[0]) @ X.T, (C - 1, N) float64: the relative scores
    as accumulated by the run, so that a resumed run re-bases on the same numbers; None until
    the first chunk evaluates the start W. The current W is always the best (loss only drops)."""

    rng: np.random.Generator
    W: FloatArray
    loss: float = math.nan
    step: int = 0
    scores: NDArray[np.float64] | None = field(default=None, repr=False)

    @property
    def best_W(self) -> FloatArray:
        return self.W

    @property
    def best_loss(self) -> float:
        return self.loss


def init_random_search_state(
    config: RandomSearchConfig, n_classes: int, n_features: int
) -> RandomSearchState:
    zeros = np.zeros((n_classes, n_features), dtype=np_dtype(config.dtype))
    return RandomSearchState(np.random.default_rng(config.seed), zeros, zeros.copy())


def init_local_search_state(
    config: LocalSearchConfig, n_classes: int, n_features: int
) -> LocalSearchState:
    """W0 = init_scale * standard_normal((C, D)) from default_rng(seed), in the run's dtype."""
    rng = np.random.default_rng(config.seed)
    W = config.init_scale * rng.standard_normal((n_classes, n_features))
    return LocalSearchState(rng, W.astype(np_dtype(config.dtype)))


class _Lanes:
    """A stack of block_size candidates (C, D) and their relative class-major scores (rows
    1..C-1 minus row 0, see scoreloss) from one product, (L, C - 1, N): each candidate's scores
    are one contiguous slab, and the losses need C - 1 score rows, not C."""

    def __init__(self, X: FloatArray, n_classes: int, block_size: int) -> None:
        n_rows, n_features = X.shape
        self.X, self.size = X, block_size
        self.stack = np.zeros((block_size, n_classes, n_features), dtype=X.dtype)
        self._relative = np.zeros((block_size, n_classes - 1, n_features), dtype=X.dtype)
        self._flat = self._relative.reshape(-1, n_features)
        self._out = np.empty((block_size, n_classes - 1, n_rows), dtype=X.dtype)
        self.scratch = np.empty((n_classes, n_rows), dtype=np.float64)

    def block(self, step: int, stop: int, sequential: bool) -> tuple[int, int]:
        """The slot of `step` and the end of its block: the lane's end, `stop`, or step + 1."""
        end = step + 1 if sequential else min(stop, (step // self.size + 1) * self.size)
        return step % self.size, end

    def fill(self, slot: int, draws: NDArray[np.float64], scale: float) -> None:
        draws *= scale
        end = slot + draws.shape[0]
        self.stack[slot:end] = draws  # cast to the run's dtype
        np.subtract(
            self.stack[slot:end, 1:], self.stack[slot:end, :1], out=self._relative[slot:end]
        )

    def scores(self) -> FloatArray:
        flat_out = self._out.reshape(self._flat.shape[0], self.X.shape[0])
        np.matmul(self._flat, self.X.T, out=flat_out)
        return self._out


def run_random_search(
    state: RandomSearchState,
    config: RandomSearchConfig,
    X: FloatArray,
    y: IntArray,
    *,
    chunk_steps: int = 1000,
    chunk_seconds: float | None = None,
    sequential: bool = False,
) -> Generator[SearchChunk, None, None]:
    """Run trials from `state.step` to `config.trials`, yielding a SearchChunk every
    `chunk_steps` trials or, with `chunk_seconds`, once a chunk has run that long (whole blocks,
    at least one). `accepted` marks the trials that became the best; the last chunk has
    done=True. Same config and seed give the same bits however the run is chunked or resumed."""
    check_inputs(state.W, config.dtype, X, y)
    lanes = _Lanes(X, state.W.shape[0], config.block_size)
    index, last = correct_index(y), config.trials - 1

    def advance(stop: int, history: SearchHistory) -> None:
        slot, end = lanes.block(state.step, stop, sequential)
        draws = state.rng.standard_normal((end - state.step, *state.W.shape))
        lanes.fill(slot, draws, config.scale)
        scores = lanes.scores()
        data_losses = each_data_loss(
            config.loss, scores[slot : slot + end - state.step], y, config.delta,
            out=lanes.scratch, index=index, relative=True,
        )  # fmt: skip
        for step, data in zip(range(state.step, end), data_losses, strict=True):
            k = step % lanes.size
            loss = data + l2(lanes.stack[k], config.reg)
            better = loss < state.best_loss
            if better:
                state.best_W, state.best_loss = lanes.stack[k].copy(), loss
            state.loss, state.step = loss, step + 1
            if step % config.log_every == 0 or step == last:
                history.record(step, loss, state.best_loss, better)
        state.W = lanes.stack[(end - 1) % lanes.size].copy()

    yield from run_in_chunks(config.trials, lambda: state.step, advance, chunk_steps, chunk_seconds)


def run_local_search(
    state: LocalSearchState,
    config: LocalSearchConfig,
    X: FloatArray,
    y: IntArray,
    *,
    chunk_steps: int = 1000,
    chunk_seconds: float | None = None,
    sequential: bool = False,
) -> Generator[SearchChunk, None, None]:
    """Run proposals from `state.step` to `config.iterations` (chunks as in run_random_search).

    The first call scores the start W (state.scores, state.loss). losses[i] is the loss of the
    proposal at steps[i], best_losses[i] the current (= best) loss after it, accepted[i] whether
    the search moved there. `state.scores` must come from the same X when resuming.
    """
    check_inputs(state.W, config.dtype, X, y)
    index, last = correct_index(y), config.iterations - 1
    if state.scores is None:
        # X @ R.T runs faster than R @ X.T for these few rows R; the scores are kept class-major.
        relative = state.W[1:] - state.W[:1]
        state.scores = np.ascontiguousarray((X @ relative.T).T, dtype=np.float64)
        start = data_loss(config.loss, state.scores, y, config.delta, index=index, relative=True)
        state.loss = start + l2(state.W, config.reg)
    elif state.scores.shape != (state.W.shape[0] - 1, X.shape[0]):
        raise ValueError(f"state.scores has shape {state.scores.shape}: not this X's")
    lanes = _Lanes(X, state.W.shape[0], config.block_size)

    def advance(stop: int, history: SearchHistory) -> None:
        assert state.scores is not None
        slot, end = lanes.block(state.step, stop, sequential)
        draws = state.rng.standard_normal((end - state.step, *state.W.shape))
        lanes.fill(slot, draws, config.step_size)
        moves = lanes.scores()
        for step in range(state.step, end):
            k = step % lanes.size
            candidate = state.W + lanes.stack[k]
            loss = data_loss(
                config.loss, moves[k], y, config.delta,
                base=state.scores, out=lanes.scratch, index=index, relative=True,
            ) + l2(candidate, config.reg)  # fmt: skip
            accepted = loss < state.loss
            if accepted:
                state.scores += moves[k]  # the very sums the candidate was scored with
                state.W, state.loss = candidate, loss
            state.step = step + 1
            if step % config.log_every == 0 or step == last:
                history.record(step, loss, state.loss, accepted)

    yield from run_in_chunks(
        config.iterations, lambda: state.step, advance, chunk_steps, chunk_seconds
    )

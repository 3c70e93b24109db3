"""What random search and random local search share: dtypes, input checks, history, chunking."""

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray, IntArray

DTypeName = Literal["float32", "float64"]


def np_dtype(name: DTypeName) -> np.dtype[np.floating[Any]]:
    return np.dtype(np.float32 if name == "float32" else np.float64)


def check_inputs(W: FloatArray, dtype: DTypeName, X: FloatArray, y: IntArray) -> None:
    n_classes, n_features = W.shape
    if n_classes < 2:
        raise ValueError(f"a search needs at least 2 classes, got {n_classes}")
    if X.dtype != np_dtype(dtype) or X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must be {dtype} (N, {n_features}), got {X.dtype} {X.shape}")
    if W.dtype != X.dtype:
        raise ValueError(f"W is {W.dtype}, the run is {dtype}")
    if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError("y must hold one integer label per row of X")
    if X.shape[0] == 0:
        raise ValueError("X has no rows")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y must lie in 0..{n_classes - 1}")


@dataclass(frozen=True)
class SearchChunk:
    """History of a stretch of steps (only the logged ones: every log_every-th and the last).

    losses[i]: the loss of the trial / proposal at steps[i]; best_losses[i]: the best loss after
    it; accepted[i]: whether it became the best (random search) or was moved to (local search).
    Losses are float64 and may be inf or NaN for an overflowing candidate (never accepted).
    """

    steps: NDArray[np.int64]
    losses: NDArray[np.float64]
    best_losses: NDArray[np.float64]
    accepted: NDArray[np.bool_]
    done: bool


@dataclass
class SearchHistory:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    best_losses: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)

    def record(self, step: int, loss: float, best_loss: float, accepted: bool) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.best_losses.append(best_loss)
        self.accepted.append(accepted)

    def chunk(self, done: bool) -> SearchChunk:
        return SearchChunk(
            steps=np.array(self.steps, dtype=np.int64),
            losses=np.array(self.losses, dtype=np.float64),
            best_losses=np.array(self.best_losses, dtype=np.float64),
            accepted=np.array(self.accepted, dtype=np.bool_),
            done=done,
        )


def run_in_chunks(
    total: int,
    state_step: Callable[[], int],
    advance: Callable[[int, SearchHistory], None],
    chunk_steps: int,
    chunk_seconds: float | None,
) -> Generator[SearchChunk, None, None]:
    """Call advance(stop, history) block by block; yield a chunk at each stop or deadline."""
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
    while True:
        history = SearchHistory()
        start = state_step()
        stop = min(start + chunk_steps, total)
        deadline = None if chunk_seconds is None else time.perf_counter() + chunk_seconds
        with np.errstate(all="ignore"):  # an overflowing candidate just has an inf/NaN loss
            while state_step() < stop:
                ran = state_step() > start
                if deadline is not None and ran and time.perf_counter() >= deadline:
                    break
                advance(stop, history)
        done = state_step() >= total
        yield history.chunk(done)
        if done:
            return

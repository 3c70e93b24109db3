"""Run a random search or random local search job (the note's strategies 1 and 2), resumable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from service.history.writes import Points
from worker.checkpoint import generator_state, pack, restore_generator, unpack
from worker.context import JobContext, Outcome, Resume
from worker.driving import drive, finite_points
from worker.engine.byte_rows import as_float
from worker.engine.search import (
    LocalSearchConfig,
    LocalSearchState,
    RandomSearchConfig,
    RandomSearchState,
    SearchChunk,
    init_local_search_state,
    init_random_search_state,
    run_local_search,
    run_random_search,
)
from worker.prepared_data import PreparedData
from worker.train_job import succeeded
from worker.training import search_config

SearchState = RandomSearchState | LocalSearchState


def _to_checkpoint(state: SearchState) -> bytes:
    arrays: dict[str, np.ndarray] = {"W": state.W}
    meta: dict[str, Any] = {"step": state.step, "rng": generator_state(state.rng),
                            "loss": state.loss}  # fmt: skip
    if isinstance(state, RandomSearchState):
        arrays["best_W"] = state.best_W
        meta.update(kind="random_search", best_loss=state.best_loss)
    else:
        meta["kind"] = "random_local_search"
        if state.scores is not None:
            arrays["scores"] = state.scores
    return pack(arrays, meta)


def _from_checkpoint(payload: bytes) -> SearchState:
    arrays, meta = unpack(payload)
    rng = restore_generator(meta["rng"])
    if meta["kind"] == "random_search":
        return RandomSearchState(rng, arrays["W"], arrays["best_W"], float(meta["loss"]),
                                 float(meta["best_loss"]), int(meta["step"]))  # fmt: skip
    if meta["kind"] == "random_local_search":
        return LocalSearchState(rng, arrays["W"], float(meta["loss"]), int(meta["step"]),
                                arrays.get("scores"))  # fmt: skip
    raise ValueError(f"not a search checkpoint: {meta['kind']!r}")


def _start(
    config: RandomSearchConfig | LocalSearchConfig, shape: tuple[int, int], X: np.ndarray,
    y: np.ndarray, resume: Resume | None, every: float,
) -> tuple[SearchState, Iterator[SearchChunk]]:  # fmt: skip
    """The search's state and its chunks, each about `every` seconds long."""
    state = _from_checkpoint(resume.payload) if resume else None
    if isinstance(config, RandomSearchConfig):
        rs = state if isinstance(state, RandomSearchState) else init_random_search_state(
            config, *shape)  # fmt: skip
        return rs, run_random_search(rs, config, X, y, chunk_seconds=every)
    ls = state if isinstance(state, LocalSearchState) else init_local_search_state(config, *shape)
    return ls, run_local_search(ls, config, X, y, chunk_seconds=every)


def run_search(context: JobContext, data: PreparedData, resume: Resume | None) -> Outcome:
    # The search's products take the whole X at once: rows kept as bytes are decoded for the job.
    X, y = as_float(data.X_train), data.y_train
    shape = (data.n_classes, X.shape[1])
    every = context.settings.flush_seconds
    state, chunks = _start(search_config(context.spec), shape, X, y, resume, every)
    metrics: dict[str, float] = {}

    def points_of(chunk: SearchChunk) -> list[Points]:
        finite = chunk.losses[np.isfinite(chunk.losses)]
        if finite.size:
            metrics["loss"] = float(finite[-1])
        if np.isfinite(state.best_loss):
            metrics["best_loss"] = float(state.best_loss)
        return [
            finite_points("loss", chunk.steps, chunk.losses),
            finite_points("best_loss", chunk.steps, chunk.best_losses),
        ]

    stopped = drive(
        context,
        chunks,
        points_of=points_of,
        metrics=lambda: metrics,
        step=lambda: state.step,
        snapshot=lambda: (_to_checkpoint(state), state.best_W),
    )
    if stopped is not None:
        return stopped
    if not np.isfinite(state.best_loss):
        # Every candidate overflowed: there is no best W to report.
        message = f"no W the search tried had a finite loss (its best is {state.best_loss})"
        return Outcome("failed", {"error": {"type": "non_finite", "message": message}})
    return succeeded(context, data, state.best_W, state.step, metrics)

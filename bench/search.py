"""Random search and random local search on CIFAR-10: candidates in blocks vs one at a time.

1,000 trials / iterations on the 49,000 x 3,073 float32 training set, SVM, the note's settings,
run once each for the results (asserted equal); speed from shorter interleaved runs, min-of-k.
"One at a time" is the note's loop on the engine's svm_loss; "the course's loss" the same loop
on the course's vectorized loss (W D x C: a skinny 10-column product per candidate); "blocked"
is worker.engine.search. All draw from the same random stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from bench.common import Array, Timing, interleaved, options, table, write_report
from bench.step import cifar10_prepared
from worker.engine.losses import svm_loss
from worker.engine.metrics import accuracy
from worker.engine.search import (
    LocalSearchConfig,
    RandomSearchConfig,
    init_local_search_state,
    init_random_search_state,
    run_local_search,
    run_random_search,
)

SLICE, REPEATS = 256, 5  # candidates per timed run, timed runs of each (min kept)
RANDOM = RandomSearchConfig(trials=1000, scale=1e-4)
LOCAL = LocalSearchConfig(iterations=1000, init_scale=0.001, step_size=1e-4)
N_CLASSES = 10


def blocked_random(X: Array, y: Array, n: int) -> tuple[Array, Array]:
    config = dataclasses.replace(RANDOM, trials=n)
    state = init_random_search_state(config, N_CLASSES, X.shape[1])
    losses = np.concatenate([chunk.losses for chunk in run_random_search(state, config, X, y)])
    return losses, state.best_W


def one_at_a_time_random(X: Array, y: Array, n: int, course: bool = False) -> tuple[Array, Array]:
    """The note's random search loop, on the engine's loss or the course's."""
    rng = np.random.default_rng(RANDOM.seed)
    losses, best_W, best = [], None, np.inf
    for _ in range(n):
        W = (RANDOM.scale * rng.standard_normal((N_CLASSES, X.shape[1]))).astype(X.dtype)
        if course:
            losses.append(course_svm_loss(np.ascontiguousarray(W.T), X, y))
        else:
            losses.append(svm_loss(W, X, y, RANDOM.reg, RANDOM.delta))
        if losses[-1] < best:
            best_W, best = W, losses[-1]
    assert best_W is not None
    return np.array(losses), best_W


def course_svm_loss(W: Array, X: Array, y: Array) -> float:
    """The note's vectorized L(X, y, W) (loss only, reg 0), W in the course's D x C layout."""
    rows = np.arange(X.shape[0])
    scores = X.dot(W)
    margins = np.maximum(0, scores - scores[rows, y][:, None] + RANDOM.delta)
    margins[rows, y] = 0
    return float(margins.sum() / X.shape[0])


def blocked_local(X: Array, y: Array, n: int) -> tuple[Array, Array, Array]:
    config = dataclasses.replace(LOCAL, iterations=n)
    state = init_local_search_state(config, N_CLASSES, X.shape[1])
    chunks = list(run_local_search(state, config, X, y))
    losses = np.concatenate([chunk.losses for chunk in chunks])
    return losses, np.concatenate([chunk.accepted for chunk in chunks]), state.W


def sequential_local(X: Array, y: Array, n: int) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(LOCAL.seed)
    W = (LOCAL.init_scale * rng.standard_normal((N_CLASSES, X.shape[1]))).astype(X.dtype)
    current = svm_loss(W, X, y, LOCAL.reg, LOCAL.delta)
    losses, accepted = [], []
    for _ in range(n):
        candidate = W + (LOCAL.step_size * rng.standard_normal(W.shape)).astype(X.dtype)
        losses.append(svm_loss(candidate, X, y, LOCAL.reg, LOCAL.delta))
        accepted.append(losses[-1] < current)
        if accepted[-1]:
            W, current = candidate, losses[-1]
    return np.array(losses), np.array(accepted), W


COURSE, RANDOM_ONE, LOCAL_ONE = ("random, one at a time, the course's loss",
                                 "random, one at a time", "local, sequential")  # fmt: skip
RUNS: dict[str, tuple[Callable[[Array, Array, int], Any], str]] = {  # name: (run, baseline)
    COURSE: (partial(one_at_a_time_random, course=True), COURSE),
    RANDOM_ONE: (one_at_a_time_random, RANDOM_ONE),
    "random, blocked": (blocked_random, RANDOM_ONE),
    LOCAL_ONE: (sequential_local, LOCAL_ONE),
    "local, blocked": (blocked_local, LOCAL_ONE),
}


def timed(X: Array, y: Array, n: int, repeats: int) -> tuple[str, dict[str, Timing]]:
    """The speed table of `repeats` interleaved runs of `n` candidates each, and the timings
    (their values: the last run's results)."""
    candidates = [(name, partial(fn, X, y, n)) for name, (fn, _) in RUNS.items()]
    timings = {t.name: t for t in interleaved(candidates, repeats=repeats, warmup=0)}
    rows: list[list[object]] = []
    for name, (_, base) in RUNS.items():
        t = timings[name]
        runs = ", ".join(f"{r:.2f}" for r in t.runs)
        rows.append([name, f"{t.seconds:.2f}", f"{1000 * t.seconds / n:.1f}", runs,
                     f"{timings[base].seconds / t.seconds:.2f}x",
                     f"{timings[COURSE].seconds / t.seconds:.2f}x"])  # fmt: skip
    header = ["run", "seconds (min)", "ms / candidate", "runs", "speed-up", "vs the course's loss"]
    return table(header, rows), timings


def main() -> None:
    options(__doc__)
    prepared, labels = cifar10_prepared(("float32",))
    X, y = prepared["float32"]["train"], labels["train"]
    X_test, y_test = prepared["float32"]["test"], labels["test"]
    full_table, full = timed(X, y, RANDOM.trials, 1)
    fast_losses, fast_best = full["random, blocked"].value
    slow_losses, slow_best = full[RANDOM_ONE].value
    assert np.argmin(fast_losses) == np.argmin(slow_losses)
    np.testing.assert_array_equal(fast_best, slow_best)
    random_diff = float(np.max(np.abs(fast_losses - slow_losses) / slow_losses))
    course_losses, course_best = full[COURSE].value
    course_same = bool(np.array_equal(course_best, fast_best))
    course_diff = float(np.max(np.abs(course_losses - slow_losses) / slow_losses))
    fast_l, fast_acc, fast_W = full["local, blocked"].value
    slow_l, slow_acc, slow_W = full[LOCAL_ONE].value
    np.testing.assert_array_equal(fast_acc, slow_acc)
    np.testing.assert_array_equal(fast_W, slow_W)
    local_diff = float(np.max(np.abs(fast_l - slow_l) / slow_l))
    sliced_table, _ = timed(X, y, SLICE, REPEATS)
    body = f"""
## Speed: {SLICE} candidates per run, min of {REPEATS} interleaved runs

{sliced_table}

## The full runs: {RANDOM.trials:,} candidates each, one interleaved round

{full_table}

- Random search: best loss {fast_losses.min():.4f} at trial {int(np.argmin(fast_losses))},
  test accuracy {accuracy(fast_best, X_test, y_test):.1%} (note: 15.5%); blocked and one at
  a time pick the same best W (asserted). The course's loss one at a time picks the same best
  W: {course_same}; its losses agree with the engine's to {course_diff:.1e} relative.
- Local search: {int(fast_acc.sum())} of {RANDOM.trials:,} proposals accepted, final loss
  {fast_l[fast_acc][-1]:.4f}, test accuracy {accuracy(fast_W, X_test, y_test):.1%}
  (note: 21.4%); blocked and sequential accept the same steps and end at the same W
  (asserted).
- Per-candidate losses of the two ways agree to {random_diff:.1e} (random) and {local_diff:.1e}
  (local) relative: they differ in rounding only.
- "speed-up": against the run's own one-at-a-time baseline; "vs the course's loss": against
  the note's loop as the course writes it. SVM, delta 1, reg 0, seed 0; test accuracy on the
  first 1,000 test images (the note used 10,000).
"""
    write_report("search", "Random search and random local search: blocked vs one at a time", body)


if __name__ == "__main__":
    main()

"""Minibatch selection for step s of a run: full batch, with replacement, or shuffled epochs.

X (N, D) and y (N,) are the prepared training arrays (X as floats, or as ByteRows whose gathered
batches are decoded to floats). The batch for a step depends only on the
step number, the run's seed and the Generator passed in, so a run resumed from a checkpoint
draws the same batches as one that never stopped.
"""

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

import numpy as np

from worker.engine.accel.parallel import background, max_threads
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import ByteRows, Features

Sampling = Literal["replacement", "epoch"]
SAMPLING_MODES: tuple[Sampling, ...] = ("replacement", "epoch")

# Largest batch that prefetch gathers on a helper thread. A batch gathered by another core is
# read back from that core's caches; with BLAS held to one thread beside the prefetch, hiding the
# gather still wins for CIFAR-10's 200 rows in float32 (2.4 MB) and in float64 (4.9 MB, see
# bench/sgd.py); larger batches are gathered by `batch`.
PREFETCH_MAX_BYTES = 8 << 20
# Smallest batch worth a hand-off to the helper thread (tens of microseconds): smaller batches,
# such as a few rows of a toy data set, gather faster than the hand-off costs.
PREFETCH_MIN_BYTES = 256 << 10


@dataclass(frozen=True)
class _Prefetched:
    step: int
    buffer: int
    gathering: "Future[tuple[FloatArray, IntArray]]"


class BatchSampler:
    """Selects (X_batch, y_batch) for each step.

    - batch_size None: the whole training set (vanilla gradient descent), no randomness.
    - "replacement": rng.choice(N, batch_size, replace=True) from the run's Generator, as the
      course does.
    - "epoch": epoch e = step // ceil(N / batch_size) visits a permutation of all rows, drawn from
      SeedSequence(seed, spawn_key=(1, e)); the last batch of an epoch may be smaller. It needs
      no state beyond the step, so the run's Generator is not consumed.

    Batches are gathered into buffers owned by the sampler and reused: use a batch before
    asking for the next one (two buffers take turns). `prefetch(s + 1, rng)`, called while
    step s works on its batch, draws the next batch at once and gathers it on a helper thread
    (a random-row gather of CIFAR-10's 200 rows reads 2.4 MB from memory: a third of a step),
    so that `batch(s + 1, rng)` finds it ready. Same rows and same use of the Generator as
    without it; with limit_threads(1), or for a batch outside PREFETCH_MIN_BYTES ..
    PREFETCH_MAX_BYTES, it does nothing and `batch` draws and gathers as usual. Where the
    compiled gather kernels apply, training asks for `rows` only and reads them in place.
    """

    def __init__(
        self,
        X: Features,
        y: IntArray,
        batch_size: int | None,
        sampling: Sampling = "replacement",
        seed: int = 0,
    ) -> None:
        n_rows = X.shape[0]
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling {sampling!r}: expected one of {SAMPLING_MODES}")
        if batch_size is not None and not 1 <= batch_size <= n_rows:
            raise ValueError(
                f"batch_size must be between 1 and the {n_rows} training rows, got {batch_size}"
            )
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.sampling = sampling
        self.seed = seed
        size = 0 if batch_size is None else batch_size
        # Two buffers each (the second one's pages are only touched by prefetch).
        self._X_batches = [np.empty((size, X.shape[1]), dtype=X.dtype) for _ in range(2)]
        self._y_batches = [np.empty(size, dtype=y.dtype) for _ in range(2)]
        self._current = 0
        self._prefetched: _Prefetched | None = None
        self._steps_per_epoch = -(-n_rows // (size or n_rows))
        self._epoch = -1
        self._order = np.arange(0)

    def batch(self, step: int, rng: np.random.Generator) -> tuple[Features, IntArray]:
        ahead, self._prefetched = self._prefetched, None
        if ahead is not None:
            if ahead.step != step:
                raise RuntimeError(f"batch {step} asked for, but batch {ahead.step} was prefetched")
            self._current = ahead.buffer
            return ahead.gathering.result()
        rows = self.rows(step, rng)
        if rows is None:
            return self.X, self.y
        return self._gather(rows, self._current)

    def prefetch(self, step: int, rng: np.random.Generator) -> None:
        """Draw and gather step `step`'s batch on a helper thread; `batch(step, rng)` returns it.

        Only for the step that runs next, and leave `rng` alone until that batch call: the
        helper consumes the Generator as that call would have (a run stopped in between would
        be one batch ahead).
        """
        if self._prefetched is not None:
            raise RuntimeError(f"batch {self._prefetched.step} is already prefetched")
        if self.prefetches():
            spare = 1 - self._current
            gathering = background(self._draw_and_gather, step, rng, spare)
            self._prefetched = _Prefetched(step, spare, gathering)

    def prefetches(self) -> bool:
        """Whether `prefetch` hands batches to a helper thread here (in this thread context)."""
        size = self._X_batches[0].nbytes
        return (
            self.batch_size is not None
            and max_threads() > 1
            and PREFETCH_MIN_BYTES <= size <= PREFETCH_MAX_BYTES
        )

    def cancel_prefetch(self) -> None:
        """Wait for a pending prefetch and drop its batch (its draw from the Generator stays)."""
        ahead, self._prefetched = self._prefetched, None
        if ahead is not None:
            ahead.gathering.exception()  # waits; a failed gather is of no interest any more

    def _draw_and_gather(
        self, step: int, rng: np.random.Generator, buffer: int
    ) -> tuple[FloatArray, IntArray]:
        rows = self.rows(step, rng)
        if rows is None:
            raise RuntimeError("the full batch is never prefetched")
        return self._gather(rows, buffer)

    def rows(self, step: int, rng: np.random.Generator) -> IntArray | None:
        """The row indices of step `step`'s batch, or None for the whole training set."""
        if self.batch_size is None:
            return None
        if self.sampling == "replacement":
            return rng.choice(self.X.shape[0], self.batch_size, replace=True)
        epoch, position = divmod(step, self._steps_per_epoch)
        if epoch != self._epoch:
            epoch_seed = np.random.SeedSequence(self.seed, spawn_key=(1, epoch))
            self._order = np.random.default_rng(epoch_seed).permutation(self.X.shape[0])
            self._epoch = epoch
        start = position * self.batch_size
        return self._order[start : start + self.batch_size]

    def _gather(self, rows: IntArray, buffer: int) -> tuple[FloatArray, IntArray]:
        n = rows.shape[0]
        X_batch, y_batch = self._X_batches[buffer][:n], self._y_batches[buffer][:n]
        if isinstance(self.X, ByteRows):
            self.X.take(rows, out=X_batch)  # decoded into the batch: the rows as floats
        else:
            # mode="clip" lets np.take write straight into `out`; the rows are always in range.
            np.take(self.X, rows, axis=0, out=X_batch, mode="clip")
        np.take(self.y, rows, out=y_batch, mode="clip")
        return X_batch, y_batch

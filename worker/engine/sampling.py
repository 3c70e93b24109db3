"""Minibatch selection for step s of a run: full batch, with replacement, or shuffled epochs.

X (N, D) and y (N,) are the prepared training arrays. The batch for a step depends only on the
step number, the run's seed and the Generator passed in, so a run resumed from a checkpoint
draws the same batches as one that never stopped.
"""

from typing import Literal

import numpy as np

from worker.engine.arrays import FloatArray, IntArray

Sampling = Literal["replacement", "epoch"]
SAMPLING_MODES: tuple[Sampling, ...] = ("replacement", "epoch")


class BatchSampler:
    """Selects (X_batch, y_batch) for each step.

    - batch_size None: the whole training set (vanilla gradient descent), no randomness.
    - "replacement": rng.choice(N, batch_size, replace=True) from the run's Generator, as the
      course does.
    - "epoch": epoch e = step // ceil(N / batch_size) visits a permutation of all rows, drawn from
      SeedSequence(seed, spawn_key=(1, e)); the last batch of an epoch may be smaller. It needs
      no state beyond the step, so the run's Generator is not consumed.

    Batches are gathered into buffers owned by the sampler and reused on the next call: use
    them before asking for another batch. `rows` gives the same batch as row indices instead
    (None for the full batch), for a loss that gathers the rows itself, chunk by chunk while
    it computes; it consumes the Generator exactly as `batch` does.
    """

    def __init__(
        self,
        X: FloatArray,
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
        size = n_rows if batch_size is None else batch_size
        self._X_batch = np.empty((size, X.shape[1]), dtype=X.dtype)
        self._y_batch = np.empty(size, dtype=y.dtype)
        self._steps_per_epoch = -(-n_rows // size)
        self._epoch = -1
        self._order = np.arange(0)

    def batch(self, step: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        rows = self.rows(step, rng)
        if rows is None:
            return self.X, self.y
        return self._gather(rows)

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

    def _gather(self, rows: IntArray) -> tuple[FloatArray, IntArray]:
        n = rows.shape[0]
        X_batch, y_batch = self._X_batch[:n], self._y_batch[:n]
        # mode="clip" lets np.take write straight into `out`; the rows are always in range.
        np.take(self.X, rows, axis=0, out=X_batch, mode="clip")
        np.take(self.y, rows, out=y_batch, mode="clip")
        return X_batch, y_batch

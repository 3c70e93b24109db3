"""One step of a population, and its evaluations: the products and the update rule of
worker.engine.population, over slabs of its members, one per thread."""

from __future__ import annotations

import functools
import itertools
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from worker.engine.accel.blas import gemm_at, gemm_routine
from worker.engine.accel.parallel import max_threads, run_parallel, single_threaded_blas
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import Features, as_float, rows_of
from worker.engine.metrics import eval_split
from worker.engine.optimizers import SGD
from worker.engine.population_chunks import PopulationEval
from worker.engine.population_loss import data_losses
from worker.engine.sampling import BatchSampler
from worker.engine.train import TrainData

if TYPE_CHECKING:
    from worker.engine.population import Population

# A member's factor (worker.engine.population) below which it is multiplied into its V (a pass
# over that V) and restarts at 1: V never grows more than 1 / MIN_SCALE times W.
MIN_SCALE = 2.0**-8

# Rows scored per product when a population predicts a whole split, which bounds the scores'
# memory (rows x K*C) whatever the split's size.
PREDICT_ROWS = 4096


def predict_all(Wt: FloatArray, X: Features, n_classes: int) -> IntArray:
    """Each member's highest-scoring class per row: (N, members), int64, in blocks of rows."""
    n_rows, members = X.shape[0], Wt.shape[1] // n_classes
    labels = np.empty((n_rows, members), dtype=np.int64)
    for start in range(0, n_rows, PREDICT_ROWS):
        scores = rows_of(X, start, start + PREDICT_ROWS) @ Wt
        stop = start + scores.shape[0]
        labels[start:stop] = scores.reshape(-1, members, n_classes).argmax(axis=2)
    return labels


def _accuracies(labels: IntArray, y: IntArray) -> NDArray[np.float64]:
    if labels.shape[0] == 0:
        return np.full(labels.shape[1], np.nan)
    hits: NDArray[np.float64] = (labels == np.asarray(y)[:, np.newaxis]).mean(axis=0)
    return hits


def member_slabs(n_members: int) -> list[slice]:
    """The members' positions cut into one slab per thread the engine may use (`max_threads`)."""
    bounds = np.linspace(0, n_members, min(max_threads(), n_members) + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


class PopulationSteps:
    """The population's fixed parts and its step."""

    def __init__(self, population: Population, data: TrainData) -> None:
        config = population.configs[0]
        self.config, self.data = config, data
        self.loss_name = config.make_loss().name
        self.rule = config.make_rule()
        self.plain_sgd = isinstance(self.rule, SGD)
        self._gradients: FloatArray | None = None
        gemm_routine(population.Wt.dtype)  # loaded here, before any step caps BLAS's threads
        self.schedules = [c.make_schedule() for c in population.configs]
        self.regs = np.array([c.reg for c in population.configs])
        # A full batch is the whole X each step: rows kept as bytes are decoded once, here.
        X_train = data.X_train if config.batch_size is not None else as_float(data.X_train)
        self.sampler = BatchSampler(
            X_train, data.y_train, config.batch_size, config.sampling, config.seed
        )
        sample = config.eval_sample if config.eval_every else None
        self.eval_train = eval_split(data.X_train, data.y_train, sample)
        self.eval_val = eval_split(data.X_val, data.y_val, sample)

    def _gradient_buffer(self, Wt: FloatArray) -> FloatArray:
        """The members' gradients, laid out as Wt, kept from step to step (a fresh array each
        step would be mapped in afresh by the products, page by page)."""
        G = self._gradients
        if G is None or G.shape != Wt.shape or G.dtype != Wt.dtype:
            G = self._gradients = np.empty_like(Wt, order="F")
        return G

    def step(self, population: Population, *, prefetch_next: bool = False) -> tuple[
        NDArray[np.float64], NDArray[np.float64]
    ]:  # fmt: skip
        """One update of every member; the members' losses (before it) and learning rates. A
        member whose loss is not finite gets a W of no use: the caller takes it out. With
        `prefetch_next`, the next step's batch is drawn and gathered meanwhile (the next call
        must then be that step's).

        The members are split into one slab per thread the engine may use (`max_threads`), and
        each thread runs its slab's products on one-threaded BLAS: no thread waits for another
        inside a product, which on a busy machine (the job's writer, the API) costs a threaded
        BLAS call far more than the work it shares out.
        """
        members = population.members
        X_batch, y_batch = self.sampler.batch(population.step, population.rng)
        X_batch = np.asarray(as_float(X_batch))  # a memmap as a plain array
        if prefetch_next:
            self.sampler.prefetch(population.step + 1, population.rng)
        lrs = np.array([self.schedules[m](population.step) for m in members])
        regs = self.regs[members]
        losses = np.empty(len(members))
        slabs = member_slabs(len(members))
        G = None if self.plain_sgd else self._gradient_buffer(population.Wt)

        def slab(index: int, _slot: int) -> None:
            at = slabs[index]
            losses[at] = self._slab(population, X_batch, y_batch, at, lrs[at], regs[at], G)

        with single_threaded_blas():
            run_parallel([functools.partial(slab, i) for i in range(len(slabs))], len(slabs))
        if G is not None:
            C, Wt = population.n_classes, population.Wt
            G += np.repeat(2.0 * regs, C).astype(Wt.dtype) * Wt
            population.Wt, population.rule_state = self.rule.update(
                G,
                population.rule_state,
                Wt,
                np.repeat(lrs, C).astype(Wt.dtype),  # type: ignore[arg-type]
            )
        population.step += 1
        return losses, lrs

    def _slab(
        self,
        population: Population,
        X_batch: FloatArray,
        y_batch: IntArray,
        positions: slice,
        lrs: NDArray[np.float64],
        regs: NDArray[np.float64],
        G: FloatArray | None,
    ) -> NDArray[np.float64]:
        """The step of the members at `positions`: their losses; with plain SGD their W updated
        in place, else their gradients written into G."""
        C, n_rows = population.n_classes, X_batch.shape[0]
        columns = slice(positions.start * C, positions.stop * C)
        V = population.Wt[:, columns]  # a view: the products read and write it in place
        dtype = V.dtype
        scales = population.scales[positions]  # each member's W is its factor times its V
        S = X_batch @ V
        S *= np.repeat(scales, C).astype(dtype)
        # S becomes each member's score gradient dS, in place.
        losses = data_losses(self.loss_name, self.config.delta, S, y_batch, C)
        # Each column's sum of squares, a BLAS dot per column (V's columns are contiguous).
        squares = np.vecdot(V.T, V.T).reshape(-1, C).sum(axis=1, dtype=np.float64)
        total: NDArray[np.float64] = losses / n_rows + regs * (scales * scales * squares)
        if G is not None:
            gemm_at(G[:, columns], X_batch, S, alpha=1.0 / n_rows, beta=0.0)
            return total
        # W <- (1 - 2 lr reg) W - (lr / N) X^T dS, as W = scale V: the decay goes into the
        # member's factor, the data gradient into V, divided by the new factor.
        decayed = scales * (1.0 - 2.0 * lrs * regs)
        fold = decayed < MIN_SCALE  # small, zero or negative: put it into V and restart at 1
        for position in np.flatnonzero(fold):
            V[:, position * C : (position + 1) * C] *= dtype.type(decayed[position])
        decayed[fold] = 1.0
        S *= np.repeat(-lrs / (n_rows * decayed), C).astype(dtype)
        gemm_at(V, X_batch, S, alpha=1.0, beta=1.0)
        population.scales[positions] = decayed
        return total

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

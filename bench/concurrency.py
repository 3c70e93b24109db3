"""Two SGD-recipe trainings at once, in two processes, against one alone: steps/s with 1, 2 or
every core's threads per job, so that the worker can choose its thread count.

Each job is a fresh (spawned) process that loads the prepared CIFAR-10 training set, caps
OpenBLAS's and the engine's threads to the same n ("default": both at every core), waits at a
barrier with its sibling, then times the recipe after one untimed run: the engine's train.run,
or the course's training loop (bench.step).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import options, table, write_report
from bench.step import cifar10_prepared

REPEATS, STEPS = 2, 1500


def _job(kind: str, threads: int | None, data_dir: str, barrier: Any, results: Any) -> None:
    """One training in this process; puts its steps/s on `results`."""
    from threadpoolctl import threadpool_limits

    from bench.sgd import recipe, train
    from bench.step import course_train_svm
    from worker.engine.accel.parallel import limit_threads
    from worker.engine.train import TrainData

    X = np.load(Path(data_dir) / "X.npy")
    y = np.load(Path(data_dir) / "y.npy")
    data = TrainData(X, y, X[:1000], y[:1000])

    def training() -> None:
        if kind == "course":
            course_train_svm(X, y, num_iters=STEPS)
        else:
            train(recipe("float32"), data)

    with (
        contextlib.nullcontext() if threads is None else threadpool_limits(threads),
        contextlib.nullcontext() if threads is None else limit_threads(threads),
    ):
        training()  # warm-up, alone
        barrier.wait()
        start = time.perf_counter()
        training()
        results.put(STEPS / (time.perf_counter() - start))


def _case(ctx: Any, kind: str, threads: int | None, jobs: int, data_dir: str) -> list[float]:
    """Each job's steps/s."""
    barrier, results = ctx.Barrier(jobs), ctx.Queue()
    procs = [ctx.Process(target=_job, args=(kind, threads, data_dir, barrier, results))
             for _ in range(jobs)]  # fmt: skip
    for proc in procs:
        proc.start()
    rates = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise RuntimeError(f"a {kind} job failed with exit code {proc.exitcode}")
    return rates


def main() -> None:
    options(__doc__)
    X, labels = cifar10_prepared(("float32",))
    ctx = mp.get_context("spawn")
    cases = [(kind, threads, jobs) for kind in ("engine", "course")
             for threads in (None, 1, 2) for jobs in (1, 2)]  # fmt: skip
    best: dict[tuple[str, int | None, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="descent-bench-") as data_dir:
        np.save(Path(data_dir) / "X.npy", X["float32"]["train"])
        np.save(Path(data_dir) / "y.npy", labels["train"])
        del X
        for repeat in range(REPEATS):
            for case in cases:
                print(f"repeat {repeat}: {case} ...", flush=True)
                rates = _case(ctx, case[0], case[1], case[2], data_dir)
                if case not in best or sum(rates) > sum(best[case]):
                    best[case] = rates
    rows = []
    for kind, threads, jobs in cases:
        rates = best[(kind, threads, jobs)]
        alone = best[(kind, threads, 1)][0]
        mean = sum(rates) / len(rates)
        rows.append([kind, "default" if threads is None else threads, jobs,
                     " / ".join(f"{r:.0f}" for r in rates), f"{sum(rates):.0f}",
                     f"{alone / mean:.2f}"])  # fmt: skip
    body = f"""
{len(os.sched_getaffinity(0))} cores. Each cell: the best of {REPEATS} repeats (by total
steps/s). "threads" caps both OpenBLAS (threadpoolctl) and the engine's own threads
(limit_threads: passes, prefetch); "default" leaves both at every core. slowdown = steps/s of one
job alone / mean steps/s of a job in the pair, same threads.

{table(["code", "threads per job", "jobs at once", "steps/s of each job", "total steps/s",
        "slowdown per job"], rows)}
"""  # fmt: skip
    write_report("concurrency", "Two trainings at once: threads per job", body)


if __name__ == "__main__":
    main()

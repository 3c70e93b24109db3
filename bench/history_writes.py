"""What streaming every step's history into the database costs a training run.

The same spec (a loss and a learning-rate point every step) run (a) straight through the engine,
history discarded, then its final W scored on every split as every job ends, and (b) as a job by
a real Worker on a fresh SQLite database (its `run_s`). Target: (b) <= 1.10 x (a). The course's
recipe as docs/USAGE.md writes it (every other field at its default) is also run beside the same
job without evaluation or history. Target: <= 1.15 x the lean job.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench.common import RECIPE as RECIPE_AS_WRITTEN
from bench.common import migrated, options, require_cifar10, submit, table, write_report
from service.jobs import service
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.engine.train import TrainData, init_state, run
from worker.evaluation import evaluate
from worker.prepare import DataPreparer
from worker.runner import Worker
from worker.training import train_config

REPEATS = 5  # interleaved runs of each side
T = TypeVar("T")
TOY: dict[str, Any] = {
    "dataset": {"name": "toy"},
    "optimizer": {"type": "sgd", "learning_rate": 0.1, "iterations": 100_000},
    "log_every": 1,
    "eval_every": 0,
}
RECIPE = {**RECIPE_AS_WRITTEN, "log_every": 1, "eval_every": 0}
LEAN = {**RECIPE_AS_WRITTEN, "eval_every": 0, "log_every": 1500}
EVERY_ROW = {**RECIPE_AS_WRITTEN, "eval_sample": None}  # accuracies on every row, every 100 steps


def alternated(cases: list[Callable[[], T]]) -> list[list[T]]:
    """What each case returns, REPEATS times, the cases run in turn."""
    runs: list[list[T]] = [[] for _ in cases]
    for _ in range(REPEATS):
        for found, case in zip(runs, cases, strict=True):
            found.append(case())
    return runs


def engine_only(spec: dict[str, Any], preparer: DataPreparer, every: float) -> tuple[float, float]:
    """Seconds of the training loop (in chunks of `every` seconds, as a job's), and of scoring its
    W on every split as a job ends."""
    typed = JobSpec.model_validate(spec)
    data, _ = preparer.prepare(typed)
    config = train_config(typed)
    state = init_state(config, data.n_classes, data.X_train.shape[1])
    started = time.perf_counter()
    for _ in run(state, config, TrainData(data.X_train, data.y_train, data.X_val, data.y_val),
                 chunk_steps=100_000, chunk_seconds=every):  # fmt: skip
        pass
    trained = time.perf_counter()
    evaluate(state.W, data, state.step)
    return trained - started, time.perf_counter() - trained


def as_job(spec: dict[str, Any], workdir: Path) -> tuple[float, float]:
    """The job's `run_s`, and of that its `write_wait_s` (the engine waiting for its writes)."""
    url = f"sqlite:///{workdir / f'history-{time.monotonic_ns()}.db'}"
    database, settings = migrated(url, workdir / "data", cifar10_dir=require_cifar10())
    job_id = submit(database, settings, spec)
    with Worker(settings) as worker:
        worker.run(burst=True)
    with database.read() as session:
        done = service.get(session, job_id)
        assert done.status == "succeeded", done.error
        seconds = float(done.timings["run_s"]), float(done.timings["write_wait_s"])
    database.dispose()
    return seconds


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    options(__doc__.splitlines()[0])
    settings = Settings()  # the jobs' too: DESCENT_FLUSH_SECONDS, DESCENT_HISTORY_WRITER
    every = settings.flush_seconds
    workdir = Path(tempfile.mkdtemp(prefix="descent-history-"))
    preparer = DataPreparer(4 * 1024**3, require_cifar10())
    load_before = load_average()
    rows = []
    for name, spec in (("toy, 100,000 steps", TOY), ("CIFAR-10 SGD recipe, 1,500 steps", RECIPE)):
        engine_only(spec, preparer, every)  # warm-up: data prepared, code paths hot
        engine, job = alternated([partial(engine_only, spec, preparer, every),
                                  partial(as_job, spec, workdir)])  # fmt: skip
        bare = [train_s for train_s, _ in engine]
        scored = [train_s + score_s for train_s, score_s in engine]
        persisted = [run_s for run_s, _ in job]
        ratio = min(persisted) / min(scored)
        of_medians = statistics.median(persisted) / statistics.median(scored)
        rows.append([name, f"{min(bare):.2f}", f"{min(scored):.2f}", f"{min(persisted):.2f}",
                     f"{statistics.median(wait for _, wait in job):.3f}", f"{ratio:.2f}x",
                     f"{of_medians:.2f}x", "met" if ratio <= 1.10 else "missed"])  # fmt: skip
    header = ["run", "training loop alone (s)", "engine run: loop + final scoring (s)",
              "job with history (s)", "of which waiting for writes (s, median)", "ratio",
              "ratio of medians", "target 1.10x (ratio)"]  # fmt: skip
    # The recipe as users write it against the same job without evaluation or history.
    cases = {"as written (defaults)": RECIPE_AS_WRITTEN, "without evaluation or history": LEAN,
             "defaults, but `eval_sample: null`": EVERY_ROW}  # fmt: skip
    as_job(LEAN, workdir)  # warm-up
    found = alternated([partial(as_job, spec, workdir) for spec in cases.values()])
    runs = {name: [run_s for run_s, _ in job] for name, job in zip(cases, found, strict=True)}
    writer = {"process": "the worker's writer process", "thread": "a thread of the worker"}
    lean = min(runs["without evaluation or history"])
    ratio = min(runs["as written (defaults)"]) / lean
    defaults = [[name, f"{min(job):.3f}", f"{statistics.median(job):.3f}",
                 f"{min(job) / lean:.2f}x"] for name, job in runs.items()]  # fmt: skip
    body = f"""
{table(header, rows)}

Training loop alone: consumed in {every:g} s chunks, history discarded; the engine run adds the
final scoring every job ends with. Job: a Worker on a fresh SQLite database, its writes by
{writer[settings.history_writer]} every {every:g} s (DESCENT_FLUSH_SECONDS). `Waiting for
writes`: the job's `timings.write_wait_s`. Ratio: job / engine run, the target's measure. Min of
{REPEATS} interleaved runs each. Load average (1, 5, 15 min) {load_before} before,
{load_average()} after.

## The recipe as users write it

{table(["job", "run_s, min (s)", "run_s, median (s)", "to the lean job (min)"], defaults)}

Target: the default job <= 1.15x the lean one: **{"met" if ratio <= 1.15 else "missed"}**
({ratio:.2f}x). Each job a Worker on a fresh SQLite database; min and median of {REPEATS}
interleaved runs each. The lean job is the same spec with `eval_every: 0` and `log_every: 1500`.
"""
    write_report("history_writes", "The cost of writing the history", body)


if __name__ == "__main__":
    main()

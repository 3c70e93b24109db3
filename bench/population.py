"""A sweep trained as one population: the course's 8 x 8 learning-rate x regularization grid on
CIFAR-10 (64 trials of the README's recipe, 1,500 steps), through POST /sweeps.

Candidates, each a real `descent serve` on a temporary SQLite database, warmed up first
(CIFAR-10 prepared) with one tiny job per worker:
- population: `--workers 1`, default settings (up to DESCENT_POPULATION_SIZE trials together),
  and `--workers 2` (each worker takes half of the trials: its share of the cores); and the same
  grid with the softmax loss on `--workers 2`, for the course's search of both losses;
- separate jobs: `--workers 2`, DESCENT_POPULATION_SIZE=1: every trial a job of its own, two at
  a time, as before populations;
- the products alone: the population step's two products per slab, 1,500 times, in this
  process (no API, no loss, no evaluation): the ceiling of the population's layout;
- the course's loop: LinearClassifier.train (bench.step's copy) in this process, on one row of the
  grid (8 trials), scaled to 64.
The trainings' FLOPs are 64 x 1,500 steps x 4 B D C (two products of a B x D minibatch with C
columns, B = 200, D = 3,073, C = 10).
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RECIPE, options, require_cifar10, serve, table, wait_finished, write_report
from bench.step import cifar10_prepared, course_train_svm
from worker.engine.accel.blas import gemm_at, gemm_routine
from worker.engine.accel.parallel import run_parallel, single_threaded_blas
from worker.engine.population_steps import member_slabs

RATE_RANGE, STRENGTH_RANGE, GRID_POINTS = (1e-8, 1e-6), (1e3, 1e5), 8
TRIALS, STEPS, BATCH, FEATURES, CLASSES = 64, 1500, 200, 3073, 10
FLOPS = TRIALS * STEPS * 4 * BATCH * FEATURES * CLASSES
COURSE_TRIALS = 8


def grid(loss: str = "svm") -> dict[str, Any]:
    base = {key: value for key, value in RECIPE.items() if key != "name"}
    return {
        "name": f"course grid, {loss}",
        "base": {**base, "model": {**base["model"], "loss": loss}},
        "method": "grid",
        "space": {
            "optimizer.learning_rate": {"log_uniform": list(RATE_RANGE), "num": GRID_POINTS},
            "model.reg": {"log_uniform": list(STRENGTH_RANGE), "num": GRID_POINTS},
        },
    }


def gemm_rate() -> float:
    """FLOP/s of a large float32 matrix product on every core (best of 5)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4096, 4096), dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        A @ A
        best = min(best, time.perf_counter() - started)
    return 2 * 4096**3 / best


def through_the_api(
    workdir: Path, workers: int, env: dict[str, str], loss: str = "svm"
) -> dict[str, Any]:
    """The grid on a fresh `descent serve`: its wall time, and the sweep as it ended."""
    workdir.mkdir(parents=True)
    with serve(workdir, env, workers=workers) as (api, _):
        tiny = {**RECIPE, "optimizer": {**RECIPE["optimizer"], "iterations": 1}}
        warm = [api.post("/jobs", json=tiny).json()["id"] for _ in range(workers)]
        for job_id in warm:
            wait_finished(api, f"/jobs/{job_id}", 0.2)
        started = time.perf_counter()
        response = api.post("/sweeps", json=grid(loss))
        response.raise_for_status()
        done = wait_finished(api, f"/sweeps/{response.json()['id']}", 0.2)
        elapsed = time.perf_counter() - started
        runs = [api.get(f"/jobs/{job['id']}").json()["timings"] for job in done["jobs"]]
    return {"elapsed": elapsed, "sweep": done, "run_s": max(t.get("run_s", 0.0) for t in runs)}


def products_alone() -> float:
    """Seconds for the population's products alone: 1,500 steps of the two products of a
    B x D minibatch with the 64 trials' K*C columns, one slab of trials per engine thread on
    one-threaded BLAS, as the population's step runs them (the ceiling of that layout)."""
    rng = np.random.default_rng(0)
    # Centred pixels and weights of the scale the recipe trains (its initial 1e-4 * randn).
    X = (rng.integers(0, 256, (BATCH, FEATURES)) - 128).astype(np.float32)
    Wt = np.asfortranarray(1e-4 * rng.standard_normal((FEATURES, TRIALS * CLASSES)), np.float32)
    # An SVM score gradient's 0/1 pattern, times the recipe's lr / B.
    dS = (rng.integers(0, 2, (BATCH, TRIALS * CLASSES)) * -5e-10).astype(np.float32)
    columns = [slice(s.start * CLASSES, s.stop * CLASSES) for s in member_slabs(TRIALS)]
    slabs = [(Wt[:, at], dS[:, at].copy()) for at in columns]

    def step(slab: np.ndarray, dS: np.ndarray, _slot: int) -> None:
        X @ slab  # the scores
        gemm_at(slab, X, dS, alpha=1.0, beta=1.0)  # W += X^T dS

    gemm_routine(Wt.dtype)  # SciPy's BLAS loaded before single_threaded_blas caps it
    with single_threaded_blas():
        started = time.perf_counter()
        for _ in range(STEPS):
            run_parallel([functools.partial(step, W, dW) for W, dW in slabs], len(slabs))
        return time.perf_counter() - started


def course_loop() -> tuple[float, float]:
    """Seconds for the 64 trials at the rate of COURSE_TRIALS of them, and their best val."""
    X, y = cifar10_prepared(("float32",))
    rates = np.geomspace(*RATE_RANGE, GRID_POINTS)
    reg = float(np.geomspace(*STRENGTH_RANGE, GRID_POINTS)[GRID_POINTS // 2])
    started = time.perf_counter()
    best = 0.0
    for rate in rates[:COURSE_TRIALS]:
        W, _loss = course_train_svm(X["float32"]["train"], y["train"], learning_rate=float(rate),
                                    reg=reg, num_iters=STEPS, batch_size=BATCH)  # fmt: skip
        predicted = np.argmax(X["float32"]["val"] @ W, axis=1)
        best = max(best, float(np.mean(predicted == y["val"])))
    return (time.perf_counter() - started) * TRIALS / COURSE_TRIALS, best


def report(
    rate: float, results: dict[str, dict[str, Any]], products: float, course: tuple[float, float]
) -> str:
    separate = results["separate jobs"]["elapsed"]
    found = []
    for name, run in results.items():
        best = run["sweep"]["best"]
        trial = ", ".join(f"{key.split('.')[-1]} {value:.3g}" for key, value in
                          best["params"].items())  # fmt: skip
        found.append((name, run["elapsed"], run["sweep"]["counts"]["succeeded"],
                      f"{best['val_accuracy']:.3f} / {best['test_accuracy']:.3f} ({trial})"))
    found += [("the products alone (engine, no API)", products, "-", "-"),
              (f"the course's loop ({COURSE_TRIALS} trials, x {TRIALS // COURSE_TRIALS})",
               course[0], "-", f"{course[1]:.3f} / -")]  # fmt: skip
    rows = [[name, f"{seconds:.1f}", f"{FLOPS / seconds / 1e9:.0f}",
             f"{FLOPS / seconds / rate:.2f}", f"{separate / seconds:.2f}", succeeded, best]
            for name, seconds, succeeded, best in found]  # fmt: skip
    header = ["candidate", "s", "training GFLOP/s", "share of GEMM rate", "separate jobs / x",
              "trials succeeded", "best trial: val / test"]  # fmt: skip
    population = results["population"]
    return "\n\n".join([
        table(header, rows),
        f"The machine's float32 GEMM rate: {rate / 1e9:.0f} GFLOP/s (4096 x 4096, every core, "
        f"best of 5, the higher of before and after). The trainings' FLOPs: {FLOPS / 1e12:.2f} "
        "TFLOP. Each time runs from `POST /sweeps` to the sweep's final status, on a warmed-up "
        f"server. The population's own `run_s` (claim to the last trial's end, in the worker): "
        f"{population['run_s']:.1f} s. Validation: the course's 1,000 images after the first "
        "49,000 training images; test: the first 1,000 test images. The course expects about "
        "0.38-0.40 (SVM) and 0.35-0.40 (softmax) on validation.",
        "The request, as sent to `POST /sweeps` (the softmax grid's `model.loss` is \"softmax\"):"
        f"\n\n```json\n{json.dumps(grid(), indent=2)}\n```",
    ])  # fmt: skip


def main() -> None:
    options(__doc__)
    require_cifar10()
    workdir = Path(tempfile.mkdtemp(prefix="descent-population-"))
    before = gemm_rate()
    results = {
        "population": through_the_api(workdir / "population", 1, {}),
        "population, 2 workers": through_the_api(workdir / "population-2", 2, {}),
        "separate jobs": through_the_api(workdir / "separate", 2, {"DESCENT_POPULATION_SIZE": "1"}),
        "population, softmax, 2 workers": through_the_api(workdir / "softmax", 2, {}, "softmax"),
    }
    products = products_alone()
    course = course_loop()
    rate = max(before, gemm_rate())
    write_report(
        "population",
        "The course's 8 x 8 grid as one population, as separate jobs, and in the course's loop",
        report(rate, results, products, course),
    )


if __name__ == "__main__":
    main()

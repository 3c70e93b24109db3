"""Run a `train` job: the engine's training loop, resumed from a checkpoint when there is one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.history.writes import Points
from worker.checkpoint import generator_state, pack, restore_generator, unpack
from worker.context import JobContext, Outcome, Resume
from worker.driving import drive
from worker.engine.train import Chunk, Diverged, TrainData, TrainState, init_state, run
from worker.engine.train_config import TrainConfig
from worker.evaluation import evaluate
from worker.prepared_data import PreparedData
from worker.pruning import pruner_for
from worker.training import train_config


class History:
    """Turns engine chunks into metric rows and keeps the job's latest metrics."""

    def __init__(self, metrics: dict[str, float] | None = None) -> None:
        self.metrics: dict[str, float] = dict(metrics or {})
        # The labels the last step's evaluation predicted on train and val with the final W, so
        # that the job's final scoring does not predict them again (None until a run has them,
        # e.g. with eval_every 0).
        self.predictions: Mapping[str, np.ndarray] | None = None

    def add(self, chunk: Chunk) -> list[Points]:
        if chunk.predictions is not None:
            self.predictions = chunk.predictions
        steps = chunk.steps.tolist()
        losses = chunk.losses.tolist()
        points = [
            Points("loss", steps, losses),
            Points("learning_rate", steps, chunk.learning_rates.tolist()),
        ]
        if chunk.evals:
            eval_steps = [e.step for e in chunk.evals]
            points += [
                Points("train_accuracy", eval_steps, [e.train_accuracy for e in chunk.evals]),
                Points("val_accuracy", eval_steps, [e.val_accuracy for e in chunk.evals]),
            ]
            self.metrics["train_accuracy"] = chunk.evals[-1].train_accuracy
            self.metrics["val_accuracy"] = chunk.evals[-1].val_accuracy
        if losses:
            self.metrics["loss"] = losses[-1]
            best = min(losses)
            self.metrics["best_loss"] = min(best, self.metrics.get("best_loss", best))
        return points


# A population member's W as its population holds it: its block and its factor.
Unscaled = tuple[np.ndarray, float]


def state_to_checkpoint(
    state: TrainState, metrics: dict[str, float], unscaled: Unscaled | None = None
) -> bytes:
    """`unscaled`: a population member's, kept beside W so that the population resumes bit for
    bit (a run resumed alone, or a worker that knows nothing of populations, reads W)."""
    arrays = {"W": state.W, **{f"rule.{key}": value for key, value in state.rule_state.items()}}
    meta = {"kind": "train", "step": state.step, "rng": generator_state(state.rng),
            "metrics": metrics}  # fmt: skip
    if unscaled is not None:
        arrays["population.unscaled"], meta["population_scale"] = unscaled
    return pack(arrays, meta)


def state_from_checkpoint(payload: bytes) -> tuple[TrainState, dict[str, float], Unscaled | None]:
    """The state, the metrics, and the `unscaled` W of a population member's checkpoint."""
    arrays, meta = unpack(payload)
    if meta.get("kind") != "train":
        raise ValueError(f"not a train checkpoint: {meta.get('kind')!r}")
    rule_state = {key[5:]: value for key, value in arrays.items() if key.startswith("rule.")}
    state = TrainState(
        W=arrays["W"], rule_state=rule_state, rng=restore_generator(meta["rng"]), step=meta["step"]
    )
    unscaled = None
    if "population.unscaled" in arrays:
        unscaled = arrays["population.unscaled"], float(meta["population_scale"])
    return state, dict(meta["metrics"]), unscaled


def initial_state(
    config: TrainConfig, data: PreparedData, resume: Resume | None
) -> tuple[TrainState, History, Unscaled | None]:
    if resume is None:
        return init_state(config, data.n_classes, data.X_train.shape[1]), History(), None
    state, metrics, unscaled = state_from_checkpoint(resume.payload)
    return state, History(metrics), unscaled


def run_train(context: JobContext, data: PreparedData, resume: Resume | None) -> Outcome:
    config = train_config(context.spec)
    state, history, _ = initial_state(config, data, resume)  # alone: W, whatever wrote it
    train_data = TrainData(data.X_train, data.y_train, data.X_val, data.y_val)
    pruner = pruner_for(context, start=state.step, step=lambda: state.step,
                        weights=lambda: state.W, metrics=lambda: history.metrics)  # fmt: skip
    chunk_steps = pruner.chunk_steps if pruner is not None else 100_000
    every = context.settings.flush_seconds
    chunks = run(state, config, train_data, chunk_steps=chunk_steps, chunk_seconds=every)
    try:
        stopped = drive(
            context,
            chunks,
            points_of=history.add,
            metrics=lambda: history.metrics,
            step=lambda: state.step,
            snapshot=lambda: (state_to_checkpoint(state, history.metrics), state.W),
            check=pruner.check if pruner is not None else None,
        )
    except Diverged as exc:
        error = {"type": "diverged", "message": f"the loss became {exc.loss} at step {exc.step}",
                 "step": exc.step}  # fmt: skip
        return Outcome("failed", {"error": error, "metrics": history.metrics})
    if stopped is not None:
        return stopped
    return succeeded(context, data, state.W, state.step, history.metrics, history.predictions)


def succeeded(
    context: JobContext,
    data: PreparedData,
    W: np.ndarray,
    step: int,
    metrics: dict[str, float],
    predicted: Mapping[str, np.ndarray] | None = None,
) -> Outcome:
    """Score the returned W on every split (confusion matrices too) and store it; `predicted`
    are W's labels for the splits the run's last evaluation already predicted."""
    final: dict[str, Any] = dict(metrics)
    report = evaluate(W, data, step, predicted)
    for split, scores in report["splits"].items():
        # The same count over the same rows as metrics.accuracy (NaN for an empty split).
        final[f"{split}_accuracy"] = scores["accuracy"] if scores["n"] else float("nan")
    context.put_arrays({"W": (W, step)})
    return Outcome("succeeded", {"metrics": final, "progress_step": step, "evaluation": report})

"""Translate a job's typed spec into the engine's configurations (the one place that knows both).

Every value comes from the spec's models, where its default lives; nothing here fills one in.
"""

from __future__ import annotations

from typing import TypedDict

from service.jobs.spec import JobSpec, Model
from worker.engine.losses import LossName
from worker.engine.search import LocalSearchConfig, RandomSearchConfig
from worker.engine.train_config import TrainConfig


class LossArgs(TypedDict):
    """The model's part of every engine call: which loss, and its regularization and margin."""

    loss: LossName
    reg: float
    delta: float


def loss_args(model: Model) -> LossArgs:
    return {"loss": model.loss, "reg": model.reg, "delta": model.delta}


def train_config(spec: JobSpec) -> TrainConfig:
    opt = spec.gradient_optimizer()
    return TrainConfig(
        **loss_args(spec.model),
        optimizer=opt.type,
        optimizer_params=opt.rule_params,
        learning_rate=opt.learning_rate,
        lr_schedule=opt.lr_schedule.model_dump(),
        batch_size=opt.batch_size,
        sampling=opt.sampling,
        iterations=opt.iterations,
        init_scale=opt.init_scale,
        gradient=opt.gradient,
        h=opt.h,
        difference=opt.difference,
        log_every=spec.log_every,
        eval_every=spec.eval_every,
        eval_sample=spec.eval_sample,
        dtype=spec.dtype,
        seed=spec.seed,
    )


def search_config(spec: JobSpec) -> RandomSearchConfig | LocalSearchConfig:
    opt = spec.search_optimizer()
    if opt.type == "random_search":
        return RandomSearchConfig(
            **loss_args(spec.model), log_every=spec.log_every, dtype=spec.dtype, seed=spec.seed,
            trials=opt.trials, scale=opt.scale,
        )  # fmt: skip
    return LocalSearchConfig(
        **loss_args(spec.model), log_every=spec.log_every, dtype=spec.dtype, seed=spec.seed,
        iterations=opt.iterations, init_scale=opt.init_scale, step_size=opt.step_size,
    )  # fmt: skip

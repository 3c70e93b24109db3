"""Translate a stored job spec into the engine's TrainConfig (the one place that knows both)."""

from __future__ import annotations

from typing import Any

from worker.engine.train import TrainConfig

RULE_PARAMS = ("momentum", "beta1", "beta2", "eps", "decay_rate")


def train_config(spec: dict[str, Any]) -> TrainConfig:
    opt = spec["optimizer"]
    model = spec["model"]
    return TrainConfig(
        loss=model["loss"],
        reg=float(model["reg"]),
        delta=float(model["delta"]),
        optimizer=opt["type"],
        optimizer_params={k: float(opt[k]) for k in RULE_PARAMS if k in opt},
        learning_rate=float(opt["learning_rate"]),
        lr_schedule=dict(opt.get("lr_schedule") or {"type": "constant"}),
        batch_size=opt.get("batch_size"),
        sampling=opt.get("sampling", "replacement"),
        iterations=int(opt["iterations"]),
        init_scale=float(opt["init_scale"]),
        gradient=opt.get("gradient", "analytic"),
        h=float(opt.get("h", 1e-5)),
        difference=opt.get("difference", "centered"),
        log_every=int(spec["log_every"]),
        eval_every=int(spec["eval_every"]),
        eval_sample=spec["eval_sample"],
        dtype=spec["dtype"],
        seed=int(spec["seed"]),
    )

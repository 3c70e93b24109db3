"""A training run's hyperparameters, checked once when the configuration is made."""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from worker.engine.gradients import Difference
from worker.engine.losses import LossFunction, make_loss
from worker.engine.lr_schedules import make_schedule
from worker.engine.optimizers import UpdateRule, make_rule
from worker.engine.sampling import SAMPLING_MODES, Sampling

DTypeName = Literal["float32", "float64"]
GradientSource = Literal["analytic", "numerical"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a training run; invalid values raise ValueError on construction.

    `eval_sample` k measures the accuracy at steps before the last on k fixed rows of each split
    (`eval_rows`); None, and the last step, use every row.

    `gradient` "numerical" replaces the analytic gradient of each minibatch by finite
    differences over every entry of W (step `h`, `difference` "centered" or "forward"),
    computed through the linear scores by worker.engine.numerical.
    """

    loss: str = "svm"
    reg: float = 0.0
    delta: float = 1.0
    optimizer: str = "sgd"
    optimizer_params: Mapping[str, float] = field(default_factory=dict)
    learning_rate: float = 1e-3
    lr_schedule: Mapping[str, Any] = field(default_factory=lambda: {"type": "constant"})
    batch_size: int | None = 200
    sampling: Sampling = "replacement"
    iterations: int = 100
    init_scale: float = 0.001
    log_every: int = 1
    eval_every: int = 0
    eval_sample: int | None = None
    dtype: DTypeName = "float32"
    seed: int = 0
    gradient: GradientSource = "analytic"
    h: float = 1e-5
    difference: Difference = "centered"

    def __post_init__(self) -> None:
        self.make_loss()
        self.make_rule()
        self.make_schedule()
        if not (math.isfinite(self.reg) and self.reg >= 0.0):
            raise ValueError(f"reg must be >= 0, got {self.reg}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0.0):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {self.sampling!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name, minimum in (("iterations", 1), ("log_every", 1), ("eval_every", 0)):
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}")
        if self.eval_sample is not None and self.eval_sample < 1:
            raise ValueError(f"eval_sample must be >= 1 or None, got {self.eval_sample}")
        if not self.init_scale >= 0.0:
            raise ValueError(f"init_scale must be >= 0, got {self.init_scale}")
        if self.gradient not in ("analytic", "numerical"):
            raise ValueError(f"gradient must be 'analytic' or 'numerical', got {self.gradient!r}")
        if not (math.isfinite(self.h) and self.h > 0.0):
            raise ValueError(f"h must be positive, got {self.h}")
        if self.difference not in ("centered", "forward"):
            raise ValueError(f"difference must be 'centered' or 'forward', got {self.difference!r}")

    @property
    def np_dtype(self) -> np.dtype[np.floating[Any]]:
        return np.dtype(np.float32 if self.dtype == "float32" else np.float64)

    def make_loss(self) -> LossFunction:
        return make_loss(self.loss, self.reg, self.delta)

    def make_rule(self) -> UpdateRule:
        return make_rule(self.optimizer, **self.optimizer_params)

    def make_schedule(self) -> Callable[[int], float]:
        params = dict(self.lr_schedule)
        kind = params.pop("type", "constant")
        return make_schedule(kind, self.learning_rate, **params)

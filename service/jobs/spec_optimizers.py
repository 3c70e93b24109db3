"""Optimizer specs: a discriminated union on `type`, each with the course's defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from service.jobs.spec_base import DifferenceStep, NonNegativeFloat, PositiveFloat
from service.jobs.spec_base import Strict as _Strict


class ConstantSchedule(_Strict):
    type: Literal["constant"] = "constant"


class StepSchedule(_Strict):
    type: Literal["step"]
    step_size: int = Field(100, ge=1, description="Steps between decays.")
    gamma: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        0.5, description="Decay factor in (0, 1] applied every step_size steps."
    )


class ExponentialSchedule(_Strict):
    type: Literal["exponential"]
    k: NonNegativeFloat = Field(1e-3, description="lr·exp(−k·t).")


class InverseTimeSchedule(_Strict):
    type: Literal["inverse_time"]
    k: NonNegativeFloat = Field(1e-3, description="lr / (1 + k·t).")


Schedule = Annotated[
    ConstantSchedule | StepSchedule | ExponentialSchedule | InverseTimeSchedule,
    Field(discriminator="type"),
]


class _GradientDescent(_Strict):
    iterations: int = Field(1000, ge=1, description="Parameter updates.")
    learning_rate: PositiveFloat = 1e-3
    batch_size: int | None = Field(
        None, ge=1, description="null = the full batch (vanilla GD), 1 = SGD, k = minibatch."
    )
    sampling: Literal["replacement", "epoch"] = Field(
        "replacement", description="Minibatches drawn with replacement (the course) or by epoch."
    )
    gradient: Literal["analytic", "numerical"] = Field(
        "analytic", description="analytic, or finite differences over every entry of W."
    )
    h: DifferenceStep = Field(
        1e-5, description="Finite-difference step (numerical gradient; at most 1)."
    )
    difference: Literal["centered", "forward"] = Field(
        "centered", description="(f(W+h)−f(W−h))/2h or (f(W+h)−f(W))/h."
    )
    init_scale: PositiveFloat = Field(0.001, description="W starts as init_scale·randn.")
    lr_schedule: Schedule = Field(default_factory=ConstantSchedule)

    @property
    def rule_params(self) -> dict[str, float]:
        """The update rule's own hyperparameters: the fields its type adds (momentum, eps, ...)."""
        shared = _GradientDescent.model_fields.keys() | {"type"}
        return {name: getattr(self, name) for name in type(self).model_fields if name not in shared}


class Sgd(_GradientDescent):
    type: Literal["sgd"]


class Momentum(_GradientDescent):
    type: Literal["momentum"]
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9


class Nesterov(_GradientDescent):
    type: Literal["nesterov"]
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9


class Adagrad(_GradientDescent):
    type: Literal["adagrad"]
    eps: PositiveFloat = 1e-8


class RmsProp(_GradientDescent):
    type: Literal["rmsprop"]
    decay_rate: Annotated[float, Field(ge=0, lt=1)] = 0.99
    eps: PositiveFloat = 1e-8


class Adam(_GradientDescent):
    type: Literal["adam"]
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    beta2: Annotated[float, Field(ge=0, lt=1)] = 0.999
    eps: PositiveFloat = 1e-8


class RandomSearch(_Strict):
    """The note's strategy 1: `trials` draws of W = scale·randn, keep the best."""

    type: Literal["random_search"]
    trials: int = Field(1000, ge=1, description="Candidates drawn, each scored on all of train.")
    scale: PositiveFloat = Field(1e-4, description="W = scale·randn.")


class RandomLocalSearch(_Strict):
    """The note's strategy 2: propose W + step_size·randn, keep it only if the loss drops."""

    type: Literal["random_local_search"]
    iterations: int = Field(1000, ge=1, description="Proposals, each scored on all of train.")
    init_scale: PositiveFloat = Field(0.001, description="W starts as init_scale·randn.")
    step_size: PositiveFloat = Field(1e-4, description="Proposal = W + step_size·randn.")


GRADIENT_TYPES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
SEARCH_TYPES = ("random_search", "random_local_search")
# The two families, for code that runs one of them (isinstance narrows to its fields).
GradientOptimizer = Sgd | Momentum | Nesterov | Adagrad | RmsProp | Adam
SearchOptimizer = RandomSearch | RandomLocalSearch

Optimizer = Annotated[GradientOptimizer | SearchOptimizer, Field(discriminator="type")]


def steps_of(optimizer: GradientOptimizer | SearchOptimizer) -> int:
    """How many steps (updates, trials or proposals) a run of this optimizer takes."""
    return optimizer.trials if isinstance(optimizer, RandomSearch) else optimizer.iterations

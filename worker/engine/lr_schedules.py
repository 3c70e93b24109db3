"""Learning-rate schedules: functions of the step t (0 at the first update) returning a float."""

import math
from collections.abc import Callable
from dataclasses import dataclass

SCHEDULE_TYPES = ("constant", "step", "exponential", "inverse_time")


@dataclass(frozen=True)
class Constant:
    learning_rate: float

    def __call__(self, t: int) -> float:
        return self.learning_rate


@dataclass(frozen=True)
class StepDecay:
    """lr * gamma ** (t // step_size)."""

    learning_rate: float
    step_size: int
    gamma: float = 0.5

    def __call__(self, t: int) -> float:
        return self.learning_rate * self.gamma ** (t // self.step_size)


@dataclass(frozen=True)
class ExponentialDecay:
    """lr * exp(-k t)."""

    learning_rate: float
    k: float

    def __call__(self, t: int) -> float:
        return self.learning_rate * math.exp(-self.k * t)


@dataclass(frozen=True)
class InverseTimeDecay:
    """lr / (1 + k t)."""

    learning_rate: float
    k: float

    def __call__(self, t: int) -> float:
        return self.learning_rate / (1.0 + self.k * t)


def _take(params: dict[str, float], name: str, default: float | None = None) -> float:
    if name in params:
        return float(params.pop(name))
    if default is None:
        raise ValueError(f"this learning-rate schedule needs {name!r}")
    return default


def make_schedule(type: str, learning_rate: float, **params: float) -> Callable[[int], float]:
    """The schedule `type` ("constant" | "step" | "exponential" | "inverse_time") from lr.

    step takes `step_size` (required, a positive int) and `gamma` (0.5); exponential and
    inverse_time take `k` (required, >= 0). Unknown types or parameters raise ValueError.
    """
    rest = dict(params)
    lr = float(learning_rate)
    schedule: Callable[[int], float]
    if type == "constant":
        schedule = Constant(lr)
    elif type == "step":
        step_size = _take(rest, "step_size")
        if step_size < 1 or step_size != int(step_size):
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        schedule = StepDecay(lr, int(step_size), _take(rest, "gamma", 0.5))
    elif type in ("exponential", "inverse_time"):
        k = _take(rest, "k")
        if k < 0.0:
            raise ValueError(f"k must be >= 0, got {k}")
        schedule = ExponentialDecay(lr, k) if type == "exponential" else InverseTimeDecay(lr, k)
    else:
        raise ValueError(
            f"unknown learning-rate schedule {type!r}: expected one of {', '.join(SCHEDULE_TYPES)}"
        )
    if rest:
        raise ValueError(f"schedule {type!r} does not take {', '.join(sorted(rest))}")
    return schedule

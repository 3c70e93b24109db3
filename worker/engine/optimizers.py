"""Parameter update rules with explicit state (optax-like), in the forms of CS231n's notes.

`init(W) -> state` builds the rule's state (a dict of arrays in W's dtype; Adam also keeps its
step count `t` as a 0-d int64 array), and `update(grad, state, W, lr) -> (W, state)` applies one
step. For speed `update` modifies W and the state's arrays in place and returns them; the
gradient is never modified. Everything runs in W's dtype.
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray

RuleState = dict[str, NDArray[Any]]


class UpdateRule(Protocol):
    name: str

    def init(self, W: FloatArray) -> RuleState: ...

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]: ...


def _check_unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def _check_positive(name: str, value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class SGD:
    """x -= lr * dx."""

    name = "sgd"

    def init(self, W: FloatArray) -> RuleState:
        return {}

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]:
        W -= lr * grad
        return W, state


@dataclass(frozen=True)
class Momentum:
    """v = mu v - lr dx; x += v."""

    momentum: float = 0.9
    name = "momentum"

    def __post_init__(self) -> None:
        _check_unit_interval("momentum", self.momentum)

    def init(self, W: FloatArray) -> RuleState:
        return {"v": np.zeros_like(W)}

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]:
        v = state["v"]
        v *= self.momentum
        v -= lr * grad
        W += v
        return W, state


@dataclass(frozen=True)
class Nesterov:
    """v_prev = v; v = mu v - lr dx; x += -mu v_prev + (1 + mu) v  (neural-networks-3)."""

    momentum: float = 0.9
    name = "nesterov"

    def __post_init__(self) -> None:
        _check_unit_interval("momentum", self.momentum)

    def init(self, W: FloatArray) -> RuleState:
        return {"v": np.zeros_like(W)}

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]:
        v = state["v"]
        mu = self.momentum
        W -= mu * v
        v *= mu
        v -= lr * grad
        W += (1.0 + mu) * v
        return W, state


@dataclass(frozen=True)
class Adagrad:
    """cache += dx**2; x -= lr dx / (sqrt(cache) + eps)."""

    eps: float = 1e-8
    name = "adagrad"

    def __post_init__(self) -> None:
        _check_positive("eps", self.eps)

    def init(self, W: FloatArray) -> RuleState:
        return {"cache": np.zeros_like(W)}

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]:
        cache = state["cache"]
        cache += grad * grad
        W -= lr * grad / (np.sqrt(cache) + self.eps)
        return W, state


@dataclass(frozen=True)
class RMSProp:
    """cache = decay cache + (1 - decay) dx**2; x -= lr dx / (sqrt(cache) + eps)."""

    decay_rate: float = 0.99
    eps: float = 1e-8
    name = "rmsprop"

    def __post_init__(self) -> None:
        _check_unit_interval("decay_rate", self.decay_rate)
        _check_positive("eps", self.eps)

    def init(self, W: FloatArray) -> RuleState:
        return {"cache": np.zeros_like(W)}

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]:
        cache = state["cache"]
        cache *= self.decay_rate
        cache += (1.0 - self.decay_rate) * (grad * grad)
        W -= lr * grad / (np.sqrt(cache) + self.eps)
        return W, state


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction; t counts updates (1 at the first one).

    m = b1 m + (1 - b1) dx; v = b2 v + (1 - b2) dx**2;
    x -= lr (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps).
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name = "adam"

    def __post_init__(self) -> None:
        _check_unit_interval("beta1", self.beta1)
        _check_unit_interval("beta2", self.beta2)
        _check_positive("eps", self.eps)

    def init(self, W: FloatArray) -> RuleState:
        return {"m": np.zeros_like(W), "v": np.zeros_like(W), "t": np.zeros((), dtype=np.int64)}

    def update(
        self, grad: FloatArray, state: RuleState, W: FloatArray, lr: float
    ) -> tuple[FloatArray, RuleState]:
        m, v, t = state["m"], state["v"], state["t"]
        t += 1
        step = int(t)
        m *= self.beta1
        m += (1.0 - self.beta1) * grad
        v *= self.beta2
        v += (1.0 - self.beta2) * (grad * grad)
        m_hat = m / (1.0 - self.beta1**step)
        v_hat = v / (1.0 - self.beta2**step)
        W -= lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return W, state


RULES: Mapping[str, Callable[..., UpdateRule]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}


def rule_params(name: str) -> tuple[str, ...]:
    """The parameter names that `make_rule(name, ...)` accepts."""
    factory = RULES.get(name)
    if factory is None:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(RULES)}")
    return tuple(inspect.signature(factory).parameters)


def make_rule(name: str, **params: float) -> UpdateRule:
    """The update rule called `name` with its parameters (defaults as in the course)."""
    allowed = rule_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise ValueError(
            f"optimizer {name!r} does not take {', '.join(unknown)} (accepted: {accepted})"
        )
    return RULES[name](**{key: float(value) for key, value in params.items()})

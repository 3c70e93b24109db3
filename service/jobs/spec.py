"""The JobSpec: what a client submits. Defaults are filled in and echoed back in the stored spec."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuiltinDatasetRef(_Strict):
    """A built-in data set; split sizes default to its own (for CIFAR-10, the course split)."""

    name: Literal["cifar10", "digits", "toy", "blobs", "spiral"]
    n_train: int | None = Field(None, ge=1, description="Training rows (default: the data set's).")
    n_val: int | None = Field(None, ge=1, description="Validation rows.")
    n_test: int | None = Field(None, ge=1, description="Test rows.")
    n_features: int | None = Field(None, ge=1, le=10_000, description="blobs: input dimension.")
    n_classes: int | None = Field(None, ge=2, le=100, description="blobs, spiral: classes.")
    cluster_std: PositiveFloat | None = Field(None, description="blobs: spread of each blob.")
    noise: NonNegativeFloat | None = Field(None, description="spiral: angular noise.")
    seed: int | None = Field(None, ge=0, description="blobs, spiral: generator seed.")


class Preprocess(_Strict):
    center: bool = Field(True, description="Subtract the training mean (image).")
    standardize: bool = Field(False, description="Divide by the training standard deviation.")
    bias: bool = Field(True, description="Append a constant-1 column (the bias trick).")


class Model(_Strict):
    loss: Literal["svm", "softmax"] = "svm"
    delta: PositiveFloat = Field(1.0, description="SVM margin Δ.")
    reg: NonNegativeFloat = Field(0.0, description="L2 strength λ in data_loss + λ·ΣW².")


class ConstantSchedule(_Strict):
    type: Literal["constant"] = "constant"


class StepSchedule(_Strict):
    type: Literal["step"]
    step_size: int = Field(100, ge=1, description="Steps between decays.")
    gamma: PositiveFloat = Field(0.5, description="Factor applied every step_size steps.")


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
    gradient: Literal["analytic"] = Field("analytic", description="How the gradient is computed.")
    init_scale: PositiveFloat = Field(0.001, description="W starts as init_scale·randn.")
    lr_schedule: Schedule = Field(default_factory=ConstantSchedule)


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


Optimizer = Annotated[
    Sgd | Momentum | Nesterov | Adagrad | RmsProp | Adam, Field(discriminator="type")
]

SPEC_EXAMPLE: dict[str, Any] = {
    "task": "train",
    "name": "svm-sgd-baseline",
    "dataset": {"name": "cifar10", "n_train": 49000, "n_val": 1000, "n_test": 1000},
    "preprocess": {"center": True, "standardize": False, "bias": True},
    "model": {"loss": "svm", "delta": 1.0, "reg": 25000.0},
    "optimizer": {
        "type": "sgd",
        "learning_rate": 1e-7,
        "batch_size": 200,
        "iterations": 1500,
        "gradient": "analytic",
    },
    "dtype": "float32",
    "seed": 0,
    "log_every": 1,
    "eval_every": 100,
}


class JobSpec(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SPEC_EXAMPLE]})

    task: Literal["train"] = "train"
    name: str | None = Field(None, max_length=200)
    dataset: BuiltinDatasetRef
    preprocess: Preprocess = Field(default_factory=Preprocess)
    model: Model = Field(default_factory=Model)
    optimizer: Optimizer
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = Field(0, ge=0, le=2**63 - 1)
    log_every: int = Field(1, ge=1, description="One loss point every k steps (last always kept).")
    eval_every: int = Field(
        100, ge=0, description="Train/val accuracy every k steps; 0 = only at the end."
    )

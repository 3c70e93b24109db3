"""The JobSpec: what a client submits. Defaults are filled in and echoed back in the stored spec."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.jobs.spec_base import NonNegativeFloat, PlainText, PositiveFloat
from service.jobs.spec_base import Strict as _Strict
from service.jobs.spec_optimizers import GradientOptimizer, Optimizer, SearchOptimizer
from service.jobs.spec_tasks import GradientCheckParams, LandscapeParams, StepSizeSweepParams

Task = Literal["train", "gradient_check", "step_size_sweep", "landscape"]


class DatasetRef(_Strict):
    """A built-in data set by `name` or an uploaded one by `id` (exactly one of the two).

    Split sizes default to the data set's own (for CIFAR-10, the course split; for an upload, its
    stored splits, of which n_train / n_val / n_test take the first rows).
    """

    name: Literal["cifar10", "digits", "toy", "blobs", "spiral"] | None = Field(
        None, description="A built-in data set."
    )
    id: PlainText | None = Field(
        None, min_length=1, max_length=64, description="An uploaded data set (POST /datasets)."
    )
    n_train: int | None = Field(None, ge=1, description="Training rows (default: the data set's).")
    n_val: int | None = Field(None, ge=1, description="Validation rows.")
    n_test: int | None = Field(None, ge=1, description="Test rows.")
    n_features: int | None = Field(None, ge=1, le=10_000, description="blobs: input dimension.")
    n_classes: int | None = Field(None, ge=2, le=100, description="blobs, spiral: classes.")
    cluster_std: PositiveFloat | None = Field(None, description="blobs: spread of each blob.")
    noise: NonNegativeFloat | None = Field(None, description="spiral: angular noise.")
    seed: int | None = Field(None, ge=0, description="blobs, spiral: generator seed.")

    @model_validator(mode="after")
    def _name_or_id(self) -> DatasetRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of name (a built-in) and id (an upload)")
        return self


BuiltinDatasetRef = DatasetRef  # also importable by this name: one model for built-ins and uploads


class Preprocess(_Strict):
    center: bool = Field(True, description="Subtract the training mean (image).")
    standardize: bool = Field(False, description="Divide by the training standard deviation.")
    bias: bool = Field(True, description="Append a constant-1 column (the bias trick).")


class Model(_Strict):
    loss: Literal["svm", "softmax"] = "svm"
    delta: PositiveFloat = Field(1.0, description="SVM margin Δ.")
    reg: NonNegativeFloat = Field(0.0, description="L2 strength λ in data_loss + λ·ΣW².")


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
    "eval_sample": 1000,
}


class JobSpec(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SPEC_EXAMPLE]})

    task: Task = "train"
    name: PlainText | None = Field(None, max_length=200)
    dataset: DatasetRef
    preprocess: Preprocess = Field(default_factory=Preprocess)
    model: Model = Field(default_factory=Model)
    optimizer: Optimizer | None = Field(None, description="Required for task train.")
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = Field(0, ge=0, le=2**63 - 1)
    log_every: int = Field(1, ge=1, description="One loss point every k steps (last always kept).")
    eval_every: int = Field(
        100, ge=0, description="Train/val accuracy every k steps; 0 = only at the end."
    )
    eval_sample: int | None = Field(
        1000,
        ge=1,
        description="Accuracy during training is measured on this many fixed rows of each split "
        "(null = all rows); the last step and the final evaluation use every row.",
    )
    gradient_check: GradientCheckParams | None = None
    step_size_sweep: StepSizeSweepParams | None = None
    landscape: LandscapeParams | None = None

    @model_validator(mode="after")
    def _task_parameters(self) -> JobSpec:
        if self.task == "train":
            if self.optimizer is None:
                raise located("optimizer", "optimizer is required for task 'train'")
        elif getattr(self, self.task) is None:
            # The task's own parameters default, and are echoed in the stored spec.
            setattr(self, self.task, TASK_PARAMS[self.task]())
        for other in TASK_PARAMS:
            if other != self.task and getattr(self, other) is not None:
                raise located(other, f"{other} parameters given for task {self.task!r}")
        return self

    @property
    def is_search(self) -> bool:
        """Whether the optimizer is a random search or random local search, not a gradient's."""
        return isinstance(self.optimizer, SearchOptimizer)

    def gradient_optimizer(self) -> GradientOptimizer:
        """The optimizer, for a job that follows a gradient (ValueError for any other)."""
        if not isinstance(self.optimizer, GradientOptimizer):
            raise ValueError(f"not a gradient optimizer: {self.optimizer!r}")
        return self.optimizer

    def search_optimizer(self) -> SearchOptimizer:
        """The optimizer, for a random search or random local search (ValueError for any other)."""
        if not isinstance(self.optimizer, SearchOptimizer):
            raise ValueError(f"not a search optimizer: {self.optimizer!r}")
        return self.optimizer


def located(field: str, message: str) -> ValidationError:
    """A validation error located at `field` (a model validator's own errors are located at the
    model, so a 422 would not name the field)."""
    error = PydanticCustomError("task_parameters", message)
    return ValidationError.from_exception_data(
        "JobSpec", [InitErrorDetails(type=error, loc=(field,), input=None)]
    )


TASK_PARAMS: dict[str, type[_Strict]] = {
    "gradient_check": GradientCheckParams,
    "step_size_sweep": StepSizeSweepParams,
    "landscape": LandscapeParams,
}

# Every spec field that holds another job's id, as its path in the stored spec. A queued or
# running job needs the job it names (a landscape reads its W when it runs), so that job cannot
# be deleted meanwhile (service.jobs.service.delete): a field added here is protected too.
JOB_REFERENCES: tuple[tuple[str, ...], ...] = (("landscape", "around"),)

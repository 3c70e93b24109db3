"""Response models of the jobs resource. No NaN or Infinity ever leaves through them.

The polled answers (a job, a page of a series, the event stream's data) are built by these models'
serializers; service.history.answers turns them into the bytes those endpoints send.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


FiniteFloat = Annotated[float | None, PlainSerializer(finite, return_type=float | None)]


DEFAULT_PAGE, MAX_PAGE = 1000, 10_000  # points in a page of a series: by default, at most


class Progress(BaseModel):
    step: int
    total: int
    fraction: FiniteFloat
    phase: str | None = Field(
        None,
        description='What a running job is waiting for instead of stepping: "compiling '
        "kernels\" while the engine's compiled kernels compile for it (the first job of a loss "
        "and dtype on a worker that could not load them from its cache); null otherwise.",
        examples=[None, "compiling kernels"],
    )


class JobMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    loss: FiniteFloat = None
    best_loss: FiniteFloat = None
    train_accuracy: FiniteFloat = None
    val_accuracy: FiniteFloat = None
    test_accuracy: FiniteFloat = None


class JobError(BaseModel):
    type: str = Field(examples=["diverged"])
    message: str
    step: int | None = None


class Timings(BaseModel):
    queued_s: FiniteFloat = Field(None, description="Seconds from submission to a worker's claim.")
    load_s: FiniteFloat = Field(None, description="Seconds loading and preparing the data set.")
    run_s: FiniteFloat = Field(None, description="Seconds optimizing (or running the task).")
    write_wait_s: FiniteFloat = Field(
        None,
        description="Of run_s, the seconds the engine waited for its history writes to finish "
        "(they run while it computes; more than a few percent of run_s means the database is "
        "the bottleneck).",
    )


JOB_EXAMPLE: dict[str, Any] = {
    "id": "019a6f0c2b4d7e8f9a0b1c2d3e4f5a6b",
    "status": "running",
    "task": "train",
    "name": "svm-sgd-baseline",
    "spec": {"task": "train", "dataset": {"name": "cifar10"}, "optimizer": {"type": "sgd"}},
    "progress": {"step": 420, "total": 1500, "fraction": 0.28, "phase": None},
    "metrics": {"loss": 8.91, "best_loss": 8.7, "train_accuracy": 0.31, "val_accuracy": 0.30,
                "test_accuracy": None},
    "error": None,
    "attempts": 1,
    "timings": {"queued_s": 0.02, "load_s": 1.9, "run_s": 0.8},
    "created_at": "2026-11-26T22:30:00Z",
    "started_at": "2026-11-26T22:30:00.020000Z",
    "finished_at": None,
}  # fmt: skip


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    status: str = Field(examples=["running"])
    task: str
    name: str | None = None
    spec: dict[str, Any]
    progress: Progress
    metrics: JobMetrics
    error: JobError | None = None
    attempts: int
    timings: Timings
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class LossPoint(BaseModel):
    step: int
    loss: FiniteFloat


class LossPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "points": [{"step": 0, "loss": 9.4}, {"step": 1, "loss": 8.96}],
                    "next_after": 1,
                    "total": 1500,
                }
            ]
        }
    )

    points: list[LossPoint]
    next_after: int | None
    total: int


class SeriesPoint(BaseModel):
    step: int
    value: FiniteFloat


class SeriesPage(BaseModel):
    points: list[SeriesPoint]
    next_after: int | None
    total: int


class LossEvent(BaseModel):
    """The data of a `loss` event of GET /jobs/{id}/events."""

    points: list[LossPoint]


class MetricsEvent(BaseModel):
    """The data of a `metrics` event: new points of one series other than the loss."""

    series: str
    points: list[SeriesPoint]


class ProgressEvent(BaseModel):
    """The data of a `progress` event."""

    status: str
    progress: Progress
    metrics: JobMetrics


class WeightsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"shape": [3, 3], "dtype": "float32", "step": 1500, "data": [[0.1] * 3] * 3}
            ]
        }
    )

    shape: list[int]
    dtype: str
    step: int
    data: list[Any] = Field(description="Nested lists, classes x features, bias last.")


class PredictIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"X": [[0.5, -1.2], [2.0, 0.3]]}]}
    )

    X: list[list[float]] = Field(
        min_length=1, description="Rows in the data set's raw feature space (before preprocessing)."
    )


class PredictOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"labels": [2, 0], "scores": [[0.1, -0.4, 1.3], [0.9, 0.2, -0.8]], "step": 500}
            ]
        }
    )

    labels: list[int]
    scores: list[list[FiniteFloat]] = Field(description="Class scores, rows x classes.")
    step: int = Field(description="The step of the weights that scored the rows.")


class SplitEvaluation(BaseModel):
    n: int = Field(description="Rows in the split.")
    accuracy: FiniteFloat
    confusion_matrix: list[list[int]] = Field(
        description="Rows: true class; columns: predicted class."
    )
    per_class_accuracy: list[FiniteFloat] = Field(
        description="Correct over rows of each class (null for a class without rows)."
    )


class EvaluationOut(BaseModel):
    job_id: str
    step: int
    n_classes: int
    splits: dict[str, SplitEvaluation] = Field(description="train, val and test.")

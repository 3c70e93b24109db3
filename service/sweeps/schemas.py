"""Request and response models of the sweeps resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.jobs.schemas import FiniteFloat, JobError, JobMetrics
from service.jobs.spec import JobSpec
from service.jobs.spec_base import PlainText, PositiveFloat, Strict

Metric = Literal["val_accuracy", "train_accuracy", "loss", "best_loss"]
MAXIMIZED = ("val_accuracy", "train_accuracy")
PATH_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$"


class Dimension(Strict):
    """One axis of the space: a list of `values`, or a `log_uniform` / `uniform` range [lo, hi].

    Random sampling draws from the range; a grid takes `num` points spread over it (log-spaced
    for log_uniform, evenly for uniform, both ends included).
    """

    values: list[Any] | None = Field(None, min_length=1, max_length=1_000)
    log_uniform: tuple[PositiveFloat, PositiveFloat] | None = None
    uniform: tuple[float, float] | None = Field(None)
    num: int | None = Field(None, ge=1, le=1_000, description="Grid points over a range.")

    @model_validator(mode="after")
    def _one_kind(self) -> Dimension:
        kinds = [k for k in ("values", "log_uniform", "uniform") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of values, log_uniform, uniform")
        bounds = self.log_uniform or self.uniform
        if bounds is not None:
            lo, hi = bounds
            if not (abs(lo) < float("inf") and abs(hi) < float("inf")) or lo > hi:
                raise ValueError("a range is [low, high] with finite low <= high")
            if not abs(hi - lo) < float("inf"):
                raise ValueError("a range's width (high - low) must be a finite number")
        elif self.num is not None:
            raise ValueError("num spreads a range over a grid: not for values")
        return self


class SuccessiveHalving(Strict):
    """Stop the worst trials early on their validation accuracy (asynchronous successive halving).

    Rungs are at steps min_steps·eta^k (k = 0, 1, ...) below the trial's iterations. A trial that
    records val_accuracy at a rung goes on only if that value is among the top 1/eta of the values
    recorded at that rung by the sweep's trials so far (itself included; the first to arrive
    always goes on); otherwise it ends as `cancelled` with error.type `pruned`.
    """

    eta: int = Field(3, ge=2, le=100, description="Keep the top 1/eta at each rung.")
    min_steps: int = Field(100, ge=1, description="The first rung; a multiple of eval_every.")


SWEEP_EXAMPLE: dict[str, Any] = {
    "name": "svm-lr-reg",
    "base": {
        "dataset": {"name": "blobs"},
        "model": {"loss": "svm"},
        "optimizer": {"type": "sgd", "batch_size": 32, "iterations": 300},
        "eval_every": 50,
    },
    "method": "random",
    "trials": 20,
    "space": {
        "optimizer.learning_rate": {"log_uniform": [1e-3, 1.0]},
        "model.reg": {"values": [0.0, 1e-3, 1e-1]},
    },
    "metric": "val_accuracy",
    "seed": 0,
}


class SweepRequest(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SWEEP_EXAMPLE]})

    name: PlainText | None = Field(None, max_length=200)
    base: JobSpec
    method: Literal["grid", "random"] = "random"
    trials: int | None = Field(
        None, ge=1, description="random: how many trials (default 20); grid: its size, if given."
    )
    space: dict[str, Dimension] = Field(
        min_length=1, max_length=32, description="Dotted JobSpec paths -> their dimension."
    )
    metric: Metric = Field("val_accuracy", description="Ranks trials (accuracies up, losses down).")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Random sampling's seed.")
    successive_halving: SuccessiveHalving | None = None


class SweepJob(BaseModel):
    id: str
    status: str
    params: dict[str, Any]
    metrics: JobMetrics
    error: JobError | None = None


class Ranked(BaseModel):
    job_id: str
    params: dict[str, Any]
    value: FiniteFloat = Field(description="The sweep's metric.")
    val_accuracy: FiniteFloat = None
    test_accuracy: FiniteFloat = None


class LeaderboardEntry(Ranked):
    rank: int


class Counts(BaseModel):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    pruned: int = 0


class SweepSummary(BaseModel):
    id: str
    name: str | None
    status: str = Field(examples=["running"])
    method: str
    metric: str
    n_trials: int
    counts: Counts
    best: Ranked | None
    created_at: datetime
    finished_at: datetime | None


class SweepOut(SweepSummary):
    request: dict[str, Any]
    jobs: list[SweepJob]
    leaderboard: list[LeaderboardEntry]


class SweepPage(BaseModel):
    items: list[SweepSummary]
    next_cursor: str | None

"""What a job will cost, checked at submit against the configured budgets.

A spec that passes its own validation can still ask for more than a server should spend: a
data set whose rows take gigabytes in float64, a W of millions of entries served as JSON, a
gradient check of every entry of a wide W, history points stored by the million. These are
priced from the spec and the data set's shape before the job is queued, so the worker never
starts what it could not finish, and the client gets a 422 naming the field to change instead of
a failure later.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.jobs.spec import JobSpec
from service.jobs.spec_optimizers import RandomSearch, steps_of
from service.settings import Settings

Problem = tuple[tuple[str, ...], str]
ITEM_BYTES = {"float32": 4, "float64": 8}
# The field that sets the size of each task's result.
RESULT_FIELDS = {
    "gradient_check": "num_checks",
    "landscape": "points",
    "step_size_sweep": "exponents",
}


@dataclass(frozen=True)
class Shape:
    """The data set as the job will see it."""

    rows: int  # train + val + test
    features: int  # before the bias column
    classes: int


@dataclass(frozen=True)
class Cost:
    data_bytes: int  # every row with its bias column, in the job's dtype
    weights_values: int  # entries of W: classes x (features + bias)
    result_entries: int  # what the task's result lists (0 for train)
    history_points: int  # what the job's history will hold (history_points)


def history_points(spec: JobSpec) -> int:
    """The points a job will store in its history, as the worker writes them: exact for a run
    that finishes, an upper bound for one that stops early or a search that leaves out a
    non-finite loss.

    A train job (worker.engine.train.run; a sweep's population alike) stores `loss` and
    `learning_rate` at every log_every-th step and at the last one, and, unless eval_every is 0,
    `train_accuracy` and `val_accuracy` at step 0, after every eval_every-th update before the last
    step, and at the last step. A random search or random local search (worker.search_job) stores
    `loss` and `best_loss` at the same steps as the loss of training. Other tasks store none.
    """
    if spec.task != "train" or spec.optimizer is None:
        return 0
    steps, every = steps_of(spec.optimizer), spec.log_every
    logged = -(-steps // every) + int((steps - 1) % every != 0)
    evaluated = 0
    if spec.eval_every and not spec.is_search:
        evaluated = int(steps > 1) + max(steps - 2, 0) // spec.eval_every + 1
    return 2 * (logged + evaluated)


def cost(spec: JobSpec, shape: Shape) -> Cost:
    width = shape.features + int(spec.preprocess.bias)
    weights = shape.classes * width
    if spec.gradient_check is not None:
        entries = spec.gradient_check.num_checks or weights
    elif spec.landscape is not None:
        entries = spec.landscape.points**spec.landscape.dims
    elif spec.step_size_sweep is not None:
        entries = len(spec.step_size_sweep.exponents)
    else:
        entries = 0
    data_bytes = shape.rows * width * ITEM_BYTES[spec.dtype]
    return Cost(data_bytes, weights, entries, history_points(spec))


def problems(spec: JobSpec, shape: Shape, settings: Settings) -> list[Problem]:
    spent = cost(spec, shape)
    found: list[Problem] = []
    if spent.data_bytes > settings.max_job_data_bytes:
        found.append(
            (
                ("body", "dataset"),
                f"its rows take {spent.data_bytes} bytes in {spec.dtype}, over the "
                f"{settings.max_job_data_bytes}-byte budget (DESCENT_MAX_JOB_DATA_BYTES): "
                "ask for fewer rows (n_train, n_val, n_test) or float32",
            )
        )
    if spent.weights_values > settings.max_weights_values:
        found.append(
            (
                ("body", "dataset"),
                f"W would have {spent.weights_values} entries (classes x (features + bias)), "
                f"over the {settings.max_weights_values} allowed (DESCENT_MAX_WEIGHTS_VALUES)",
            )
        )
    if spent.result_entries > settings.max_result_entries:
        field = RESULT_FIELDS[spec.task]
        found.append(
            (
                ("body", spec.task, field),
                f"the result would list {spent.result_entries} entries, over the "
                f"{settings.max_result_entries} allowed (DESCENT_MAX_RESULT_ENTRIES)",
            )
        )
    if spent.history_points > settings.max_job_history_points:
        steps = "trials" if isinstance(spec.optimizer, RandomSearch) else "iterations"
        message = (
            f"the history would hold {spent.history_points} points, over the "
            f"{settings.max_job_history_points} allowed (DESCENT_MAX_JOB_HISTORY_POINTS): raise "
            f"log_every (or eval_every) or ask for fewer {steps}"
        )
        found += [(("body", "optimizer", steps), message), (("body", "log_every"), message)]
    return found

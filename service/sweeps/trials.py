"""A sweep's trials before they are queued: drawn from the space, each validated like POST /jobs
with its errors located where the client can fix them, and named."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.errors import InvalidInput
from service.jobs import validation
from service.jobs.spec import JobSpec, Task
from service.settings import Settings
from service.sweeps import space
from service.sweeps.schemas import Metric, SweepRequest

DEFAULT_RANDOM_TRIALS = 20
NAME_MAX = 200  # jobs.name is a VARCHAR(200)
Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]
Params = dict[str, Any]


def size_field(request: SweepRequest) -> Loc:
    """The field that sets how many trials a sweep has."""
    return ("body", "trials") if request.method == "random" else ("body", "space")


def draw(request: SweepRequest, settings: Settings) -> list[Params]:
    """Each trial's values, by the space's paths; 422 if the space or its size is wrong."""
    problems: list[Problem] = list(space.space_problems(request.space, request.method))
    limit = settings.max_sweep_trials
    if not problems and request.method == "grid":
        size = space.grid_size(request.space)
        if size > limit:
            problems.append((("body", "space"), f"the grid has {size} points; at most {limit}"))
        elif request.trials is not None and request.trials != size:
            problems.append((("body", "trials"), f"a grid runs all its {size} points"))
    trials = request.trials or DEFAULT_RANDOM_TRIALS
    if request.method == "random" and trials > limit:
        problems.append((("body", "trials"), f"may not exceed {limit}"))
    if problems:
        raise InvalidInput("Invalid sweep space", problems)
    if request.method == "grid":
        return space.grid(request.space)
    return space.random(request.space, trials, request.seed)


def unranked_problems(request: SweepRequest, draws: list[Params]) -> list[Problem]:
    """Why some trial would record none of the metrics a sweep ranks by (empty when none would):
    only train jobs record them, every train job all of them; the other tasks record none."""
    metrics = ", ".join(get_args(Metric))
    for params in draws:
        task = params.get("task", request.base.task)
        if task in get_args(Task) and task != "train":
            loc = ("body", "space", "task") if "task" in params else ("body", "base", "task")
            message = (
                f"a sweep ranks its trials by {request.metric}, and a {task} job records no "
                f"metric: only task 'train' records the ones a sweep can rank by ({metrics})"
            )
            return [(loc, message)]
    return []


def _located(exc: ValidationError | InvalidInput) -> list[Problem]:
    """A refused spec's errors, located below "body"."""
    if isinstance(exc, ValidationError):
        return [(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
    return [(tuple(e["loc"][1:]), str(e["msg"])) for e in exc.errors]


def _validated(
    session: Session, spec: dict[str, Any], settings: Settings
) -> tuple[JobSpec, validation.CheckedSpec]:
    """The spec as POST /jobs takes it; raises its ValidationError or InvalidInput."""
    model = JobSpec.model_validate(spec)
    return model, validation.check(session, model, settings)


class _Blame:
    """Locates a trial's errors: at the swept path whose value caused them, at the base when the
    base alone has them."""

    def __init__(
        self, session: Session, base: dict[str, Any], params: Params, trial: int, settings: Settings
    ) -> None:
        self.session, self.base, self.params = session, base, params
        self.trial, self.settings = trial, settings
        self._locs: dict[str | None, set[Loc]] = {}

    def _locs_with(self, path: str | None) -> set[Loc]:
        """Where the base, with only `path`'s value of the trial applied (None: none), fails."""
        if path not in self._locs:
            params = {} if path is None else {path: self.params[path]}
            try:
                _validated(self.session, space.apply(self.base, params), self.settings)
                self._locs[path] = set()
            except (ValidationError, InvalidInput) as exc:
                self._locs[path] = {loc for loc, _ in _located(exc)}
        return self._locs[path]

    def locate(self, loc: Loc, msg: str) -> Problem:
        path = space.swept_path(loc, list(self.params))
        if path is None:
            if loc in self._locs_with(None):
                return (("body", "base", *loc), msg)
            msg = f"{'.'.join(map(str, loc))}: {msg}"
            path = next((p for p in self.params if loc in self._locs_with(p)), None)
        if path is None:  # only the values together fail
            values = ", ".join(f"{p}={v!r}" for p, v in self.params.items())
            return (("body", "space"), f"trial {self.trial} ({values}): {msg}")
        value = self.params[path]
        return (("body", "space", path), f"trial {self.trial} ({path}={value!r}): {msg}")


def check(
    session: Session, base: dict[str, Any], params: Params, trial: int, settings: Settings
) -> tuple[JobSpec, validation.CheckedSpec]:
    """Validate one trial's spec exactly as POST /jobs would; 422 naming the path at fault."""
    try:
        return _validated(session, space.apply(base, params), settings)
    except (ValidationError, InvalidInput) as exc:
        if isinstance(exc, InvalidInput):
            detail = f"Trial {trial}: {exc.detail}"
        else:
            detail = f"Trial {trial} is not a valid job spec"
        blame = _Blame(session, base, params, trial, settings)
        problems = [blame.locate(loc, msg) for loc, msg in _located(exc)]
        raise InvalidInput(detail, problems) from None


def trial_name(prefix: str | None, params: Params) -> str:
    """A trial's job name: the base job's (or the sweep's) name and its parameters, e.g.
    "svm grid: learning_rate=0.03, reg=0.1", so that the trials tell themselves apart in lists
    and comparisons."""
    label = ", ".join(
        f"{path.rsplit('.', 1)[-1]}={f'{value:.3g}' if isinstance(value, float) else value}"
        for path, value in params.items()
    )
    name = f"{prefix}: {label}" if prefix else label
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"

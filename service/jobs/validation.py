"""What a submitted spec must satisfy on this server, and what is stored for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.datasets import catalog
from service.datasets import repository as datasets
from service.db.models import TERMINAL_STATUSES
from service.errors import InvalidInput
from service.jobs import budget, repository
from service.jobs.spec import JobSpec
from service.jobs.spec_optimizers import RandomSearch, steps_of
from service.settings import Settings

Problem = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class ResolvedDataset:
    stored: dict[str, Any]  # the dataset part of the stored spec, defaults filled in
    ref: str  # jobs.dataset_ref: builtin:<name> | upload:<id>
    n_features: int
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.stored["n_train"])

    @property
    def shape(self) -> budget.Shape:
        rows = sum(int(self.stored[split]) for split in ("n_train", "n_val", "n_test"))
        return budget.Shape(rows, self.n_features, self.n_classes)


def _resolve_dataset(session: Session, spec: JobSpec, settings: Settings) -> ResolvedDataset:
    if spec.dataset.id is not None:
        return _resolve_upload(session, spec)
    ref = spec.dataset
    assert ref.name is not None
    state = catalog.availability(ref.name, settings)
    if not state.available:
        raise InvalidInput(
            f"Data set {ref.name!r} is not available on this server: {state.reason}",
            [(("body", "dataset", "name"), state.reason or "unavailable")],
        )
    resolved = ref.model_dump(exclude={"id"})
    allowed = catalog.option_names(ref.name)
    problems: list[Problem] = [
        (("body", "dataset", key), f"{ref.name} does not take {key}")
        for key in catalog.OPTION_FIELDS
        if resolved[key] is not None and key not in allowed
    ]
    defaults = catalog.info(ref.name)
    for split in ("n_train", "n_val", "n_test"):
        if resolved[split] is None:
            resolved[split] = getattr(defaults, split)
    sizes = (resolved["n_train"], resolved["n_val"], resolved["n_test"])
    problems += [
        (("body", "dataset", field), msg) for field, msg in catalog.size_problems(ref.name, *sizes)
    ]
    rows = sum(sizes)
    width = resolved.get("n_features") or defaults.n_features
    if ref.name in ("blobs", "spiral") and rows * width > settings.max_generated_values:
        problems.append(
            (
                ("body", "dataset", "n_train"),
                f"a generated data set may hold at most {settings.max_generated_values} values "
                f"(rows x features, DESCENT_MAX_GENERATED_VALUES); this one has {rows * width}",
            )
        )
    if problems:
        raise InvalidInput(f"Invalid dataset for {ref.name}", problems)
    for key in catalog.OPTION_FIELDS:
        if key in allowed and resolved[key] is None:
            resolved[key] = catalog.default_option(ref.name, key)
        elif key not in allowed:
            del resolved[key]
    n_classes = resolved.get("n_classes") or defaults.n_classes
    n_features = resolved.get("n_features") or defaults.n_features
    return ResolvedDataset(resolved, f"builtin:{ref.name}", int(n_features), int(n_classes))


def _resolve_upload(session: Session, spec: JobSpec) -> ResolvedDataset:
    """An uploaded set: it must exist; n_train / n_val / n_test take its first rows."""
    ref = spec.dataset
    assert ref.id is not None
    row = datasets.get(session, ref.id, for_share=True)
    if row is None:
        raise InvalidInput(
            f"No uploaded data set with id {ref.id!r}",
            [(("body", "dataset", "id"), "no uploaded data set with this id (see GET /datasets)")],
        )
    given = ref.model_dump(exclude={"id", "name"})
    problems: list[Problem] = [
        (("body", "dataset", key), "an uploaded data set does not take this option")
        for key in catalog.OPTION_FIELDS
        if given[key] is not None
    ]
    stored: dict[str, Any] = {"id": row.id}
    for split in ("n_train", "n_val", "n_test"):
        available = getattr(row, split)
        asked = given[split]
        if asked is not None and asked > available:
            problems.append((("body", "dataset", split), f"the data set has {available} rows"))
        stored[split] = available if asked is None else asked
    if problems:
        raise InvalidInput(f"Invalid dataset for upload {row.id}", problems)
    return ResolvedDataset(stored, datasets.ref(row.id), row.n_features, row.n_classes)


def _optimizer_problems(spec: JobSpec, n_train: int, settings: Settings) -> list[Problem]:
    opt = spec.optimizer
    if opt is None or spec.task != "train":
        return []
    problems: list[Problem] = []
    field = "trials" if isinstance(opt, RandomSearch) else "iterations"
    if steps_of(opt) > settings.max_iterations:
        problems.append((("body", "optimizer", field), f"may not exceed {settings.max_iterations}"))
    batch_size = getattr(opt, "batch_size", None)
    if batch_size is not None and batch_size > n_train:
        problems.append(
            (("body", "optimizer", "batch_size"), f"may not exceed the {n_train} training rows")
        )
    return problems


def _landscape_problems(session: Session, spec: JobSpec, dataset: ResolvedDataset) -> list[Problem]:
    params = spec.landscape
    if spec.task != "landscape" or params is None:
        return []
    problems: list[Problem] = []
    if params.examples is not None and params.examples > dataset.n_train:
        problems.append(
            (("body", "landscape", "examples"), f"may not exceed the {dataset.n_train} rows")
        )
    around = ("body", "landscape", "around")
    problems.extend((around, message) for message in _around_problems(session, spec, dataset))
    return problems


def _around_problems(session: Session, spec: JobSpec, dataset: ResolvedDataset) -> list[str]:
    """Why the job a landscape is `around` cannot be its centre (its W is read only if it has
    finished)."""
    around = spec.landscape.around if spec.landscape is not None else None
    if around is None:
        return []
    status = repository.lock_referenced(session, around)
    if status is not None and status not in TERMINAL_STATUSES:
        # Its W would be whichever checkpoint it has reached when the landscape runs.
        return [f"job {around!r} is {status}: wait until it finishes"]
    W = repository.array(session, around, "W") if status is not None else None
    if W is None:
        return [f"job {around!r} does not exist or has no weights yet"]
    expected = _weights_shape(spec, dataset)
    if W.shape != list(expected):
        return [f"its W has shape {W.shape}, this data set needs {expected}"]
    return []


def _weights_shape(spec: JobSpec, dataset: ResolvedDataset) -> tuple[int, int]:
    return dataset.n_classes, dataset.n_features + int(spec.preprocess.bias)


def _total_steps(spec: JobSpec, dataset: ResolvedDataset) -> int:
    """What `progress.total` counts: updates, trials or proposals, checks, or grid points."""
    if spec.task == "train":
        assert spec.optimizer is not None
        return steps_of(spec.optimizer)
    if spec.gradient_check is not None:
        n_classes, n_features = _weights_shape(spec, dataset)
        entries = n_classes * n_features  # the check takes each entry at most once
        return min(spec.gradient_check.num_checks or entries, entries)
    if spec.step_size_sweep is not None:
        return len(spec.step_size_sweep.exponents)
    assert spec.landscape is not None
    return int(spec.landscape.points**spec.landscape.dims)


@dataclass(frozen=True)
class CheckedSpec:
    stored_spec: dict[str, Any]
    dataset_ref: str
    total_steps: int


def check(session: Session, spec: JobSpec, settings: Settings) -> CheckedSpec:
    """Validate a spec against this server (data, limits, referenced jobs); 422 if it fails."""
    dataset = _resolve_dataset(session, spec, settings)
    problems = _optimizer_problems(spec, dataset.n_train, settings)
    problems += _landscape_problems(session, spec, dataset)
    problems += budget.problems(spec, dataset.shape, settings)
    if problems:
        raise InvalidInput("The job spec cannot run on this server", problems)
    stored = spec.model_dump(mode="json", exclude_none=False)
    for task in ("gradient_check", "step_size_sweep", "landscape"):
        if stored.get(task) is None:
            stored.pop(task, None)
    if stored.get("optimizer") is None:
        stored.pop("optimizer", None)
    stored["dataset"] = dataset.stored
    return CheckedSpec(stored, dataset.ref, _total_steps(spec, dataset))

"""A sweep's space: dotted paths into the JobSpec, and the trials drawn from it.

- `grid`: every combination, in the order the space lists its paths (the last varies fastest);
  a `values` axis is its list, a range axis `num` points (log-spaced for log_uniform).
- `random`: `trials` independent draws from numpy.random.default_rng(seed): log_uniform as
  exp(uniform(log lo, log hi)), uniform as uniform(lo, hi), values as a uniform pick.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import types
import typing
from typing import Any, Union

import numpy as np
from pydantic import BaseModel

from service.jobs.spec import JobSpec
from service.sweeps.schemas import PATH_PATTERN, Dimension

Problem = tuple[tuple[str, ...], str]
Params = dict[str, Any]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field can hold (through Optional, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, typing.Annotated):
        args = typing.get_args(annotation)
        args = args[:1] if origin is typing.Annotated else args
        return [model for arg in args for model in _models_in(arg)]
    return []


def path_problem(path: str) -> str | None:
    """Why `path` names no JobSpec field (None when it does)."""
    if not re.match(PATH_PATTERN, path):
        return "not a dotted path of JobSpec fields (e.g. optimizer.learning_rate)"
    models: list[type[BaseModel]] = [JobSpec]
    parts = path.split(".")
    for depth, part in enumerate(parts):
        found = [model.model_fields[part] for model in models if part in model.model_fields]
        where = ".".join(parts[:depth]) or "the JobSpec"
        if not found:
            return f"{where} has no field {part!r}"
        models = [model for field in found for model in _models_in(field.annotation)]
        if depth < len(parts) - 1 and not models:
            return f"{'.'.join(parts[: depth + 1])} has no fields below it"
    return None


def space_problems(space: dict[str, Dimension], method: str) -> list[Problem]:
    problems: list[Problem] = []
    for path, dimension in space.items():
        loc = ("body", "space", path)
        reason = path_problem(path)
        if reason is not None:
            problems.append((loc, reason))
        for other in space:
            if other != path and other.startswith(path + "."):
                problems.append((loc, f"overlaps {other}: sweep one or the other"))
        if method == "grid" and dimension.values is None and dimension.num is None:
            problems.append(((*loc, "num"), "a grid needs num points over a range"))
    return problems


def _axis(dimension: Dimension) -> list[Any]:
    if dimension.values is not None:
        return list(dimension.values)
    num = dimension.num or 1
    if dimension.log_uniform is not None:
        lo, hi = dimension.log_uniform
        return [float(v) for v in np.geomspace(lo, hi, num)]
    assert dimension.uniform is not None
    lo, hi = dimension.uniform
    return [float(v) for v in np.linspace(lo, hi, num)]


def grid_size(space: dict[str, Dimension]) -> int:
    return math.prod(len(_axis(dimension)) for dimension in space.values())


def grid(space: dict[str, Dimension]) -> list[Params]:
    paths = list(space)
    axes = [_axis(space[path]) for path in paths]
    return [dict(zip(paths, point, strict=True)) for point in itertools.product(*axes)]


def _draw(dimension: Dimension, rng: np.random.Generator) -> Any:
    if dimension.values is not None:
        return dimension.values[int(rng.integers(len(dimension.values)))]
    if dimension.log_uniform is not None:
        lo, hi = dimension.log_uniform
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    assert dimension.uniform is not None
    return float(rng.uniform(*dimension.uniform))


def random(space: dict[str, Dimension], trials: int, seed: int) -> list[Params]:
    rng = np.random.default_rng(seed)
    return [{path: _draw(d, rng) for path, d in space.items()} for _ in range(trials)]


def apply(base: dict[str, Any], params: Params) -> dict[str, Any]:
    """The base spec (as the client wrote it) with each dotted path set to its value."""
    spec = copy.deepcopy(base)
    for path, value in params.items():
        node = spec
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = copy.deepcopy(value)
    return spec


def swept_path(loc: tuple[Any, ...], paths: list[str]) -> str | None:
    """The swept path an error location falls under (union tags in the location skipped)."""
    parts = [str(p) for p in loc]
    for path in paths:
        wanted = path.split(".")
        if not parts or parts[0] != wanted[0]:
            continue
        position = 0
        for part in parts:
            if position < len(wanted) and part == wanted[position]:
                position += 1
        if position == len(wanted):
            return path
    return None

"""Response models of the datasets resource."""

from __future__ import annotations

from pydantic import BaseModel


class DatasetOut(BaseModel):
    id: str
    name: str
    builtin: bool
    available: bool
    reason: str | None = None
    description: str | None = None
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    n_classes: int


class DatasetList(BaseModel):
    items: list[DatasetOut]

"""Response models of the datasets resource."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DatasetOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a5c0e4f1a2b3c4d5e6f708192a3b",
                    "name": "iris",
                    "builtin": False,
                    "available": True,
                    "n_train": 120,
                    "n_val": 15,
                    "n_test": 15,
                    "n_features": 4,
                    "n_classes": 3,
                    "dtype": "float64",
                    "size_bytes": 7328,
                    "created_at": "2026-11-27T10:00:00Z",
                }
            ]
        }
    )

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
    dtype: str | None = None
    size_bytes: int | None = None
    created_at: datetime | None = None


class DatasetList(BaseModel):
    items: list[DatasetOut]

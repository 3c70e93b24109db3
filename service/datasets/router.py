"""HTTP endpoints of the datasets resource."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.datasets import catalog
from service.datasets.schemas import DatasetList, DatasetOut
from service.deps import SettingsDep
from service.errors import NotFound
from service.settings import Settings

router = APIRouter(prefix="/datasets", tags=["datasets"])


def _builtin(name: str, settings: Settings) -> DatasetOut:
    info = catalog.info(name)
    state = catalog.availability(name, settings)
    return DatasetOut(
        id=name,
        name=name,
        builtin=True,
        available=state.available,
        reason=state.reason,
        description=info.description,
        n_train=info.n_train,
        n_val=info.n_val,
        n_test=info.n_test,
        n_features=info.n_features,
        n_classes=info.n_classes,
    )


@router.get("", response_model=DatasetList, summary="Built-in and uploaded data sets")
def list_datasets(settings: SettingsDep) -> DatasetList:
    return DatasetList(items=[_builtin(name, settings) for name in catalog.builtin_names()])


@router.get("/{dataset_id}", response_model=DatasetOut, summary="One data set")
def get_dataset(
    dataset_id: Annotated[str, Path(max_length=64)], settings: SettingsDep
) -> DatasetOut:
    if dataset_id not in catalog.builtin_names():
        raise NotFound(f"No data set with id {dataset_id!r}")
    return _builtin(dataset_id, settings)

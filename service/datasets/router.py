"""HTTP endpoints of the datasets resource."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from fastapi.responses import JSONResponse

from service.datasets import service
from service.datasets.schemas import DatasetList, DatasetOut
from service.deps import DatabaseDep, ReadSession, SettingsDep
from service.jobs.spec_base import PLAIN_TEXT

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=PLAIN_TEXT,
        description="A built-in name or an upload id.",
    ),
]
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown data set", **PROBLEM}}


@router.get("", response_model=DatasetList, summary="Built-in and uploaded data sets")
def list_datasets(session: ReadSession, settings: SettingsDep) -> DatasetList:
    return DatasetList(items=service.listing(session, settings))


@router.post(
    "",
    status_code=201,
    response_model=DatasetOut,
    responses={
        413: {
            "description": "Larger than DESCENT_MAX_UPLOAD_BYTES, or would take more memory "
            "than that to read",
            **PROBLEM,
        },
        415: {"description": "Neither an .npz archive nor a CSV file", **PROBLEM},
        422: {"description": "Not a usable data set: the errors name each problem", **PROBLEM},
        503: {"description": "Other uploads are being read: retry after Retry-After", **PROBLEM},
        507: {"description": "Over DESCENT_STORAGE_QUOTA_BYTES, or the disk is full", **PROBLEM},
    },
    summary="Upload a data set (.npz with X_train, y_train[, X_val, y_val, X_test, y_test] or CSV)",
)
def upload_dataset(
    file: Annotated[
        UploadFile,
        File(description="An .npz archive (saved with numpy.savez) or a CSV with a header row."),
    ],
    database: DatabaseDep,
    settings: SettingsDep,
    name: Annotated[
        str | None, Form(max_length=200, pattern=PLAIN_TEXT, description="Default: the file name.")
    ] = None,
    label_column: Annotated[
        str | None,
        Form(
            max_length=200,
            pattern=PLAIN_TEXT,
            description="CSV: the label column (default: the last).",
        ),
    ] = None,
) -> Any:
    row = service.upload(
        database,
        settings,
        file.file,
        filename=file.filename,
        content_type=file.content_type,
        name=name,
        label_column=label_column,
    )
    body = service.upload_out(row, settings).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers={"Location": f"/datasets/{row.id}"})


@router.get("/{dataset_id}", response_model=DatasetOut, responses=NOT_FOUND, summary="One data set")
def get_dataset(dataset_id: DatasetId, session: ReadSession, settings: SettingsDep) -> DatasetOut:
    return service.get(session, settings, dataset_id)


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={
        **NOT_FOUND,
        409: {"description": "A built-in, or used by a queued or running job", **PROBLEM},
    },
    summary="Delete an uploaded data set and its files",
)
def delete_dataset(dataset_id: DatasetId, database: DatabaseDep, settings: SettingsDep) -> Response:
    service.delete(database, settings, dataset_id)
    return Response(status_code=204)

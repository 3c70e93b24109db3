"""The rules of the datasets resource: built-ins from the catalog, uploads from files and rows."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from service.datasets import catalog, csv_reader, ingest, npz_reader, repository, storage
from service.datasets.schemas import DatasetOut
from service.db.base import utcnow
from service.db.models import Dataset
from service.db.session import Database
from service.errors import (
    Busy,
    Conflict,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from service.ids import new_id
from service.settings import Settings

log = logging.getLogger("descent.datasets")
SNIFF_BYTES = 8
# Uploads are read, checked and stored one at a time (in this API process): reading one may take
# memory up to a few times DESCENT_MAX_UPLOAD_BYTES, which must not be multiplied by the number of
# clients uploading at once; and the storage quota, checked before the files are written, is then
# checked against every upload already stored. An upload waits at most UPLOAD_WAIT_SECONDS for
# its turn (holding one of the server's request threads), then gets a 503 with Retry-After.
_ONE_UPLOAD_AT_A_TIME = threading.Lock()
UPLOAD_WAIT_SECONDS = 30.0
UPLOAD_RETRY_AFTER_SECONDS = 5


def builtin_out(name: str, settings: Settings) -> DatasetOut:
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


def upload_out(dataset: Dataset, settings: Settings) -> DatasetOut:
    present = storage.is_present(settings.data_dir, dataset.id)
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        builtin=False,
        available=present,
        reason=None if present else "its files are missing from DESCENT_DATA_DIR",
        n_train=dataset.n_train,
        n_val=dataset.n_val,
        n_test=dataset.n_test,
        n_features=dataset.n_features,
        n_classes=dataset.n_classes,
        dtype=dataset.dtype,
        size_bytes=dataset.size_bytes,
        created_at=dataset.created_at,
    )


def listing(session: Session, settings: Settings) -> list[DatasetOut]:
    items = [builtin_out(name, settings) for name in catalog.builtin_names()]
    return items + [upload_out(row, settings) for row in repository.all_uploads(session)]


def get(session: Session, settings: Settings, dataset_id: str) -> DatasetOut:
    if dataset_id in catalog.builtin_names():
        return builtin_out(dataset_id, settings)
    row = repository.get(session, dataset_id)
    if row is None:
        raise NotFound(f"No data set with id {dataset_id!r}")
    return upload_out(row, settings)


def _read(
    stream: IO[bytes],
    filename: str | None,
    content_type: str | None,
    label_column: str | None,
    settings: Settings,
) -> ingest.CleanData:
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    if not head:
        raise InvalidInput("The file is empty", [(ingest.FILE_LOC, "is empty")])
    try:
        kind = ingest.detect(filename, content_type, head)
        if kind == "npz":
            if label_column is not None:
                raise InvalidInput(
                    "label_column is for CSV files",
                    [(("body", "label_column"), "an .npz names its arrays y_train, y_val, y_test")],
                )
            arrays = npz_reader.read_npz(stream, settings.max_upload_bytes)
        else:
            delimiter = "\t" if kind == "tsv" else ","
            arrays = csv_reader.read_csv(stream, label_column, settings.max_upload_bytes, delimiter)
        return ingest.clean(arrays)
    except ingest.UnsupportedFile as exc:
        raise UnsupportedMediaType(str(exc)) from None
    except ingest.TooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except ingest.BadFile as exc:
        raise InvalidInput(f"Not a usable data set: {exc}", exc.problems) from None


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@contextmanager
def _upload_turn() -> Iterator[None]:
    """This upload's turn to be read and stored: Busy (503) after UPLOAD_WAIT_SECONDS."""
    if not _ONE_UPLOAD_AT_A_TIME.acquire(timeout=UPLOAD_WAIT_SECONDS):
        raise Busy(
            "Other uploads are being read: retry in a few seconds", UPLOAD_RETRY_AFTER_SECONDS
        )
    try:
        yield
    finally:
        _ONE_UPLOAD_AT_A_TIME.release()


def upload(
    database: Database,
    settings: Settings,
    stream: IO[bytes],
    *,
    filename: str | None,
    content_type: str | None,
    name: str | None,
    label_column: str | None,
) -> Dataset:
    """Check the file, store its splits as .npy files, then record the data set; one upload at a
    time."""
    with _upload_turn():
        data = _read(stream, filename, content_type, label_column, settings)
        return _store(database, settings, data, filename=filename, name=name)


def _store(
    database: Database,
    settings: Settings,
    data: ingest.CleanData,
    *,
    filename: str | None,
    name: str | None,
) -> Dataset:
    """Write the checked data set's files within the quota, then its row."""
    _check_weights(data, settings)
    with database.read() as session:
        stored = repository.stored_bytes(session)
    needed = storage.size_of(data.arrays)
    if stored + needed > settings.storage_quota_bytes:
        raise InsufficientStorage(
            f"The data set takes {needed} bytes; the uploads already take {stored} of the "
            f"{settings.storage_quota_bytes}-byte quota (DESCENT_STORAGE_QUOTA_BYTES)"
        )
    dataset_id = new_id()
    try:
        size = storage.write(settings.data_dir, dataset_id, data.arrays)
    except storage.DiskFull as exc:
        raise InsufficientStorage(
            f"The server's disk has no room for this data set: {exc}"
        ) from None
    # The file's name is the client's to choose, control characters included (a multipart
    # filename is not validated like the form fields): they are dropped, as PostgreSQL would
    # refuse a NUL that SQLite stores.
    stem = CONTROL.sub("", Path(filename).stem) if filename else ""
    row = Dataset(
        id=dataset_id,
        name=(name or stem or dataset_id)[:200],
        path=dataset_id,  # relative to DESCENT_DATA_DIR, which each host sets for itself
        n_train=data.rows("train"),
        n_val=data.rows("val"),
        n_test=data.rows("test"),
        n_features=data.n_features,
        n_classes=data.n_classes,
        size_bytes=size,
        dtype=str(data.arrays["X_train"].dtype),
        created_at=utcnow(),
    )
    try:
        with database.write() as session:
            repository.add(session, row)
            session.commit()
    except BaseException:
        storage.remove(settings.data_dir, dataset_id)
        raise
    return row


def _check_weights(data: ingest.CleanData, settings: Settings) -> None:
    """A set no job could train on (its W over the budget) is refused at upload, not at submit."""
    values = data.n_classes * (data.n_features + 1)
    if values > settings.max_weights_values:
        raise InvalidInput(
            "Too wide to train on",
            [
                (
                    (*ingest.FILE_LOC, "X_train"),
                    f"{data.n_features} features x {data.n_classes} classes make a W of {values} "
                    f"entries, over the {settings.max_weights_values} allowed "
                    "(DESCENT_MAX_WEIGHTS_VALUES)",
                )
            ],
        )


def delete(database: Database, settings: Settings, dataset_id: str) -> None:
    if dataset_id in catalog.builtin_names():
        raise Conflict(f"{dataset_id!r} is a built-in data set: only uploads can be deleted")
    with database.write() as session:
        row = repository.get(session, dataset_id, for_update=True)
        if row is None:
            raise NotFound(f"No data set with id {dataset_id!r}")
        live = repository.live_jobs(session, dataset_id)
        if live:
            raise Conflict(f"Data set {dataset_id} is used by {live} queued or running job(s)")
        repository.remove(session, row)
        session.commit()
    storage.remove(settings.data_dir, dataset_id)

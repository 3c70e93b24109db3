"""POST /datasets: good .npz and CSV files are stored as .npy splits; every bad file is a 4xx."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.datasets import csv_reader, ingest, npz_reader, storage
from service.datasets import service as datasets_service
from service.settings import Settings
from tests.conftest import make_settings
from tests.datasets.conftest import blobs, npz_bytes, upload

pytestmark = pytest.mark.postgres


def test_an_npz_with_every_split_is_stored_as_npy_files(
    client: TestClient, settings: Settings
) -> None:
    X, y = blobs(90)
    response = upload(
        client,
        npz_bytes(
            X_train=X[:60],
            y_train=y[:60],
            X_val=X[60:75],
            y_val=y[60:75],
            X_test=X[75:],
            y_test=y[75:],
        ),
        name="my blobs",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert response.headers["location"] == f"/datasets/{body['id']}"
    assert body | {"id": None, "created_at": None, "size_bytes": None} == {
        "id": None, "name": "my blobs", "builtin": False, "available": True, "reason": None,
        "description": None, "n_train": 60, "n_val": 15, "n_test": 15, "n_features": 4,
        "n_classes": 3, "dtype": "float32", "size_bytes": None, "created_at": None,
    }  # fmt: skip
    folder = settings.data_dir / body["id"]
    np.testing.assert_array_equal(np.load(folder / "X_val.npy", allow_pickle=False), X[60:75])
    np.testing.assert_array_equal(np.load(folder / "y_test.npy", allow_pickle=False), y[75:])
    assert client.get(f"/datasets/{body['id']}").json() == body
    listed = client.get("/datasets").json()["items"]
    assert [d["id"] for d in listed if not d["builtin"]] == [body["id"]]
    assert {d["id"] for d in listed if d["builtin"]} == {
        "cifar10",
        "digits",
        "toy",
        "blobs",
        "spiral",
    }


def test_missing_splits_are_carved_from_train_by_the_documented_rule(
    client: TestClient, settings: Settings
) -> None:
    X, y = blobs(50)
    body = upload(client, npz_bytes(X_train=X, y_train=y)).json()

    assert (body["n_train"], body["n_val"], body["n_test"]) == (40, 5, 5)
    order = np.random.default_rng(0).permutation(50)
    folder = settings.data_dir / body["id"]
    np.testing.assert_array_equal(np.load(folder / "X_val.npy"), X[order[45:]])
    np.testing.assert_array_equal(np.load(folder / "X_test.npy"), X[order[40:45]])
    np.testing.assert_array_equal(np.load(folder / "X_train.npy"), X[np.sort(order[:40])])


def test_a_csv_takes_its_labels_from_the_named_column_or_the_last(client: TestClient) -> None:
    rows = "\n".join(f"{i},{i % 2},{i * 0.5}" for i in range(20))
    named = upload(client, f"a,label,b\n{rows}\n".encode(), "points.csv", label_column="label")
    last = upload(client, f"a,b,c\n{rows}\n".encode(), "points.csv")

    assert named.status_code == 201, named.json()
    assert named.json() | {"id": 0, "created_at": 0, "size_bytes": 0} == {
        "id": 0, "name": "points", "builtin": False, "available": True, "reason": None,
        "description": None, "n_train": 16, "n_val": 2, "n_test": 2, "n_features": 2,
        "n_classes": 2, "dtype": "float64", "size_bytes": 0, "created_at": 0,
    }  # fmt: skip
    assert last.status_code == 422  # c holds 0.5 steps: not integer labels
    assert last.json()["errors"][0]["loc"] == ["body", "file", "y_train"]


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("points.tsv", "application/octet-stream"), ("points", "text/tab-separated-values")],
)
def test_a_tsv_reads_like_the_same_csv(
    client: TestClient, filename: str, content_type: str
) -> None:
    rows = [(i * 0.25, i % 3, -i) for i in range(30)]
    as_text = {
        sep: f"a{sep}label{sep}b\n" + "".join(f"{a}{sep}{label}{sep}{b}\n" for a, label, b in rows)
        for sep in (",", "\t")
    }

    tsv = client.post("/datasets", files={"file": (filename, as_text["\t"].encode(), content_type)},
                      data={"label_column": "label"})  # fmt: skip
    csv = upload(client, as_text[","].encode(), "points.csv", label_column="label")

    assert tsv.status_code == 201, tsv.json()
    ignore = {"id": 0, "created_at": 0, "name": 0}
    assert tsv.json() | ignore == csv.json() | ignore
    assert tsv.json()["n_features"] == 2


def _object_array_npz() -> bytes:
    import io

    buffer = io.BytesIO()
    X = np.empty((4, 2), dtype=object)
    X[:] = 1.0
    np.savez(buffer, X_train=X, y_train=np.array([0, 1, 0, 1]))  # pickles X
    return buffer.getvalue()


X4, Y4 = blobs(40)
NAN = X4.copy()
NAN[3, 1] = np.nan


@pytest.mark.parametrize(
    ("content", "filename", "status", "loc"),
    [
        (b"this is not a zip archive", "data.npz", 422, ["body", "file"]),
        (b"\x80\x04\x95 pickled bytes", "data.pkl", 415, None),
        (b"", "data.npz", 422, ["body", "file"]),
        (_object_array_npz(), "data.npz", 422, ["body", "file", "X_train"]),
        (npz_bytes(X_train=NAN, y_train=Y4), "data.npz", 422, ["body", "file", "X_train"]),
        (npz_bytes(X_train=X4, y_train=Y4 - 1), "data.npz", 422, ["body", "file", "y_train"]),
        (npz_bytes(X_train=X4, y_train=Y4 * 2), "data.npz", 422, ["body", "file", "y_train"]),
        (npz_bytes(X_train=X4, y_train=Y4[:-1]), "data.npz", 422, ["body", "file", "y_train"]),
        (npz_bytes(X_train=X4, y_train=Y4, X_val=X4[:, :3], y_val=Y4), "data.npz", 422,
         ["body", "file", "X_val"]),
        (npz_bytes(X_train=X4, y_train=np.zeros(40, dtype=np.int64)), "data.npz", 422,
         ["body", "file", "y_train"]),
        (npz_bytes(X_train=X4, y_train=Y4, X_val=X4), "data.npz", 422, ["body", "file", "X_val"]),
        (npz_bytes(X_train=X4[:, 0], y_train=Y4), "data.npz", 422, ["body", "file", "X_train"]),
        (npz_bytes(X_train=X4.astype(str), y_train=Y4), "data.npz", 422,
         ["body", "file", "X_train"]),
        (npz_bytes(X_train=X4[:0], y_train=Y4[:0]), "data.npz", 422, ["body", "file", "X_train"]),
        (npz_bytes(X_train=X4, y_train=Y4, W=X4), "data.npz", 422, ["body", "file", "W.npy"]),
        (b"a,b,label\n1,2,0\n3,oops,1\n", "data.csv", 422, ["body", "file"]),
        (b"a,b,label\n", "data.csv", 422, ["body", "file"]),
        (b"a,b,label\n1,2,0\n3,4\n", "data.csv", 422, ["body", "file"]),
        (b"a,b,label\n" + b"1,2,0\n" * 100 + b"3,4\n", "data.csv", 422, ["body", "file"]),
    ],
    ids=["not-a-zip", "pickle-file", "empty", "object-array", "nan", "negative-label",
         "label-gap", "rows-mismatch", "feature-mismatch", "one-class", "val-without-y",
         "1-d-features", "strings", "no-rows", "unknown-member", "csv-text", "csv-no-rows",
         "csv-ragged", "csv-ragged-past-the-first-block"],
)  # fmt: skip
def test_a_bad_file_is_a_problem_naming_what_is_wrong(
    client: TestClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    filename: str,
    status: int,
    loc: list[str] | None,
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_VALUES", 64)  # a CSV's rows in blocks of 21 rows
    response = upload(client, content, filename)

    assert response.status_code == status, response.json()
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == status and problem["detail"]
    if loc is not None:
        assert loc in [error["loc"] for error in problem["errors"]]
    assert not settings.data_dir.exists() or list(settings.data_dir.iterdir()) == []


def test_an_unknown_label_column_is_named(client: TestClient) -> None:
    response = upload(client, b"a,b\n1,0\n2,1\n", "x.csv", label_column="class")

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "label_column"]


def test_an_oversized_upload_is_413_before_it_is_stored(
    client: TestClient, settings: Settings
) -> None:
    big = np.zeros((settings.max_upload_bytes // 8 + 10, 1))
    declared = upload(client, npz_bytes(X_train=big, y_train=np.arange(len(big)) % 2))

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=x.npz\r\n\r\n"
        for _ in range(settings.max_upload_bytes // 65536 + 2):
            yield b"\0" * 65536

    streamed = client.post(
        "/datasets", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
    assert not settings.data_dir.exists() or list(settings.data_dir.iterdir()) == []


def test_a_compressed_npz_is_measured_uncompressed(client: TestClient, settings: Settings) -> None:
    import io

    zeros = np.zeros((settings.max_upload_bytes // 8 + 10, 1))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X_train=zeros, y_train=np.arange(len(zeros)) % 2)
    assert len(buffer.getvalue()) < settings.max_upload_bytes

    assert upload(client, buffer.getvalue()).status_code == 413


def test_many_cheap_rows_are_priced_at_what_reading_them_costs(
    client: TestClient, settings: Settings
) -> None:
    """A file small in bytes but long in rows (one bool feature, uint8 labels, compressed; or a
    CSV of one short column) is a 413 before it is read: checking and carving it would take
    ingest.ROW_WORKING_BYTES a row beside its features, several times what the file weighs."""
    rows = settings.max_upload_bytes // ingest.ROW_WORKING_BYTES + 10
    y = (np.arange(rows) % 2).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X_train=np.zeros((rows, 1), bool), y_train=y)
    assert len(buffer.getvalue()) < settings.max_upload_bytes // 4
    csv = b"a,label\n" + b"0,0\n1,1\n" * (rows // 2 + 1)
    assert len(csv) < settings.max_upload_bytes

    for content, filename in ((buffer.getvalue(), "bomb.npz"), (csv, "bomb.csv")):
        response = upload(client, content, filename)
        assert response.status_code == 413, response.text
        assert "rows" in response.json()["detail"]
    assert not settings.data_dir.exists() or list(settings.data_dir.iterdir()) == []


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_an_npz_member_twice_or_with_an_oversized_header_is_named(client: TestClient) -> None:
    twice = io.BytesIO()
    with zipfile.ZipFile(twice, "w") as archive:
        for name, array in (("X_train", X4), ("y_train", Y4), ("X_train", X4[:, :1])):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
                archive.writestr(f"{name}.npy", npy_bytes(array))
    header = io.BytesIO()
    with zipfile.ZipFile(header, "w") as archive:
        archive.writestr("X_train.npy", npy_bytes(X4)[:8] + b"\xff\xff" + b" " * 65535)
        archive.writestr("y_train.npy", npy_bytes(Y4))

    for content, message in ((twice, "more than once"), (header, "not a readable .npy array")):
        response = upload(client, content.getvalue())
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert errors[0]["loc"] == ["body", "file", "X_train"] and message in errors[0]["msg"]


def test_concurrent_uploads_stay_within_the_storage_quota(
    database_url: str, tmp_path: Path
) -> None:
    """Uploads are read and stored one at a time, so a quota checked before writing holds for
    uploads sent at once."""
    content = npz_bytes(X_train=X4, y_train=Y4)
    one = storage.size_of(ingest.clean(npz_reader.read_npz(io.BytesIO(content), 1 << 20)).arrays)
    settings = make_settings(database_url, tmp_path, storage_quota_bytes=2 * one + one // 2)
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: upload(client, content).status_code, range(8)))
        stored = [d for d in client.get("/datasets").json()["items"] if not d["builtin"]]

    assert sorted(statuses) == [201, 201, 507, 507, 507, 507, 507, 507]
    assert sum(d["size_bytes"] for d in stored) <= settings.storage_quota_bytes


def test_an_upload_that_waits_too_long_for_its_turn_is_a_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets_service, "UPLOAD_WAIT_SECONDS", 0.05)
    with datasets_service._ONE_UPLOAD_AT_A_TIME:  # another upload is being read
        response = upload(client, npz_bytes(X_train=X4, y_train=Y4))

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert upload(client, npz_bytes(X_train=X4, y_train=Y4)).status_code == 201


def test_carving_keeps_train_rows_in_order_and_needs_enough_rows() -> None:
    parts = ingest.carve(10, ("val", "test"))

    assert [len(parts[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert list(parts["train"]) == sorted(parts["train"])
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(10))


def test_a_file_name_with_control_characters_names_the_set_without_them(
    client: TestClient,
) -> None:
    """The multipart file name is the client's, unchecked by the form's rules: its control
    characters are dropped (PostgreSQL would refuse the NUL that SQLite stores)."""
    rows = "\n".join(f"{i},{i % 2}" for i in range(20))
    # Written by hand: HTTP clients percent-encode such a name, a hostile one need not.
    body = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="file"; filename="pts\x00\x07.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + f"a,label\n{rows}\n".encode() + b"\r\n--b--\r\n"
    )
    response = client.post(
        "/datasets", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "pts"

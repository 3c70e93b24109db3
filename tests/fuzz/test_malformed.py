"""A hand-written table of malformed and hostile requests (specs, headers, query strings,
uploads), each with the 4xx it must get on both databases: an RFC 9457 problem naming the field
at fault where there is one, the same answer on SQLite and PostgreSQL, never a 5xx."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import BACKENDS, POSTGRES_ENV, PostgresServer, make_settings

LIMIT = 64 * 1024  # DESCENT_MAX_UPLOAD_BYTES for this app
JSON_LIMIT = 16 * 1024  # DESCENT_MAX_JSON_BYTES
OK: dict[str, Any] = {
    "dataset": {"name": "blobs"},
    "optimizer": {"type": "sgd", "learning_rate": 0.1, "iterations": 10},
}
JSON = {"content-type": "application/json"}


def spec(**changes: Any) -> bytes:
    return json.dumps({**OK, **changes}).encode()


def optimizer(**changes: Any) -> bytes:
    return spec(optimizer={**OK["optimizer"], **changes})


def raw_optimizer(field: str, literal: str) -> bytes:
    """A spec whose optimizer field is a raw JSON literal (NaN, Infinity, 1e400, ...)."""
    return b'{"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd", "%s": %s}}' % (
        field.encode(),
        literal.encode(),
    )


class Bad(NamedTuple):
    method: str
    path: str  # {job}: an existing queued job
    status: int
    loc: list[str | int] | None = None  # a prefix of one error's loc, for 422s
    body: bytes | None = None
    headers: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    form: dict[str, str] | None = None


SGD = ["body", "optimizer", "sgd"]
TABLE: dict[str, Bad] = {
    # JobSpecs
    "no dataset": Bad("POST", "/jobs", 422, ["body", "dataset"],
                      json.dumps({"optimizer": OK["optimizer"]}).encode()),
    "train without optimizer": Bad("POST", "/jobs", 422, ["body", "optimizer"],
                                   spec(optimizer=None)),
    "unknown field": Bad("POST", "/jobs", 422, ["body", "colour"], spec(colour="blue")),
    "unknown optimizer": Bad("POST", "/jobs", 422, ["body", "optimizer"],
                             spec(optimizer={"type": "warp_drive"})),
    "unknown data set": Bad("POST", "/jobs", 422, ["body", "dataset", "name"],
                            spec(dataset={"name": "mnist"})),
    "name and id": Bad("POST", "/jobs", 422, ["body", "dataset"],
                       spec(dataset={"name": "blobs", "id": "x"})),
    "string seed": Bad("POST", "/jobs", 422, ["body", "seed"], spec(seed="zero")),
    "string data set": Bad("POST", "/jobs", 422, ["body", "dataset"], spec(dataset="blobs")),
    "list optimizer": Bad("POST", "/jobs", 422, ["body", "optimizer"], spec(optimizer=[])),
    "bool as dict": Bad("POST", "/jobs", 422, ["body", "preprocess"], spec(preprocess=True)),
    "fractional iterations": Bad("POST", "/jobs", 422, [*SGD, "iterations"],
                                 optimizer(iterations=1.5)),
    "zero iterations": Bad("POST", "/jobs", 422, [*SGD, "iterations"], optimizer(iterations=0)),
    "iterations over the limit": Bad("POST", "/jobs", 422, ["body", "optimizer", "iterations"],
                                     optimizer(iterations=1_000_001)),
    "400-digit iterations": Bad("POST", "/jobs", 422, ["body", "optimizer"],
                                raw_optimizer("iterations", "1" + "0" * 400)),
    "trials over the limit": Bad("POST", "/jobs", 422, ["body", "optimizer"],
                                 spec(optimizer={"type": "random_search", "trials": 10**6 + 1})),
    "batch over the rows": Bad("POST", "/jobs", 422, ["body", "optimizer", "batch_size"],
                               optimizer(batch_size=100_000)),
    "zero batch": Bad("POST", "/jobs", 422, [*SGD, "batch_size"], optimizer(batch_size=0)),
    "seed past int64": Bad("POST", "/jobs", 422, ["body", "seed"], spec(seed=2**63)),
    "negative learning rate": Bad("POST", "/jobs", 422, [*SGD, "learning_rate"],
                                  optimizer(learning_rate=-1)),
    "NaN literal": Bad("POST", "/jobs", 422, [*SGD, "learning_rate"],
                       raw_optimizer("learning_rate", "NaN")),
    "Infinity literal": Bad("POST", "/jobs", 422, [*SGD, "learning_rate"],
                            raw_optimizer("learning_rate", "Infinity")),
    "-Infinity literal": Bad("POST", "/jobs", 422, [*SGD, "momentum"],
                             raw_optimizer("momentum", "-Infinity")),
    "1e400 overflows": Bad("POST", "/jobs", 422, [*SGD, "learning_rate"],
                           raw_optimizer("learning_rate", "1e400")),
    "too many landscape points": Bad("POST", "/jobs", 422, ["body", "landscape", "points"],
                                     spec(task="landscape", optimizer=None,
                                          landscape={"points": 202})),
    "params of another task": Bad("POST", "/jobs", 422, ["body", "gradient_check"],
                                  spec(gradient_check={"num_checks": 3})),
    "long name": Bad("POST", "/jobs", 422, ["body", "name"], spec(name="x" * 201)),
    "NUL in a name": Bad("POST", "/jobs", 422, ["body", "name"], spec(name="a\x00b")),
    "C1 control in a name": Bad("POST", "/jobs", 422, ["body", "name"], spec(name="a\x85b")),
    "newline in a name": Bad("POST", "/jobs", 422, ["body", "name"], spec(name="a\nb")),
    "NUL in a data set id": Bad("POST", "/jobs", 422, ["body", "dataset", "id"],
                                spec(dataset={"id": "\x00"})),
    "NUL in landscape around": Bad("POST", "/jobs", 422, ["body", "landscape", "around"],
                                   spec(task="landscape", optimizer=None,
                                        landscape={"around": "j\x00"})),
    "step size 10^400": Bad("POST", "/jobs", 422, ["body", "step_size_sweep", "exponents", 0],
                            spec(task="step_size_sweep", optimizer=None,
                                 step_size_sweep={"exponents": [400]})),
    "step size 10^-400": Bad("POST", "/jobs", 422, ["body", "step_size_sweep", "exponents", 1],
                             spec(task="step_size_sweep", optimizer=None,
                                  step_size_sweep={"exponents": [-3, -400]})),
    "gradient check h 1e308": Bad("POST", "/jobs", 422, ["body", "gradient_check", "h"],
                                  spec(task="gradient_check", optimizer=None,
                                       gradient_check={"h": 1e308})),
    "numerical gradient h 1e308": Bad("POST", "/jobs", 422, [*SGD, "h"],
                                      optimizer(gradient="numerical", h=1e308)),
    "schedule growing 1e308x": Bad("POST", "/jobs", 422, [*SGD, "lr_schedule", "step", "gamma"],
                                   optimizer(lr_schedule={"type": "step", "gamma": 1e308})),
    "toy n_val over its points": Bad("POST", "/jobs", 422, ["body", "dataset", "n_val"],
                                     spec(dataset={"name": "toy", "n_val": 5})),
    "CIFAR-10 n_test 1e9": Bad("POST", "/jobs", 422, ["body", "dataset", "n_test"],
                               spec(dataset={"name": "cifar10", "n_test": 10**9})),
    "digits over its rows": Bad("POST", "/jobs", 422, ["body", "dataset", "n_train"],
                                spec(dataset={"name": "digits", "n_train": 10**9})),
    "nested 500 deep": Bad("POST", "/jobs", 422, ["body", "name"],
                           spec(name=json.loads("[" * 500 + "]" * 500))),
    # Bodies and content types
    "empty body": Bad("POST", "/jobs", 422, ["body"], b"", JSON),
    "null body": Bad("POST", "/jobs", 422, ["body"], b"null"),
    "array body": Bad("POST", "/jobs", 422, ["body"], b"[]"),
    "number body": Bad("POST", "/jobs", 422, ["body"], b"42"),
    "truncated JSON": Bad("POST", "/jobs", 422, ["body"], b'{"dataset": '),
    "single quotes": Bad("POST", "/jobs", 422, ["body"], b"{'dataset': 1}"),
    "text/plain": Bad("POST", "/jobs", 415, None, spec(), {"content-type": "text/plain"}),
    "no content type": Bad("POST", "/jobs", 415, None, spec(), {}),
    "form encoded": Bad("POST", "/jobs", 415, None, b"dataset=blobs",
                        {"content-type": "application/x-www-form-urlencoded"}),
    "multipart spec": Bad("POST", "/jobs", 415, None, None, None,
                          {"file": ("spec.json", spec())}),
    "predict as text": Bad("POST", "/jobs/{job}/predict", 415, None, b'{"X": [[1.0]]}',
                           {"content-type": "text/plain"}),
    "sweep as text": Bad("POST", "/sweeps", 415, None, b"{}", {"content-type": "text/plain"}),
    "over the JSON limit": Bad("POST", "/jobs", 413, None, spec(name="x" * JSON_LIMIT)),
    "nested past the JSON limit": Bad("POST", "/jobs", 413, None,
                                      b"[" * JSON_LIMIT + b"]" * JSON_LIMIT),
    "sweep over the JSON limit": Bad("POST", "/sweeps", 413, None, b" " * (JSON_LIMIT + 1)),
    "predict over the JSON limit": Bad("POST", "/jobs/{job}/predict", 413, None,
                                       b'{"X": [[' + b"1.0," * JSON_LIMIT + b"1.0]]}"),
    "sweep space key a lone surrogate": Bad("POST", "/sweeps", 422, None, b'{"base": {"dataset": '
                                            b'{"name": "toy"}, "optimizer": {"type": "sgd"}}, '
                                            b'"method": "random", "trials": 1, '
                                            b'"space": {"\\ud800": {"values": [1]}}}'),
    "multipart not parseable": Bad("POST", "/datasets", 422, ["body"], b"not multipart at all",
                                   {"content-type": "multipart/form-data; boundary=x"}),
    "multipart without boundary": Bad("POST", "/datasets", 422, ["body"], b"--x\r\n--x--\r\n",
                                      {"content-type": "multipart/form-data"}),
    "multipart part without a name": Bad("POST", "/datasets", 422, ["body"],
                                         b"--x\r\nContent-Disposition: form-data\r\n\r\n--x--",
                                         {"content-type": "multipart/form-data; boundary=x"}),
    "JSON-sized upload is fine": Bad("POST", "/datasets", 422, ["body", "file"], None, None,
                                     {"file": ("x.npz", b"PK" + b"0" * JSON_LIMIT)}),
    # Headers
    "huge Idempotency-Key": Bad("POST", "/jobs", 422, ["header", "Idempotency-Key"], spec(),
                                {**JSON, "idempotency-key": "k" * 10_000}),
    "empty Idempotency-Key": Bad("POST", "/jobs", 422, ["header", "Idempotency-Key"], spec(),
                                 {**JSON, "idempotency-key": ""}),
    "Last-Event-ID not a step": Bad("GET", "/jobs/{job}/events", 422, ["header", "Last-Event-ID"],
                                    None, {"last-event-id": "abc"}),
    "Last-Event-ID below -1": Bad("GET", "/jobs/{job}/events", 422, ["header", "Last-Event-ID"],
                                  None, {"last-event-id": "-2"}),
    # Query strings and paths
    "limit 0": Bad("GET", "/jobs?limit=0", 422, ["query", "limit"]),
    "limit not a number": Bad("GET", "/jobs?limit=abc", 422, ["query", "limit"]),
    "limit as a float": Bad("GET", "/jobs?limit=1e3", 422, ["query", "limit"]),
    "limit 30 digits": Bad("GET", "/jobs?limit=" + "9" * 30, 422, ["query", "limit"]),
    "limit over the cap": Bad("GET", "/jobs?limit=10001", 422, ["query", "limit"]),
    "unknown status": Bad("GET", "/jobs?status=sleeping", 422, ["query", "status"]),
    "forged cursor": Bad("GET", "/jobs?cursor=garbage", 422, ["query", "cursor"]),
    "long cursor": Bad("GET", "/jobs?cursor=" + "a" * 65, 422, ["query", "cursor"]),
    "long task": Bad("GET", "/jobs?task=" + "a" * 33, 422, ["query", "task"]),
    "long job id": Bad("GET", "/jobs/" + "a" * 65, 422, ["path", "job_id"]),
    "after below -1": Bad("GET", "/jobs/{job}/loss?after=-2", 422, ["query", "after"]),
    "after NaN": Bad("GET", "/jobs/{job}/loss?after=NaN", 422, ["query", "after"]),
    "page limit 0": Bad("GET", "/jobs/{job}/loss?limit=0", 422, ["query", "limit"]),
    "max_points 1": Bad("GET", "/jobs/{job}/loss?max_points=1", 422, ["query", "max_points"]),
    "max_points over": Bad("GET", "/jobs/{job}/loss?max_points=10001", 422,
                           ["query", "max_points"]),
    "start without max_points": Bad("GET", "/jobs/{job}/loss?start=5", 422,
                                    ["query", "max_points"]),
    "end before start": Bad("GET", "/jobs/{job}/loss?max_points=5&start=9&end=3", 422,
                            ["query", "end"]),
    "bad series name": Bad("GET", "/jobs/{job}/metrics/BAD-NAME", 422, ["path", "series"]),
    "weights as csv": Bad("GET", "/jobs/{job}/weights?format=csv", 422, ["query", "format"]),
    "last_event_id below -1": Bad("GET", "/jobs/{job}/events?last_event_id=-5", 422,
                                  ["query", "last_event_id"]),
    "predict no rows": Bad("POST", "/jobs/{job}/predict", 422, ["body", "X"], b'{"X": []}'),
    "predict strings": Bad("POST", "/jobs/{job}/predict", 422, ["body", "X", 0, 0],
                           b'{"X": [["a"]]}'),
    "predict extra field": Bad("POST", "/jobs/{job}/predict", 422, ["body", "y"],
                               b'{"X": [[1.0]], "y": 1}'),
    "sweep grid over the cap": Bad("POST", "/sweeps", 422, ["body"], json.dumps({
        "base": OK, "method": "grid",
        "space": {"model.reg": {"values": list(range(2000))}}}).encode()),
    "sweep range wider than a float": Bad("POST", "/sweeps", 422, ["body", "space"], json.dumps({
        "base": OK, "method": "random", "trials": 3,
        "space": {"model.reg": {"uniform": [-1e308, 1e308]}}}).encode()),
    "sweep name with NUL": Bad("POST", "/sweeps", 422, ["body", "name"], json.dumps({
        "name": "a\x00", "base": OK, "method": "random", "trials": 2,
        "space": {"model.reg": {"values": [0.1, 1]}}}).encode()),
    "unknown task filter": Bad("GET", "/jobs?task=trian", 422, ["query", "task"]),
    "unknown series": Bad("GET", "/jobs/{job}/metrics/val_acuracy", 422, ["path", "series"]),
    "unknown series by cursor": Bad("GET", "/jobs/{job}/metrics/val_acuracy?after=-1", 422,
                                    ["path", "series"]),
    "NUL in a job id by cursor": Bad("GET", "/jobs/a%00b/loss?after=-1&limit=5", 422,
                                     ["path", "job_id"]),
    "after past int64": Bad("GET", "/jobs/{job}/loss?after=" + str(2**63), 422,
                            ["query", "after"]),
    "end past int64": Bad("GET", "/jobs/{job}/loss?max_points=5&end=" + str(2**64), 422,
                          ["query", "end"]),
    "Last-Event-ID past int64": Bad("GET", "/jobs/{job}/events", 422,
                                    ["header", "Last-Event-ID"], None,
                                    {"last-event-id": str(2**63)}),
    "NUL in a job id": Bad("GET", "/jobs/a%00b", 422, ["path", "job_id"]),
    "NUL in a job's events": Bad("GET", "/jobs/a%00b/events", 422, ["path", "job_id"]),
    "NUL in a job to cancel": Bad("POST", "/jobs/a%00b/cancel", 422, ["path", "job_id"]),
    "NUL in a data set path": Bad("GET", "/datasets/a%00b", 422, ["path", "dataset_id"]),
    "NUL in a sweep id": Bad("GET", "/sweeps/a%00b", 422, ["path", "sweep_id"]),
    "NUL in a static file": Bad("GET", "/static/%00.js", 422, ["path", "path"]),
    "static file outside": Bad("GET", "/static/..%2F..%2Fsettings.py", 404),
    # Methods and paths
    "unknown path": Bad("GET", "/nope", 404),
    "wrong method": Bad("DELETE", "/jobs", 405),
    # Uploads
    "upload without a file": Bad("POST", "/datasets", 422, ["body", "file"], None, None, None),
    "upload not a zip": Bad("POST", "/datasets", 422, ["body", "file"], None, None,
                            {"file": ("x.npz", b"garbage")}),
    "upload CSV with NaN": Bad("POST", "/datasets", 422, ["body", "file"], None, None,
                               {"file": ("x.csv", b"a,label\nnan,0\n1,1\n")}),
    "upload name with NUL": Bad("POST", "/datasets", 422, ["body", "name"], None, None,
                                {"file": ("x.csv", b"a,label\n1,0\n2,1\n")}, {"name": "a\x00"}),
    "upload over the limit": Bad("POST", "/datasets", 413, None, None, None,
                                 {"file": ("x.csv", b"a,label\n" + b"1,0\n" * LIMIT)}),
}  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    postgres_server: PostgresServer | None,
) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("malformed")
    if request.param == "sqlite":
        shutil.copy(sqlite_template, home / "descent.db")
        url = f"sqlite:///{home / 'descent.db'}"
    elif postgres_server is None:
        pytest.skip(f"PostgreSQL lane off: set {POSTGRES_ENV} to a server URL to run it")
    else:
        url = postgres_server.fresh()
    # The cifar10 built-in is available wherever its batch files are: refusing its sizes at
    # submit reads no file.
    batches = home / "cifar-10-batches-py"
    batches.mkdir()
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        (batches / name).touch()
    # The poll cache on, as `descent serve` runs it: it answers some polls without the endpoint.
    poll_cache_bytes = Settings.model_fields["poll_cache_bytes"].default
    settings = make_settings(
        url,
        home,
        max_upload_bytes=LIMIT,
        max_json_bytes=JSON_LIMIT,
        cifar10_dir=batches,
        poll_cache_bytes=poll_cache_bytes,
    )
    with TestClient(create_app(settings)) as client:
        yield client
    if request.param != "sqlite" and postgres_server is not None:
        postgres_server.drop(url)


@pytest.fixture(scope="module")
def job_id(api: TestClient) -> str:
    response = api.post("/jobs", json=OK)
    assert response.status_code == 202
    return str(response.json()["id"])


@pytest.mark.parametrize("name", list(TABLE))
def test_a_malformed_request_gets_its_4xx(api: TestClient, job_id: str, name: str) -> None:
    bad = TABLE[name]
    headers = bad.headers if bad.headers is not None else ({} if bad.files else JSON)
    response = api.request(
        bad.method,
        bad.path.replace("{job}", job_id),
        content=bad.body,
        headers=headers,
        files=bad.files,
        data=bad.form,
    )

    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == bad.status
    assert problem["detail"]
    if bad.loc is not None:
        locs = [error["loc"] for error in problem["errors"]]
        assert any(loc[: len(bad.loc)] == bad.loc for loc in locs), locs

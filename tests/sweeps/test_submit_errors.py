"""POST /sweeps refuses what could not give a ranked result, and locates each error where the
client can fix it: the space key whose value caused it, or the base when the base alone has it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.sweeps.conftest import sweep_request

pytestmark = pytest.mark.postgres


def _refused(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/sweeps", json=request)
    assert response.status_code == 422, response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/sweeps").json()["items"] == []
    assert client.get("/jobs").json()["items"] == []
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors


@pytest.mark.parametrize(
    ("task", "options"),
    [
        ("gradient_check", {"num_checks": 5}),
        ("step_size_sweep", {"exponents": [-3, -2]}),
        ("landscape", {"points": 3}),
    ],
)
def test_a_sweep_over_a_task_that_records_no_metric_is_refused_at_base_task(
    client: TestClient, task: str, options: dict[str, Any]
) -> None:
    base = {"task": task, "dataset": {"name": "blobs"}, task: options}
    request = sweep_request(base=base, space={"model.reg": {"values": [0.0, 0.1]}}, metric="loss")

    errors = _refused(client, request)

    assert [error["loc"] for error in errors] == [["body", "base", "task"]]
    message = errors[0]["msg"]
    assert f"a {task} job records no metric" in message
    assert "only task 'train'" in message
    assert "val_accuracy, train_accuracy, loss, best_loss" in message


def test_a_swept_task_that_records_no_metric_is_refused_at_its_space_key(
    client: TestClient,
) -> None:
    space = {"task": {"values": ["train", "gradient_check"]}}

    errors = _refused(client, sweep_request(space=space))

    assert [error["loc"] for error in errors] == [["body", "space", "task"]]
    assert "a gradient_check job records no metric" in errors[0]["msg"]


@pytest.mark.parametrize(
    ("space", "key", "fragment"),
    [
        # An unknown union tag is reported at the union ("optimizer"), above the swept path.
        ({"optimizer.type": {"values": ["sgd", "bogus"]}}, "optimizer.type", "'bogus'"),
        # The base's sgd fields do not fit a random search: errors below optimizer.random_search.
        ({"optimizer.type": {"values": ["random_search"]}}, "optimizer.type", "batch_size"),
        # The server's check (batch size within the training rows) fails at optimizer.batch_size,
        # because of the rows a trial asks for.
        ({"dataset.n_train": {"values": [300, 10]}, "model.reg": {"values": [0.0, 0.1]}},
         "dataset.n_train", "optimizer.batch_size: may not exceed the 10 training rows"),
    ],
)  # fmt: skip
def test_an_error_caused_by_a_space_value_is_located_at_its_space_key(
    client: TestClient, space: dict[str, Any], key: str, fragment: str
) -> None:
    errors = _refused(client, sweep_request(space=space))

    assert {tuple(error["loc"]) for error in errors} == {("body", "space", key)}, errors
    assert any(fragment in error["msg"] for error in errors), errors
    assert all(f"({key}=" in error["msg"] for error in errors), errors


def test_an_error_the_base_has_alone_stays_located_in_the_base(client: TestClient) -> None:
    request = sweep_request(space={"model.reg": {"values": [0.0, 0.1]}})
    request["base"]["optimizer"]["batch_size"] = 1000  # blobs has 360 training rows

    errors = _refused(client, request)

    assert [error["loc"] for error in errors] == [["body", "base", "optimizer", "batch_size"]]

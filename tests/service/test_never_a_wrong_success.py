"""A task whose numbers overflow fails as `non_finite` with a message saying where, instead of
succeeding with a result built from NaNs and infinities (a relative error of 0 between two
NaNs, a best W that never had a finite loss, a landscape of nulls)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import toy_spec
from worker.engine.gradients import relative_error

BLOBS = {"name": "blobs", "n_train": 60, "n_val": 20, "n_test": 20}


def task(name: str, **params: Any) -> dict[str, Any]:
    spec = toy_spec(task=name, dataset=BLOBS, dtype="float64")
    spec.pop("optimizer")
    spec[name] = params
    return spec


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (task("step_size_sweep", init_scale=1e300), "loss at the starting W"),
        (task("landscape", span=1e300, points=5), "grid points"),
        (
            toy_spec(
                dataset=BLOBS,
                dtype="float32",
                optimizer={"type": "random_search", "trials": 20, "scale": 1e300},
            ),
            "finite loss",
        ),
    ],
    ids=["step_size_sweep", "landscape", "random_search"],
)
def test_an_overflowing_task_fails_as_non_finite(
    client: TestClient, drain: Callable[[], int], spec: dict[str, Any], said: str
) -> None:
    job_id = client.post("/jobs", json=spec).json()["id"]
    drain()

    job = client.get(f"/jobs/{job_id}").json()

    assert job["status"] == "failed", job
    assert job["error"]["type"] == "non_finite"
    assert said in job["error"]["message"]
    assert client.get(f"/jobs/{job_id}/result").status_code in (404, 409)


def test_a_gradient_check_whose_loss_overflows_fails_instead_of_passing(
    client: TestClient, drain: Callable[[], int]
) -> None:
    """Features near float64's limit: the softmax loss overflows at W +- h, so the numerical
    gradient is NaN (whose relative error to anything used to count as 0: `passed`)."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    y = np.arange(60) % 3
    np.savez(buffer, X_train=1e300 * rng.standard_normal((60, 4)), y_train=y)
    upload = client.post("/datasets", files={"file": ("huge.npz", buffer.getvalue())}).json()
    spec = task("gradient_check", num_checks=5, init_scale=1.0)
    spec["dataset"] = {"id": upload["id"]}
    spec["model"] = {"loss": "softmax", "reg": 0.001}
    job_id = client.post("/jobs", json=spec).json()["id"]
    drain()

    job = client.get(f"/jobs/{job_id}").json()

    assert job["status"] == "failed", job
    assert job["error"]["type"] == "non_finite"
    assert "numerical gradient is not finite" in job["error"]["message"]


def test_a_gradient_check_that_does_not_overflow_still_passes(
    client: TestClient, drain: Callable[[], int]
) -> None:
    job_id = client.post("/jobs", json=task("gradient_check", num_checks=5)).json()["id"]
    drain()

    assert client.get(f"/jobs/{job_id}").json()["status"] == "succeeded"
    assert client.get(f"/jobs/{job_id}/result").json()["passed"] is True


def test_two_non_finite_gradients_never_agree() -> None:
    a = np.array([np.inf, np.nan, 1.0, 0.0, np.inf])
    n = np.array([np.inf, np.nan, np.nan, 0.0, 1.0])

    errors = relative_error(a, n)

    assert np.isnan(errors[[0, 1, 2, 4]]).all()
    assert errors[3] == 0.0

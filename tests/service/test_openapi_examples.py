"""Every schema of the OpenAPI document carries an example, and the request examples are valid."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from service.jobs.schemas import JobOut
from service.jobs.spec import JobSpec
from service.jobs.spec_optimizers import Optimizer


def test_every_schema_has_an_example(client: TestClient) -> None:
    schemas: dict[str, Any] = client.get("/openapi.json").json()["components"]["schemas"]

    missing = [name for name, schema in schemas.items() if not schema.get("examples")]

    assert missing == []


def test_the_spec_job_and_optimizer_examples_are_valid(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    JobSpec.model_validate(schemas["JobSpec"]["examples"][0])
    JobOut.model_validate(schemas["JobOut"]["examples"][0])
    for name in ("Sgd", "Momentum", "Nesterov", "Adagrad", "RmsProp", "Adam", "RandomSearch",
                 "RandomLocalSearch"):  # fmt: skip
        TypeAdapter(Optimizer).validate_python(schemas[name]["examples"][0])

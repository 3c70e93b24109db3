"""Put the migrated database under the fuzzed app, and clean up after the module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from schemathesis.python import asgi

from tests.fuzz.app import DATABASE, HOME


@pytest.fixture(scope="session", autouse=True)
def fuzz_database(sqlite_template: Path) -> Iterator[Path]:
    shutil.copy(sqlite_template, DATABASE)
    yield DATABASE
    asgi.shutdown_lifespans()  # the app's lifespan (its database engine) ends here
    shutil.rmtree(HOME, ignore_errors=True)

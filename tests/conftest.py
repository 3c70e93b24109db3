"""Shared fixtures: a fresh migrated database per test (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.db import migrate
from service.db.session import Database
from service.settings import Settings
from worker.engine import accel

POSTGRES_ENV = "DESCENT_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR10 = REPO.parent / "shared" / "data" / "cifar-10-batches-py"
# The compiled-kernel cache of every worker process the tests start (descent serve, python -m
# worker), kept between runs: each would otherwise compile all the kernels into its own fresh
# data directory.
TEST_KERNEL_CACHE = REPO / "var" / "test-kernels"


def pytest_configure(config: pytest.Config) -> None:
    """The tests' own process runs the engine on its compiled backend, numba's cache where numba
    keeps it, as an in-process worker finds it; configured before any test module is imported,
    since numba fixes its CPU features when the first kernel is defined. Tests that need the
    NumPy path switch to it (tests/engine/conftest.py `switch_backend`)."""
    accel.configure("compiled")


@pytest.fixture(scope="session", autouse=True)
def shared_kernel_cache() -> Iterator[None]:
    """Fills (or, when it is full, just checks) that cache before the first test: on a fresh
    checkout the compilation then happens once, here, instead of beside the first tests that
    start a server, whose own time limits are set for servers that start in seconds."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("DESCENT_KERNEL_CACHE_DIR"):
            patch.setenv("DESCENT_KERNEL_CACHE_DIR", str(TEST_KERNEL_CACHE))
        cache = os.environ["DESCENT_KERNEL_CACHE_DIR"]
        fill = [sys.executable, "-m", "worker.compiled_kernels", cache]
        subprocess.run(fill, check=True, timeout=1200)
        yield


def cifar10_dir() -> Path | None:
    """Where the real CIFAR-10 batches are, if anywhere on this machine."""
    configured = os.environ.get("DESCENT_CIFAR10_DIR")
    for candidate in (Path(configured) if configured else None, SHARED_CIFAR10):
        if candidate is not None and (candidate / "data_batch_1").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating every time."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


class PostgresServer:
    """Creates throw-away databases on the server named by DESCENT_TEST_POSTGRES_URL."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.template = f"descent_tmpl_{uuid.uuid4().hex[:10]}"
        self._create(self.template)
        migrate.upgrade(self.url_for(self.template))
        self.created: list[str] = [self.template]

    def url_for(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def _create(self, database: str, template: str | None = None) -> None:
        with self.admin.connect() as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(text(f'CREATE DATABASE "{database}"{suffix}'))

    def fresh(self) -> str:
        name = f"descent_t_{uuid.uuid4().hex[:12]}"
        self._create(name, self.template)
        self.created.append(name)
        return self.url_for(name)

    def empty(self) -> str:
        name = f"descent_e_{uuid.uuid4().hex[:12]}"
        self._create(name)
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        yield None
        return
    server = PostgresServer(url)
    yield server
    server.close()


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_server: PostgresServer | None,
) -> Iterator[str]:
    """A fresh, migrated database for this test; PostgreSQL only when the server is configured."""
    if request.param == "sqlite":
        path = tmp_path / "descent.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if postgres_server is None:
        pytest.skip(f"PostgreSQL lane off: set {POSTGRES_ENV} to a server URL to run it")
    url = postgres_server.fresh()
    yield url
    postgres_server.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "descent.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "cifar10_dir": cifar10_dir(),
        "poll_seconds": 0.05,
        "checkpoint_seconds": 0.2,
        "dataset_cache_bytes": 2 * 1024**3,
        # The endpoints' own answers, right after each commit: the poll cache (on by default)
        # may lag another connection's commit by up to its staleness bound. Its tests turn it
        # on (tests/service/test_poll_cache.py, test_poll_tails.py), and `descent serve` in the
        # e2e and dashboard tests runs with it.
        "poll_cache_bytes": 0,
        # No prepared-data files: every test has its own data_dir, so each CIFAR-10 test would
        # write the whole prepared set under it. The file cache's tests turn it on
        # (tests/worker/test_prepared_files.py).
        "prepared_cache_bytes": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]

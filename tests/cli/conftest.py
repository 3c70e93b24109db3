"""A real `descent serve` for the CLI tests (one per module), and the `descent` command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port, start_serve, stop_serve

DESCENT = str(Path(sys.executable).parent / "descent")


def cli_env(url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DESCENT_URL", "DESCENT_API_TOKEN")}
    if url is not None:
        env["DESCENT_URL"] = url
    return env


def descent(
    *args: str,
    url: str | None,
    stdin: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `descent ARGS` against `url` (DESCENT_URL) and capture its output."""
    return subprocess.run(
        [DESCENT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**cli_env(url), **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `descent serve --workers 1` on its own SQLite database."""
    home = tmp_path_factory.mktemp("serve")
    env = {
        **cli_env(None),
        "DESCENT_DATABASE_URL": f"sqlite:///{home / 'descent.db'}",
        "DESCENT_DATA_DIR": str(home / "data"),
        "DESCENT_POLL_SECONDS": "0.05",
        "DESCENT_LOG_LEVEL": "WARNING",
    }
    process, base = start_serve(free_port(), env, workers=1, cwd=home)
    yield base
    stop_serve(process)

"""The service fixtures (a fresh database per test, a burst worker) and a fast event stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.events import router, stream
from service.settings import Settings
from tests.conftest import make_settings
from tests.service.conftest import client, drain

__all__ = ["client", "drain", "fast_stream", "settings"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def fast_stream(monkeypatch: pytest.MonkeyPatch) -> stream.Timing:
    """Poll every 20 ms and ping after 0.2 s idle, so live tests run in well under a second."""
    timing = stream.Timing(poll_seconds=0.02, ping_seconds=0.2, progress_seconds=0.05)
    monkeypatch.setattr(router, "TIMING", timing)
    return timing

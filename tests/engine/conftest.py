"""Fixtures of the engine's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from worker.engine import accel
from worker.engine.accel import Backend, BackendName

SwitchBackend = Callable[[BackendName], Backend]


@pytest.fixture
def switch_backend() -> Iterator[SwitchBackend]:
    """accel.configure for this test: the backend in effect before the test is back after it.
    How a test reaches the NumPy path, the oracle of the compiled kernels."""
    before = accel.active()
    yield lambda name: accel.configure(name)
    accel.configure(before.name)

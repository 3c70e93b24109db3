"""A spy on the engine's compiled passes, for the tests that check which path ran."""

from __future__ import annotations

from typing import Any

import pytest


def spy_on(monkeypatch: pytest.MonkeyPatch, module: Any, function: str) -> list[str]:
    """Record the first argument (a loss name) of every call of module.function."""
    calls: list[str] = []
    real = getattr(module, function)

    def counting(name: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(module, function, counting)
    return calls

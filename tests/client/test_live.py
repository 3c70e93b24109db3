"""Both clients against a real `descent serve`: live event streams while a job trains."""

from __future__ import annotations

import subprocess

import anyio
import numpy as np
import pytest

from service.client import AsyncDescentClient, DescentClient
from tests.client.conftest import toy_spec

pytestmark = pytest.mark.e2e

ITERATIONS = 6_000


def test_sync_and_async_clients_follow_a_running_job_over_http(
    server: tuple[str, subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = server
    monkeypatch.setenv("DESCENT_URL", base)
    spec = toy_spec(optimizer={"type": "sgd", "learning_rate": 0.05, "iterations": ITERATIONS})

    with DescentClient() as client:
        job = client.submit(spec)
        statuses: list[str] = []
        steps: list[int] = []
        for event in client.events(job.id):
            if event.event in ("status", "end"):
                statuses.append(event.job.status)
            elif event.event == "loss":
                steps += [p.step for p in event.points]
        assert statuses[0] in ("queued", "running", "succeeded")
        assert statuses[-1] == "succeeded"
        assert steps == list(range(ITERATIONS))
        assert [p.step for p in client.loss(job.id)] == steps
        W = client.weights(job.id)

    async def follow_async() -> tuple[list[int], np.ndarray]:
        async with AsyncDescentClient() as client:
            second = await client.submit(spec)
            seen: list[int] = []
            async for event in client.events(second.id):
                if event.event == "loss":
                    seen += [p.step for p in event.points]
            done = await client.wait(second.id, timeout=30)
            assert done.status == "succeeded"
            return seen, await client.weights(second.id)

    seen, W2 = anyio.run(follow_async)
    assert seen == list(range(ITERATIONS))
    np.testing.assert_array_equal(W, W2)  # same spec and seed, same weights

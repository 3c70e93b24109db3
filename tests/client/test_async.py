"""AsyncDescentClient against the ASGI app (httpx.ASGITransport inside the app's lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import numpy as np
import pytest

from service.app import create_app
from service.client import AsyncDescentClient, DescentError
from service.settings import Settings
from tests.client.conftest import toy_spec
from tests.sweeps.conftest import sweep_request


@asynccontextmanager
async def asgi_client(settings: Settings) -> AsyncIterator[AsyncDescentClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://descent.test") as http:
            yield AsyncDescentClient(http=http)


def test_the_async_client_runs_a_job_end_to_end(
    settings: Settings, drain: Callable[[], int]
) -> None:
    async def scenario() -> None:
        async with asgi_client(settings) as client:
            job = await client.submit(toy_spec())
            other = await client.submit(toy_spec(name="other"))
            assert [j.id async for j in client.list(page_size=1)] == [other.id, job.id]
            assert (await client.cancel(other.id)).status == "cancelled"
            await anyio.to_thread.run_sync(drain)

            done = await client.wait(job.id, timeout=10)
            assert done.status == "succeeded"
            assert (await client.get(job.id)) == done
            points = await client.loss(job.id)
            assert [p.step for p in points] == list(range(120))
            assert len(await client.loss(job.id, max_points=4)) <= 4
            assert (await client.series(job.id, "val_accuracy"))[-1].step == 119
            W = await client.weights(job.id)
            assert W.shape == (3, 3)
            assert np.isfinite(W).all()
            kinds = [event.event async for event in client.events(job.id)]
            assert kinds[0] == "status"
            assert kinds[-1] == "end"

            await client.delete(other.id)
            with pytest.raises(DescentError) as caught:
                await client.get(other.id)
            assert caught.value.status == 404
            with pytest.raises(DescentError) as no_result:
                await client.result(job.id)
            assert no_result.value.status == 409

    anyio.run(scenario)


def test_the_async_client_runs_a_sweep(settings: Settings, drain: Callable[[], int]) -> None:
    async def scenario() -> None:
        async with asgi_client(settings) as client:
            sweep = await client.submit_sweep(sweep_request())
            cancelled = await client.submit_sweep(sweep_request(name="other"))
            assert (await client.cancel_sweep(cancelled.id)).status == "cancelled"
            await anyio.to_thread.run_sync(drain)

            done = await client.wait_sweep(sweep.id, timeout=10)
            assert done.status == "succeeded"
            assert (await client.get_sweep(sweep.id)) == done
            await client.delete_sweep(cancelled.id)
            with pytest.raises(DescentError) as caught:
                await client.get_sweep(cancelled.id)
            assert caught.value.status == 404

    anyio.run(scenario)

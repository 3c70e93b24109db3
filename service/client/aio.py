"""AsyncDescentClient: the same API as DescentClient, for asyncio (and trio) code."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import anyio
import httpx
import numpy as np
from httpx_sse import SSEError, aconnect_sse

from service.client import _base
from service.client._base import DescentConnectionError, DescentError, Event
from service.jobs.schemas import JobOut, JobPage, LossPage, LossPoint, SeriesPoint
from service.jobs.spec import JobSpec
from service.sweeps.schemas import SweepOut, SweepRequest


class AsyncDescentClient:
    """An async client of one Descent server; see DescentClient for the conventions.

    Pass `http` to use an httpx.AsyncClient of your own (for example one on
    `httpx.ASGITransport(app)`): its base URL is used and it is not closed here.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = str(http.base_url).rstrip("/") if http is not None else _base.base_url(url)
        self._headers = _base.default_headers(_base.api_token(token))
        self._owned = http is None
        self._http = http or httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._broken = _base.transport_errors(self._http)

    async def __aenter__(self) -> AsyncDescentClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except self._broken as exc:
            raise DescentConnectionError(self.url, exc) from exc
        return _base.checked(response)

    # Jobs

    async def submit(
        self, spec: Mapping[str, Any] | JobSpec, idempotency_key: str | None = None
    ) -> JobOut:
        headers = _base.submit_headers(idempotency_key)
        response = await self._send("POST", "/jobs", json=_base.spec_body(spec), headers=headers)
        return JobOut.model_validate_json(response.content)

    async def get(self, job_id: str) -> JobOut:
        response = await self._send("GET", _base.job_path(job_id))
        return JobOut.model_validate_json(response.content)

    async def list(
        self,
        status: str | None = None,
        task: str | None = None,
        limit: int | None = None,
        *,
        page_size: int = 100,
    ) -> AsyncIterator[JobOut]:
        cursor: str | None = None
        remaining = limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            params = _base.list_params(status, task, size)
            if cursor is not None:
                params["cursor"] = cursor
            response = await self._send("GET", "/jobs", params=params)
            page = JobPage.model_validate_json(response.content)
            for job in page.items:
                yield job
            if remaining is not None:
                remaining -= len(page.items)
            if page.next_cursor is None or not page.items:
                return
            cursor = page.next_cursor

    async def cancel(self, job_id: str) -> JobOut:
        response = await self._send("POST", _base.job_path(job_id, "cancel"))
        return JobOut.model_validate_json(response.content)

    async def delete(self, job_id: str) -> None:
        await self._send("DELETE", _base.job_path(job_id))

    async def result(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self._send("GET", _base.job_path(job_id, "result"))).json()
        return body

    async def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.2) -> JobOut:
        """Poll until the job is succeeded, failed or cancelled; TimeoutError after `timeout`."""
        waiting = _base.Waiting(f"job {job_id}", timeout)
        while not waiting.done((job := await self.get(job_id)).status):
            await anyio.sleep(poll)
        return job

    # Sweeps

    async def submit_sweep(
        self, request: Mapping[str, Any] | SweepRequest, idempotency_key: str | None = None
    ) -> SweepOut:
        """POST /sweeps: queue one job per trial (202); the same key and request replay."""
        headers = _base.submit_headers(idempotency_key)
        body = _base.spec_body(request)
        response = await self._send("POST", "/sweeps", json=body, headers=headers)
        return SweepOut.model_validate_json(response.content)

    async def get_sweep(self, sweep_id: str) -> SweepOut:
        response = await self._send("GET", _base.sweep_path(sweep_id))
        return SweepOut.model_validate_json(response.content)

    async def cancel_sweep(self, sweep_id: str) -> SweepOut:
        response = await self._send("POST", _base.sweep_path(sweep_id, "cancel"))
        return SweepOut.model_validate_json(response.content)

    async def delete_sweep(self, sweep_id: str) -> None:
        """DELETE /sweeps/{id}: a finished sweep with its trials."""
        await self._send("DELETE", _base.sweep_path(sweep_id))

    async def wait_sweep(
        self, sweep_id: str, timeout: float | None = None, poll: float = 0.5
    ) -> SweepOut:
        """Poll until every trial has finished; TimeoutError after `timeout`."""
        waiting = _base.Waiting(f"sweep {sweep_id}", timeout)
        while not waiting.done((sweep := await self.get_sweep(sweep_id)).status):
            await anyio.sleep(poll)
        return sweep

    # History and weights

    async def series(
        self, job_id: str, name: str, max_points: int | None = None
    ) -> builtins.list[SeriesPoint]:
        path = _base.series_path(job_id, name)
        if max_points is not None:
            page = (await self._send("GET", path, params={"max_points": max_points})).json()
            return _base.series_points(page, name)
        points: builtins.list[SeriesPoint] = []
        after = -1
        while True:
            params = {"after": after, "limit": _base.PAGE_SIZE}
            page = (await self._send("GET", path, params=params)).json()
            points += _base.series_points(page, name)
            if page["next_after"] is None or not page["points"]:
                return points
            after = page["next_after"]

    async def loss(self, job_id: str, max_points: int | None = None) -> builtins.list[LossPoint]:
        if max_points is not None:
            response = await self._send(
                "GET", _base.job_path(job_id, "loss"), params={"max_points": max_points}
            )
            return LossPage.model_validate_json(response.content).points
        points = await self.series(job_id, "loss")
        return [LossPoint(step=p.step, loss=p.value) for p in points]

    async def weights(self, job_id: str) -> np.ndarray:
        path = _base.job_path(job_id, "weights")
        response = await self._send("GET", path, params={"format": "npy"})
        return _base.load_npy(response.content)

    async def events(self, job_id: str, last_event_id: str | None = None) -> AsyncIterator[Event]:
        stream = _base.Resumption(self.url, job_id, self._headers, last_event_id)
        timeout = stream.timeout(self._http.timeout)
        while True:
            try:
                async with aconnect_sse(
                    self._http, "GET", stream.path, headers=stream.headers(), timeout=timeout
                ) as src:
                    if src.response.status_code >= 400:
                        await src.response.aread()
                        raise DescentError.from_response(src.response)
                    async for sse in src.aiter_sse():
                        event = stream.seen(sse.event, sse.data, sse.id)
                        yield event
                        if event.event == "end":
                            return
            except SSEError as exc:
                raise DescentError(0, "Not an event stream", str(exc)) from exc
            except self._broken as exc:
                delay = stream.failed(exc)
            else:
                delay = stream.failed(None)
            await anyio.sleep(delay)

"""DescentClient: the typed synchronous client of the Descent API, on httpx."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx
import numpy as np
from httpx_sse import SSEError, connect_sse

from service.client import _base
from service.client._base import DescentConnectionError, DescentError, Event
from service.jobs.schemas import JobOut, JobPage, LossPage, LossPoint, SeriesPoint
from service.jobs.spec import JobSpec
from service.sweeps.schemas import SweepOut, SweepRequest


class DescentClient:
    """A client of one Descent server.

    `url` and `token` default to DESCENT_URL (else http://127.0.0.1:8000) and DESCENT_API_TOKEN
    (sent as `Authorization: Bearer <token>` when set). Pass `http` to use an httpx.Client of
    your own (for example Starlette's TestClient): its base URL is used and it is not closed here.
    Every error answer raises DescentError with the problem's status, title, detail and errors.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = str(http.base_url).rstrip("/") if http is not None else _base.base_url(url)
        self._headers = _base.default_headers(_base.api_token(token))
        self._owned = http is None
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout)
        self._broken = _base.transport_errors(self._http)

    def __enter__(self) -> DescentClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except self._broken as exc:
            raise DescentConnectionError(self.url, exc) from exc
        return _base.checked(response)

    # Jobs

    def submit(
        self, spec: Mapping[str, Any] | JobSpec, idempotency_key: str | None = None
    ) -> JobOut:
        """POST /jobs: queue a job (202); the same idempotency key and spec replay the first."""
        headers = _base.submit_headers(idempotency_key)
        response = self._send("POST", "/jobs", json=_base.spec_body(spec), headers=headers)
        return JobOut.model_validate_json(response.content)

    def get(self, job_id: str) -> JobOut:
        return JobOut.model_validate_json(self._send("GET", _base.job_path(job_id)).content)

    def list(
        self,
        status: str | None = None,
        task: str | None = None,
        limit: int | None = None,
        *,
        page_size: int = 100,
    ) -> Iterator[JobOut]:
        """Jobs newest first, following the cursor pages until `limit` jobs (None = all)."""
        cursor: str | None = None
        remaining = limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            params = _base.list_params(status, task, size)
            if cursor is not None:
                params["cursor"] = cursor
            page = JobPage.model_validate_json(self._send("GET", "/jobs", params=params).content)
            yield from page.items
            if remaining is not None:
                remaining -= len(page.items)
            if page.next_cursor is None or not page.items:
                return
            cursor = page.next_cursor

    def cancel(self, job_id: str) -> JobOut:
        response = self._send("POST", _base.job_path(job_id, "cancel"))
        return JobOut.model_validate_json(response.content)

    def delete(self, job_id: str) -> None:
        self._send("DELETE", _base.job_path(job_id))

    def result(self, job_id: str) -> dict[str, Any]:
        """The result of a finished gradient_check, step_size_sweep or landscape job."""
        body: dict[str, Any] = self._send("GET", _base.job_path(job_id, "result")).json()
        return body

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.2) -> JobOut:
        """Poll until the job is succeeded, failed or cancelled; TimeoutError after `timeout`."""
        waiting = _base.Waiting(f"job {job_id}", timeout)
        while not waiting.done((job := self.get(job_id)).status):
            time.sleep(poll)
        return job

    # Sweeps

    def submit_sweep(
        self, request: Mapping[str, Any] | SweepRequest, idempotency_key: str | None = None
    ) -> SweepOut:
        """POST /sweeps: queue one job per trial (202); the same key and request replay."""
        headers = _base.submit_headers(idempotency_key)
        response = self._send("POST", "/sweeps", json=_base.spec_body(request), headers=headers)
        return SweepOut.model_validate_json(response.content)

    def get_sweep(self, sweep_id: str) -> SweepOut:
        response = self._send("GET", _base.sweep_path(sweep_id))
        return SweepOut.model_validate_json(response.content)

    def cancel_sweep(self, sweep_id: str) -> SweepOut:
        response = self._send("POST", _base.sweep_path(sweep_id, "cancel"))
        return SweepOut.model_validate_json(response.content)

    def delete_sweep(self, sweep_id: str) -> None:
        """DELETE /sweeps/{id}: a finished sweep with its trials."""
        self._send("DELETE", _base.sweep_path(sweep_id))

    def wait_sweep(
        self, sweep_id: str, timeout: float | None = None, poll: float = 0.5
    ) -> SweepOut:
        """Poll until every trial has finished; TimeoutError after `timeout`."""
        waiting = _base.Waiting(f"sweep {sweep_id}", timeout)
        while not waiting.done((sweep := self.get_sweep(sweep_id)).status):
            time.sleep(poll)
        return sweep

    # History and weights

    def series(
        self, job_id: str, name: str, max_points: int | None = None
    ) -> builtins.list[SeriesPoint]:
        """Every point of a series stored so far (or at most `max_points`, shape-preserving)."""
        path = _base.series_path(job_id, name)
        if max_points is not None:
            page = self._send("GET", path, params={"max_points": max_points}).json()
            return _base.series_points(page, name)
        points: builtins.list[SeriesPoint] = []
        after = -1
        while True:
            params = {"after": after, "limit": _base.PAGE_SIZE}
            page = self._send("GET", path, params=params).json()
            points += _base.series_points(page, name)
            if page["next_after"] is None or not page["points"]:
                return points
            after = page["next_after"]

    def loss(self, job_id: str, max_points: int | None = None) -> builtins.list[LossPoint]:
        """Every loss point stored so far, in step order, following `next_after`."""
        if max_points is not None:
            response = self._send(
                "GET", _base.job_path(job_id, "loss"), params={"max_points": max_points}
            )
            return LossPage.model_validate_json(response.content).points
        return [LossPoint(step=p.step, loss=p.value) for p in self.series(job_id, "loss")]

    def weights(self, job_id: str) -> np.ndarray:
        """W (classes x features, bias last) from `?format=npy`, loaded without pickle."""
        response = self._send("GET", _base.job_path(job_id, "weights"), params={"format": "npy"})
        return _base.load_npy(response.content)

    def events(self, job_id: str, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's Server-Sent Events until `end`; a dropped stream resumes after its last id."""
        stream = _base.Resumption(self.url, job_id, self._headers, last_event_id)
        timeout = stream.timeout(self._http.timeout)
        while True:
            try:
                with connect_sse(
                    self._http, "GET", stream.path, headers=stream.headers(), timeout=timeout
                ) as src:
                    if src.response.status_code >= 400:
                        src.response.read()
                        raise DescentError.from_response(src.response)
                    for sse in src.iter_sse():
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
            time.sleep(delay)

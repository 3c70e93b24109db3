"""What the sync and async clients share: configuration, errors, paths, parsing.

Nothing here does I/O; the two clients differ only in how they send a request.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from service.jobs.schemas import JobOut, LossPoint, SeriesPoint
from service.jobs.spec import JobSpec
from service.sweeps.schemas import SweepRequest

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "DESCENT_URL"
TOKEN_ENV = "DESCENT_API_TOKEN"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
PAGE_SIZE = 5000  # points or jobs per request when a method follows the cursor
USER_AGENT = "descent-client/0.1"
# A stream is idle between events for at most the server's ping interval (10 s).
STREAM_READ_TIMEOUT = 60.0
RECONNECTS = 5  # consecutive reconnections of an event stream without a new event
RECONNECT_DELAY = 0.1  # seconds before the first reconnection, doubling up to a second


def backoff(failures: int) -> float:
    return min(1.0, RECONNECT_DELAY * 2.0 ** (failures - 1))


class DescentError(Exception):
    """An error answer of the API, carrying its problem+json (RFC 9457)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        type: str = "about:blank",
        problem: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.type = type
        self.problem = problem or {}
        super().__init__(self.message())

    def message(self) -> str:
        """One line (and one more per invalid field): `422 Unprocessable Content: ...`."""
        head = f"{self.status} {self.title}: {self.detail}" if self.status else self.detail
        lines = [head]
        for error in self.errors:
            loc = ".".join(str(part) for part in error.get("loc", ()))
            lines.append(f"  {loc}: {error.get('msg', '')}")
        return "\n".join(lines)

    @classmethod
    def from_response(cls, response: httpx.Response) -> DescentError:
        try:
            body = json.loads(response.content) if response.content else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        status = response.status_code
        title = str(body.get("title") or response.reason_phrase or "Error")
        detail = body.get("detail")
        if not isinstance(detail, str):
            text = response.text.strip()[:500]
            detail = json.dumps(detail) if detail is not None else (text or title)
        errors = body.get("errors")
        return cls(
            status,
            title,
            detail,
            errors=errors if isinstance(errors, list) else None,
            type=str(body.get("type") or "about:blank"),
            problem=body,
        )


class DescentConnectionError(DescentError):
    """The server could not be reached (or the connection broke): `status` is 0."""

    def __init__(self, url: str, cause: Exception) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(0, "Connection error", f"cannot reach {url}: {reason}")


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of `GET /jobs/{id}/events`, its `data` decoded from JSON."""

    event: str
    data: Any
    id: str | None

    @property
    def job(self) -> JobOut:
        """The Job of a `status` or `end` event."""
        return JobOut.model_validate(self.data)

    @property
    def points(self) -> list[LossPoint]:
        """The new points of a `loss` event."""
        return [LossPoint.model_validate(p) for p in self.data.get("points", [])]


class Waiting:
    """A wait for a job or sweep to finish: `done(status)` until it has, TimeoutError once
    `timeout` seconds have passed (None: no limit)."""

    def __init__(self, what: str, timeout: float | None) -> None:
        self.what, self.timeout = what, timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def done(self, status: str) -> bool:
        if status in TERMINAL:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError(f"{self.what} is still {status} after {self.timeout} s")
        return False


def base_url(url: str | None) -> str:
    return (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def api_token(token: str | None) -> str | None:
    return token if token is not None else (os.environ.get(TOKEN_ENV) or None)


def default_headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def job_path(job_id: str, *rest: str) -> str:
    return "/".join(["/jobs", quote(job_id, safe=""), *rest])


def sweep_path(sweep_id: str, *rest: str) -> str:
    return "/".join(["/sweeps", quote(sweep_id, safe=""), *rest])


def spec_body(spec: Mapping[str, Any] | JobSpec | SweepRequest) -> dict[str, Any]:
    """A JobSpec or SweepRequest as its JSON body (a mapping is sent as it is)."""
    if isinstance(spec, JobSpec | SweepRequest):
        return spec.model_dump(mode="json", exclude_unset=True)
    return dict(spec)


def submit_headers(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}


def list_params(status: str | None, task: str | None, size: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": size}
    if status is not None:
        params["status"] = status
    if task is not None:
        params["task"] = task
    return params


def series_path(job_id: str, name: str) -> str:
    return job_path(job_id, "loss") if name == "loss" else job_path(job_id, "metrics", name)


def series_points(page: dict[str, Any], name: str) -> list[SeriesPoint]:
    """A page's points as SeriesPoints (the loss endpoint names its value `loss`)."""
    key = "loss" if name == "loss" else "value"
    return [SeriesPoint(step=p["step"], value=p[key]) for p in page["points"]]


def load_npy(content: bytes) -> np.ndarray:
    return np.asarray(np.load(io.BytesIO(content), allow_pickle=False))


def to_event(event: str, data: str, event_id: str) -> Event:
    return Event(event, json.loads(data) if data else None, event_id or None)


# A (connect, read, write, pool) tuple rather than an httpx.Timeout: every client built on httpx's
# API takes the tuple, while a Timeout object is refused by any package but the one that made it
# (Starlette's TestClient is built on httpx2, a separate package with its own Timeout class).
StreamTimeout = tuple[float | None, float | None, float | None, float | None]


def transport_errors(http: object) -> tuple[type[Exception], ...]:
    """The exceptions that mean "the connection failed" for this client: httpx's, and those of
    the httpx-compatible package its class comes from, if that is another one (httpx2)."""
    errors: list[type[Exception]] = [httpx.TransportError]
    for cls in type(http).__mro__:
        package = sys.modules.get(cls.__module__.partition(".")[0])
        error = getattr(package, "TransportError", None)
        if isinstance(error, type) and issubclass(error, Exception) and error not in errors:
            errors.append(error)
    return tuple(errors)


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise DescentError.from_response(response)
    return response


class Resumption:
    """An event stream's bookkeeping across reconnections: the last event id it resumes after,
    the consecutive failures it allows, and the delay before the next attempt."""

    def __init__(
        self, url: str, job_id: str, headers: Mapping[str, str], last_event_id: str | None
    ) -> None:
        self.url, self.job_id = url, job_id
        self.path = job_path(job_id, "events")
        self._headers = {**headers, "Accept": "text/event-stream"}
        self.last_event_id = last_event_id
        self.failures = 0

    def headers(self) -> dict[str, str]:
        if self.last_event_id is None:
            return dict(self._headers)
        return {**self._headers, "Last-Event-ID": self.last_event_id}

    @staticmethod
    def timeout(http_timeout: httpx.Timeout) -> StreamTimeout:
        """The client's timeouts with the stream's longer read timeout, as a plain tuple."""
        return (http_timeout.connect, STREAM_READ_TIMEOUT, http_timeout.write, http_timeout.pool)

    def seen(self, event: str, data: str, event_id: str) -> Event:
        """The event, parsed; it resets the failure count and moves the resume point."""
        parsed = to_event(event, data, event_id)
        self.last_event_id = parsed.id or self.last_event_id
        self.failures = 0
        return parsed

    def failed(self, cause: Exception | None) -> float:
        """Seconds to wait before reconnecting after a broken (cause) or ended stream; raises
        once RECONNECTS attempts in a row brought no new event."""
        self.failures += 1
        if self.failures > RECONNECTS:
            if cause is not None:
                raise DescentConnectionError(self.url, cause) from cause
            raise DescentError(0, "Stream ended", f"the event stream of {self.job_id} ended")
        return backoff(self.failures)

"""The client's own conventions, on a fake transport: defaults from the environment, the bearer
token, errors that are not problems, unreachable servers, and resuming a dropped event stream."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import httpx2
import pytest

from service.client import DescentClient, DescentConnectionError, DescentError, _base


def fake(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> DescentClient:
    http = httpx.Client(base_url="http://descent.test", transport=httpx.MockTransport(handler))
    return DescentClient(http=http, **kwargs)  # type: ignore[arg-type]


def test_url_and_token_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESCENT_URL", "http://example.invalid:9000/")
    monkeypatch.setenv("DESCENT_API_TOKEN", "tok")
    with DescentClient() as client:
        assert client.url == "http://example.invalid:9000"
        assert client._headers["Authorization"] == "Bearer tok"
    with DescentClient("http://other:1", token="") as client:
        assert client.url == "http://other:1"
        assert "Authorization" not in client._headers
    monkeypatch.delenv("DESCENT_URL")
    monkeypatch.delenv("DESCENT_API_TOKEN")
    with DescentClient() as client:
        assert client.url == "http://127.0.0.1:8000"
        assert "Authorization" not in client._headers


def test_the_token_is_sent_as_a_bearer_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    fake(handler, token="s3cret").delete("a/b")
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert seen[0].url.raw_path == b"/jobs/a%2Fb"  # ids are quoted into one path segment


def test_an_error_that_is_not_a_problem_still_raises_descent_error() -> None:
    client = fake(lambda _: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(DescentError) as caught:
        client.get("x")
    assert caught.value.status == 502
    assert caught.value.title == "Bad Gateway"
    assert caught.value.detail == "<html>bad gateway</html>"
    assert caught.value.errors == []


def test_an_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        client = DescentClient(f"http://127.0.0.1:{port}", timeout=2)
        with client, pytest.raises(DescentConnectionError) as caught:
            client.get("x")
    assert caught.value.status == 0
    assert f"cannot reach http://127.0.0.1:{port}" in str(caught.value)


def sse(event: str, data: object, event_id: int) -> str:
    return f"event: {event}\nid: {event_id}\ndata: {json.dumps(data)}\n\n"


def test_a_dropped_event_stream_resumes_after_the_last_event_id() -> None:
    resumes: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        resumes.append(request.headers.get("last-event-id"))
        if len(resumes) == 1:  # the first connection ends before `end`
            body = sse("loss", {"points": [{"step": 0, "loss": 2.0}]}, 0)
        else:
            body = sse("loss", {"points": [{"step": 1, "loss": 1.0}]}, 1) + sse("end", {}, 1)
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    events = list(fake(handler).events("j"))

    assert resumes == [None, "0"]
    assert [(e.event, e.id) for e in events] == [("loss", "0"), ("loss", "1"), ("end", "1")]
    assert [p.loss for e in events[:2] for p in e.points] == [2.0, 1.0]


def test_a_stream_that_keeps_ending_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base, "RECONNECT_DELAY", 0.0)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, text="", headers={"content-type": "text/event-stream"})

    with pytest.raises(DescentError, match="ended"):
        list(fake(handler).events("j"))
    assert calls == 6


def test_any_httpx_compatible_client_streams_and_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client hands the transport nothing of httpx's own: Starlette's TestClient is built on
    httpx2, whose requests refuse an httpx.Timeout, and whose broken connections raise httpx2's
    errors, which must resume the stream like httpx's do."""
    monkeypatch.setattr(_base, "RECONNECT_DELAY", 0.0)
    seen: list[tuple[str | None, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.headers.get("last-event-id"), request.extensions["timeout"]))
        if len(seen) == 1:
            return httpx2.Response(
                200,
                text=sse("loss", {"points": []}, 0),
                headers={"content-type": "text/event-stream"},
            )
        if len(seen) == 2:
            raise httpx2.ConnectError("connection refused", request=request)
        return httpx2.Response(
            200, text=sse("end", {}, 1), headers={"content-type": "text/event-stream"}
        )

    http = httpx2.Client(
        base_url="http://descent.test", transport=httpx2.MockTransport(handler), timeout=5.0
    )
    events = list(DescentClient(http=http).events("j"))  # type: ignore[arg-type]

    assert [(e.event, e.id) for e in events] == [("loss", "0"), ("end", "1")]
    assert [resume for resume, _ in seen] == [None, "0", "0"]
    timeout = seen[0][1]
    assert isinstance(timeout, dict)
    assert timeout["read"] == _base.STREAM_READ_TIMEOUT and timeout["connect"] == 5.0


def test_an_unreachable_server_is_a_connection_error_on_any_httpx_compatible_client() -> None:

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    http = httpx2.Client(base_url="http://descent.test", transport=httpx2.MockTransport(handler))
    with pytest.raises(DescentConnectionError, match="connection refused"):
        DescentClient(http=http).get("j")  # type: ignore[arg-type]

"""serve_stream drops a stream's BrokenResourceError after its client left, nothing else."""

from __future__ import annotations

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from service.client_disconnects import client_gone, serve_stream

SCOPE: Scope = {"type": "http", "method": "GET", "path": "/jobs/x/events"}


def app_raising(exc: BaseException, *, after_start: bool):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise exc

    return app


async def _receive() -> Message:
    return {"type": "http.disconnect"}


async def _run(exc: BaseException, *, after_start: bool) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await serve_stream(app_raising(exc, after_start=after_start), SCOPE, _receive, send)
    return sent


def gone() -> ExceptionGroup[Exception]:
    return ExceptionGroup("stream", [anyio.BrokenResourceError(), anyio.ClosedResourceError()])


def test_a_stream_broken_by_its_client_leaving_is_not_an_error() -> None:
    sent = anyio.run(lambda: _run(gone(), after_start=True))

    assert [m["type"] for m in sent] == ["http.response.start"]


@pytest.mark.parametrize(
    ("exc", "after_start"),
    [
        (gone(), False),  # before any answer: the client still needs one (a 500)
        (ExceptionGroup("stream", [anyio.BrokenResourceError(), ValueError()]), True),
        (RuntimeError("a bug"), True),
    ],
)
def test_anything_else_propagates(exc: BaseException, after_start: bool) -> None:
    with pytest.raises(type(exc)):
        anyio.run(lambda: _run(exc, after_start=after_start))


def test_client_gone_looks_into_nested_groups() -> None:
    assert client_gone(ExceptionGroup("outer", [gone()]))
    assert not client_gone(ExceptionGroup("outer", [gone(), ExceptionGroup("x", [KeyError()])]))
    assert not client_gone(anyio.EndOfStream())

"""The stream while a job runs: growing history, status changes, pings, cancel and disconnect."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.events import stream
from service.settings import Settings
from tests.events.sse import Event, parse
from tests.events.test_events import delivered, strict_json
from tests.service.conftest import toy_spec
from worker.runner import Worker


@pytest.fixture
def worker_thread(
    settings: Settings,
) -> Iterator[threading.Thread]:
    """A burst worker in a thread, started by the test once it is watching.

    It flushes history every 20 ms (not every 0.5 s), so that even a short toy job reaches the
    stream in several pieces however fast the engine runs.
    """
    worker = Worker(settings.model_copy(update={"flush_seconds": 0.02}))
    thread = threading.Thread(target=lambda: worker.run(burst=True), daemon=True)
    yield thread
    thread.join(timeout=60)
    worker.database.dispose()


def test_a_running_job_streams_as_it_grows_and_ends(
    client: TestClient, fast_stream: stream.Timing, worker_thread: threading.Thread
) -> None:
    spec = toy_spec(
        optimizer={"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 10_000},
        eval_every=1000,
    )
    job_id = client.post("/jobs", json=spec).json()["id"]
    events: list[Event] = []
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=60) as response:
        for item in parse(response.iter_lines()):
            if not isinstance(item, Event):
                continue
            events.append(item)
            if len(events) == 1:
                assert strict_json(item.data)["status"] == "queued"
                worker_thread.start()

    kinds = [event.event for event in events]
    assert kinds[-1] == "end" and strict_json(events[-1].data)["status"] == "succeeded"
    statuses = [strict_json(e.data)["status"] for e in events if e.event == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    loss_events = [event for event in events if event.event == "loss"]
    assert len(loss_events) >= 3, "the curve never arrived in pieces while the job ran"
    assert [p["step"] for p in delivered(events)["loss"]] == list(range(10_000))
    assert "progress" in kinds
    ids = [int(event.id or "") for event in events]
    assert ids == sorted(ids)


@pytest.mark.parametrize("idle", [False, True], ids=["at-once", "after-idling"])
def test_a_cancelled_queued_job_ends_its_stream(
    client: TestClient, fast_stream: stream.Timing, idle: bool
) -> None:
    """Cancelled at once, or after idling past `progress_seconds` (until a ping): either way no
    progress event repeats what the first status event carried."""
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    seen: list[str] = []
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=30) as response:
        for item in parse(response.iter_lines()):
            if isinstance(item, Event):
                seen.append(f"{item.event}:{strict_json(item.data)['status']}")
            elif item == "ping" and idle and "ping" not in seen:
                seen.append("ping")
            else:
                continue
            if seen[-1] == ("ping" if idle else "status:queued"):
                assert client.post(f"/jobs/{job_id}/cancel").status_code == 202

    assert fast_stream.ping_seconds > fast_stream.progress_seconds
    opening = ["status:queued", "ping"] if idle else ["status:queued"]
    assert seen == [*opening, "status:cancelled", "end:cancelled"]


def test_an_idle_stream_pings_and_stops_polling_when_the_client_leaves(
    client: TestClient, fast_stream: stream.Timing, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    reads: list[float] = []
    original = stream.read_batch

    def counting(*args: Any) -> stream.Batch:
        reads.append(time.monotonic())
        return original(*args)

    monkeypatch.setattr(stream, "read_batch", counting)
    comments: list[str] = []
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=30) as response:
        for item in parse(response.iter_lines()):
            if isinstance(item, str):
                comments.append(item)
                if len(comments) == 2:
                    break

    assert comments == ["ping", "ping"]
    time.sleep(0.2)  # let a poll that was in flight finish
    count = len(reads)
    time.sleep(0.3)  # ten polling intervals
    assert len(reads) == count, "the stream kept polling after its client left"
    assert client.get("/healthz").status_code == 200

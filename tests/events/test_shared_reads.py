"""The streams of one job share their reads: one read per job and tick once they have caught up."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import pytest
from fastapi.testclient import TestClient

from service.db.session import Database
from service.events import stream
from service.events.stream import Batch, SharedReads
from service.jobs.schemas import JobOut
from tests.events.sse import Event, parse
from tests.events.test_events import delivered
from tests.events.test_live import worker_thread
from tests.service.conftest import toy_spec

__all__ = ["worker_thread"]
NO_DATABASE = cast(Database, None)  # the fake reads need none


@dataclass
class FakeJob:
    """A running job whose history stands at `bound`; `seen`: (position, until) of each read."""

    bound: int = 20
    seen: list[tuple[int, int | None]] = field(default_factory=list)

    def read_batch(self, database: Any, job_id: str, position: int, until: int | None) -> Batch:
        self.seen.append((position, until))
        end = self.bound if until is None else min(self.bound, until)
        points = [(step, 0.5) for step in range(position + 1, end + 1)]
        job = cast(JobOut, object())  # the shared reads never look at it
        return Batch(job, {"loss": points} if points else {}, max(position, end), bound=end)


@pytest.fixture
def fake_job(monkeypatch: pytest.MonkeyPatch) -> FakeJob:
    job = FakeJob()
    monkeypatch.setattr(stream, "read_batch", job.read_batch)
    return job


def test_streams_at_one_position_share_one_read_and_its_events(fake_job: FakeJob) -> None:
    reads = SharedReads()

    async def three_streams() -> list[stream.Read]:
        found: list[stream.Read] = []

        async def one() -> None:
            found.append(await reads.read(NO_DATABASE, "job", 5, tick=1))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(one)
        return found

    found = anyio.run(three_streams)
    assert fake_job.seen == [(5, None)]
    assert all(read is found[0] for read in found)  # the very batch and events
    batch, events = found[0]
    assert batch.position == 20 and [e.event for e in events] == ["loss"]


def test_a_later_read_of_the_tick_stops_at_its_first_reads_bound_so_streams_converge(
    fake_job: FakeJob,
) -> None:
    reads = SharedReads()

    async def two_ticks() -> list[int]:
        first, _ = await reads.read(NO_DATABASE, "job", 5, tick=1)
        fake_job.bound = 30  # the job moves on within the tick
        second, _ = await reads.read(NO_DATABASE, "job", 9, tick=1)
        third, _ = await reads.read(NO_DATABASE, "job", first.position, tick=2)
        fourth, _ = await reads.read(NO_DATABASE, "job", second.position, tick=2)
        return [first.position, second.position, third.position, fourth.position]

    assert anyio.run(two_ticks) == [20, 20, 30, 30]
    assert fake_job.seen == [(5, None), (9, 20), (20, None)]  # tick 2: one read for both


def test_several_streams_of_a_running_job_get_it_all_from_shared_reads(
    client: TestClient,
    fast_stream: stream.Timing,
    worker_thread: threading.Thread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = toy_spec(
        optimizer={"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 20_000}
    )
    job_id = client.post("/jobs", json=spec).json()["id"]
    reads: list[int] = []
    original = stream.read_batch

    def counting(*args: Any) -> Batch:
        reads.append(args[2])
        return original(*args)

    monkeypatch.setattr(stream, "read_batch", counting)
    streams = 4
    opened = threading.Barrier(streams + 1)
    received: list[list[Event]] = [[] for _ in range(streams)]

    def follow(index: int) -> None:
        with client.stream("GET", f"/jobs/{job_id}/events", timeout=60) as response:
            for item in parse(response.iter_lines()):
                if isinstance(item, Event):
                    received[index].append(item)
                    if len(received[index]) == 1:
                        opened.wait(timeout=30)

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    opened.wait(timeout=30)
    worker_thread.start()
    for thread in threads:
        thread.join(timeout=60)

    for events in received:
        assert events[-1].event == "end"
        assert [p["step"] for p in delivered(events)["loss"]] == list(range(20_000))
    loss_batches = max(sum(e.event == "loss" for e in events) for events in received)
    assert loss_batches >= 3, "the job finished before the streams could share anything"
    # Unshared, every stream would read once per tick: about `streams` times as many reads.
    assert len(reads) < 2 * (loss_batches + 10)

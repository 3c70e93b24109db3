"""DescentClient against the ASGI app: every method, typed results, problem+json errors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from service.client import DescentClient, DescentError, Job, _base
from service.jobs.spec import JobSpec
from service.sweeps.schemas import SweepOut, SweepRequest
from tests.client.conftest import toy_spec
from tests.sweeps.conftest import sweep_request


def test_submit_get_and_list_return_typed_jobs(client: DescentClient) -> None:
    first = client.submit(toy_spec(name="a"))
    second = client.submit(JobSpec.model_validate(toy_spec(name="b")))

    assert isinstance(first, Job)
    assert first.status == "queued"
    assert first.spec["optimizer"]["gradient"] == "analytic"  # defaults echoed
    assert second.name == "b"
    assert client.get(first.id) == first
    assert [job.id for job in client.list()] == [second.id, first.id]


def test_list_follows_cursor_pages_up_to_the_limit(client: DescentClient) -> None:
    ids = [client.submit(toy_spec(name=f"job-{i}")).id for i in range(5)]
    newest_first = ids[::-1]

    assert [job.id for job in client.list(page_size=2)] == newest_first
    assert [job.id for job in client.list(limit=3, page_size=2)] == newest_first[:3]
    assert list(client.list(status="running")) == []
    assert len(list(client.list(status="queued", task="train"))) == 5


def test_an_idempotency_key_replays_the_first_job(client: DescentClient) -> None:
    first = client.submit(toy_spec(), idempotency_key="retry-1")
    again = client.submit(toy_spec(), idempotency_key="retry-1")

    assert again.id == first.id
    with pytest.raises(DescentError) as caught:
        client.submit(toy_spec(name="other"), idempotency_key="retry-1")
    assert caught.value.status == 422


def test_errors_carry_the_problem(client: DescentClient) -> None:
    with pytest.raises(DescentError) as missing:
        client.get("no-such-job")
    assert missing.value.status == 404
    assert missing.value.title == "Not Found"
    assert "no-such-job" in missing.value.detail
    assert missing.value.problem["type"] == "/problems/not-found"

    bad = toy_spec(optimizer={"type": "sgd", "learning_rate": -1})
    with pytest.raises(DescentError) as invalid:
        client.submit(bad)
    error = invalid.value
    assert error.status == 422
    assert error.errors[0]["loc"] == ["body", "optimizer", "sgd", "learning_rate"]
    assert "body.optimizer.sgd.learning_rate: " in str(error)


def test_a_finished_job_history_weights_and_events(
    client: DescentClient, drain: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_base, "PAGE_SIZE", 50)  # make loss() follow several pages
    job = client.submit(toy_spec())
    drain()

    done = client.wait(job.id, timeout=10)
    assert done.status == "succeeded"
    points = client.loss(job.id)
    assert [p.step for p in points] == list(range(120))
    assert points[-1].loss is not None
    assert points[0].loss is not None
    assert points[-1].loss < points[0].loss
    overview = client.loss(job.id, max_points=10)
    assert 2 <= len(overview) <= 10
    assert (overview[0].step, overview[-1].step) == (0, 119)
    accuracy = client.series(job.id, "val_accuracy")
    assert [p.step for p in accuracy][-1] == 119

    W = client.weights(job.id)
    assert W.shape == (3, 3)
    assert W.dtype == np.float32

    events = list(client.events(job.id))
    assert events[0].event == "status"
    assert events[-1].event == "end"
    assert events[-1].job.status == "succeeded"
    streamed = [p.step for e in events if e.event == "loss" for p in e.points]
    assert streamed == list(range(120))
    resumed = list(client.events(job.id, last_event_id="99"))
    assert [p.step for e in resumed if e.event == "loss" for p in e.points] == list(range(100, 120))


def test_result_of_a_task_job(client: DescentClient, drain: Callable[[], int]) -> None:
    job = client.submit({"task": "step_size_sweep", "dataset": {"name": "blobs"}})
    with pytest.raises(DescentError) as early:
        client.result(job.id)
    assert early.value.status == 409
    drain()

    result = client.result(job.id)
    assert set(result) >= {"loss_original", "steps"}


def test_cancel_and_delete(client: DescentClient, drain: Callable[[], int]) -> None:
    queued = client.submit(toy_spec())
    assert client.cancel(queued.id).status == "cancelled"
    with pytest.raises(DescentError) as twice:
        client.cancel(queued.id)
    assert twice.value.status == 409
    with pytest.raises(DescentError) as no_weights:
        client.weights(queued.id)
    assert no_weights.value.status == 409

    client.delete(queued.id)
    with pytest.raises(DescentError) as gone:
        client.get(queued.id)
    assert gone.value.status == 404
    with pytest.raises(DescentError) as no_stream:
        next(iter(client.events(queued.id)))
    assert no_stream.value.status == 404


def test_a_sweep_submitted_waited_for_and_deleted(
    client: DescentClient, drain: Callable[[], int]
) -> None:
    request = SweepRequest.model_validate(sweep_request())
    sweep = client.submit_sweep(request, idempotency_key="sweep-1")
    assert isinstance(sweep, SweepOut)
    assert client.submit_sweep(sweep_request(), idempotency_key="sweep-1").id == sweep.id
    assert len(sweep.jobs) == 4
    with pytest.raises(DescentError) as live:
        client.delete_sweep(sweep.id)
    assert live.value.status == 409
    drain()

    done = client.wait_sweep(sweep.id, timeout=10)
    assert done.status == "succeeded"
    assert done.best is not None
    assert client.get_sweep(sweep.id) == done
    with pytest.raises(DescentError) as finished:
        client.cancel_sweep(sweep.id)
    assert finished.value.status == 409
    client.delete_sweep(sweep.id)
    with pytest.raises(DescentError) as gone:
        client.get_sweep(sweep.id)
    assert gone.value.status == 404
    with pytest.raises(DescentError) as trial_gone:
        client.get(sweep.jobs[0].id)
    assert trial_gone.value.status == 404

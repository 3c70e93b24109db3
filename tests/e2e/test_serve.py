"""`descent serve` as a real process, driven over HTTP like a client and a polling dashboard."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import time

import httpx
import numpy as np
import pytest

from worker.engine.datasets import load_builtin
from worker.engine.metrics import accuracy
from worker.engine.preprocess import Preprocessor

pytestmark = pytest.mark.e2e


def test_a_client_trains_watches_and_checks_a_job_over_http(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=10) as client:
        run_and_check(client)


def run_and_check(client: httpx.Client) -> None:
    spec = {
        "name": "digits-softmax",
        "dataset": {"name": "digits"},
        "model": {"loss": "softmax", "reg": 1e-4},
        "optimizer": {"type": "sgd", "learning_rate": 1e-3, "batch_size": 64, "iterations": 30000},
        "eval_every": 1000,
    }
    created = client.post("/jobs", json=spec)
    assert created.status_code == 202
    job_id = created.json()["id"]
    assert created.headers["location"] == f"/jobs/{job_id}"

    # Poll like a dashboard: the job, the job list, and the loss curve page by page.
    points: list[dict[str, float]] = []
    after = -1
    partial_totals: set[int] = set()
    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        assert client.get("/jobs", params={"limit": 5}).json()["items"][0]["id"] == job_id
        page = client.get(f"/jobs/{job_id}/loss", params={"after": after, "limit": 5000}).json()
        points += page["points"]
        if job["status"] == "running" and 0 < page["total"] < 30000:
            partial_totals.add(page["total"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
        assert time.monotonic() < deadline, "job did not finish in time"
        time.sleep(0.05)

    assert client.get(f"/jobs/{job_id}").json()["status"] == "succeeded"
    assert len(partial_totals) >= 2, "the curve was never seen growing while the job ran"
    assert [p["step"] for p in points] == list(range(30000))
    assert points[-1]["loss"] < points[0]["loss"]

    job = client.get(f"/jobs/{job_id}").json()
    response = client.get(f"/jobs/{job_id}/weights", params={"format": "npy"})
    W = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert W.shape == (10, 65)

    # The accuracy the service reports equals predictions made here with the downloaded W.
    digits = load_builtin("digits")
    pre = Preprocessor.fit(digits.X_train, center=True, standardize=False, bias=True)
    local_test = accuracy(W, pre.transform(digits.X_test, np.float32), digits.y_test)
    local_val = accuracy(W, pre.transform(digits.X_val, np.float32), digits.y_val)
    assert job["metrics"]["test_accuracy"] == pytest.approx(local_test, abs=1e-12)
    assert job["metrics"]["val_accuracy"] == pytest.approx(local_val, abs=1e-12)
    assert local_test > 0.85


def test_serve_shuts_down_cleanly_with_its_workers_on_sigterm(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    _, process = server

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=30) == 0


def test_a_request_line_too_long_for_the_server_is_a_400_and_the_api_goes_on(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = server
    url = httpx.URL(base)
    with socket.create_connection((url.host, url.port or 80), timeout=10) as sock:
        sock.sendall(b"GET /jobs?cursor=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after answering
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert httpx.get(f"{base}/healthz").status_code == 200

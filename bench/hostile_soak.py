"""Hostile soak: malformed and hostile HTTP traffic against a training server whose workers are
killed at random; then count every 5xx, hang, wrong status, lost job and wrong success.

    python -m bench.hostile_soak [--minutes 3] [--database-url postgresql+psycopg://...]

Starts `descent serve --workers 2` (real processes) on a fresh data directory and database (a
temporary SQLite file, or the empty PostgreSQL database named by `--database-url`), waits until
both workers have readied their compiled kernels, then for `--minutes`:

- a submitter keeps a short queue of real training jobs (bench.chaos's toy specs, some much
  longer, varied seeds), so both workers are always training;
- hostile clients replay the rows of tests.fuzz.test_malformed.TABLE in random order (`{job}` a
  real job) plus HEAD requests, integers past 64 bits, NUL bytes in paths (percent-encoded, and
  raw in the request line), wrong content types, and cancels and deletes of random jobs; each
  request has a client timeout, and running into it counts as a hang;
- a slow client sends headers and part of a body, then stalls (the server must answer 408 after
  DESCENT_REQUEST_BODY_TIMEOUT_SECONDS), and an event-stream client connects and never reads;
- every 10-20 s one worker process of the server gets SIGKILL: /readyz must turn 503, then 200
  again once the server has started a replacement (the time until then is recorded);
- /healthz is polled every 50 ms on its own connection and its latency recorded.

Then submission stops, every job is waited for, and each is checked: it ended, and a succeeded
train job has finite metrics, finite weights and exactly the loss points its spec logs.

The server runs with the table's own body limits (its oversized rows are sized against them) and
short leases, so a killed worker's job is taken again within seconds. The default run writes
docs/benchmarks/hostile_soak.md; with `--database-url` it writes that report's "postgresql"
section and leaves the SQLite run's figures as they are. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    children,
    expected_loss_steps,
    output_to,
    random_job_spec,
    serve,
    table,
    write_report,
)
from service.processes import MAX_RESTART_DELAY
from service.settings import Settings
from tests.fuzz.test_malformed import JSON, JSON_LIMIT, LIMIT, OK, TABLE

WORKERS = 2
BODY_TIMEOUT_SECONDS = 2.0
CLIENT_TIMEOUT_SECONDS = 10.0  # no answer within this is a hang
HEALTHZ_EVERY_SECONDS = 0.05
HEALTHZ_P99_MS = 100.0
KILL_EVERY_SECONDS = (10.0, 20.0)
READY_AGAIN_SECONDS = MAX_RESTART_DELAY + 15.0  # the supervisor's longest back-off, and slack
DRAIN_SECONDS = 300.0
HOSTILE_CLIENTS = 3
QUEUED_JOBS = 2  # the submitter keeps this many jobs waiting behind the running ones
LOCK = "flock /tmp/descent-bench.lock"
FINAL = ("succeeded", "failed", "cancelled")
ENV = {
    # The table's oversized rows are sized against these limits (and cheap at them).
    "DESCENT_MAX_UPLOAD_BYTES": str(LIMIT),
    "DESCENT_MAX_JSON_BYTES": str(JSON_LIMIT),
    "DESCENT_REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
    # A killed worker's job is taken again when its lease lapses: short leases keep jobs moving.
    "DESCENT_LEASE_SECONDS": "5",
    "DESCENT_HEARTBEAT_SECONDS": "0.5",
    "DESCENT_CHECKPOINT_SECONDS": "0.5",
    "DESCENT_LOG_LEVEL": "WARNING",
}
Expected = frozenset[int]
BIG = str(2**70)

# Hostile requests beyond the table: (class, name, method, path, expected statuses, headers,
# body). `{job}` is a job that the soak never deletes.
EXTRA: list[tuple[str, str, str, str, Expected, dict[str, str], bytes | None]] = [
    ("HEAD", "HEAD /jobs", "HEAD", "/jobs", frozenset({200}), {}, None),
    ("HEAD", "HEAD a job", "HEAD", "/jobs/{job}", frozenset({200}), {}, None),
    ("HEAD", "HEAD a loss page", "HEAD", "/jobs/{job}/loss?after=-1", frozenset({200}), {}, None),
    ("HEAD", "HEAD a series", "HEAD", "/jobs/{job}/metrics/val_accuracy", frozenset({200}), {},
     None),
    # 409 until the job's first checkpoint
    ("HEAD", "HEAD weights as npy", "HEAD", "/jobs/{job}/weights?format=npy",
     frozenset({200, 409}), {}, None),
    ("HEAD", "HEAD an event stream", "HEAD", "/jobs/{job}/events", frozenset({200}), {}, None),
    ("HEAD", "HEAD /datasets/blobs", "HEAD", "/datasets/blobs", frozenset({200}), {}, None),
    ("HEAD", "HEAD /sweeps", "HEAD", "/sweeps", frozenset({200}), {}, None),
    ("HEAD", "HEAD /metrics", "HEAD", "/metrics", frozenset({200}), {}, None),
    ("HEAD", "HEAD /openapi.json", "HEAD", "/openapi.json", frozenset({200}), {}, None),
    ("HEAD", "HEAD the dashboard", "HEAD", "/", frozenset({200}), {}, None),
    ("HEAD", "HEAD an unknown job", "HEAD", "/jobs/nope", frozenset({404}), {}, None),
    ("HEAD", "HEAD a POST route", "HEAD", "/jobs/{job}/cancel", frozenset({405}), {}, None),
    ("huge integer", "after=2**70", "GET", "/jobs/{job}/loss?after=" + BIG, frozenset({422}), {},
     None),
    ("huge integer", "after=-2**70", "GET", "/jobs/{job}/loss?after=-" + BIG, frozenset({422}),
     {}, None),
    ("huge integer", "loss limit=2**70", "GET", "/jobs/{job}/loss?limit=" + BIG,
     frozenset({422}), {}, None),
    ("huge integer", "max_points=2**70", "GET", "/jobs/{job}/loss?max_points=" + BIG,
     frozenset({422}), {}, None),
    ("huge integer", "start=2**70", "GET", "/jobs/{job}/loss?max_points=5&start=" + BIG,
     frozenset({422}), {}, None),
    ("huge integer", "series after=2**70", "GET", "/jobs/{job}/metrics/val_accuracy?after=" + BIG,
     frozenset({422}), {}, None),
    ("huge integer", "jobs limit=2**70", "GET", "/jobs?limit=" + BIG, frozenset({422}), {}, None),
    ("huge integer", "Last-Event-ID 2**70", "GET", "/jobs/{job}/events", frozenset({422}),
     {"last-event-id": BIG}, None),
    ("huge integer", "seed 2**70", "POST", "/jobs", frozenset({422}), JSON,
     json.dumps({**OK, "seed": 2**70}).encode()),
    ("huge integer", "iterations 2**70", "POST", "/jobs", frozenset({422}), JSON,
     json.dumps({**OK, "optimizer": {**OK["optimizer"], "iterations": 2**70}}).encode()),
    ("huge integer", "job id 2**70", "GET", "/jobs/" + BIG, frozenset({404}), {}, None),
    ("NUL in path", "job id NUL", "GET", "/jobs/%00", frozenset({422}), {}, None),
    ("NUL in path", "job id then NUL", "GET", "/jobs/{job}%00", frozenset({422}), {}, None),
    ("NUL in path", "series NUL", "GET", "/jobs/{job}/metrics/loss%00", frozenset({422}), {},
     None),
    ("NUL in path", "weights of NUL", "GET", "/jobs/a%00b/weights", frozenset({422}), {}, None),
    ("NUL in path", "delete NUL", "DELETE", "/jobs/a%00b", frozenset({422}), {}, None),
    ("NUL in path", "predict NUL", "POST", "/jobs/a%00b/predict", frozenset({422}), JSON,
     b'{"X": [[1.0, 2.0]]}'),
    ("NUL in path", "delete data set NUL", "DELETE", "/datasets/%00", frozenset({422}), {}, None),
    ("NUL in path", "cancel sweep NUL", "POST", "/sweeps/%00/cancel", frozenset({422}), {}, None),
    ("NUL in path", "status NUL", "GET", "/jobs?status=%00", frozenset({422}), {}, None),
    ("NUL in path", "cursor NUL", "GET", "/jobs?cursor=%00", frozenset({422}), {}, None),
    ("NUL in path", "after NUL", "GET", "/jobs/{job}/loss?after=%00", frozenset({422}), {}, None),
    ("content type", "spec as XML", "POST", "/jobs", frozenset({415}),
     {"content-type": "application/xml"}, json.dumps(OK).encode()),
    ("content type", "spec as application/jsonx", "POST", "/jobs", frozenset({415}),
     {"content-type": "application/jsonx"}, json.dumps(OK).encode()),
    ("content type", "spec as octet-stream", "POST", "/jobs", frozenset({415}),
     {"content-type": "application/octet-stream"}, json.dumps(OK).encode()),
    ("content type", "predict as CSV", "POST", "/jobs/{job}/predict", frozenset({415}),
     {"content-type": "text/csv"}, b"1.0,2.0\n"),
    ("content type", "sweep as form", "POST", "/sweeps", frozenset({415}),
     {"content-type": "application/x-www-form-urlencoded"}, b"method=grid"),
]  # fmt: skip


@dataclass
class Outcome:
    kind: str  # the class of request
    name: str  # which request of its class
    request: str  # method and path as sent
    status: int | None  # None: no answer (a hang, or the connection failed)
    seconds: float
    problem: str | None = None  # why the answer is wrong (None: as expected)
    detail: str = ""  # the start of the answer's body, or the client's error


@dataclass
class Kill:
    at: float  # seconds into the soak
    victim: int
    saw_503: bool
    ready_after: float | None  # seconds from the kill until /readyz answered 200 again
    replacement: int | None


class Soak:
    def __init__(self, base: str, serve_pid: int, seed: int) -> None:
        self.base, self.serve_pid = base, serve_pid
        self.port = int(base.rsplit(":", 1)[1])
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stop = threading.Event()  # the end of the hostile phase
        self.outcomes: list[Outcome] = []
        self.healthz_ms: list[float] = []
        self.kills: list[Kill] = []
        self.crashes: list[str] = []  # exceptions that ended one of this benchmark's threads
        self.specs: dict[str, dict[str, Any]] = {}  # job id -> the spec submitted
        self.order: list[str] = []  # job ids in submission order
        self.deleted: set[str] = set()
        self.cancelled: set[str] = set()  # jobs this soak cancelled (a 202)
        self.started = time.monotonic()

    # Recording ---------------------------------------------------------------------------------

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def call(
        self,
        client: httpx.Client,
        kind: str,
        name: str,
        method: str,
        path: str,
        expected: Expected | None,
        *,
        problem_body: bool = True,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request, recorded; None if it got no answer. `expected` None accepts any 2xx-4xx;
        a 4xx must be a problem (application/problem+json) unless `problem_body` is False."""
        start = time.perf_counter()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # a timeout (a hang) or a broken connection
            verdict = "hang" if isinstance(exc, httpx.TimeoutException) else "connection error"
            elapsed = time.perf_counter() - start
            self.record(Outcome(kind, name, f"{method} {path}", None, elapsed, verdict, repr(exc)))
            return None
        seconds = time.perf_counter() - start
        status = response.status_code
        wrong: str | None = None
        if status >= 500:
            wrong = "5xx"
        elif expected is not None and status not in expected:
            wrong = f"expected {'/'.join(map(str, sorted(expected)))}"
        elif (
            status >= 400
            and problem_body
            and not response.headers.get("content-type", "").startswith("application/problem+json")
        ):
            wrong = "not a problem body"
        detail = response.text[:300] if wrong else ""
        self.record(Outcome(kind, name, f"{method} {path}", status, seconds, wrong, detail))
        return response

    def thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # a bug here must fail the run, not end a thread quietly
                with self.lock:
                    self.crashes.append(f"{name}: {exc!r}")
                raise

        return threading.Thread(target=guarded, name=name, daemon=True)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=CLIENT_TIMEOUT_SECONDS)

    # Jobs --------------------------------------------------------------------------------------

    def submit(self, client: httpx.Client, rng: random.Random) -> None:
        spec = {**random_job_spec(rng), "name": f"soak-{len(self.order)}"}
        if rng.random() < 0.15:  # a long one, likely to lose its worker at least once
            spec["optimizer"]["iterations"] = rng.randrange(100_000, 200_000)
        response = self.call(
            client, "submit", "a training job", "POST", "/jobs", frozenset({202}), json=spec
        )
        if response is not None and response.status_code == 202:
            job_id = str(response.json()["id"])
            with self.lock:
                self.specs[job_id] = spec
                self.order.append(job_id)

    def submitter(self) -> None:
        rng = random.Random(self.rng.random())
        with self.client() as client:
            while not self.stop.wait(0.3):
                page = self.call(
                    client,
                    "submit",
                    "queued jobs",
                    "GET",
                    "/jobs?status=queued&limit=50",
                    frozenset({200}),
                )
                queued = (
                    page.json()["items"] if page is not None and page.status_code == 200 else []
                )
                if page is not None and len(queued) < QUEUED_JOBS:
                    self.submit(client, rng)

    def kept(self, rng: random.Random) -> str:
        """A job the soak never deletes (the odd ones in submission order), for `{job}`."""
        with self.lock:
            return rng.choice(self.order[1::2] or self.order)

    def deletable(self, rng: random.Random) -> str:
        with self.lock:
            return rng.choice(self.order[0::2])

    # Hostile traffic ---------------------------------------------------------------------------

    def hostile(self) -> None:
        rng = random.Random(self.rng.random())
        names = list(TABLE)
        with self.client() as client:
            while not self.stop.wait(rng.uniform(0.0, 0.05)):
                roll = rng.random()
                if roll < 0.6:
                    name = rng.choice(names)
                    bad = TABLE[name]
                    headers = (
                        bad.headers if bad.headers is not None else ({} if bad.files else JSON)
                    )
                    self.call(
                        client,
                        "table",
                        name,
                        bad.method,
                        bad.path.replace("{job}", self.kept(rng)),
                        frozenset({bad.status}),
                        content=bad.body,
                        headers=headers,
                        files=bad.files,
                        data=bad.form,
                    )
                elif roll < 0.96:
                    kind, name, method, path, expected, headers, body = rng.choice(EXTRA)
                    self.call(
                        client,
                        kind,
                        name,
                        method,
                        path.replace("{job}", self.kept(rng)),
                        expected,
                        headers=headers,
                        content=body,
                    )
                elif roll < 0.99:
                    self.raw_nul()
                # Cancels and deletes are rare, or few jobs would be left to check.
                elif roll < 0.994:
                    job_id = rng.choice(self.order)
                    response = self.call(
                        client,
                        "cancel/delete",
                        "cancel",
                        "POST",
                        f"/jobs/{job_id}/cancel",
                        frozenset({202, 409, 404}),
                    )
                    if response is not None and response.status_code == 202:
                        with self.lock:
                            self.cancelled.add(job_id)
                else:
                    self.delete(client, self.deletable(rng))

    def delete(self, client: httpx.Client, job_id: str) -> None:
        with self.lock:  # only this request deletes `job_id`: no other can race it
            gone = job_id in self.deleted
        expected = frozenset({404}) if gone else frozenset({204, 409})
        response = self.call(
            client, "cancel/delete", "delete", "DELETE", f"/jobs/{job_id}", expected
        )
        if response is not None and response.status_code == 204:
            with self.lock:
                self.deleted.add(job_id)

    def raw(self, payload: bytes) -> tuple[int | None, str, float]:
        """Send `payload` on a fresh connection, then read the answer's status
        line: (status or None, error, seconds from sending)."""
        start = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(payload)
                sock.settimeout(BODY_TIMEOUT_SECONDS + CLIENT_TIMEOUT_SECONDS)
                head = b""
                while b"\r\n" not in head:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    head += chunk
        except TimeoutError:
            return None, "hang", time.perf_counter() - start
        except OSError as exc:
            return None, f"connection error: {exc!r}", time.perf_counter() - start
        seconds = time.perf_counter() - start
        parts = head.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return None, f"connection error: no status line in {head[:80]!r}", seconds
        return int(parts[1]), "", seconds

    def raw_outcome(
        self,
        kind: str,
        name: str,
        request: str,
        expected: Expected,
        answer: tuple[int | None, str, float],
    ) -> None:
        status, error, seconds = answer
        wrong = error or None
        if status is not None and status >= 500:
            wrong = "5xx"
        elif status is not None and status not in expected:
            wrong = f"expected {'/'.join(map(str, sorted(expected)))}"
        self.record(Outcome(kind, name, request, status, seconds, wrong, error))

    def raw_nul(self) -> None:
        # A raw NUL in the request line never reaches the app: the HTTP parser refuses it.
        request = b"GET /jobs/a\x00b HTTP/1.1\r\nHost: soak\r\n\r\n"
        self.raw_outcome(
            "NUL in path",
            "raw NUL in the request line",
            "GET /jobs/a\\x00b",
            frozenset({400}),
            self.raw(request),
        )

    def slow_bodies(self) -> None:
        """Requests whose body stops arriving: each must get its 408 within the client timeout."""
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            job_id = self.kept(rng)
            boundary = "soakboundary"
            variants = [
                ("spec, part sent", "POST", "/jobs", "application/json", b'{"dataset": {"na', 1000),
                ("spec, headers only", "POST", "/jobs", "application/json", b"", 200),
                (
                    "predict, part sent",
                    "POST",
                    f"/jobs/{job_id}/predict",
                    "application/json",
                    b'{"X": [[1.0, ',
                    5000,
                ),
                ("sweep, part sent", "POST", "/sweeps", "application/json", b'{"base": ', 800),
                (
                    "upload, part sent",
                    "POST",
                    "/datasets",
                    f"multipart/form-data; boundary={boundary}",
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="x.csv"\r\n\r\na,label\n1,0\n'.encode(),
                    30_000,
                ),
            ]
            name, method, path, content_type, part, length = rng.choice(variants)
            chunked = rng.random() < 0.3
            framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: {content_type}\r\n"
                f"{framing}\r\n\r\n"
            ).encode()
            body = (b"%x\r\n%s\r\n" % (len(part), part)) if chunked and part else part
            label = f"{name}{', chunked' if chunked else ''}"
            self.raw_outcome(
                "slow body", label, f"{method} {path}", frozenset({408}), self.raw(head + body)
            )

    def stalled_streams(self) -> None:
        """Event streams that are never read while they hold the connection."""
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            job_id = self.kept(rng)
            request = (
                f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: soak\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
            start = time.perf_counter()
            try:
                with socket.socket() as sock:
                    # A small receive buffer, so that the server's sends back up sooner.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    sock.settimeout(5)
                    sock.connect(("127.0.0.1", self.port))
                    sock.sendall(request)
                    self.stop.wait(rng.uniform(5, 15))
                    head = sock.recv(64)  # the status line only, long after it was sent
                parts = head.split(b" ", 2)
                status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                error = "" if status is not None else f"no status line in {head!r}"
            except OSError as exc:
                status, error = None, f"connection error: {exc!r}"
            self.raw_outcome(
                "stalled stream",
                "events never read",
                f"GET /jobs/{job_id}/events",
                frozenset({200}),
                (status, error, time.perf_counter() - start),
            )

    # Health, readiness and kills ---------------------------------------------------------------

    def healthz(self) -> None:
        with self.client() as client:
            while not self.stop.wait(HEALTHZ_EVERY_SECONDS):
                start = time.perf_counter()
                try:
                    status: int | None = client.get("/healthz").status_code
                    error = ""
                except httpx.TimeoutException as exc:
                    status, error = None, f"hang: {exc!r}"
                except httpx.TransportError as exc:
                    status, error = None, f"connection error: {exc!r}"
                seconds = time.perf_counter() - start
                with self.lock:
                    self.healthz_ms.append(seconds * 1000)
                if status != 200:
                    wrong = (
                        "5xx"
                        if status is not None and status >= 500
                        else (error.split(":")[0] if status is None else "expected 200")
                    )
                    self.record(
                        Outcome(
                            "healthz", "GET /healthz", "GET /healthz", status, seconds, wrong, error
                        )
                    )

    def worker_pids(self) -> list[int]:
        found = []
        for kid in children(self.serve_pid):
            try:
                argv = Path(f"/proc/{kid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[1:3] == [b"-m", b"worker"]:
                found.append(kid)
        return found

    def readyz(self, client: httpx.Client) -> int | None:
        try:
            return client.get("/readyz").status_code
        except httpx.TimeoutException as exc:
            self.record(
                Outcome(
                    "readyz",
                    "GET /readyz",
                    "GET /readyz",
                    None,
                    CLIENT_TIMEOUT_SECONDS,
                    "hang",
                    repr(exc),
                )
            )
        except httpx.TransportError as exc:
            self.record(
                Outcome(
                    "readyz", "GET /readyz", "GET /readyz", None, 0.0, "connection error", repr(exc)
                )
            )
        return None

    def wait_ready(self, client: httpx.Client, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.readyz(client) == 200 and len(self.worker_pids()) == WORKERS:
                return True
            time.sleep(0.05)
        return False

    def killer(self) -> None:
        rng = random.Random(self.rng.random())
        with self.client() as client:
            while not self.stop.wait(rng.uniform(*KILL_EVERY_SECONDS)):
                # Kill only a full fleet: each kill's time to ready again is its own.
                if not self.wait_ready(client, READY_AGAIN_SECONDS):
                    continue
                before = self.worker_pids()
                victim = rng.choice(before)
                os.kill(victim, signal.SIGKILL)
                killed = time.monotonic()
                saw_503, ready_after = False, None
                while time.monotonic() - killed < READY_AGAIN_SECONDS:
                    status = self.readyz(client)
                    if status == 503:
                        saw_503 = True
                    elif status == 200 and saw_503:
                        ready_after = time.monotonic() - killed
                        break
                    elif status is not None and status != 200:
                        self.record(
                            Outcome(
                                "readyz",
                                "GET /readyz",
                                "GET /readyz",
                                status,
                                0.0,
                                "expected 200/503",
                            )
                        )
                    time.sleep(0.05)
                new = sorted(set(self.worker_pids()) - set(before))
                kill = Kill(
                    killed - self.started, victim, saw_503, ready_after, new[0] if new else None
                )
                with self.lock:
                    self.kills.append(kill)

    # The run -----------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Submit jobs until every worker runs one: a worker readies its compiled kernels before
        it claims a job (a restarted one loads them from the disk cache), so the soak starts
        with a full fleet."""
        deadline = time.monotonic() + 600
        with self.client() as client:
            while True:
                running = client.get("/jobs?status=running&limit=50").json()["items"]
                if len(running) >= WORKERS:
                    return
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start a job within 600 s")
                if not client.get("/jobs?status=queued&limit=50").json()["items"]:
                    self.submit(client, self.rng)
                time.sleep(0.5)

    def run(self, minutes: float) -> None:
        self.started = time.monotonic()
        threads = [
            self.thread(self.submitter, "submitter"),
            self.thread(self.healthz, "healthz"),
            self.thread(self.killer, "killer"),
            self.thread(self.slow_bodies, "slow-bodies"),
            self.thread(self.stalled_streams, "stalled-streams"),
            *(self.thread(self.hostile, f"hostile-{i}") for i in range(HOSTILE_CLIENTS)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(minutes * 60)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=READY_AGAIN_SECONDS + 2 * CLIENT_TIMEOUT_SECONDS)
            if thread.is_alive():
                self.crashes.append(f"{thread.name} did not stop")

    def drain(self) -> tuple[dict[str, dict[str, Any]], float]:
        """Every job the soak submitted and did not delete, once all have ended or the wait is
        over (job id -> its Job, or {} if it is gone); and the seconds waited."""
        start = time.monotonic()
        jobs: dict[str, dict[str, Any]] = {}
        with self.client() as client:
            while True:
                for job_id in self.order:
                    if job_id in self.deleted or jobs.get(job_id, {}).get("status") in FINAL:
                        continue
                    response = self.call(
                        client, "check", "a job", "GET", f"/jobs/{job_id}", frozenset({200})
                    )
                    if response is not None:
                        jobs[job_id] = response.json() if response.status_code == 200 else {}
                live = [j for j in jobs.values() if j.get("status") not in (*FINAL, None)]
                if not live or time.monotonic() - start > DRAIN_SECONDS:
                    return jobs, time.monotonic() - start
                time.sleep(1.0)

    def wrong_success(self, client: httpx.Client, job: dict[str, Any]) -> str | None:
        """Why a succeeded train job's results are wrong, or None."""
        metrics = job.get("metrics") or {}
        for key in ("loss", "train_accuracy", "val_accuracy", "test_accuracy"):
            value = metrics.get(key)
            if not isinstance(value, int | float) or not math.isfinite(value):
                return f"metric {key} = {value!r}"
        weights = self.call(
            client, "check", "weights", "GET", f"/jobs/{job['id']}/weights", frozenset({200})
        )
        if weights is None or weights.status_code != 200:
            return "no weights"
        values = [v for row in weights.json()["data"] for v in row]
        if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            return "weights not finite"
        steps: list[int] = []
        after = -1
        while after is not None:
            page = self.call(
                client,
                "check",
                "loss page",
                "GET",
                f"/jobs/{job['id']}/loss?after={after}&limit=10000",
                frozenset({200}),
            )
            if page is None or page.status_code != 200:
                return "loss history unreadable"
            found = page.json()
            for point in found["points"]:
                if not math.isfinite(point["loss"]):
                    return f"loss {point['loss']!r} at step {point['step']}"
                steps.append(point["step"])
            after = found["next_after"]
        if steps != expected_loss_steps(self.specs[job["id"]]):
            return f"{len(steps)} loss points, not the spec's steps"
        return None


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def statuses(outcomes: list[Outcome]) -> str:
    counted = Counter("none" if o.status is None else str(o.status) for o in outcomes)
    return ", ".join(f"{status} ×{n}" for status, n in sorted(counted.items()))


def report(
    soak: Soak, jobs: dict[str, dict[str, Any]], drained: float, minutes: float, database: str
) -> tuple[str, bool]:
    """The report's body, and whether every target was met."""
    outcomes = soak.outcomes
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.kind].append(outcome)
    kinds = [
        "table",
        "HEAD",
        "huge integer",
        "NUL in path",
        "content type",
        "slow body",
        "stalled stream",
        "cancel/delete",
        "submit",
        "healthz",
        "readyz",
        "check",
    ]
    rows = []
    for kind in [k for k in kinds if k in by_kind] + sorted(set(by_kind) - set(kinds)):
        group = by_kind[kind]
        count = len(soak.healthz_ms) if kind == "healthz" else len(group)
        shown = f"200 ×{count - len(group)}, " if kind == "healthz" else ""
        rows.append(
            [
                kind,
                count,
                shown + statuses(group),
                sum(o.problem is not None and o.problem not in ("5xx", "hang") for o in group),
                sum(o.problem == "5xx" for o in group),
                sum(o.problem == "hang" for o in group),
            ]
        )
    fives = [o for o in outcomes if o.problem == "5xx"]
    hangs = [o for o in outcomes if o.problem == "hang"]
    wrong = [o for o in outcomes if o.problem not in (None, "5xx", "hang")]
    histogram = Counter(o.status for o in outcomes if o.kind not in ("healthz", "readyz"))

    max_losses = Settings.model_fields["max_worker_losses"].default
    final = Counter(job.get("status", "gone") for job in jobs.values())
    lost: list[str] = []
    failures: Counter[str] = Counter()
    wrong_successes: list[str] = []
    verified = resumed = 0
    with soak.client() as client:
        for job_id, job in jobs.items():
            status = job.get("status", "gone")
            resumed += job.get("attempts", 0) > 1
            if status not in FINAL:
                lost.append(f"{job_id}: {status}")
            elif status == "cancelled" and job_id not in soak.cancelled:
                lost.append(f"{job_id}: cancelled, not by the soak")
            elif status == "failed":
                error = job.get("error") or {}
                kind = str(error.get("type"))
                failures[kind] += 1
                explained = kind == "worker_lost" and job.get("attempts", 0) >= max_losses
                if kind in ("internal_error", "worker_lost") and not explained:
                    lost.append(
                        f"{job_id}: failed {kind} after {job.get('attempts')} attempts: "
                        f"{error.get('message')}"
                    )
            elif status == "succeeded" and job.get("task") == "train":
                why = soak.wrong_success(client, job)
                verified += 1
                if why is not None:
                    wrong_successes.append(f"{job_id}: {why}")
    ms = soak.healthz_ms
    p50, p99, worst = (statistics.median(ms), percentile(ms, 0.99), max(ms)) if ms else (0, 0, 0)
    bad_kills = [
        k for k in soak.kills if not k.saw_503 or k.ready_after is None or k.replacement is None
    ]

    targets = [
        ("no 5xx answer", not fives, f"{len(fives)} 5xx answers"),
        ("no hang (no answer within the client timeout)", not hangs, f"{len(hangs)} hangs"),
        (
            "every hostile request gets its expected status",
            not wrong,
            f"{len(wrong)} wrong answers",
        ),
        ("no job lost", not lost, f"{len(lost)} lost of {len(soak.order)} submitted"),
        (
            "no wrong success",
            not wrong_successes,
            f"{len(wrong_successes)} of {verified} succeeded train jobs",
        ),
        (
            f"/healthz p99 < {HEALTHZ_P99_MS:.0f} ms",
            bool(ms) and p99 < HEALTHZ_P99_MS,
            f"p99 {p99:.1f} ms",
        ),
        (
            "every killed worker restarted (/readyz 503, then 200)",
            bool(soak.kills) and not bad_kills,
            f"{len(soak.kills) - len(bad_kills)} of {len(soak.kills)} kills",
        ),
        ("the benchmark itself ran cleanly", not soak.crashes, "; ".join(soak.crashes) or "yes"),
    ]
    ok = all(met for _, met, _ in targets)

    ready = [k.ready_after for k in soak.kills if k.ready_after is not None]
    parts = [
        f"{minutes:g} minutes on {database}: `descent serve --workers {WORKERS}` with "
        f"DESCENT_MAX_UPLOAD_BYTES={LIMIT}, DESCENT_MAX_JSON_BYTES={JSON_LIMIT} (the malformed "
        f"table's limits), DESCENT_REQUEST_BODY_TIMEOUT_SECONDS={BODY_TIMEOUT_SECONDS:g}, "
        f"leases of {ENV['DESCENT_LEASE_SECONDS']} s; {HOSTILE_CLIENTS} hostile clients, one "
        f"slow-body client, one event-stream client that never reads, a SIGKILL to a worker "
        f"every {KILL_EVERY_SECONDS[0]:g}-{KILL_EVERY_SECONDS[1]:g} s (once both run), "
        f"/healthz every {HEALTHZ_EVERY_SECONDS * 1000:.0f} ms. A request unanswered after "
        f"{CLIENT_TIMEOUT_SECONDS:g} s is a hang.",
        "## Targets",
        "\n".join(
            f"- {'**met**' if met else '**MISSED**'}: {name} ({figure})"
            for name, met, figure in targets
        ),
        "## Requests by class",
        "`table` replays the rows of tests/fuzz/test_malformed.py; `check` is the final "
        'verification\'s reads. "wrong" counts answers other than the expected status (or a '
        "4xx without a problem body, or a connection error).",
        table(["class", "requests", "statuses", "wrong", "5xx", "hangs"], rows),
        "Status codes over all requests but /healthz and /readyz: "
        + ", ".join(
            f"{'none' if s is None else s} ×{n}"
            for s, n in sorted(histogram.items(), key=lambda kv: kv[0] or 0)
        )
        + ".",
        "## Worker kills",
        f"{len(soak.kills)} SIGKILLs. The server starts a dead worker again after a delay that "
        "doubles with each quick death of the same slot (service/processes.py), so later kills "
        "wait longer for their replacement."
        + (
            f" Ready again after: median {statistics.median(ready):.2f} s, max {max(ready):.2f} s."
            if ready
            else ""
        ),
        table(
            [
                "at (s)",
                "worker pid",
                "/readyz 503 seen",
                "ready again after (s)",
                "replacement pid",
            ],
            [
                [
                    f"{k.at:.1f}",
                    k.victim,
                    "yes" if k.saw_503 else "NO",
                    "NEVER" if k.ready_after is None else f"{k.ready_after:.2f}",
                    k.replacement or "NONE",
                ]
                for k in soak.kills
            ],
        ),
        "## /healthz",
        f"{len(ms)} polls: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms.",
        "## Jobs",
        f"{len(soak.order)} submitted; {len(soak.deleted)} deleted by the soak once finished, "
        f"{len(soak.cancelled)} cancelled by it; {resumed} taken by more than one worker. Final "
        f"status of the others (after {drained:.0f} s of waiting): "
        + ", ".join(f"{s} {n}" for s, n in sorted(final.items()))
        + (
            ". Failures by error type: "
            + ", ".join(f"{t} {n}" for t, n in sorted(failures.items()))
            if failures
            else ""
        )
        + f". {verified} succeeded train jobs verified (finite metrics and weights, every "
        "logged loss step once and finite).",
    ]
    listed = [("5xx answers", fives), ("Hangs", hangs), ("Wrong answers", wrong)]
    for title, found in listed:
        if found:
            parts += [
                f"## {title}",
                "\n".join(
                    f"- `{o.request}` ({o.kind}: {o.name}): {o.status} {o.problem} {o.detail!r}"
                    for o in found[:50]
                ),
            ]
    for title, items in (("Lost jobs", lost), ("Wrong successes", wrong_successes)):
        if items:
            parts += [f"## {title}", "\n".join(f"- {item}" for item in items[:50])]
    return "\n\n".join(parts), ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv if argv is not None else [])
    home = Path(tempfile.mkdtemp(prefix="descent-soak-"))
    env = dict(ENV)
    if args.database_url:
        env["DESCENT_DATABASE_URL"] = args.database_url
    database = "PostgreSQL" if args.database_url else "SQLite"
    log = home / "serve.log"
    print(f"hostile soak: {args.minutes:g} min on {database}; server log {log}", flush=True)
    with output_to(log), serve(home, env, workers=WORKERS) as (base, pid):
        soak = Soak(base, pid, args.seed)
        soak.warm_up()
        soak.run(args.minutes)
        jobs, drained = soak.drain()
        body, ok = report(soak, jobs, drained, args.minutes, database)
    tracebacks = log.read_text(errors="replace").count("Traceback")
    body += f"\n\nThe server's log (its workers' too) holds {tracebacks} tracebacks."
    print(f"server log: {log}", flush=True)
    command = f"{LOCK} .venv/bin/python -m bench.hostile_soak --minutes {args.minutes:g}"
    if args.database_url:
        command += " --database-url postgresql+psycopg://USER@HOST/EMPTY_DB"
    variant = None if database == "SQLite" else "postgresql"
    write_report(
        "hostile_soak",
        f"Hostile soak: malformed traffic while workers die ({database})",
        command,
        body,
        variant=variant,
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])

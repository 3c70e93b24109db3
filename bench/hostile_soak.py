"""Hostile soak: malformed and hostile requests against `descent serve --workers 2` while one of
its workers is killed every 10-20 s; then every 5xx, hang, wrong status, lost job and wrong
success is counted.

The requests: tests.fuzz.test_malformed.TABLE and EXTRA below (`{job}`: a job the soak never
deletes), raw NUL bytes, stalled bodies, unread event streams, rare cancels and deletes, and a
submitter that keeps both workers training. `--database-url` writes the report's "postgresql"
section. Exits 1 if a target is missed. (Over 500 lines: the request catalogue, its senders and
the checks of every answer and job are one benchmark.)
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import signal
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import common
from bench.common import FINAL, table
from service.processes import MAX_RESTART_DELAY
from service.settings import Settings
from tests.fuzz.test_malformed import JSON, JSON_LIMIT, LIMIT, TABLE, optimizer, spec

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
QUEUED = "/jobs?status=queued&limit=50"
ENV = {
    # The table's oversized rows are sized against these limits (and cheap at them).
    "DESCENT_MAX_UPLOAD_BYTES": str(LIMIT),
    "DESCENT_MAX_JSON_BYTES": str(JSON_LIMIT),
    "DESCENT_REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
    # A killed worker's job is taken again when its lease lapses: short leases keep jobs moving.
    "DESCENT_LEASE_SECONDS": "5",
    "DESCENT_HEARTBEAT_SECONDS": "0.5",
    "DESCENT_CHECKPOINT_SECONDS": "0.5",
}
Expected = Collection[int]
Extra = tuple[str, str, str, Expected, dict[str, str], bytes | None]
BIG = str(2**70)
KINDS = ["table", "HEAD", "huge integer", "NUL in path", "content type", "slow body",
         "stalled stream", "cancel/delete", "submit", "healthz", "readyz", "check"]  # fmt: skip


def extra(
    kind: str, request: str, *statuses: int, headers: dict[str, str] | None = None,
    body: bytes | None = None, name: str | None = None,
) -> Extra:  # fmt: skip
    """A hostile request beyond the table: (class, name, request, statuses, headers, body)."""
    return kind, name or request, request, statuses, headers or {}, body


EXTRA: list[Extra] = [
    *(extra("HEAD", f"HEAD {path}", 200) for path in (
        "/jobs", "/jobs/{job}", "/jobs/{job}/loss?after=-1", "/jobs/{job}/metrics/val_accuracy",
        "/jobs/{job}/events", "/datasets/blobs", "/sweeps", "/metrics", "/openapi.json", "/")),
    extra("HEAD", "HEAD /jobs/{job}/weights?format=npy", 200, 409),  # 409 before a checkpoint
    extra("HEAD", "HEAD /jobs/nope", 404),
    extra("HEAD", "HEAD /jobs/{job}/cancel", 405),
    *(extra("huge integer", f"GET {path}{BIG}", 422) for path in (
        "/jobs/{job}/loss?after=", "/jobs/{job}/loss?after=-", "/jobs/{job}/loss?limit=",
        "/jobs/{job}/loss?max_points=", "/jobs/{job}/loss?max_points=5&start=",
        "/jobs/{job}/metrics/val_accuracy?after=", "/jobs?limit=")),
    extra("huge integer", "GET /jobs/{job}/events", 422, headers={"last-event-id": BIG},
          name="Last-Event-ID 2**70"),
    extra("huge integer", "POST /jobs", 422, headers=JSON, body=spec(seed=2**70),
          name="seed 2**70"),
    extra("huge integer", "POST /jobs", 422, headers=JSON, body=optimizer(iterations=2**70),
          name="iterations 2**70"),
    extra("huge integer", f"GET /jobs/{BIG}", 404),
    *(extra("NUL in path", request, 422) for request in (
        "GET /jobs/%00", "GET /jobs/{job}%00", "GET /jobs/{job}/metrics/loss%00",
        "GET /jobs/a%00b/weights", "DELETE /jobs/a%00b", "DELETE /datasets/%00",
        "POST /sweeps/%00/cancel", "GET /jobs?status=%00", "GET /jobs?cursor=%00",
        "GET /jobs/{job}/loss?after=%00")),
    extra("NUL in path", "POST /jobs/a%00b/predict", 422, headers=JSON,
          body=b'{"X": [[1.0, 2.0]]}'),
    *(extra("content type", "POST /jobs", 415, headers={"content-type": kind}, body=spec(),
            name=f"spec as {kind}")
      for kind in ("application/xml", "application/jsonx", "application/octet-stream")),
    extra("content type", "POST /jobs/{job}/predict", 415, headers={"content-type": "text/csv"},
          body=b"1.0,2.0\n"),
    extra("content type", "POST /sweeps", 415, body=b"method=grid",
          headers={"content-type": "application/x-www-form-urlencoded"}),
]  # fmt: skip


def judge(status: int | None, expected: Expected, error: str = "") -> str | None:
    """Why an answer is wrong (a 5xx, a hang, another status), or None."""
    if status is None:
        return error.split(":", 1)[0] or "connection error"  # "hang" or "connection error"
    if status in expected:  # a 503 from /readyz while a worker restarts
        return None
    return "5xx" if status >= 500 else f"expected {'/'.join(map(str, sorted(expected)))}"


@dataclass
class Outcome:
    kind: str  # the class of request
    name: str  # which request of its class
    request: str  # method and path as sent
    status: int | None  # None: no answer (a hang, or the connection failed)
    problem: str | None  # why the answer is wrong (None: as expected)
    detail: str  # the start of the answer's body, or the client's error


@dataclass
class Kill:
    at: float  # seconds into the soak
    victim: int
    saw_503: bool
    ready_after: float | None  # seconds from the kill until /readyz answered 200 again
    replacement: int | None


class Soak:
    def __init__(self, base: httpx.URL, serve_pid: int) -> None:
        self.base, self.serve_pid = base, serve_pid
        self.rng = random.Random(0)
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

    def note(self, kind: str, name: str, request: str, status: int | None, expected: Expected,
             error: str = "", problem: str | None = None) -> None:  # fmt: skip
        """Record an answer (`problem` None: judged by its status) and the client's error."""
        outcome = Outcome(kind, name, request, status, problem or judge(status, expected, error),
                          error)  # fmt: skip
        with self.lock:
            self.outcomes.append(outcome)

    def call(
        self, client: httpx.Client, kind: str, name: str, request: str, *expected: int,
        quiet: bool = False, **kw: Any,
    ) -> httpx.Response | None:  # fmt: skip
        """One request ("METHOD path"), recorded (if `quiet`, only when it is wrong); None if it
        got no answer. A 4xx must be a problem (application/problem+json)."""
        try:
            response = client.request(*request.split(" ", 1), **kw)
        except httpx.TransportError as exc:  # a timeout (a hang) or a broken connection
            hang = isinstance(exc, httpx.TimeoutException)
            error = f"{'hang' if hang else 'connection error'}: {exc!r}"
            self.note(kind, name, request, None, expected, error)
            return None
        status = response.status_code
        problem = judge(status, expected)
        content_type = response.headers.get("content-type", "")
        if problem is None and status >= 400 and not content_type.startswith("application/problem"):
            problem = "not a problem body"
        if problem or not quiet:
            self.note(kind, name, request, status, expected, response.text[:300], problem)
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

    def submit(self, client: httpx.Client, rng: random.Random) -> None:
        job = {**common.random_job_spec(rng), "name": f"soak-{len(self.order)}"}
        if rng.random() < 0.15:  # a long one, likely to lose its worker at least once
            job["optimizer"]["iterations"] = rng.randrange(100_000, 200_000)
        response = self.call(client, "submit", "a training job", "POST /jobs", 202, json=job)
        if response is not None and response.status_code == 202:
            job_id = str(response.json()["id"])
            with self.lock:
                self.specs[job_id] = job
                self.order.append(job_id)

    def submitter(self) -> None:
        rng = random.Random(self.rng.random())
        with self.client() as client:
            while not self.stop.wait(0.3):
                page = self.call(client, "submit", "queued jobs", f"GET {QUEUED}", 200)
                if page is not None and (
                    page.status_code != 200 or len(page.json()["items"]) < QUEUED_JOBS
                ):
                    self.submit(client, rng)

    def kept(self, rng: random.Random) -> str:
        """A job the soak never deletes (the odd ones in submission order), for `{job}`."""
        with self.lock:
            return rng.choice(self.order[1::2] or self.order)

    def hostile(self) -> None:
        rng = random.Random(self.rng.random())
        with self.client() as client:
            while not self.stop.wait(rng.uniform(0.0, 0.05)):
                roll = rng.random()
                if roll < 0.6:
                    bad = TABLE[name := rng.choice(list(TABLE))]
                    request = f"{bad.method} {bad.path.replace('{job}', self.kept(rng))}"
                    headers = bad.headers if bad.headers is not None else {} if bad.files else JSON
                    self.call(client, "table", name, request, bad.status, headers=headers,
                              content=bad.body, files=bad.files, data=bad.form)  # fmt: skip
                elif roll < 0.96:
                    kind, name, request, expected, headers, body = rng.choice(EXTRA)
                    request = request.replace("{job}", self.kept(rng))
                    self.call(client, kind, name, request, *expected, headers=headers, content=body)
                elif roll < 0.99:
                    # A raw NUL in the request line never reaches the app: the parser refuses it.
                    payload = b"GET /jobs/a\x00b HTTP/1.1\r\nHost: soak\r\n\r\n"
                    self.raw("NUL in path", "raw NUL in the request line", "GET /jobs/a\\x00b",
                             (400,), payload)  # fmt: skip
                # Cancels and deletes are rare, or few jobs would be left to check.
                elif roll < 0.994:
                    job_id = rng.choice(self.order)
                    request = f"POST /jobs/{job_id}/cancel"
                    response = self.call(client, "cancel/delete", "cancel", request, 202, 409, 404)
                    if response is not None and response.status_code == 202:
                        with self.lock:
                            self.cancelled.add(job_id)
                else:
                    with self.lock:  # only this request deletes `job_id`: no other can race it
                        job_id = rng.choice(self.order[0::2])
                        gone = job_id in self.deleted
                    expected = (404,) if gone else (204, 409)
                    request = f"DELETE /jobs/{job_id}"
                    response = self.call(client, "cancel/delete", "delete", request, *expected)
                    if response is not None and response.status_code == 204:
                        with self.lock:
                            self.deleted.add(job_id)

    def raw(
        self, kind: str, name: str, request: str, expected: Expected, payload: bytes,
        stall: float = 0.0,
    ) -> None:  # fmt: skip
        """Send `payload` on a fresh connection and record the status line of the answer, read
        `stall` seconds later (then on a small receive buffer, so that the server's sends back up
        sooner)."""
        try:
            with socket.socket() as sock:
                if stall:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(5)
                sock.connect((self.base.host, self.base.port))
                sock.sendall(payload)
                self.stop.wait(stall)
                sock.settimeout(BODY_TIMEOUT_SECONDS + CLIENT_TIMEOUT_SECONDS)
                head = b""
                while b"\r\n" not in head and (chunk := sock.recv(4096)):
                    head += chunk
            found = re.match(rb"\S+ (\d+)", head)
            status = int(found[1]) if found else None
            error = "" if found else f"connection error: no status line in {head[:80]!r}"
        except TimeoutError:
            status, error = None, "hang"
        except OSError as exc:
            status, error = None, f"connection error: {exc!r}"
        self.note(kind, name, request, status, expected, error)

    def slow_bodies(self) -> None:
        """Requests whose body stops arriving: each must get its 408 within the client timeout."""
        rng = random.Random(self.rng.random())
        boundary = "soakboundary"
        upload = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                  'filename="x.csv"\r\n\r\na,label\n1,0\n').encode()  # fmt: skip
        while not self.stop.is_set():
            variants = [  # name, path, content type, the part of the body sent, its length
                ("spec, part sent", "/jobs", "application/json", b'{"dataset": {"na', 1000),
                ("spec, headers only", "/jobs", "application/json", b"", 200),
                ("predict, part sent", f"/jobs/{self.kept(rng)}/predict", "application/json",
                 b'{"X": [[1.0, ', 5000),
                ("sweep, part sent", "/sweeps", "application/json", b'{"base": ', 800),
                ("upload, part sent", "/datasets", f"multipart/form-data; boundary={boundary}",
                 upload, 30_000),
            ]  # fmt: skip
            name, path, content_type, part, length = rng.choice(variants)
            chunked = rng.random() < 0.3
            framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
            head = (f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: {content_type}\r\n"
                    f"{framing}\r\n\r\n").encode()  # fmt: skip
            body = (b"%x\r\n%s\r\n" % (len(part), part)) if chunked and part else part
            label = f"{name}{', chunked' if chunked else ''}"
            self.raw("slow body", label, f"POST {path}", (408,), head + body)

    def stalled_streams(self) -> None:
        """Event streams that are never read while they hold the connection."""
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            path = f"/jobs/{self.kept(rng)}/events"
            request = f"GET {path} HTTP/1.1\r\nHost: soak\r\nAccept: text/event-stream\r\n\r\n"
            self.raw("stalled stream", "events never read", f"GET {path}", (200,),
                     request.encode(), stall=rng.uniform(5, 15))  # fmt: skip

    def healthz(self) -> None:
        with self.client() as client:
            while not self.stop.wait(HEALTHZ_EVERY_SECONDS):
                start = time.perf_counter()
                self.call(client, "healthz", "GET /healthz", "GET /healthz", 200, quiet=True)
                with self.lock:
                    self.healthz_ms.append((time.perf_counter() - start) * 1000)

    def worker_pids(self) -> list[int]:
        found = []
        for kid in common.children(self.serve_pid):
            with contextlib.suppress(OSError):  # it ended meanwhile
                if b"\0-m\0worker\0" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    found.append(kid)
        return found

    def readyz(self, client: httpx.Client) -> int | None:
        response = self.call(client, "readyz", "GET /readyz", "GET /readyz", 200, 503, quiet=True)
        return None if response is None else response.status_code

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
                    saw_503 = saw_503 or status == 503
                    if status == 200 and saw_503:
                        ready_after = time.monotonic() - killed
                        break
                    time.sleep(0.05)
                new = sorted(set(self.worker_pids()) - set(before))
                kill = Kill(killed - self.started, victim, saw_503, ready_after,
                            new[0] if new else None)  # fmt: skip
                with self.lock:
                    self.kills.append(kill)

    def warm_up(self) -> None:
        """Submit jobs until every worker runs one (a worker readies its compiled kernels before
        it claims a job), so that the soak starts with a full fleet."""
        deadline = time.monotonic() + 600
        with self.client() as client:
            while len(client.get(QUEUED.replace("queued", "running")).json()["items"]) < WORKERS:
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start a job within 600 s")
                if not client.get(QUEUED).json()["items"]:
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
                    response = self.call(client, "check", "a job", f"GET /jobs/{job_id}", 200)
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
            if not isinstance(value := metrics.get(key), int | float) or not math.isfinite(value):
                return f"metric {key} = {value!r}"
        weights = self.call(client, "check", "weights", f"GET /jobs/{job['id']}/weights", 200)
        if weights is None or weights.status_code != 200:
            return "no weights"
        values = [v for row in weights.json()["data"] for v in row]
        if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            return "weights not finite"
        steps: list[int] = []
        after = -1
        while after is not None:
            request = f"GET /jobs/{job['id']}/loss?after={after}&limit=10000"
            page = self.call(client, "check", "loss page", request, 200)
            if page is None or page.status_code != 200:
                return "loss history unreadable"
            found = page.json()
            for point in found["points"]:
                if not math.isfinite(point["loss"]):
                    return f"loss {point['loss']!r} at step {point['step']}"
                steps.append(point["step"])
            after = found["next_after"]
        if steps != common.expected_loss_steps(self.specs[job["id"]]):
            return f"{len(steps)} loss points, not the spec's steps"
        return None


def counted(statuses: list[int | None]) -> str:
    found = sorted(Counter(statuses).items(), key=lambda item: item[0] or 0)
    return ", ".join(f"{'none' if status is None else status} ×{n}" for status, n in found)


def check_jobs(soak: Soak, jobs: dict[str, dict[str, Any]]) -> tuple[list[str], list[str], int]:
    """The lost jobs, the wrong successes, and how many succeeded train jobs were verified."""
    max_losses = Settings.model_fields["max_worker_losses"].default
    lost, wrong, verified = [], [], 0
    with soak.client() as client:
        for job_id, job in jobs.items():
            status, attempts = job.get("status", "gone"), job.get("attempts", 0)
            error = job.get("error") or {}
            kind = str(error.get("type"))
            if status not in FINAL:
                lost.append(f"{job_id}: {status}")
            elif status == "cancelled" and job_id not in soak.cancelled:
                lost.append(f"{job_id}: cancelled, not by the soak")
            elif status == "failed" and kind in ("internal_error", "worker_lost"):
                if not (kind == "worker_lost" and attempts >= max_losses):  # the give-up policy
                    lost.append(f"{job_id}: failed {kind} after {attempts} attempts: "
                                f"{error.get('message')}")  # fmt: skip
            elif status == "succeeded" and job.get("task") == "train":
                verified += 1
                if (why := soak.wrong_success(client, job)) is not None:
                    wrong.append(f"{job_id}: {why}")
    return lost, wrong, verified


def report(
    soak: Soak, jobs: dict[str, dict[str, Any]], drained: float, minutes: float, database: str
) -> tuple[str, bool]:
    """The report's body, and whether every target was met."""
    rows = []  # before check_jobs, whose reads count only in the overall statuses
    for kind in KINDS:
        if found := [o for o in soak.outcomes if o.kind == kind]:
            problems = [o.problem for o in found]
            rows.append([kind, len(found), counted([o.status for o in found]),
                         sum(p not in (None, "5xx", "hang") for p in problems),
                         problems.count("5xx"), problems.count("hang")])  # fmt: skip
    fives = [o for o in soak.outcomes if o.problem == "5xx"]
    hangs = [o for o in soak.outcomes if o.problem == "hang"]
    wrong = [o for o in soak.outcomes if o.problem not in (None, "5xx", "hang")]
    lost, wrong_successes, verified = check_jobs(soak, jobs)
    ms = soak.healthz_ms
    p50, p99 = np.percentile(ms, [50, 99])
    kills = soak.kills
    restarted = [k for k in kills if k.saw_503 and k.ready_after is not None and k.replacement]
    targets = [
        ("no 5xx answer", not fives, f"{len(fives)} 5xx answers"),
        ("no hang (no answer within the client timeout)", not hangs, f"{len(hangs)} hangs"),
        ("every hostile request gets its expected status", not wrong,
         f"{len(wrong)} wrong answers"),
        ("no job lost", not lost, f"{len(lost)} lost of {len(soak.order)} submitted"),
        ("no wrong success", not wrong_successes,
         f"{len(wrong_successes)} of {verified} succeeded train jobs"),
        (f"/healthz p99 < {HEALTHZ_P99_MS:.0f} ms", p99 < HEALTHZ_P99_MS, f"p99 {p99:.1f} ms"),
        ("every killed worker restarted (/readyz 503, then 200)",
         bool(kills) and len(restarted) == len(kills), f"{len(restarted)} of {len(kills)} kills"),
        ("the benchmark itself ran cleanly", not soak.crashes, "; ".join(soak.crashes) or "yes"),
    ]  # fmt: skip
    ready = [k.ready_after for k in kills if k.ready_after is not None]
    final = Counter(job.get("status", "gone") for job in jobs.values())
    failures = Counter(str((j.get("error") or {}).get("type")) for j in jobs.values()
                       if j.get("status") == "failed")  # fmt: skip
    resumed = sum(job.get("attempts", 0) > 1 for job in jobs.values())
    kill_rows = [[f"{k.at:.1f}", k.victim, "yes" if k.saw_503 else "NO",
                  "NEVER" if k.ready_after is None else f"{k.ready_after:.2f}",
                  k.replacement or "NONE"] for k in kills]  # fmt: skip
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
        "\n".join(f"- {'**met**' if met else '**MISSED**'}: {name} ({figure})"
                  for name, met, figure in targets),
        "## Requests by class",
        '"wrong": another status than expected, a 4xx without a problem body, or a connection '
        "error; `check` is the final verification's reads; /healthz and /readyz only when wrong.",
        table(["class", "requests", "statuses", "wrong", "5xx", "hangs"], rows),
        "Status codes over all requests but /healthz and /readyz: "
        + counted([o.status for o in soak.outcomes if o.kind not in ("healthz", "readyz")]) + ".",
        "## Worker kills",
        f"{len(kills)} SIGKILLs; the supervisor's back-off doubles with each quick death of the "
        "same slot (service/processes.py)."
        + (f" Ready again after: median {statistics.median(ready):.2f} s, max {max(ready):.2f} s."
           if ready else ""),
        table(["at (s)", "worker pid", "/readyz 503 seen", "ready again after (s)",
               "replacement pid"], kill_rows),
        "## /healthz",
        f"{len(ms)} polls: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(ms):.1f} ms.",
        "## Jobs",
        f"{len(soak.order)} submitted; {len(soak.deleted)} deleted by the soak once finished, "
        f"{len(soak.cancelled)} cancelled by it; {resumed} taken by more than one worker. Final "
        f"status of the others (after {drained:.0f} s of waiting): "
        + ", ".join(f"{s} {n}" for s, n in sorted(final.items()))
        + (". Failures by error type: " + ", ".join(f"{t} {n}" for t, n in sorted(failures.items()))
           if failures else "")
        + f". {verified} succeeded train jobs verified (finite metrics and weights, every "
        "logged loss step once and finite).",
    ]  # fmt: skip
    answers = [(title, [f"`{o.request}` ({o.kind}: {o.name}): {o.status} {o.problem} {o.detail!r}"
                        for o in found]) for title, found in
               (("5xx answers", fives), ("Hangs", hangs), ("Wrong answers", wrong))]  # fmt: skip
    for title, items in [*answers, ("Lost jobs", lost), ("Wrong successes", wrong_successes)]:
        if items:
            parts += [f"## {title}", "\n".join(f"- {item}" for item in items[:50])]
    return "\n\n".join(parts), all(met for _, met, _ in targets)


def main() -> None:
    args = common.options(__doc__, minutes=3.0, database_url=None)
    home = Path(tempfile.mkdtemp(prefix="descent-soak-"))
    env = {**ENV, **({"DESCENT_DATABASE_URL": args.database_url} if args.database_url else {})}
    database = "PostgreSQL" if args.database_url else "SQLite"
    log = home / "serve.log"
    print(f"hostile soak: {args.minutes:g} min on {database}; server log {log}", flush=True)
    with common.output_to(log), common.serve(home, env, workers=WORKERS) as (api, pid):
        soak = Soak(api.base_url, pid)
        soak.warm_up()
        soak.run(args.minutes)
        jobs, drained = soak.drain()
        body, ok = report(soak, jobs, drained, args.minutes, database)
    tracebacks = log.read_text(errors="replace").count("Traceback")
    body += f"\n\nThe server's log (its workers' too) holds {tracebacks} tracebacks."
    title = f"Hostile soak: malformed traffic while workers die ({database})"
    variant = "postgresql" if args.database_url else None
    common.write_report("hostile_soak", title, body, variant=variant)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

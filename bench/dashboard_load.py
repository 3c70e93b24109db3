"""A dashboard's load on a training server: API latency and the jobs' steps per second.

    python -m bench.dashboard_load [--seconds 20] [--clients 50] [--subscribers 5]

Starts `descent serve --workers 2` on loopback with its own SQLite database and two long training
jobs (the CIFAR-10 SVM recipe when the batches are here, else digits). Their steps per second are
measured over three windows of the same length: quiet, loaded, quiet again. In the loaded window
`clients` pollers each GET /jobs/{id} and /jobs/{id}/loss?after= every 200 ms (following the
cursor like a live chart) and `subscribers` clients follow GET /jobs/{id}/events. The quiet
windows on both sides are the baseline, so drift (a neighbour, thermal) shows as a gap between
them rather than as load. Every loop is bounded in time; all traffic stays on 127.0.0.1.

The pollers revalidate with If-None-Match, as a browser does with an ETag, and speak HTTP/1.1
through a bare keep-alive protocol of their own; the subscribers read their streams raw and count
the `event:` lines. The load generator shares the two cores with the server and the jobs, so its
own CPU is part of what is measured: httpx would spend several times the server's CPU per request
on its side.

Then the floor: the same pollers, with nothing changing, against an API alone (every answer a 304
from the poll cache) and against uvicorn serving an app that does nothing (bench/bare_asgi.py),
each with the cores idle and kept busy by two stand-ins for the jobs. What the bare server and the
generator take with the cores busy is taken from the jobs whatever Descent's code does.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import uvloop

from bench.common import REPO, cifar10_dir, free_port, serve, started, table, write_report
from service.db.session import Database
from service.jobs import repository
from service.settings import Settings

POLL_SECONDS = 0.2
TARGET_P99_MS, TARGET_SLOWDOWN = 50.0, 0.10  # the targets
CACHE_BYTES = 16 * 1024**2
T = TypeVar("T")


def job_spec(seed: int) -> tuple[str, dict[str, Any]]:
    """The CIFAR-10 SVM recipe when the batches are here, else softmax on digits; both SGD."""
    cifar = cifar10_dir() is not None
    model = {"loss": "svm", "reg": 25000} if cifar else {"loss": "softmax", "reg": 1e-4}
    spec = {"name": f"load-{seed}", "dataset": {"name": "cifar10" if cifar else "digits"},
            "model": model, "seed": seed, "log_every": 1, "eval_every": 0,
            "optimizer": {"type": "sgd", "learning_rate": 1e-7 if cifar else 1e-3,
                          "batch_size": 200, "iterations": 1_000_000}}  # fmt: skip
    return f"{'CIFAR-10 SVM' if cifar else 'digits softmax'} SGD, batch 200", spec


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Mark = tuple[float, list[int], float, float]  # time, steps per job, API CPU s, workers' CPU s


def children(pid: int) -> list[int]:
    """The child processes of `pid`, whichever of its threads started them (Linux /proc)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(kid) for kid in (task / "children").read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return kids


def steps(api: httpx.Client, ids: list[str], pid: int = 0) -> Mark:
    """The jobs' steps done, the API's CPU seconds and the workers' (their writer processes'
    included)."""
    done = [api.get(f"/jobs/{i}").json()["progress"]["step"] for i in ids]
    workers = [kid for child in children(pid) for kid in (child, *children(child))] if pid else []
    busy = sum(cpu_seconds(worker) for worker in workers)
    return time.monotonic(), done, cpu_seconds(pid) if pid else 0.0, busy


def rates(before: Mark, after: Mark) -> list[float]:
    """Steps per second of each job, then the API's and the workers' CPU use (cores)."""
    elapsed = after[0] - before[0]
    speeds = [(b - a) / elapsed for a, b in zip(before[1], after[1], strict=True)]
    return [*speeds, (after[2] - before[2]) / elapsed, (after[3] - before[3]) / elapsed]


def _header(head: bytes, name: bytes) -> bytes:
    """The value of header `name` (lower-case) in a response head ending in CRLF, or b""."""
    at = head.lower().find(b"\r\n" + name + b":")
    if at < 0:
        return b""
    start = at + len(name) + 3
    return head[start : head.find(b"\r\n", start)].strip()


class Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection for GETs whose answers carry a Content-Length.

    A bare protocol (no stream objects, headers not parsed beyond the three it needs): the
    generator shares the two cores with the server and the jobs, so its own cost per request is
    part of what the benchmark measures."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None

    @classmethod
    async def open(cls, base: str) -> Connection:
        url = httpx.URL(base)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, url.host, url.port or 80)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[: end + 2])
        length = int(_header(head, b"content-length") or 0)
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if not self.waiter.done():
            self.waiter.set_result((int(head[9:12]), _header(head, b"etag"), body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("connection closed"))

    async def get(self, target: str, etag: bytes | None) -> tuple[int, bytes, bytes]:
        """(status, the ETag header or b"", body) of GET target, revalidating `etag`."""
        assert self.transport is not None
        if self.transport.is_closing():
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        revalidate = b"If-None-Match: " + etag + b"\r\n" if etag else b""
        self.transport.write(
            b"GET " + target.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + revalidate + b"\r\n"
        )
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def next_after(body: bytes) -> int | None:
    """A loss page's `next_after`, read off the end of the body without parsing the points
    (the page ends with `"next_after":<step or null>,"total":<n>}`)."""
    value = body[body.rindex(b'"next_after":') + len(b'"next_after":') :].split(b",", 1)[0]
    return None if value == b"null" else int(value)


async def poller(
    base: str,
    job_id: str,
    until: float,
    samples: dict[str, list[float]],
    after: int = -1,
    phase: float = 0.0,
) -> int:
    """GET the job and its loss points after `after` every 200 ms until `until`, following the
    cursor, the first time `phase` seconds from now; returns the errors seen."""
    errors = 0
    etags: dict[str, bytes] = {}
    connection = await Connection.open(base)
    next_tick = time.monotonic() + phase
    await asyncio.sleep(phase)
    while time.monotonic() < until:
        for name, target in (("job", f"/jobs/{job_id}"), ("loss", f"/jobs/{job_id}/loss")):
            if name == "loss":
                target += f"?after={after}"
            start = time.perf_counter()
            try:
                status, etag, body = await connection.get(target, etags.get(target))
            except (OSError, ValueError):
                errors += 1
                connection.close()
                connection = await Connection.open(base)
                continue
            samples[name].append(time.perf_counter() - start)
            samples[f"{name} {status}"].append(0.0)
            if status not in (200, 304):
                errors += 1
            if status == 200 and etag:
                etags[target] = etag
            if status == 200 and name == "loss":
                cursor = next_after(body)
                after = after if cursor is None else cursor
        next_tick += POLL_SECONDS
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    connection.close()
    return errors


async def subscriber(base: str, job_id: str, position: int, until: float) -> str:
    """Follow the job's events until `until`; the number of events received (and why the stream
    was cut short, if it was). Events are counted by their `event:` lines, unparsed."""
    url = httpx.URL(base)
    events, tail = 0, b""
    try:
        reader, writer = await asyncio.open_connection(url.host, url.port or 80)
    except OSError as error:
        return f"0 (cut: {type(error).__name__})"
    writer.write(
        f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
        f"Last-Event-ID: {position}\r\n\r\n".encode()
    )
    try:
        async with asyncio.timeout(max(0.0, until - time.monotonic())):
            while chunk := await reader.read(65536):
                events += (tail + chunk).count(b"\nevent:")
                tail = chunk[-6:]  # an "event:" line split between two reads counts once
    except TimeoutError:
        pass
    except OSError as error:  # an overloaded server: say so instead of dying
        return f"{events} (cut: {type(error).__name__})"
    finally:
        writer.close()
    return str(events)


async def load(base: str, ids: list[str], positions: list[int], args: argparse.Namespace) -> Any:
    """Pollers and subscribers until the window ends; `positions`: each job's last step done."""
    until = time.monotonic() + args.seconds
    samples: dict[str, list[float]] = defaultdict(list)
    # Independent clients are not in step: their 200 ms cycles start spread over one period
    # (--phase aligned starts them all at once, a burst of every client every 200 ms).
    spread = POLL_SECONDS / args.clients if args.phase == "spread" else 0.0
    pollers = [poller(base, ids[i % len(ids)], until, samples,
                      -1 if args.start == "start" else positions[i % len(ids)], i * spread)
               for i in range(args.clients)]  # fmt: skip
    subscribers = [subscriber(base, ids[i % len(ids)], positions[i % len(ids)], until)
                   for i in range(args.subscribers)]  # fmt: skip
    errors, events = await asyncio.gather(asyncio.gather(*pollers), asyncio.gather(*subscribers))
    return samples, sum(errors), events


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the load on uvloop, as the server does: the generator shares the cores with it."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def percentiles(values: list[float]) -> list[str]:
    if len(values) < 2:
        return ["–"] * 4
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [f"{1000 * v:.1f}" for v in (cuts[49], cuts[94], cuts[98], max(values))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    for name, default in (("--clients", 50), ("--subscribers", 5), ("--port", 8791)):
        parser.add_argument(name, type=int, default=default)
    parser.add_argument(
        "--start",
        choices=("start", "now"),
        default="now",
        help="where pollers start reading the loss: the first step (paging through the history "
        "first, 1000 points a poll) or the job's current step (as the dashboard does after its "
        "downsampled overview)",
    )
    parser.add_argument(
        "--phase",
        choices=("spread", "aligned"),
        default="spread",
        help="when the pollers' 200 ms cycles start: spread evenly over one period (independent "
        "clients) or all at once (every client in the same instant, a worst case)",
    )
    parser.add_argument(
        "--poll-cache-bytes",
        type=int,
        default=CACHE_BYTES,
        help="the server's DESCENT_POLL_CACHE_BYTES (0: no poll cache)",
    )
    args = parser.parse_args([] if argv is None else argv)  # `python -m bench` passes none
    load_before = os.getloadavg()
    label, _ = job_spec(0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(
            Path(tmp),
            {"DESCENT_POLL_CACHE_BYTES": str(args.poll_cache_bytes)},
            workers=2,
            port=args.port,
        ) as (base, pid),
    ):
        api = httpx.Client(base_url=base, timeout=30)
        ids = [api.post("/jobs", json=job_spec(seed)[1]).json()["id"] for seed in (1, 2)]
        deadline = time.monotonic() + 180
        while min(steps(api, ids)[1]) < 200:  # both past loading and warm
            if time.monotonic() > deadline:
                raise SystemExit("the jobs did not start")
            time.sleep(0.5)
        single: dict[str, list[float]] = defaultdict(list)
        run(poller(base, ids[0], time.monotonic() + 5, single))
        marks = [steps(api, ids, pid)]  # quiet, loaded, quiet: four marks, three windows
        time.sleep(args.seconds)
        marks.append(steps(api, ids, pid))
        cpu = time.process_time()  # the load generator's own CPU: it shares the two cores
        samples, errors, events = run(load(base, ids, [s - 1 for s in marks[1][1]], args))
        cpu = (time.process_time() - cpu) / args.seconds
        marks.append(steps(api, ids, pid))
        load_during = os.getloadavg()
        nice = worker_niceness(pid)
        time.sleep(args.seconds)
        marks.append(steps(api, ids, pid))
        windows = [rates(a, b) for a, b in itertools.pairwise(marks)]
        for job_id in ids:
            api.post(f"/jobs/{job_id}/cancel")
        api.close()
        costs = read_costs(f"sqlite:///{Path(tmp) / 'descent.db'}", ids[0])
        costs += f"\n\nThe load generator itself used {cpu:.2f} cores in the loaded window."
    floor, bare = serving_floor(args)
    costs += "\n\n" + floor
    machine = (
        f"- Load average before the run: {', '.join(f'{v:.2f}' for v in load_before)}; at the "
        f"end of the loaded window: {', '.join(f'{v:.2f}' for v in load_during)} "
        f"({os.cpu_count()} cores). Worker processes' niceness: {nice}."
    )
    report(args, label, single, samples, errors, events, windows, (load_before[0], machine), costs,
           bare)  # fmt: skip


def worker_niceness(pid: int) -> list[int]:
    """The niceness of each child process of `descent serve` (its workers)."""
    try:
        stats = [Path(f"/proc/{kid}/stat").read_text().rsplit(")", 1)[1].split()
                 for kid in children(pid)]  # fmt: skip
    except OSError:
        return []
    return [int(fields[16]) for fields in stats]


# A stand-in for a training job in bench.dashboard_load's serving floor: one core's worth of
# minibatch products over a CIFAR-sized slab, at the workers' niceness, for `seconds`.
BUSY_CORE = """
import os, sys, time
import numpy as np
os.nice(int(sys.argv[2]))
rng = np.random.default_rng(0)
X = rng.random((4096, 3073), dtype=np.float32)
W = rng.random((3073, 10), dtype=np.float32)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    (X[rng.integers(0, 4096, 200)] @ W).sum()
"""


@dataclass(frozen=True)
class Floor:
    """The same polls when nothing changes: answers, 304s, and the CPU of each side (cores)."""

    answers: int
    unchanged: int
    server: float
    generator: float
    seconds: float

    def ms(self, cores: float) -> float:
        """Milliseconds of CPU a request, of `cores` used over the window."""
        return 1000 * cores * self.seconds / max(1, self.answers)


def polled(base: str, pid: int, ids: list[str], args: argparse.Namespace, busy: bool) -> Floor:
    """`args.clients` pollers for `args.seconds` on idle cores, or beside two BUSY_CORE stand-ins
    for the jobs (at the workers' niceness)."""
    samples: dict[str, list[float]] = defaultdict(list)

    async def polls() -> None:
        until = time.monotonic() + args.seconds
        spread = POLL_SECONDS / args.clients
        await asyncio.gather(*(poller(base, ids[i % 2], until, samples, -1, i * spread)
                               for i in range(args.clients)))  # fmt: skip

    nice = str(Settings().worker_nice)
    command = [sys.executable, "-c", BUSY_CORE, str(args.seconds + 2), nice]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    hogs = [subprocess.Popen(command, env=env) for _ in range(2 if busy else 0)]
    time.sleep(1.0 if busy else 0.0)  # their slabs made
    started, cpu, own = time.monotonic(), cpu_seconds(pid), time.process_time()
    run(polls())
    elapsed = time.monotonic() - started
    server = (cpu_seconds(pid) - cpu) / elapsed
    generator = (time.process_time() - own) / elapsed
    for hog in hogs:
        hog.wait()
    answers = len(samples["job"]) + len(samples["loss"])
    unchanged = len(samples["job 304"]) + len(samples["loss 304"])
    return Floor(answers, unchanged, server, generator, elapsed)


@contextmanager
def bare_server(port: int) -> Iterator[tuple[str, int]]:
    """(base URL, pid) of uvicorn serving bench.bare_asgi (a 304 for everything), as `descent
    serve` runs uvicorn (its default loop and parser: uvloop and httptools)."""
    command = [sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--port", str(port),
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(base, timeout=1).status_code == 304
        except httpx.TransportError:
            return False

    with started(command, ready, env=dict(os.environ), cwd=REPO) as pid:
        yield base, pid


def serving_floor(args: argparse.Namespace) -> tuple[str, Floor]:
    """What the same polls cost when nothing changes, each side's CPU measured with the cores
    idle, then with both kept busy by stand-ins for two jobs (the server then shares its core,
    its caches and its wake-ups with one): an API alone (no workers) on two queued jobs, every
    answer a 304 from the poll cache; then uvicorn serving an app that does nothing
    (bench.bare_asgi), the floor of any ASGI app on this server and generator. Returns the
    paragraph and the bare server's busy floor."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(Path(tmp), {"DESCENT_POLL_CACHE_BYTES": str(args.poll_cache_bytes)}, workers=0) as (
            base,
            pid,
        ),
    ):
        api = httpx.Client(base_url=base, timeout=30)
        spec = job_spec(0)[1]
        ids = [api.post("/jobs", json=spec).json()["id"] for _ in range(2)]
        api.close()
        descent = [polled(base, pid, ids, args, busy) for busy in (False, True)]
    with bare_server(free_port()) as (base, pid):
        bare = [polled(base, pid, ["a", "b"], args, busy) for busy in (False, True)]

    def measured(floors: list[Floor], server: str) -> str:
        sentences = []
        for floor, where in zip(floors, ("idle cores", "both cores busy"), strict=True):
            sentences.append(
                f"with {where}, {floor.unchanged} of {floor.answers} answers 304s, {server} "
                f"used {floor.server:.2f} cores ({floor.ms(floor.server):.2f} ms a request) and "
                f"the generator {floor.generator:.2f} ({floor.ms(floor.generator):.2f} ms)"
            )
        return "; ".join(sentences)

    busy = bare[1]
    paragraph = (
        f"With nothing changing (the same {args.clients} pollers for {args.seconds:g} s; busy: two "
        "processes computing minibatch products at the workers' niceness, stand-ins for two "
        f"jobs). Descent's API alone on two queued jobs, answers from the poll cache: "
        f"{measured(descent, 'the API')}. The same polls against uvicorn serving an app that "
        f"does nothing (bench/bare_asgi.py, a 304 for everything): {measured(bare, 'uvicorn')}. "
        f"With the cores busy, that floor alone takes {busy.server + busy.generator:.2f} cores, "
        f"{50 * (busy.server + busy.generator):.1f}% of the two, before any of Descent's code "
        "runs."
    )
    return paragraph, busy


def read_costs(url: str, job_id: str) -> str:
    """What one /loss poll reads at the end of the run: the new page, and what `total` counts."""
    database = Database(url)
    with database.read() as session:
        n = repository.count_points(session, job_id, "loss")
        last = repository.last_step(session, job_id, "loss") or 0

        def best(read: Callable[[], object]) -> float:
            return 1000 * min(timeit.repeat(read, number=1, repeat=30))

        count = best(lambda: repository.count_points(session, job_id, "loss"))
        newest = best(lambda: repository.count_after(session, job_id, "loss", last - 40))
        page = best(lambda: repository.points(session, job_id, "loss", after=last - 40, limit=1000))
    database.dispose()
    return (f"With {n} loss points stored, a COUNT(*) of them all takes {count:.2f} ms; `total` "
            f"counts only the points after the last step it counted ({newest:.2f} ms for the 40 "
            f"newest), and reading those 40 takes {page:.2f} ms (best of 30 reads each, from the "
            "server's database after the run).")  # fmt: skip


def report(
    args: argparse.Namespace,
    label: str,
    single: dict[str, list[float]],
    samples: dict[str, list[float]],
    errors: int,
    events: list[str],
    windows: list[list[float]],
    load: tuple[float, str],
    costs: str,
    bare: Floor,
) -> None:
    """Write the report; `load` is the 1-minute load average before the run and a line on it."""
    every = samples["job"] + samples["loss"]
    rows = [[name, len(values), *percentiles(values)] for name, values in
            (("GET /jobs/{id}", samples["job"]), ("GET /jobs/{id}/loss?after=", samples["loss"]),
             ("all", every),
             ("one client alone, before", single["job"] + single["loss"]))]  # fmt: skip
    latency = table(["requests", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    quiet = [(a + c) / 2 for a, c in zip(windows[0][:2], windows[2][:2], strict=True)]
    drops = [1 - loaded / base for loaded, base in zip(windows[1][:2], quiet, strict=True)]
    changes = [f"{-100 * d:+.1f}%" for d in drops]
    job_rows = [[f"job {k + 1}", f"{windows[0][k]:.0f}", f"{windows[1][k]:.0f}",
                 f"{windows[2][k]:.0f}", changes[k]] for k in range(2)]  # fmt: skip
    job_rows += [[name, *(f"{w[k]:.2f}" for w in windows),
                  f"{windows[1][k] - (windows[0][k] + windows[2][k]) / 2:+.2f}"]
                 for k, name in ((2, "API CPU (cores)"),
                                 (3, "workers' CPU (their writers too)"))]  # fmt: skip
    speed = table(["", "quiet before", "loaded", "quiet after", "loaded vs quiet"], job_rows)
    extra_cpu = (windows[1][2] - (windows[0][2] + windows[2][2]) / 2) * args.seconds
    p99 = float(percentiles(every)[2]) if len(every) > 1 else float("nan")
    drop = max(drops)
    unchanged = ", ".join(
        f"{len(samples[f'{name} 304'])} of {len(samples[name])} {path}"
        for name, path in (("job", "GET /jobs/{id}"), ("loss", "GET /jobs/{id}/loss"))
    )
    verdict = [
        f"- API p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms): "
        f"{'met' if p99 < TARGET_P99_MS else 'MISSED'}.",
        f"- Worst steps/s drop {100 * drop:.1f}% (target at most {100 * TARGET_SLOWDOWN:.0f}%): "
        f"{'met' if drop <= TARGET_SLOWDOWN else 'MISSED'}.",
        f"- Poll errors: {errors}. SSE events received per subscriber: {', '.join(events)}.",
        f"- The API spent {1000 * extra_cpu / max(1, len(every)):.2f} ms of CPU per request "
        f"(SSE included): the {args.clients * 2 / POLL_SECONDS:.0f} requests/s asked for need "
        f"{extra_cpu / max(1, len(every)) * args.clients * 2 / POLL_SECONDS:.2f} cores. "
        f"Unchanged answers (304): {unchanged}.",
        f"- The floor: with both cores busy, the same polls against uvicorn serving an app that "
        f"does nothing cost {bare.server:.2f} cores on the server and {bare.generator:.2f} in the "
        f"load generator, {50 * (bare.server + bare.generator):.1f}% of the two cores, taken "
        "from the jobs whatever the API does.",
        load[1],
    ]
    drift = [abs(a - c) / max(a, c) for a, c in zip(windows[0][:2], windows[2][:2], strict=True)]
    if max(drift) > 0.05:
        verdict.append(
            f"- The quiet windows differ by up to {100 * max(drift):.0f}%: other work shared "
            "the cores, so read the figures as disturbed."
        )
    elif load[0] > 0.5:
        verdict.append(
            f"- The quiet windows agree within {100 * max(drift):.0f}%, but the 1-minute load "
            f"average was {load[0]:.2f} at the start (other work, or the minute's average of "
            "a benchmark that had just ended)."
        )
    where = {
        "start": "the first step: each pages through the history first, 1000 points a poll",
        "now": "the job's current step, as the dashboard does after its overview",
    }[args.start]
    phase = {
        "spread": "their cycles spread evenly over one period",
        "aligned": "all of them at the same instants, a burst every period",
    }[args.phase]
    cache = (
        f"poll cache of {args.poll_cache_bytes / 1024**2:g} MiB, default staleness bound"
        if args.poll_cache_bytes
        else "no poll cache"
    )
    body = f"""
{args.clients} pollers (GET /jobs/{{id}} and /jobs/{{id}}/loss?after= every
{POLL_SECONDS * 1000:.0f} ms each, following the cursor from {where}; {phase})
and {args.subscribers} SSE subscribers (GET /jobs/{{id}}/events) against `descent serve
--workers 2` (SQLite, {cache}) while two jobs train ({label}, a loss point every step).
Windows of {args.seconds:.0f} s: quiet, loaded, quiet again; the baseline is the mean of the
quiet ones. The load generator (one asyncio process on uvloop: a bare keep-alive HTTP/1.1 protocol
revalidating with If-None-Match for the pollers, raw reads counting the `event:` lines for the
SSE streams) runs on the same machine, so its own CPU counts against the server and the workers.

## API latency under load

{latency}

## Training speed (steps per second)

{speed}

## What one poll costs the server

{costs}

## Verdict

{chr(10).join(verdict)}
"""
    command = f".venv/bin/python -m bench.dashboard_load --seconds {args.seconds:g} " \
              f"--clients {args.clients} --subscribers {args.subscribers}" + \
              (" --start start" if args.start == "start" else "") + \
              (" --phase aligned" if args.phase == "aligned" else "") + \
              ("" if args.poll_cache_bytes == CACHE_BYTES else
               f" --poll-cache-bytes {args.poll_cache_bytes}")  # fmt: skip
    if "DESCENT_FLUSH_SECONDS" in os.environ:  # the workers' write interval (inherited)
        command = f"DESCENT_FLUSH_SECONDS={os.environ['DESCENT_FLUSH_SECONDS']} {command}"
    write_report("dashboard_load", "Dashboard load", command, body)


if __name__ == "__main__":
    main(sys.argv[1:])

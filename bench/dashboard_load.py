"""A dashboard's load on a training server: API latency and the jobs' steps per second.

    python -m bench.dashboard_load [--seconds 20] [--rounds 3] [--clients 50] [--subscribers 5]

Starts `descent serve --workers 2` on loopback with its own SQLite database and two long training
jobs (the CIFAR-10 SVM recipe when the batches are here, else digits). Their steps per second are
measured over windows of the same length, quiet and loaded in turn, starting and ending quiet:
`rounds` loaded windows, each compared with the mean of the quiet windows on both sides, so
drift (a neighbour, thermal) shows as a gap between quiet windows rather than as load, and the
rounds show how much one comparison varies. A job's speed in a window is taken between its
first flush after the window began and its last flush before it ended (the database's progress
and `updated_at`), so no step of a neighbouring window counts; against the reader's clock each
end would be off by up to one flush interval. In a loaded window
`clients` pollers each GET /jobs/{id} and /jobs/{id}/loss?after= every 200 ms (following the
cursor like a live chart) and `subscribers` clients follow GET /jobs/{id}/events
(bench.pollers: one uvloop process on the same two cores, so its own CPU is part of what is
measured). The CPU time the hypervisor gave to other guests (steal, /proc/stat) is reported per
window. Every loop is bounded in time; all traffic stays on 127.0.0.1.

Then the floor (bench.serving_floor): the same pollers, with nothing changing, against an API
alone and against uvicorn serving an app that does nothing, with the cores idle and busy.

`--against bare` points the loaded windows' pollers at that app instead (uvicorn serving
bench/bare_asgi.py, a 304 for everything; no SSE subscribers, as it has no streams) while the
two jobs still train in Descent: the jobs' drop under the same traffic with no API code at all,
the floor any ASGI app on this server and load generator starts from. It writes the "bare"
section of docs/benchmarks/dashboard_load.md and leaves the rest of that report as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import time
import timeit
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

from bench.common import (
    children,
    cifar10_dir,
    cpu_seconds,
    free_port,
    proc_stat,
    serve,
    table,
    write_report,
)
from bench.pollers import POLL_SECONDS, Samples, load, poller, run
from bench.serving_floor import Floor, bare_server, serving_floor
from service.db.models import TERMINAL_STATUSES, Job
from service.db.session import Database
from service.jobs import repository

TARGET_P99_MS, TARGET_SLOWDOWN = 50.0, 0.10  # the targets in docs/BENCHMARKS.md
CACHE_BYTES = 16 * 1024**2
T = TypeVar("T")
DRIFT, STOLEN = 0.05, 0.02  # quiet windows this far apart, or this much steal, mark a disturbed run


def job_spec(seed: int) -> tuple[str, dict[str, Any]]:
    """The CIFAR-10 SVM recipe when the batches are here, else softmax on digits; both SGD."""
    cifar = cifar10_dir() is not None
    model = {"loss": "svm", "reg": 25000} if cifar else {"loss": "softmax", "reg": 1e-4}
    spec = {"name": f"load-{seed}", "dataset": {"name": "cifar10" if cifar else "digits"},
            "model": model, "seed": seed, "log_every": 1, "eval_every": 0,
            "optimizer": {"type": "sgd", "learning_rate": 1e-7 if cifar else 1e-3,
                          "batch_size": 200, "iterations": 1_000_000}}  # fmt: skip
    return f"{'CIFAR-10 SVM' if cifar else 'digits softmax'} SGD, batch 200", spec


def worker_niceness(pid: int) -> list[int]:
    """The niceness of each child process of `descent serve` (its workers)."""
    stats = [proc_stat(kid) for kid in children(pid)]
    return [int(fields[16]) for fields in stats if fields is not None]


def stolen_seconds() -> float:
    """CPU seconds the hypervisor has given to other guests since boot, all cores (Linux
    /proc/stat's steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Flushes:
    """Each job's step as of a flush, and when that flush was written (its `updated_at`)."""

    steps: list[int]
    times: list[float]


@dataclass(frozen=True)
class Mark:
    """A window's boundary: when (monotonic `at`, wall clock `wall`), each job's last flush
    before it, and the CPU seconds used so far."""

    at: float
    wall: float
    last: Flushes
    server: float  # the polled server's: the API's, or the bare app's (--against bare)
    workers: float  # their writer processes included
    stolen: float


@dataclass(frozen=True)
class Window:
    """Between two marks: each job's steps per second, and cores used (or stolen)."""

    speeds: list[float]
    server: float
    workers: float
    stolen: float


def flushes(database: Database, ids: list[str]) -> Flushes:
    """Each job's last flush so far."""
    with database.read() as session:
        rows = {row.id: row for row in session.execute(
            select(Job.id, Job.progress_step, Job.updated_at).where(Job.id.in_(ids)))}  # fmt: skip
    return Flushes(
        [rows[i].progress_step for i in ids], [rows[i].updated_at.timestamp() for i in ids]
    )


def first_flushes_after(database: Database, ids: list[str], wall: float) -> Flushes:
    """Each job's first flush after `wall` (a job flushes every DESCENT_FLUSH_SECONDS, and the
    database keeps its last flush only, so it is read every 50 ms until each job has one)."""
    found: dict[int, tuple[int, float]] = {}
    deadline = time.monotonic() + 10
    while len(found) < len(ids):
        now = flushes(database, ids)
        for k, (step, flushed) in enumerate(zip(now.steps, now.times, strict=True)):
            if k not in found and flushed > wall:
                found[k] = (step, flushed)
        if time.monotonic() > deadline:
            raise SystemExit("a job stopped flushing")
        time.sleep(0.05)
    return Flushes([found[k][0] for k in range(len(ids))], [found[k][1] for k in range(len(ids))])


def read_mark(database: Database, ids: list[str], pid: int, server: int) -> Mark:
    """A boundary now: `pid` is `descent serve` (its workers are its children), `server` the
    process the clients poll (the same, or the bare app's server)."""
    workers = [kid for child in children(pid) for kid in (child, *children(child))]
    return Mark(
        time.monotonic(),
        time.time(),
        flushes(database, ids),
        cpu_seconds(server),
        sum(cpu_seconds(worker) for worker in workers),
        stolen_seconds(),
    )


def window(before: Mark, first: Flushes, after: Mark) -> Window:
    """The window from `before` to `after`: each job's speed between its first flush after the
    window began and its last flush before it ended, so no step of a neighbouring window counts;
    the CPU over the whole window."""
    elapsed = after.at - before.at
    pairs = zip(first.steps, after.last.steps, first.times, after.last.times, strict=True)
    speeds = [(b - a) / max(1e-6, tb - ta) for a, b, ta, tb in pairs]
    return Window(
        speeds,
        (after.server - before.server) / elapsed,
        (after.workers - before.workers) / elapsed,
        (after.stolen - before.stolen) / elapsed,
    )


def rounds(windows: list[Window]) -> list[tuple[Window, Window, Window]]:
    """For quiet, loaded, quiet, ..., quiet windows: each loaded window with the quiet windows
    on both sides."""
    return list(zip(windows[0::2], windows[1::2], windows[2::2], strict=False))


def round_drops(windows: list[Window]) -> list[list[float]]:
    """Each round's drop in steps/s per job: the loaded window against the mean of the quiet
    ones on both sides."""
    return [[1 - speed / ((a + b) / 2) for speed, a, b in
             zip(loaded.speeds, before.speeds, after.speeds, strict=True)]
            for before, loaded, after in rounds(windows)]  # fmt: skip


@dataclass
class Traffic:
    """What the loaded windows' clients saw, and the generator's own CPU (cores, per window)."""

    samples: Samples
    errors: int
    events: list[list[str]]
    generator: list[float]


async def loaded(
    database: Database, ids: list[str], wall: float, traffic: Coroutine[Any, Any, T]
) -> tuple[T, Flushes]:
    """Run the load, and meanwhile find each job's first flush after it began."""
    first = asyncio.create_task(asyncio.to_thread(first_flushes_after, database, ids, wall))
    result = await traffic
    return result, await first


def writes_waited(api: httpx.Client, ids: list[str]) -> str:
    """A line on how long each job's engine waited for its history writes over its run
    (`timings.write_wait_s`), read once the cancelled jobs have ended (within 30 s)."""
    deadline = time.monotonic() + 30
    ended: dict[str, dict[str, Any]] = {}
    while len(ended) < len(ids) and time.monotonic() < deadline:
        for job_id in set(ids) - set(ended):
            job = api.get(f"/jobs/{job_id}").json()
            if job["status"] in TERMINAL_STATUSES:
                ended[job_id] = job["timings"]
        time.sleep(0.2)
    parts = []
    for k, job_id in enumerate(ids):
        timings = ended.get(job_id)
        if timings is None or timings.get("write_wait_s") is None:
            parts.append(f"job {k + 1}: not reported")
            continue
        wait, run_s = timings["write_wait_s"], timings["run_s"]
        parts.append(f"job {k + 1} {wait:.2f} s of {run_s:.0f} s ({100 * wait / run_s:.2f}%)")
    return ("- The engines waited for their history writes (`timings.write_wait_s`, the whole "
            f"run, quiet and loaded windows alike): {'; '.join(parts)}.")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    load_before = os.getloadavg()
    label, spec = job_spec(0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(
            Path(tmp),
            {"DESCENT_POLL_CACHE_BYTES": str(args.poll_cache_bytes)},
            workers=2,
            port=args.port,
        ) as (base, pid),
        contextlib.ExitStack() as stack,
    ):
        target, server = base, pid  # what the clients poll, and its process
        if args.against == "bare":
            target, server = stack.enter_context(bare_server(free_port()))
        url = f"sqlite:///{Path(tmp) / 'descent.db'}"
        database = Database(url)
        api = httpx.Client(base_url=base, timeout=30)
        ids = [api.post("/jobs", json=job_spec(seed)[1]).json()["id"] for seed in (1, 2)]
        deadline = time.monotonic() + 180
        while min(flushes(database, ids).steps) < 200:  # both past loading and warm
            if time.monotonic() > deadline:
                raise SystemExit("the jobs did not start")
            time.sleep(0.5)
        single: Samples = defaultdict(list)
        run(poller(target, ids[0], time.monotonic() + 5, single))
        traffic = Traffic(defaultdict(list), 0, [], [])
        marks = [read_mark(database, ids, pid, server)]
        firsts = []
        for _ in range(args.rounds):
            firsts.append(first_flushes_after(database, ids, marks[-1].wall))
            time.sleep(max(0.0, marks[-1].at + args.seconds - time.monotonic()))  # quiet
            marks.append(read_mark(database, ids, pid, server))
            cpu = time.process_time()  # the load generator's own CPU: it shares the two cores
            positions = [step - 1 for step in marks[-1].last.steps]
            clients = load(target, ids, positions, seconds=args.seconds, clients=args.clients,
                           subscribers=args.subscribers, from_start=args.start == "start",
                           aligned=args.phase == "aligned")  # fmt: skip
            (samples, errors, events), first = run(loaded(database, ids, marks[-1].wall, clients))
            traffic.generator.append((time.process_time() - cpu) / args.seconds)
            marks.append(read_mark(database, ids, pid, server))
            firsts.append(first)
            for name, values in samples.items():
                traffic.samples[name] += values
            traffic.errors += errors
            traffic.events.append(events)
        load_during = os.getloadavg()
        nice = worker_niceness(pid)
        firsts.append(first_flushes_after(database, ids, marks[-1].wall))
        time.sleep(max(0.0, marks[-1].at + args.seconds - time.monotonic()))
        marks.append(read_mark(database, ids, pid, server))
        windows = [
            window(a, f, b) for (a, b), f in zip(itertools.pairwise(marks), firsts, strict=True)
        ]
        for job_id in ids:
            api.post(f"/jobs/{job_id}/cancel")
        waits = writes_waited(api, ids)
        api.close()
        database.dispose()
        descent = args.against == "descent"
        costs = read_costs(url, ids[0]) if descent else ""
    # Descent's own costs: a poll's reads, and the floor (once the run's server has stopped).
    # Against the bare app the run itself is the floor with real jobs and no poll reads the
    # database: neither is measured.
    own = Own(costs, *serving_floor(args, spec)) if descent else None
    machine = (
        f"- Load average before the run: {', '.join(f'{v:.2f}' for v in load_before)}; at the "
        f"end of the last loaded window: {', '.join(f'{v:.2f}' for v in load_during)} "
        f"({os.cpu_count()} cores). Worker processes' niceness: {nice}."
    )
    report(args, label, single, traffic, windows, (load_before[0], machine), waits, own)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    parser.add_argument("--rounds", type=int, default=3, help="loaded windows (between quiet ones)")
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
    parser.add_argument(
        "--against",
        choices=("descent", "bare"),
        default="descent",
        help="what the loaded windows' pollers poll: Descent's API, or uvicorn serving an app "
        "that does nothing (bench/bare_asgi.py; no SSE subscribers) while the jobs train in "
        "Descent, the load's floor",
    )
    args = parser.parse_args([] if argv is None else argv)  # `python -m bench` passes none
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.against == "bare":
        args.subscribers = 0  # the bare app has no event streams
    return args


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


def percentiles(values: list[float]) -> list[str]:
    if len(values) < 2:
        return ["–"] * 4
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [f"{1000 * v:.1f}" for v in (cuts[49], cuts[94], cuts[98], max(values))]


def speed_tables(
    windows: list[Window], drops: list[list[float]], mean: list[float], server: str
) -> str:
    """Every window's figures, then each round's drop per job and their mean; `server`: what
    the clients poll."""
    rows = [[f"{k + 1} {'loaded' if k % 2 else 'quiet'}", *(f"{s:.0f}" for s in w.speeds),
             f"{w.server:.2f}", f"{w.workers:.2f}", f"{w.stolen:.2f}"]
            for k, w in enumerate(windows)]  # fmt: skip
    jobs = [f"job {k + 1}" for k in range(len(windows[0].speeds))]
    header = [
        "window",
        *jobs,
        f"{server} CPU (cores)",
        "workers' CPU (their writers too)",
        "stolen",
    ]
    round_rows = [[f"round {r + 1}", *(f"{-100 * d:+.1f}%" for d in round_)]
                  for r, round_ in enumerate(drops)]  # fmt: skip
    round_rows.append(["mean", *(f"**{-100 * d:+.1f}%**" for d in mean)])
    return (
        table(header, rows)
        + "\n\nEach loaded window against the mean of the quiet windows on both sides:\n\n"
        + table(["", *jobs], round_rows)
    )


def server_cost(windows: list[Window], seconds: float) -> float:
    """CPU seconds the polled server spent on the loaded windows beyond the quiet windows around
    them."""
    return seconds * sum(loaded.server - (before.server + after.server) / 2
                         for before, loaded, after in rounds(windows))  # fmt: skip


def disturbance(windows: list[Window], load_at_start: float) -> str | None:
    """A line on what else shared the machine, if anything did."""
    quiet = windows[0::2]
    spread = max(
        (max(w.speeds[k] for w in quiet) - min(w.speeds[k] for w in quiet))
        / max(w.speeds[k] for w in quiet)
        for k in range(len(quiet[0].speeds))
    )
    stolen = max(w.stolen for w in windows)
    lines = []
    if spread > DRIFT:
        lines.append(f"- The quiet windows differ by up to {100 * spread:.0f}%: other work shared "
                     "the cores, so read the figures as disturbed.")  # fmt: skip
    if stolen > STOLEN:
        lines.append(f"- The hypervisor gave up to {stolen:.2f} cores to other guests in a window "
                     "(steal): the machine itself was shared.")  # fmt: skip
    if not lines and load_at_start > 0.5:
        lines.append(f"- The quiet windows agree within {100 * spread:.0f}%, but the 1-minute load "
                     f"average was {load_at_start:.2f} at the start (other work, or the minute's "
                     "average of a benchmark that had just ended).")  # fmt: skip
    return "\n".join(lines) or None


@dataclass(frozen=True)
class Own:
    """What Descent's API costs beyond the run: a poll's reads, and bench.serving_floor's
    paragraph and bare server."""

    costs: str
    floor: str
    bare: Floor

    def floor_line(self) -> str:
        bare = self.bare
        return (
            "- The floor: with both cores busy, the same polls against uvicorn serving an app "
            f"that does nothing cost {bare.server:.2f} cores on the server and "
            f"{bare.generator:.2f} in the load generator, "
            f"{50 * (bare.server + bare.generator):.1f}% of the two cores, taken from the jobs "
            "whatever the API does."
        )

    def sections(self) -> str:
        return (f"\n## What one poll costs the server\n\n{self.costs}\n"
                f"\n## The floor\n\n{self.floor}\n")  # fmt: skip


def report(
    args: argparse.Namespace,
    label: str,
    single: Samples,
    traffic: Traffic,
    windows: list[Window],
    load: tuple[float, str],
    waits: str,
    own: Own | None,
) -> None:
    """Write the report; `load` is the 1-minute load average before the run and a line on it;
    `waits` the line on the engines' waits for their writes; `own` None against the bare
    app."""
    bare = args.against == "bare"
    server = "uvicorn (bare app)" if bare else "API"
    samples = traffic.samples
    every = samples["job"] + samples["loss"]
    rows = [[name, len(values), *percentiles(values)] for name, values in
            (("GET /jobs/{id}", samples["job"]), ("GET /jobs/{id}/loss?after=", samples["loss"]),
             ("all", every),
             ("one client alone, before", single["job"] + single["loss"]))]  # fmt: skip
    latency = table(["requests", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    drops = round_drops(windows)
    mean = [statistics.fmean(column) for column in zip(*drops, strict=True)]
    drop = max(mean)
    p99 = float(percentiles(every)[2]) if len(every) > 1 else float("nan")
    per_request = server_cost(windows, args.seconds) / max(1, len(every))
    rate = args.clients * 2 / POLL_SECONDS
    unchanged = ", ".join(
        f"{len(samples[f'{name} 304'])} of {len(samples[name])} {path}"
        for name, path in (("job", "GET /jobs/{id}"), ("loss", "GET /jobs/{id}/loss"))
    )

    def met(ok: bool) -> str:
        # Against the bare app the targets are not its to meet: its figures are their floor.
        return "the floor under the target" if bare else "met" if ok else "MISSED"

    streams = "; ".join(", ".join(events) for events in traffic.events) if args.subscribers else ""
    verdict = [
        f"- {server} p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms): "
        f"{met(p99 < TARGET_P99_MS)}.",
        f"- Steps/s drop of the slower job, mean of {args.rounds} rounds: {100 * drop:.1f}% "
        f"(target at most {100 * TARGET_SLOWDOWN:.0f}%): "
        f"{met(drop <= TARGET_SLOWDOWN)}. Each round's worse job: "
        f"{', '.join(f'{100 * max(d):.1f}%' for d in drops)}.",
        f"- Poll errors: {traffic.errors}."
        + (f" SSE events received per subscriber, round by round: {streams}." if streams else ""),
        f"- The {server} spent {1000 * per_request:.2f} ms of CPU per request"
        f"{'' if bare else ' (SSE included)'}: the "
        f"{rate:.0f} requests/s asked for need {per_request * rate:.2f} cores. The load "
        f"generator used {statistics.fmean(traffic.generator):.2f} cores. Unchanged answers "
        f"(304): {unchanged}.",
        load[1],
    ]
    if own is not None:
        verdict.insert(-1, own.floor_line())
    verdict.insert(-1, waits)
    disturbed = disturbance(windows, load[0])
    if disturbed:
        verdict.append(disturbed)
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
    polled = (
        "uvicorn serving an app that does nothing (bench/bare_asgi.py, a 304 for everything) "
        "while two jobs train in `descent serve --workers 2`"
        if bare
        else "`descent serve --workers 2`"
    )
    body = f"""
{args.clients} pollers (GET /jobs/{{id}} and /jobs/{{id}}/loss?after= every
{POLL_SECONDS * 1000:.0f} ms each, following the cursor from {where}; {phase})
and {args.subscribers} SSE subscribers (GET /jobs/{{id}}/events) against {polled}
(SQLite, {cache}) while two jobs train ({label}, a loss point every step).
Windows of {args.seconds:g} s, quiet and loaded in turn ({args.rounds} loaded), starting and
ending quiet; a job's steps per second in a window are taken between its first flush after
the window began and its last flush before it ended. The load generator (one asyncio process
on uvloop: a bare keep-alive HTTP/1.1 protocol revalidating with If-None-Match for the
pollers, raw reads counting the `event:` lines for the SSE streams) runs on the same machine,
so its own CPU counts against the server and the workers. "stolen": cores' worth of time the
hypervisor gave other guests.

## {server} latency under load (every loaded window)

{latency}

## Training speed (steps per second)

{speed_tables(windows, drops, mean, server)}
{"" if own is None else own.sections()}
## Verdict

{chr(10).join(verdict)}
"""
    command = f".venv/bin/python -m bench.dashboard_load --seconds {args.seconds:g} " \
              f"--rounds {args.rounds} --clients {args.clients} " \
              f"--subscribers {args.subscribers}" + \
              (" --start start" if args.start == "start" else "") + \
              (" --phase aligned" if args.phase == "aligned" else "") + \
              ("" if args.poll_cache_bytes == CACHE_BYTES else
               f" --poll-cache-bytes {args.poll_cache_bytes}") + \
              (" --against bare" if bare else "")  # fmt: skip
    if "DESCENT_FLUSH_SECONDS" in os.environ:  # the workers' write interval (inherited)
        command = f"DESCENT_FLUSH_SECONDS={os.environ['DESCENT_FLUSH_SECONDS']} {command}"
    if bare:
        write_report("dashboard_load", "The floor: dashboard load against an app doing nothing",
                     command, body, variant="bare")  # fmt: skip
    else:
        write_report("dashboard_load", "Dashboard load", command, body)


if __name__ == "__main__":
    main(sys.argv[1:])

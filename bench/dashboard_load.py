"""A dashboard's load on a training server: API latency and the jobs' steps per second.

`descent serve --workers 2` on SQLite trains two long CIFAR-10 jobs through quiet and loaded
windows in turn (bench.pollers' pollers and event streams), each loaded window compared with the
quiet ones around it; a job's speed in a window is taken between its first and last flush inside
it. Then the floor, in the same run: the same pollers against an app that does nothing
(bench.pollers.bare_app), written to the report's "bare" section.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import select

from bench import common, pollers
from bench.common import RECIPE, cpu_seconds, percentiles_ms, table
from bench.pollers import Samples, run
from service.db.models import Job
from service.db.session import Database

SECONDS, ROUNDS, CLIENTS, SUBSCRIBERS = 20.0, 3, 50, 5  # a window, loaded windows, the load
# The targets in docs/BENCHMARKS.md: the API's p99, and the slower job's drop at most this much
# above the floor's.
TARGET_P99_MS, TARGET_ABOVE_FLOOR = 50.0, 0.03
T = TypeVar("T")
DRIFT, STOLEN = 0.05, 0.02  # quiet windows this far apart, or this much steal, mark a disturbed run
Flushes = list[tuple[int, float]]  # each job's step as of a flush, and its `updated_at`
# The jobs: the CIFAR-10 SVM recipe, a loss point every step, no evaluation, outlasting the run.
SPEC = {**RECIPE, "log_every": 1, "eval_every": 0,
        "optimizer": {**RECIPE["optimizer"], "iterations": 1_000_000}}  # fmt: skip


def stolen_seconds() -> float:
    """CPU seconds the hypervisor has given to other guests since boot (/proc/stat's steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Mark:
    """A window's boundary: when, each job's last flush before it, CPU seconds used so far."""

    at: float  # monotonic
    wall: float
    last: Flushes
    server: float  # the polled server's: the API's, or the bare app's (the floor)
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
    return [(rows[i].progress_step, rows[i].updated_at.timestamp()) for i in ids]


def first_flushes_after(database: Database, ids: list[str], wall: float) -> Flushes:
    """Each job's first flush after `wall` (the database keeps only the last flush, so it is read
    every 50 ms until each job has one)."""
    found: dict[int, tuple[int, float]] = {}
    deadline = time.monotonic() + 10
    while len(found) < len(ids):
        for k, flush in enumerate(flushes(database, ids)):
            if k not in found and flush[1] > wall:
                found[k] = flush
        if time.monotonic() > deadline:
            raise SystemExit("a job stopped flushing")
        time.sleep(0.05)
    return [found[k] for k in range(len(ids))]


def read_mark(database: Database, ids: list[str], pid: int, server: int) -> Mark:
    """A boundary now: `pid` is `descent serve` (its workers are its descendants), `server` the
    process the clients poll (the same, or the bare app's server)."""
    workers = sum(cpu_seconds(kid) for kid in common.descendants(pid))
    flushed = flushes(database, ids)
    return Mark(time.monotonic(), time.time(), flushed, cpu_seconds(server), workers,
                stolen_seconds())  # fmt: skip


def window(before: Mark, first: Flushes, after: Mark) -> Window:
    """Each job's speed between its first flush after `before` and its last before `after`; the
    CPU over the whole window."""
    elapsed = after.at - before.at
    pairs = zip(first, after.last, strict=True)
    speeds = [(b - a) / max(1e-6, tb - ta) for (a, ta), (b, tb) in pairs]
    return Window(speeds, (after.server - before.server) / elapsed,
                  (after.workers - before.workers) / elapsed,
                  (after.stolen - before.stolen) / elapsed)  # fmt: skip


def rounds(windows: list[Window]) -> list[tuple[Window, Window, Window]]:
    """Each loaded window with the quiet windows on both sides."""
    return list(zip(windows[0::2], windows[1::2], windows[2::2], strict=False))


def round_drops(windows: list[Window]) -> list[list[float]]:
    """Each round's drop in steps/s per job, against the mean of the quiet windows around it."""
    return [[1 - speed / ((a + b) / 2) for speed, a, b in
             zip(loaded.speeds, before.speeds, after.speeds, strict=True)]
            for before, loaded, after in rounds(windows)]  # fmt: skip


def slower_drop(windows: list[Window]) -> float:
    """The slower job's steps/s drop, mean of the rounds."""
    return float(np.mean(round_drops(windows), axis=0).max())


async def loaded(
    database: Database, ids: list[str], wall: float, traffic: Coroutine[Any, Any, T]
) -> tuple[T, Flushes]:
    """Run the load, and meanwhile find each job's first flush after it began."""
    first = asyncio.create_task(asyncio.to_thread(first_flushes_after, database, ids, wall))
    result = await traffic
    return result, await first


@dataclass(frozen=True)
class Run:
    """One run's measures: against Descent's API, or against the bare app (the floor)."""

    bare: bool
    samples: Samples  # what the loaded windows' clients saw
    errors: int
    events: list[list[str]]
    generator: list[float]  # the load generator's own CPU (cores, per window)
    windows: list[Window]


def measure(*, bare: bool) -> Run:
    """Quiet and loaded windows of two jobs training in Descent, the pollers (and, against
    Descent's API, the event streams) polling Descent's API or the bare app."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        common.serve(Path(tmp), {}, workers=2) as (api, pid),
        contextlib.ExitStack() as stack,
    ):
        target, server = str(api.base_url), pid  # what the clients poll, and its process
        if bare:
            target, server = stack.enter_context(pollers.bare_server())
        database = Database(f"sqlite:///{Path(tmp) / 'descent.db'}")
        jobs = [{**SPEC, "name": f"load-{seed}", "seed": seed} for seed in (1, 2)]
        ids = [api.post("/jobs", json=job).json()["id"] for job in jobs]
        deadline = time.monotonic() + 180
        while min(step for step, _ in flushes(database, ids)) < 200:  # past loading, warm
            if time.monotonic() > deadline:
                raise SystemExit("the jobs did not start")
            time.sleep(0.5)
        traffic: Samples = defaultdict(list)
        errors, events, generator = 0, [], []
        marks = [read_mark(database, ids, pid, server)]
        firsts = []
        for _ in range(ROUNDS):
            firsts.append(first_flushes_after(database, ids, marks[-1].wall))
            time.sleep(max(0.0, marks[-1].at + SECONDS - time.monotonic()))  # quiet
            marks.append(read_mark(database, ids, pid, server))
            cpu = time.process_time()  # the load generator's own CPU: it shares the cores
            positions = [step - 1 for step, _ in marks[-1].last]
            clients = pollers.load(target, ids, positions, seconds=SECONDS, clients=CLIENTS,
                                   subscribers=0 if bare else SUBSCRIBERS)  # fmt: skip
            (samples, failed, streams), first = run(loaded(database, ids, marks[-1].wall, clients))
            generator.append((time.process_time() - cpu) / SECONDS)
            marks.append(read_mark(database, ids, pid, server))
            firsts.append(first)
            for name, values in samples.items():
                traffic[name] += values
            errors += failed
            events.append(streams)
        firsts.append(first_flushes_after(database, ids, marks[-1].wall))
        time.sleep(max(0.0, marks[-1].at + SECONDS - time.monotonic()))
        marks.append(read_mark(database, ids, pid, server))
        windows = [window(a, f, b) for (a, b), f in
                   zip(itertools.pairwise(marks), firsts, strict=True)]  # fmt: skip
        for job_id in ids:
            api.post(f"/jobs/{job_id}/cancel")
        database.dispose()
    return Run(bare, traffic, errors, events, generator, windows)


def speed_tables(windows: list[Window], drops: list[list[float]], server: str) -> str:
    """Every window's figures, then each round's drop per job and their mean."""
    rows = [[f"{k + 1} {'loaded' if k % 2 else 'quiet'}", *(f"{s:.0f}" for s in w.speeds),
             f"{w.server:.2f}", f"{w.workers:.2f}", f"{w.stolen:.2f}"]
            for k, w in enumerate(windows)]  # fmt: skip
    jobs = [f"job {k + 1}" for k in range(len(windows[0].speeds))]
    header = [*jobs, f"{server} CPU (cores)", "workers' CPU (their writers too)", "stolen"]
    round_rows = [[f"round {r + 1}", *(f"{-100 * d:+.1f}%" for d in round_)]
                  for r, round_ in enumerate(drops)]  # fmt: skip
    round_rows.append(["mean", *(f"**{-100 * d:+.1f}%**" for d in np.mean(drops, axis=0))])
    return (
        table(["window", *header], rows)
        + "\n\nEach loaded window against the mean of the quiet windows on both sides:\n\n"
        + table(["", *jobs], round_rows)
    )


def disturbance(windows: list[Window]) -> list[str]:
    """Lines on what else shared the machine, if anything did."""
    quiet = np.array([w.speeds for w in windows[0::2]])
    spread = float(((quiet.max(axis=0) - quiet.min(axis=0)) / quiet.max(axis=0)).max())
    stolen = max(w.stolen for w in windows)
    lines = []
    if spread > DRIFT:
        lines.append(f"- The quiet windows differ by up to {100 * spread:.0f}%: other work shared "
                     "the cores, so read the figures as disturbed.")  # fmt: skip
    if stolen > STOLEN:
        lines.append(f"- The hypervisor gave up to {stolen:.2f} cores to other guests in a window "
                     "(steal): the machine itself was shared.")  # fmt: skip
    return lines


def report(run: Run, floor_drop: float | None = None) -> None:
    """Write the run's section of the report; Descent's run is judged against `floor_drop`."""
    bare, samples, windows = run.bare, run.samples, run.windows
    server = "uvicorn (bare app)" if bare else "API"
    every = samples["job"] + samples["loss"]
    rows = [[name, len(values), *percentiles_ms(values, [50, 95, 99]), f"{1000 * max(values):.1f}"]
            for name, values in (("GET /jobs/{id}", samples["job"]),
                                 ("GET /jobs/{id}/loss?after=", samples["loss"]),
                                 ("all", every))]  # fmt: skip
    latency = table(["requests", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    drops = round_drops(windows)
    drop = slower_drop(windows)
    p99 = float(np.percentile(every, 99)) * 1000
    # CPU the polled server spent on the loaded windows beyond the quiet windows around them
    spent = SECONDS * sum(b.server - (a.server + c.server) / 2 for a, b, c in rounds(windows))
    per_request = spent / len(every)
    rate = CLIENTS * 2 / pollers.POLL_SECONDS
    unchanged = ", ".join(
        f"{len(samples[f'{name} 304'])} of {len(samples[name])} {path}"
        for name, path in (("job", "GET /jobs/{id}"), ("loss", "GET /jobs/{id}/loss"))
    )

    def met(ok: bool) -> str:
        # Against the bare app the targets are not its to meet: its figures are their floor.
        return "the floor under the target" if bare else "met" if ok else "MISSED"

    streams = "" if bare else "; ".join(", ".join(events) for events in run.events)
    against_floor = ""
    if floor_drop is not None:
        above = drop - floor_drop
        against_floor = (
            f", {100 * above:.1f} points above the floor's {100 * floor_drop:.1f}% (the bare app, "
            f"below; target at most {100 * TARGET_ABOVE_FLOOR:.0f} points): "
            f"{met(above <= TARGET_ABOVE_FLOOR)}"
        )
    verdict = [
        f"- {server} p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms): "
        f"{met(p99 < TARGET_P99_MS)}.",
        f"- Steps/s drop of the slower job, mean of {ROUNDS} rounds: {100 * drop:.1f}%"
        f"{against_floor}. Each round's worse job: "
        f"{', '.join(f'{100 * max(d):.1f}%' for d in drops)}.",
        f"- Poll errors: {run.errors}."
        + (f" SSE events received per subscriber, round by round: {streams}." if streams else ""),
        f"- The {server} spent {1000 * per_request:.2f} ms of CPU per request"
        f"{'' if bare else ' (SSE included)'}: the "
        f"{rate:.0f} requests/s asked for need {per_request * rate:.2f} cores. The load "
        f"generator used {statistics.fmean(run.generator):.2f} cores. Unchanged answers "
        f"(304): {unchanged}.",
        *disturbance(windows),
    ]
    polled = (
        "uvicorn serving an app that does nothing (bench.pollers.bare_app, a 304 for everything) "
        "while two jobs train in `descent serve --workers 2`"
        if bare
        else "`descent serve --workers 2` (SQLite, the default poll cache) while two jobs train"
    )
    body = f"""
{CLIENTS} pollers (GET /jobs/{{id}} and /jobs/{{id}}/loss?after= every
{pollers.POLL_SECONDS * 1000:.0f} ms each, following the cursor from the job's current step, as
the dashboard does after its overview; their cycles spread evenly over one period) and
{0 if bare else SUBSCRIBERS} SSE subscribers (GET /jobs/{{id}}/events) against {polled}
(CIFAR-10 SVM SGD, batch 200, a loss point every step). Windows of {SECONDS:g} s, quiet and
loaded in turn ({ROUNDS} loaded), starting and ending quiet. The load generator runs on the same
two cores. "stolen": cores' worth of time the hypervisor gave other guests.

## {server} latency under load (every loaded window)

{latency}

## Training speed (steps per second)

{speed_tables(windows, drops, server)}

## Verdict

{chr(10).join(verdict)}
"""
    title = "The floor: dashboard load against an app doing nothing" if bare else "Dashboard load"
    common.write_report("dashboard_load", title, body, variant="bare" if bare else None)


def main() -> None:
    common.options(__doc__)
    common.require_cifar10()
    descent = measure(bare=False)
    floor = measure(bare=True)
    report(descent, floor_drop=slower_drop(floor.windows))
    report(floor)


if __name__ == "__main__":
    main()

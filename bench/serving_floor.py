"""bench.dashboard_load's floor: what the same polls cost when nothing changes.

Each side's CPU is measured with the cores idle, then with both kept busy by stand-ins for two
jobs (the server then shares its core, its caches and its wake-ups with one): an API alone (no
workers) on two queued jobs, every answer a 304 from the poll cache; then uvicorn serving an app
that does nothing (bench.bare_asgi), the floor of any ASGI app on this server and generator.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO, cpu_seconds, free_port, serve, started
from bench.pollers import load, run
from service.settings import Settings

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
    nice = str(Settings().worker_nice)
    command = [sys.executable, "-c", BUSY_CORE, str(args.seconds + 2), nice]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    hogs = [subprocess.Popen(command, env=env) for _ in range(2 if busy else 0)]
    time.sleep(1.0 if busy else 0.0)  # their slabs made
    started, cpu, own = time.monotonic(), cpu_seconds(pid), time.process_time()
    samples, _, _ = run(load(base, ids, [-1, -1], seconds=args.seconds, clients=args.clients))
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


def serving_floor(args: argparse.Namespace, spec: dict[str, Any]) -> tuple[str, Floor]:
    """The report's paragraph on the floor, and the bare server's floor with the cores busy;
    the API alone polls two queued jobs of `spec`."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(Path(tmp), {"DESCENT_POLL_CACHE_BYTES": str(args.poll_cache_bytes)}, workers=0) as (
            base,
            pid,
        ),
    ):
        api = httpx.Client(base_url=base, timeout=30)
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

"""What the benchmarks share: interleaved timing, servers and jobs, the CIFAR-10 data, reports.

Timings are ratios measured in one run: the candidates are timed alternately and each one's
minimum is kept, so a noisy neighbour slows both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from service.db.session import Database
    from service.settings import Settings

Array = NDArray[Any]
REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks"
SHARED_CIFAR10 = REPO.parent / "shared" / "data" / "cifar-10-batches-py"
KERNEL_CACHE = REPO / "var" / "data" / "kernels"  # `make serve`'s
LOCK = "flock /tmp/descent-bench.lock"
POSTGRES_PLACEHOLDER = "postgresql+psycopg://USER@HOST/EMPTY_DB"
FINAL = ("succeeded", "failed", "cancelled")
SETTLE = 0.3  # idle before each timed run: OpenBLAS's threads spin on after a threaded call
RECIPE: dict[str, Any] = {  # the course's SGD recipe as docs/USAGE.md writes it
    "name": "svm-sgd-baseline",
    "dataset": {"name": "cifar10"},
    "model": {"loss": "svm", "reg": 25000},
    "optimizer": {"type": "sgd", "learning_rate": 1e-7, "batch_size": 200, "iterations": 1500},
}
# The settings that change what a benchmark measures, shown in its report's command line if set.
SETTINGS = ("DESCENT_HISTORY_WRITER", "DESCENT_FLUSH_SECONDS")
_options: list[str] = []  # the running benchmark's options, as its report's command line shows


def options(description: str | None, **defaults: Any) -> argparse.Namespace:
    """The command line: an option `--name` for each default, of its type (None: a string)."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        kind = str if default is None else type(default)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    args = parser.parse_args()
    _options[:] = [f"--{name.replace('_', '-')} {value}" for name, value in vars(args).items()
                   if value is not None]  # fmt: skip
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid`, whichever of its threads started them (Linux /proc)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread or the process ended meanwhile
            kids += [int(kid) for kid in (task / "children").read_text().split()]
    return kids


def descendants(pid: int) -> list[int]:
    return [kid for child in children(pid) for kid in (child, *descendants(child))]


@contextlib.contextmanager
def started(
    command: list[str], ready: Callable[[], bool], *, env: dict[str, str], cwd: Path
) -> Iterator[int]:
    """The pid of `command` once `ready()` (within 60 s); stopped on the way out."""
    process = subprocess.Popen(command, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(command)} did not become ready")
            time.sleep(0.1)
        yield process.pid
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    """Send `how`, then a kill if the process has not ended within 30 s."""
    process.send_signal(how)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answers(url: str, status: int = 200) -> bool:
    """Whether GET `url` answers `status` now."""
    try:
        return httpx.get(url, timeout=1).status_code == status
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def serve(home: Path, env: dict[str, str], workers: int = 1) -> Iterator[tuple[httpx.Client, int]]:
    """(a client of its API, its pid) of a ready `descent serve` with its SQLite database and
    data in `home`; `env` adds to the environment."""
    port = free_port()
    full = {
        **os.environ,
        "DESCENT_DATABASE_URL": f"sqlite:///{home / 'descent.db'}",
        "DESCENT_DATA_DIR": str(home / "data"),
        "DESCENT_LOG_LEVEL": "WARNING",
        **env,
    }
    if (found := cifar10_dir()) is not None:
        full.setdefault("DESCENT_CIFAR10_DIR", str(found))
    if "DESCENT_KERNEL_CACHE_DIR" not in env:
        full["DESCENT_KERNEL_CACHE_DIR"] = str(filled_kernel_cache())
    descent = Path(sys.executable).parent / "descent"
    command = [str(descent), "serve", "--port", str(port), "--workers", str(workers)]
    base = f"http://127.0.0.1:{port}"
    with (
        started(command, lambda: answers(f"{base}/readyz"), env=full, cwd=home) as pid,
        httpx.Client(base_url=base, timeout=60) as api,
    ):
        yield api, pid


@functools.cache
def filled_kernel_cache() -> Path:
    """KERNEL_CACHE holding every kernel workers warm up, compiled into it first if it does not
    (a machine's first run), so that no measured job runs beside a compilation."""
    fill = [sys.executable, "-m", "worker.compiled_kernels", str(KERNEL_CACHE)]
    subprocess.run(fill, cwd=REPO, check=True)
    return KERNEL_CACHE


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """This process's stdout and stderr, and so its children's, into `path`."""
    saved = [os.dup(fd) for fd in (1, 2)]
    with path.open("ab") as file:
        for fd in (1, 2):
            os.dup2(file.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def wait_finished(api: httpx.Client, path: str, every: float = 0.5) -> dict[str, Any]:
    """GET `path` (a job or a sweep) until its status is final."""
    found: dict[str, Any]
    while (found := api.get(path).json())["status"] not in FINAL:
        time.sleep(every)
    return found


def migrated(url: str, data_dir: Path, **settings: Any) -> tuple[Database, Settings]:
    """The database at `url` migrated to head, and settings for it."""
    from service.db import migrate
    from service.db.session import Database
    from service.settings import Settings

    migrate.upgrade(url)
    return Database(url), Settings(database_url=url, data_dir=data_dir, **settings)


def submit(database: Database, settings: Settings, spec: dict[str, Any]) -> str:
    """Submit a job straight into `database` (no API); its id."""
    from service.jobs import service
    from service.jobs.spec import JobSpec

    with database.write() as session:
        job = service.submit(session, JobSpec.model_validate(spec), settings)
        session.commit()
        return job.id


def random_job_spec(rng: random.Random) -> dict[str, Any]:
    """A short train job on generated data, drawn from `rng`: what chaos and soak runs submit."""
    return {
        "dataset": {"name": rng.choice(["blobs", "spiral"])},
        "model": {"loss": rng.choice(["svm", "softmax"]), "reg": 0.001},
        "optimizer": {
            "type": rng.choice(["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]),
            "learning_rate": 0.01,
            "batch_size": 16,
            "iterations": rng.randrange(5_000, 30_000),
        },
        "log_every": 10,
        "eval_every": 5_000,
        "seed": rng.randrange(1_000),
    }


def expected_loss_steps(spec: dict[str, Any]) -> list[int]:
    """The steps of the loss points a job of `spec` records: every log_every-th and the last."""
    iterations = spec["optimizer"]["iterations"]
    return sorted({*range(0, iterations, spec["log_every"]), iterations - 1})


def cifar10_dir() -> Path | None:
    for candidate in (os.environ.get("DESCENT_CIFAR10_DIR"), SHARED_CIFAR10):
        if candidate and (Path(candidate) / "data_batch_1").is_file():
            return Path(candidate)
    return None


def require_cifar10() -> Path:
    found = cifar10_dir()
    if found is None:
        raise SystemExit("CIFAR-10 not found: set DESCENT_CIFAR10_DIR (skipping this benchmark)")
    return found


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float  # the minimum over repeats
    runs: tuple[float, ...]
    value: Any  # what the last run returned


def interleaved(
    candidates: Sequence[tuple[str, Callable[[], object]]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    settle_seconds: float = 0.0,
) -> list[Timing]:
    """Time each candidate `repeats` times, alternating between them, each run after
    `settle_seconds` of idle; keep each one's minimum."""
    for _ in range(warmup):
        for _, fn in candidates:
            fn()
    runs: dict[str, list[float]] = {name: [] for name, _ in candidates}
    values: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in candidates:
            time.sleep(settle_seconds)
            start = time.perf_counter()
            values[name] = fn()
            runs[name].append(time.perf_counter() - start)
    return [
        Timing(name, min(runs[name]), tuple(runs[name]), values[name]) for name, _ in candidates
    ]


def percentiles_ms(seconds: Sequence[float], quantiles: Sequence[float]) -> list[str]:
    """The `quantiles` of durations in seconds, as milliseconds to 0.1."""
    return [f"{1000 * value:.1f}" for value in np.percentile(seconds, quantiles)]


def machine() -> str:
    """The processor's exact name, family and model (cloud machines sold under one name can be
    different processors), the cores, and the versions that matter."""
    from threadpoolctl import threadpool_info

    first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    cpu = {key.strip(): value.strip() for key, _, value in
           (line.partition(":") for line in first.splitlines())}  # fmt: skip
    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                     for i in threadpool_info())  # fmt: skip
    return (
        f"{platform.machine()} ({cpu.get('model name', 'unknown processor')}, family "
        f"{cpu.get('cpu family', '?')} model {cpu.get('model', '?')}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}{', ' + blas if blas else ''}"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


VARIANT_MARK = "<!-- variant: {} -->"
VARIANT_LINE = re.compile(r"^<!-- variant: (\S+) -->$", re.MULTILINE)


def write_report(name: str, title: str, body: str, variant: str | None = None) -> None:
    """Write docs/benchmarks/<name>.md with how it was measured, and print it.

    A comparison run (`variant`, e.g. "bare" for dashboard_load's floor or "postgresql" for
    chaos) replaces its own section at the end of the report, every heading one level down; the
    default run rewrites the report above the variant sections and keeps them.
    """
    path = DOCS / f"{name}.md"
    pieces = VARIANT_LINE.split(path.read_text() if path.exists() else "")
    sections = {pieces[i]: pieces[i + 1].strip("\n") for i in range(1, len(pieces), 2)}
    settings = [f"{key}={os.environ[key]}" for key in SETTINGS if key in os.environ]
    command = " ".join([LOCK, *settings, f".venv/bin/python -m bench.{name}", *_options])
    command = re.sub(r"postgresql\S*", POSTGRES_PLACEHOLDER, command)  # no credentials
    text = f"# {title}\n\nMeasured on {machine()}.\n\nReproduce: `{command}`\n\n{body.strip()}\n"
    main = pieces[0]
    if variant is None:
        main = text
    else:
        sections[variant] = re.sub("^#", "##", text, flags=re.MULTILINE)
    parts = [main.rstrip("\n") or f"# {name}"]
    parts += [f"{VARIANT_MARK.format(key)}\n{part.rstrip()}" for key, part in sections.items()]
    path.write_text("\n\n".join(parts) + "\n")
    print(text)

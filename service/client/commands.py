"""The `descent` commands that talk to a server over HTTP: submit, jobs, show, loss, weights,
cancel. Each honours --url / DESCENT_URL and --token / DESCENT_API_TOKEN; an API error prints the
problem's detail (and each invalid field) on stderr and exits 1, never with a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import typer
from rich.console import Console

from service.client import console
from service.client._base import DEFAULT_URL, TOKEN_ENV, URL_ENV, DescentError
from service.client.sync import DescentClient

Url = Annotated[
    str | None,
    typer.Option("--url", envvar=URL_ENV, help="The server's base URL.", show_default=DEFAULT_URL),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar=TOKEN_ENV, help="Bearer token.", show_default=False),
]
JobId = Annotated[str, typer.Argument(help="A job id.", show_default=False)]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def connect(url: str | None, token: str | None) -> Iterator[DescentClient]:
    """A client whose API and connection errors become a message and exit code 1."""
    try:
        with DescentClient(url, token) as client:
            yield client
    except DescentError as exc:
        raise fail(exc.message()) from None


def read_spec(source: str) -> dict[str, Any]:
    """SPEC.json, or stdin for `-`; a clear message for a missing file or bad JSON."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {source}: {exc.strerror or exc}") from None
    name = "stdin" if source == "-" else source
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise fail(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise fail(f"{name} must hold a JSON object (a JobSpec)")
    return spec


def submit(
    spec: Annotated[str, typer.Argument(metavar="SPEC.json", help="A JobSpec file, or - (stdin).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show live progress until the job ends.")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Makes retries safe (the same key replays the job).")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit a job and print its id; with --follow, exit 0 only if it succeeds."""
    body = read_spec(spec)
    with connect(url, token) as client:
        job = client.submit(body, idempotency_key=idempotency_key)
        typer.echo(job.id)
        if not follow:
            return
        err = Console(stderr=True, highlight=False)
        try:
            job = console.Follower(err).follow(client, job)
        except KeyboardInterrupt:
            err.print(f"stopped following; the job goes on (descent cancel {job.id})")
            raise typer.Exit(130) from None
        err.print(console.summary(job), markup=False, soft_wrap=True)
        if job.status != "succeeded":
            raise typer.Exit(1)


def jobs(
    status: Annotated[Status | None, typer.Option(help="Only jobs in this status.")] = None,
    task: Annotated[str | None, typer.Option(help="Only jobs of this task.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many jobs, newest first.")] = 20,
    url: Url = None,
    token: Token = None,
) -> None:
    """List jobs, newest first, as a table."""
    with connect(url, token) as client:
        found = list(client.list(status=status, task=task, limit=limit))
    if not found:
        typer.echo("no jobs", err=True)
        return
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=200)  # a pipe gets whole columns, not ellipses
    out.print(console.job_table(found))


def show(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """Print one job as JSON."""
    with connect(url, token) as client:
        job = client.get(job_id)
    typer.echo(job.model_dump_json(indent=2))


def loss(
    job_id: JobId,
    csv: Annotated[bool, typer.Option("--csv", help="Every point as CSV (step,loss).")] = False,
    max_points: Annotated[
        int | None, typer.Option(min=2, help="At most this many points, keeping the shape.")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """The loss curve: a summary and a sparkline, or the points as CSV."""
    with connect(url, token) as client:
        points = client.loss(job_id, max_points=max_points)
    if not csv:
        typer.echo(console.loss_summary(points))
        return
    lines = ["step,loss"]
    lines += [f"{p.step},{'' if p.loss is None else repr(p.loss)}" for p in points]
    sys.stdout.write("\n".join(lines) + "\n")


def weights(
    job_id: JobId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write W.", show_default="ID-W.npy"),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Download W (classes x features, bias last) as an .npy file."""
    with connect(url, token) as client:
        W = client.weights(job_id)
    path = output or Path(f"{job_id}-W.npy")
    try:
        with path.open("wb") as handle:
            np.save(handle, W, allow_pickle=False)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror or exc}") from None
    shape = " x ".join(str(n) for n in W.shape)
    typer.echo(f"wrote {path} ({shape} {W.dtype})")


def cancel(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """Cancel a queued job at once, or a running one at its next step batch."""
    with connect(url, token) as client:
        job = client.cancel(job_id)
    if job.status == "cancelled":
        typer.echo(f"cancelled {job.id}")
    else:
        typer.echo(f"cancelling {job.id} ({job.status}): it stops at its next step batch")


def register(app: typer.Typer) -> None:
    for command in (submit, jobs, show, loss, weights, cancel):
        app.command(rich_help_panel="Client")(command)

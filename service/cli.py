"""The `descent` command: the server side (serve, worker, migrate, prune) and a client of a
running server (submit, jobs, show, loss, weights, cancel; see service/client/commands.py)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Annotated, NoReturn

import typer

from service.client.commands import register
from service.observability import logs
from service.settings import get_settings

log = logging.getLogger("descent.cli")

app = typer.Typer(
    name="descent",
    help="Descent: train linear classifiers with the optimizers of CS231n's SGD notes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _configure_logging() -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)


def _migrate() -> int:
    from service.db import migrate

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    log.info("database at head %s", ", ".join(migrate.head_revisions()))
    return 0


def _prune(days: float | None) -> int:
    from service import maintenance
    from service.db.session import Database

    settings = get_settings()
    days = days if days is not None else settings.retention_days
    if days is None:
        raise SystemExit("no retention period: set DESCENT_RETENTION_DAYS or pass --days")
    database = Database(settings.database_url)
    total = 0
    while True:
        with database.transaction() as session:
            pruned = maintenance.prune_expired(session, days)
        total += pruned
        if pruned == 0:
            break
    database.dispose()
    log.info("downsampled the history of %d finished job(s)", total)
    print(f"downsampled the history of {total} finished job(s)")
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    from service.processes import WorkerProcesses, serve_with

    _migrate()
    processes = WorkerProcesses(workers)

    def _terminate(_signum: int, _frame: FrameType | None) -> None:
        # uvicorn re-raises the signal it caught after shutting down; turn it into a clean exit.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    processes.start()
    serve_with(processes)  # /readyz counts them
    try:
        settings = get_settings()
        uvicorn.run(
            "service.app:create_served_app",
            factory=True,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's records go to the root handler, in DESCENT_LOG_FORMAT
            access_log=settings.access_log,
        )
    finally:
        processes.stop()
    return 0


def _worker(concurrency: int, burst: bool) -> NoReturn:
    """Become `python -m worker` (the worker package owns the worker loop)."""
    args = [sys.executable, "-m", "worker", "--concurrency", str(concurrency)]
    os.execv(sys.executable, args + (["--burst"] if burst else []))


@app.command(rich_help_panel="Server")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (0 = API only).")] = 1,
) -> None:
    """Migrate, then run the API and N workers."""
    _configure_logging()
    if workers < 0:
        raise SystemExit("--workers must be 0 or more")
    _serve(host, port, workers)


@app.command(rich_help_panel="Server")
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once (processes).")] = 1,
    burst: Annotated[bool, typer.Option("--burst", help="Exit when the queue is empty.")] = False,
) -> None:
    """Run a standalone worker."""
    _configure_logging()
    _worker(concurrency, burst)


@app.command(rich_help_panel="Server")
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    _configure_logging()
    _migrate()


@app.command(rich_help_panel="Server")
def prune(
    days: Annotated[
        float | None, typer.Option(help="Override the retention period.", show_default=False)
    ] = None,
) -> None:
    """Downsample finished jobs' history older than DESCENT_RETENTION_DAYS."""
    _configure_logging()
    _prune(days)


register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `descent`; the exit code (a SystemExit message goes to stderr, with code 1)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="descent")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

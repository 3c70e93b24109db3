"""The `descent` command: serve (API + workers), worker, migrate."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from service.settings import get_settings

log = logging.getLogger("descent.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="descent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then run the API and N workers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (0 = API only)")

    worker = commands.add_parser("worker", help="run a standalone worker")
    worker.add_argument("--concurrency", type=int, default=1, help="jobs run at once (processes)")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")

    commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    prune = commands.add_parser(
        "prune", help="downsample finished jobs' history older than DESCENT_RETENTION_DAYS"
    )
    prune.add_argument("--days", type=float, default=None, help="override the retention period")
    return parser


def _migrate() -> int:
    from service.db import migrate

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    log.info("database at head %s", ", ".join(migrate.head_revisions()))
    return 0


def _prune(days: float | None) -> int:
    from service import retention
    from service.db.session import Database

    settings = get_settings()
    days = days if days is not None else settings.retention_days
    if days is None:
        raise SystemExit("no retention period: set DESCENT_RETENTION_DAYS or pass --days")
    database = Database(settings.database_url)
    total = 0
    while True:
        with database.transaction() as session:
            pruned = retention.prune_expired(session, days)
        total += pruned
        if pruned == 0:
            break
    database.dispose()
    log.info("downsampled the history of %d finished job(s)", total)
    print(f"downsampled the history of {total} finished job(s)")
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    from service.processes import WorkerProcesses

    _migrate()
    processes = WorkerProcesses(workers)

    def _terminate(_signum: int, _frame: FrameType | None) -> None:
        # uvicorn re-raises the signal it caught after shutting down; turn it into a clean exit.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    processes.start()
    try:
        settings = get_settings()
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
        )
    finally:
        processes.stop()
    return 0


def _worker(concurrency: int, burst: bool) -> NoReturn:
    """Become `python -m worker` (the worker package owns the worker loop)."""
    args = [sys.executable, "-m", "worker", "--concurrency", str(concurrency)]
    os.execv(sys.executable, args + (["--burst"] if burst else []))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.command == "migrate":
        return _migrate()
    if args.command == "prune":
        return _prune(args.days)
    if args.command == "serve":
        if args.workers < 0:
            raise SystemExit("--workers must be 0 or more")
        return _serve(args.host, args.port, args.workers)
    return _worker(args.concurrency, args.burst)


if __name__ == "__main__":
    sys.exit(main())

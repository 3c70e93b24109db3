"""`python -m worker [--concurrency N] [--burst]`, also reached as `descent worker`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service import processes
from service.observability import logs
from service.settings import get_settings
from worker import supervisor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="descent worker", description="Run a Descent worker.")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at once (processes)")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    settings = get_settings()
    # Jobs yield the cores to the API, so a dashboard's polls stay fast while they train.
    processes.lower_priority(settings.worker_nice)
    logs.configure(settings.log_level, settings.log_format)
    if args.concurrency == 1:
        return supervisor.run_single(settings, burst=args.burst)
    return supervisor.run_many(args.concurrency, burst=args.burst)


if __name__ == "__main__":
    sys.exit(main())

"""GET /metrics in the Prometheus text format (prometheus-client).

HTTP latency is measured by a middleware, labelled by route template (never by raw path, so job
ids do not explode the label set). Job figures are read from the database at scrape time, so they
are right whichever process (API or worker) changed them: jobs by status, queue depth, recent claim
latency, and the steps per second of running jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db.base import utcnow
from service.db.models import JOB_STATUSES, Job
from service.db.session import Database

RECENT = timedelta(minutes=5)


class JobCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with self.database.read() as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
            recent = session.execute(
                select(Job.created_at, Job.started_at).where(Job.started_at >= now - RECENT)
            ).all()
            running = session.execute(
                select(Job.progress_step, Job.started_at).where(Job.status == "running")
            ).all()
        by_status = GaugeMetricFamily("descent_jobs", "Jobs by status", labels=["status"])
        for status in JOB_STATUSES:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "descent_queue_depth", "Jobs waiting for a worker", value=counts.get("queued", 0)
        )
        waits = [(started - created).total_seconds() for created, started in recent if started]
        yield GaugeMetricFamily(
            "descent_claim_latency_seconds",
            "Mean time from submission to a worker's first claim, over jobs started in the last "
            "5 minutes",
            value=sum(waits) / len(waits) if waits else 0.0,
        )
        rate = sum(
            step / max((now - started).total_seconds(), 1e-9)
            for step, started in running
            if started is not None
        )
        yield GaugeMetricFamily(
            "descent_steps_per_second", "Steps per second summed over running jobs", value=rate
        )


class HttpMetrics:
    """ASGI middleware timing every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.latency = Histogram(
            "descent_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )

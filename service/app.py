"""The app factory: settings in, a FastAPI app with its own database out."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from service import api_docs, openapi, processes
from service.auth import BearerAuth
from service.dashboard.router import router as dashboard_router
from service.datasets.router import router as datasets_router
from service.db.session import Database
from service.events.router import StreamCount
from service.events.router import router as events_router
from service.head_requests import HeadAsGet
from service.health.router import router as health_router
from service.jobs.live_reads import LiveReads
from service.jobs.router import router as jobs_router
from service.observability import logs
from service.observability.metrics import HttpMetrics, JobCollector
from service.observability.router import router as metrics_router
from service.problem_responses import install_error_handlers
from service.request_bodies import RequestBodyLimits
from service.settings import Settings, get_settings
from service.sweeps.router import router as sweeps_router

DESCRIPTION = """
Train linear classifiers (multiclass SVM, softmax) with the optimization strategies of CS231n's
"Optimization: Stochastic Gradient Descent" notes. Submit a job, watch its loss curve, download W.
Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_format)
    registry = CollectorRegistry()  # one per app, so apps built side by side never clash
    live_reads = LiveReads(settings.poll_cache_bytes, settings.poll_cache_staleness_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        app.state.database = database
        collector = JobCollector(database)
        registry.register(collector)
        try:
            async with live_reads.serving(database):
                yield
        finally:
            registry.unregister(collector)
            database.dispose()

    app = FastAPI(
        title="Descent",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their assets from a CDN: see service.api_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.workers = None  # the worker processes served beside the API, if any (/readyz)
    app.state.metrics_registry = registry
    app.state.live_reads = live_reads  # the polled reads and the event streams' reads
    app.state.event_streams = StreamCount()  # against DESCENT_MAX_EVENT_STREAMS
    install_error_handlers(app)
    app.add_middleware(
        RequestBodyLimits,
        upload_bytes=settings.max_upload_bytes,
        json_bytes=settings.max_json_bytes,
        timeout_seconds=settings.request_body_timeout_seconds,
    )
    app.add_middleware(BearerAuth, token=settings.api_token)
    app.add_middleware(HeadAsGet)
    app.add_middleware(HttpMetrics, registry=registry)  # outermost: times every answer
    openapi.install(app, token_required=bool(settings.api_token))
    api_docs.install(app)  # before the dashboard, whose /static/{path} would shadow its assets
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(jobs_router)
    app.include_router(datasets_router)
    app.include_router(sweeps_router)
    app.include_router(events_router)
    app.include_router(dashboard_router)
    return app


def create_served_app() -> FastAPI:
    """The app as `descent serve` runs it, alone in its process.

    Everything built at start-up (modules, routes, models: tens of thousands of objects, pinned
    by tests/cli) is moved out of the garbage collector's sight with gc.freeze(). Otherwise every
    full collection walks it all again with every request in flight waiting, which dominated the
    API's tail latency under a dashboard's load (bench.dashboard_load).
    Not done in create_app: tests build many apps in one process, and frozen objects are never
    collected.
    """
    app = create_app()
    app.state.workers = processes.served()
    gc.collect()
    gc.freeze()
    return app

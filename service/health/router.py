"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

from service.db import migrate
from service.deps import DatabaseDep
from service.problem_responses import problem
from service.processes import WorkerProcesses

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated, and every worker process asked for runs",
    responses={503: {"content": {"application/problem+json": {}}}},
)
async def readyz(request: Request, database: DatabaseDep) -> object:
    try:
        migrated = await run_in_threadpool(migrate.is_migrated, database.engine)
    except SQLAlchemyError as exc:
        return problem(503, f"Database unreachable: {type(exc).__name__}", slug="not-ready")
    if not migrated:
        return problem(503, "Database schema is not at the latest migration", slug="not-ready")
    workers: WorkerProcesses | None = request.app.state.workers
    if workers is not None and (running := workers.running()) < workers.count:
        detail = f"{running} of {workers.count} worker processes run (the others are restarting)"
        return problem(503, detail, slug="not-ready")
    return {"status": "ready", "database": database.engine.dialect.name}

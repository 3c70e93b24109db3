"""GET /sweeps sums each sweep up (status, counts, best, finished_at) exactly as GET /sweeps/{id}
does, from aggregates whose reads do not grow with the sweeps' trials."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update
from sqlalchemy.engine import Connection

from service.db.models import Job
from service.db.session import Database
from service.sweeps import reads
from service.sweeps.schemas import SweepSummary
from tests.sweeps.conftest import sweep_request

pytestmark = pytest.mark.postgres

DETAIL_ONLY = ("request", "jobs", "leaderboard")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _sweep(client: TestClient, n_trials: int, metric: str = "val_accuracy") -> dict[str, Any]:
    space = {"model.reg": {"values": [i / 10 for i in range(n_trials)]}}
    response = client.post("/sweeps", json=sweep_request(space=space, metric=metric))
    assert response.status_code == 202, response.json()
    sweep: dict[str, Any] = response.json()
    return sweep


def _set(database: Database, job_id: str, status: str, minute: int = 0, **values: Any) -> None:
    """Put a trial where a worker would have left it."""
    finished = T0 + timedelta(minutes=minute) if status not in ("queued", "running") else None
    with database.transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=status, finished_at=finished, **values)
            .execution_options(synchronize_session=False)
        )


def _metrics(val: float, loss: float) -> dict[str, float]:
    return {"val_accuracy": val, "train_accuracy": val, "test_accuracy": val / 2, "loss": loss,
            "best_loss": loss}  # fmt: skip


PRUNED = {"type": "pruned", "message": "below the top 1/3", "step": 100}


def test_the_list_sums_up_each_sweep_as_its_own_page_does(
    client: TestClient, database: Database
) -> None:
    accuracy = [job["id"] for job in _sweep(client, 5)["jobs"]]
    _set(database, accuracy[0], "succeeded", 1, metrics=_metrics(0.8, 0.5))
    _set(database, accuracy[1], "succeeded", 4, metrics=_metrics(0.9, 0.7))
    _set(database, accuracy[2], "succeeded", 2, metrics=_metrics(0.9, 0.1))  # a later tie
    _set(database, accuracy[3], "cancelled", 3, error=PRUNED, metrics=_metrics(0.95, 0.1))
    _set(database, accuracy[4], "failed", 5, error={"type": "diverged", "message": "nan"})
    loss = [job["id"] for job in _sweep(client, 4, metric="loss")["jobs"]]
    _set(database, loss[0], "succeeded", 1, metrics=_metrics(0.9, 0.5))
    _set(database, loss[1], "running", metrics=_metrics(0.1, 0.01))
    _set(database, loss[2], "cancelled", 2)
    _set(database, loss[3], "succeeded", 3, metrics=_metrics(0.2, 0.3))
    waiting = _sweep(client, 3, metric="best_loss")
    unscored = [job["id"] for job in _sweep(client, 3, metric="best_loss")["jobs"]]
    _set(database, unscored[0], "failed", 7)
    _set(database, unscored[1], "succeeded", 6, metrics={})  # no best_loss recorded
    _set(database, unscored[2], "cancelled", 2)

    listed = client.get("/sweeps").json()["items"]

    assert len(listed) == 4
    for item in listed:
        detail = client.get(f"/sweeps/{item['id']}").json()
        assert item == {k: v for k, v in detail.items() if k not in DETAIL_ONLY}
    first, second, third, fourth = listed[::-1]
    assert (first["status"], first["best"]["job_id"], first["best"]["value"]) == (
        "succeeded", accuracy[1], 0.9)  # fmt: skip
    assert first["best"]["test_accuracy"] == 0.45 and first["best"]["val_accuracy"] == 0.9
    assert first["counts"] == {"queued": 0, "running": 0, "succeeded": 3, "failed": 1,
                               "cancelled": 0, "pruned": 1}  # fmt: skip
    assert first["finished_at"].startswith("2030-01-01T00:05:00")
    assert (second["status"], second["best"]["job_id"], second["best"]["value"]) == (
        "running", loss[3], 0.3)  # fmt: skip
    assert second["counts"]["cancelled"] == 1 and second["finished_at"] is None
    assert (third["id"], third["status"], third["best"]) == (waiting["id"], "queued", None)
    assert third["counts"]["queued"] == 3 and third["finished_at"] is None
    assert (fourth["status"], fourth["best"]) == ("succeeded", None)
    assert fourth["finished_at"].startswith("2030-01-01T00:07:00")


class Reads:
    """The statements run on an engine, and how many rows each one yields (run again)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.statements: list[tuple[str, Any]] = []

    def __call__(self, conn: Connection, cursor: Any, statement: str, parameters: Any,
                 context: Any, executemany: bool) -> None:  # fmt: skip
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.statements.append((statement, parameters))

    def rows(self) -> list[int]:
        with self.database.engine.connect() as conn:
            return [len(conn.exec_driver_sql(s, p).fetchall()) for s, p in self.statements]


def rows_read(database: Database, action: Callable[[], object]) -> list[int]:
    """How many rows each statement `action` runs on the database yields."""
    counter = Reads(database)
    event.listen(database.engine, "before_cursor_execute", counter)
    try:
        action()
    finally:
        event.remove(database.engine, "before_cursor_execute", counter)
    return counter.rows()


@pytest.mark.parametrize("n_trials", [2, 12])
def test_the_list_reads_the_same_rows_however_many_trials_the_sweeps_have(
    client: TestClient, database: Database, n_trials: int
) -> None:
    for metric in ("val_accuracy", "loss", "best_loss"):
        for i, job in enumerate(_sweep(client, n_trials, metric=metric)["jobs"]):
            status = ("succeeded", "failed", "running")[i % 3]
            _set(database, job["id"], status, i, metrics=_metrics(i / 20, 1 - i / 20))

    def page() -> list[SweepSummary]:
        with database.read() as session:
            return reads.list_page(session, cursor=None, limit=50).items

    rows = rows_read(database, page)

    # The page of sweeps, then one row per sweep: its counts, and its best trial.
    assert rows == [3, 3, 3]
    assert all(item.best is not None for item in page())

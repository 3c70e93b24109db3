"""Wake idle workers when a job becomes claimable: PostgreSQL NOTIFY, sent on commit.

On SQLite there is no such channel; idle workers poll (one indexed query every
DESCENT_POLL_SECONDS), which is also the backstop on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "descent_jobs"


def job_queued(session: Session) -> None:
    """Tell listening workers that a job is queued (delivered when the transaction commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))

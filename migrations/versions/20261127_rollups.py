"""Rollups: metric_rollups, the per-block extremes that downsampled curves read, backfilled.

Revision ID: 0004_rollups
Revises: 0003_sweeps
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0004_rollups"
down_revision: str | None = "0003_sweeps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_metric_rollups_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "job_id", "series", "level", "block", name=op.f("pk_metric_rollups")
        ),
    )
    # The histories already stored get their rollups, one job at a time.
    from service.history import rollup_store

    session = Session(bind=op.get_bind())
    for (job_id,) in session.execute(sa.text("SELECT DISTINCT job_id FROM metric_points")).all():
        rollup_store.rebuild(session, job_id)
    session.flush()


def downgrade() -> None:
    op.drop_table("metric_rollups")

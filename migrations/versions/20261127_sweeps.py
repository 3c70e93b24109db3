"""Sweeps: the sweeps table, jobs.sweep_id / params / evaluation, datasets.dtype.

Revision ID: 0003_sweeps
Revises: 0002_reliability
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from service.db.base import UTCDateTime

revision: str = "0003_sweeps"
down_revision: str | None = "0002_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("n_trials", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("sweep_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("params", JSON, nullable=True))
        batch_op.add_column(sa.Column("evaluation", JSON, nullable=True))
        batch_op.create_foreign_key(op.f("fk_jobs_sweep_id_sweeps"), "sweeps", ["sweep_id"], ["id"])
    op.create_index("ix_jobs_sweep_id", "jobs", ["sweep_id"])
    with op.batch_alter_table("datasets") as batch_op:
        batch_op.add_column(sa.Column("dtype", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch_op:
        batch_op.drop_column("dtype")
    op.drop_index("ix_jobs_sweep_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("fk_jobs_sweep_id_sweeps"), type_="foreignkey")
        batch_op.drop_column("evaluation")
        batch_op.drop_column("params")
        batch_op.drop_column("sweep_id")
    op.drop_table("sweeps")

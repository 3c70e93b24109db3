"""jobs.progress_phase: what a running job waits for when it is not stepping.

Revision ID: 0005_progress_phase
Revises: 0004_rollups
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_progress_phase"
down_revision: str | None = "0004_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("progress_phase", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("progress_phase")

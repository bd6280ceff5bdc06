"""step progress: what a multi-step activity has done, for its next attempt

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_progress",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("step_progress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_step_progress_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_progress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_step_progress_expires_at"))
    op.drop_table("step_progress")

"""callback claims: signed IM callbacks taken recently, shared by every API replica

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callback_claims",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "key"),
    )
    with op.batch_alter_table("callback_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callback_claims_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("callback_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callback_claims_expires_at"))
    op.drop_table("callback_claims")

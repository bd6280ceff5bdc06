"""wecom: the WeCom adapter's rooms, per-person cards (single-use response codes) and group
messages sent once, shared by the API (callbacks) and the workers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_rooms",
        sa.Column("chat_id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("waiting", sa.JSON(), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id"),
    )
    op.create_table(
        "wecom_cards",
        sa.Column("chat_id", sa.String(length=32), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("response_code", sa.String(length=256), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "userid"),
    )
    op.create_table(
        "wecom_sent",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("wecom_sent")
    op.drop_table("wecom_cards")
    op.drop_table("wecom_rooms")

"""assistant: room transcript, post-incident reviews, API runbooks, incident alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alerts", sa.JSON(), nullable=True))

    op.create_table(
        "transcript",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("from_bot", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "chat_id", "message_id", name="uq_transcript_message"),
    )
    with op.batch_alter_table("transcript", schema=None) as batch_op:
        batch_op.create_index("ix_transcript_incident_at", ["incident_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_transcript_at"), ["at"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("generator", sa.String(length=200), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        sa.UniqueConstraint("incident_id", "version", name="uq_reviews_incident_version"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "runbooks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("runbooks")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_incident_id"))
    op.drop_table("reviews")
    with op.batch_alter_table("transcript", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_at"))
        batch_op.drop_index("ix_transcript_incident_at")
    op.drop_table("transcript")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("alerts")

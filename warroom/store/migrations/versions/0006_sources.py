"""sources: incidents of incident sources (Alertmanager, Grafana, PagerDuty, webhooks) and the
deliveries taken from them

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_links",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=1000), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "external_id"),
        sa.UniqueConstraint("incident_id", name="uq_source_links_incident"),
    )
    op.create_table(
        "source_deliveries",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "key"),
    )
    op.create_index("ix_source_deliveries_incident_id", "source_deliveries", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_source_deliveries_incident_id", table_name="source_deliveries")
    op.drop_table("source_deliveries")
    op.drop_table("source_links")

"""WeCom's own SQL tables, beside War Room's (`warroom.store.tables.Base`): created by the
migrations (0005), read and written by `state`.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Integer, String, Table

from warroom.store.tables import Base

rooms = Table(
    "wecom_rooms",
    Base.metadata,
    Column("chat_id", String(32), primary_key=True),
    Column("incident_id", String(64), nullable=False, default=""),
    Column("name", String(200), nullable=False),
    Column("owner", String(64), nullable=False, default=""),
    Column("members", JSON, nullable=False, default=list),
    Column("waiting", JSON, nullable=False, default=list),
    Column("created", Boolean, nullable=False, default=False),
    Column("closed", Boolean, nullable=False, default=False),
    Column("card", JSON, nullable=True),
    Column("card_version", Integer, nullable=False, default=0),
)
cards = Table(
    "wecom_cards",
    Base.metadata,
    Column("chat_id", String(32), primary_key=True),
    Column("userid", String(64), primary_key=True),
    Column("task_id", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("response_code", String(256), nullable=False, default=""),
    Column("at", Float, nullable=False),
)
sent = Table(
    "wecom_sent",
    Base.metadata,
    Column("key", String(300), primary_key=True),
    Column("state", String(16), nullable=False),  # sending, sent, unknown
    Column("at", Float, nullable=False),
)

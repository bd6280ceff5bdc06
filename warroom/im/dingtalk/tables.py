"""DingTalk's own SQL table, beside War Room's (`warroom.store.tables.Base`): robot messages sent
once (`warroom.im.sent_once`), shared by every worker. Created by the migrations (0008).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table

from warroom.store.tables import Base

sent = Table(
    "dingtalk_sent",
    Base.metadata,
    Column("key", String(300), primary_key=True),
    Column("state", String(16), nullable=False),  # sending, sent, unknown
    Column("ref", String(200), nullable=False, default=""),  # processQueryKey
    Column("at", Float, nullable=False),
)

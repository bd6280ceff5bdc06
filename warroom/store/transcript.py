"""The room transcript: every message a war room received, once per platform message id."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import Row, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from warroom.store.db import Database
from warroom.store.tables import TranscriptRow

MAX_TEXT = 20_000


class TranscriptMessage(BaseModel):
    """One message of a room; `author` is the platform's user id (or the bot)."""

    incident_id: str
    platform: str
    chat_id: str
    message_id: str
    author: str
    text: str
    at: datetime
    from_bot: bool = False


class TranscriptStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, messages: list[TranscriptMessage], now: datetime | None = None) -> int:
        """Store messages not stored yet (idempotent by platform + chat + message id); returns how
        many were new. A redelivered platform event or a sweep that overlaps adds nothing."""
        unique = list({(m.platform, m.chat_id, m.message_id): m for m in reversed(messages)}.values())[::-1]
        if not unique:
            return 0
        now = now or datetime.now(UTC)
        rows = [
            {
                "incident_id": m.incident_id,
                "platform": m.platform,
                "chat_id": m.chat_id,
                "message_id": m.message_id,
                "author": m.author[:320],
                "from_bot": m.from_bot,
                "text": m.text[:MAX_TEXT],
                "at": m.at,
                "captured_at": now,
            }
            for m in unique
        ]
        with self.db.session() as s:
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            stmt = (
                insert(TranscriptRow)
                .on_conflict_do_nothing(index_elements=["platform", "chat_id", "message_id"])
                .returning(TranscriptRow.id)
            )
            return len(s.scalars(stmt, rows).all())

    def get(self, platform: str, chat_id: str, message_id: str) -> TranscriptMessage | None:
        with self.db.session() as s:
            row = s.scalar(
                select(TranscriptRow).where(
                    TranscriptRow.platform == platform,
                    TranscriptRow.chat_id == chat_id,
                    TranscriptRow.message_id == message_id,
                )
            )
            return _model(row) if row else None

    def list(self, incident_id: str, *, limit: int | None = None) -> list[TranscriptMessage]:
        """The incident's messages, oldest first; with `limit`, the newest `limit` of them."""
        q = select(*TranscriptRow.__table__.columns).where(TranscriptRow.incident_id == incident_id)
        with self.db.reading() as conn:
            if limit is None:
                rows = conn.execute(q.order_by(TranscriptRow.at, TranscriptRow.id)).all()
            else:
                newest = q.order_by(TranscriptRow.at.desc(), TranscriptRow.id.desc()).limit(limit)
                rows = conn.execute(newest).all()[::-1]
            return [_model(r) for r in rows]

    def prune(self, before: datetime) -> int:
        """Retention: forget messages older than `before`; returns how many were deleted."""
        with self.db.session() as s:
            return s.execute(delete(TranscriptRow).where(TranscriptRow.at < before)).rowcount or 0


def _model(r: TranscriptRow | Row) -> TranscriptMessage:
    return TranscriptMessage(
        incident_id=r.incident_id,
        platform=r.platform,
        chat_id=r.chat_id,
        message_id=r.message_id,
        author=r.author,
        text=r.text,
        at=r.at,
        from_bot=r.from_bot,
    )

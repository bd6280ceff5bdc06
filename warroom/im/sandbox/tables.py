"""The sandbox IM's own data: it is a real IM that lives in SQL, beside War Room's tables.

Alembic's first migration creates these tables with the rest (`warroom/store/migrations`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warroom.store.tables import Base, UTCDateTime


class SandboxUserRow(Base):
    __tablename__ = "sandbox_users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SandboxRoomRow(Base):
    __tablename__ = "sandbox_rooms"

    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SandboxMemberRow(Base):
    __tablename__ = "sandbox_members"

    chat_id: Mapped[str] = mapped_column(ForeignKey("sandbox_rooms.chat_id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("sandbox_users.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="joined")
    joins: Mapped[int] = mapped_column(Integer, default=1)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SandboxMessageRow(Base):
    __tablename__ = "sandbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(ForeignKey("sandbox_rooms.chat_id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    card: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    card_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), nullable=True, unique=True)
    edits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SandboxCallRow(Base):
    """Every call the sandbox received, with the fault it injected: the chaos suite reads it."""

    __tablename__ = "sandbox_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    method: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fault: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

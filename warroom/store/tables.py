"""SQL schema (SQLAlchemy 2 ORM). Alembic migrations under `migrations/` create exactly this.

The store holds: the built-in incident source (incidents, responders, applied actions), the
rooms registry (platform + chat id → incident, and the room's read model), IM user links, the
timeline read model. Platforms that keep data of their own in SQL define their tables in their
package on the same `Base` (the sandbox: `warroom/im/sandbox/tables.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    alerts: Mapped[list | None] = mapped_column(JSON, nullable=True)  # 0002; NULL: none
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status_before_snooze: Mapped[str | None] = mapped_column(String(16), nullable=True)


class ResponderRow(Base):
    __tablename__ = "responders"

    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    responder_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AppliedActionRow(Base):
    """Actions applied at the built-in source, keyed by the workflow's idempotency key."""

    __tablename__ = "applied_actions"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(320))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    result_version: Mapped[int] = mapped_column(Integer)


class RoomRow(Base):
    """Rooms registry and read model: one row per room generation of an incident (a room that
    failed before its chat existed has no chat id); the highest generation is current."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("platform", "chat_id", name="uq_rooms_platform_chat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(300), default="")
    join_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    card_handle: Mapped[str | None] = mapped_column("card_message_id", String(200), nullable=True)
    members: Mapped[list] = mapped_column(JSON, default=list)
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # One of the incident's rooms on another platform than its first (the first: `extra` false).
    extra: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class UserLinkRow(Base):
    """A person's IM user id on one platform, found by email or phone (or set by hand)."""

    __tablename__ = "user_links"
    __table_args__ = (
        UniqueConstraint("platform", "email", name="uq_links_platform_email"),
        UniqueConstraint("platform", "phone", name="uq_links_platform_phone"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    im_user_id: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(16))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimelineRow(Base):
    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_incident_seq", "incident_id", "seq"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16))


# ---- the assistant (migration 0002) -----------------------------------------------------------


class TranscriptRow(Base):
    """Every message a war room received (people's and our own), once per platform message id:
    the assistant's memory, and what makes reviews possible on platforms without history."""

    __tablename__ = "transcript"
    __table_args__ = (
        UniqueConstraint("platform", "chat_id", "message_id", name="uq_transcript_message"),
        Index("ix_transcript_incident_at", "incident_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(320))
    from_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewRow(Base):
    """Post-incident reviews, one row per (re)generation; the highest version is current."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("incident_id", "version", name="uq_reviews_incident_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    markdown: Mapped[str] = mapped_column(Text)
    citations: Mapped[list] = mapped_column(JSON, default=list)
    generator: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RunbookRow(Base):
    """Runbooks added through the API (the configured folder's Markdown files are the others)."""

    __tablename__ = "runbooks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    markdown: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallbackClaimRow(Base):
    """Signed callback requests taken in the last minutes, shared by every API replica: a signed
    request replayed to another replica (or again to this one) is answered but acts no more."""

    __tablename__ = "callback_claims"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StepProgressRow(Base):
    """What a multi-step activity (opening a room) has done so far, written as each step ends, so
    the next attempt skips it even when the worker died before its heartbeat reached Temporal."""

    __tablename__ = "step_progress"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of workflow + activity id
    data: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AccountRow(Base):
    """A person who signs in to the console (issue 18): a local account (scrypt password hash) or
    one first seen through OIDC (no password). `admin` may act on every incident; others only on
    incidents they respond to."""

    __tablename__ = "accounts"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """A personal API token: only its SHA-256 digest is kept; requests with it act as `email`."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(ForeignKey("accounts.email", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- incident sources (migration 0006) ---------------------------------------------------------


class SourceLinkRow(Base):
    """An incident of an incident source (Alertmanager group key, PagerDuty incident id) and ours:
    `at` is the source time of the newest delivery applied, so an older one never rolls it back."""

    __tablename__ = "source_links"
    __table_args__ = (UniqueConstraint("incident_id", name="uq_source_links_incident"),)

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(1000), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SourceDeliveryRow(Base):
    """Deliveries taken, by source and delivery id (or body hash): a redelivery does nothing."""

    __tablename__ = "source_deliveries"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # applied | stale
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

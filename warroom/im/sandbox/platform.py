"""The sandbox IM itself: rooms, members, messages and a user directory kept in the SQL store.

This is the "server side" of the built-in platform. The adapter (`adapter.py`) calls it the
way slack-sdk calls Slack, and the sandbox web page reads it the way a Slack client would.
Everything here is synchronous SQL; callers in async code run it in a thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import false, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.errors import PermanentImError
from warroom.im.sandbox.tables import (
    SandboxCallRow,
    SandboxMemberRow,
    SandboxMessageRow,
    SandboxRoomRow,
    SandboxUserRow,
)
from warroom.store.db import Database

BOT_USER_ID = "warroom-bot"


def _digest(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class SandboxUser(BaseModel):
    id: str
    email: str | None
    phone: str | None
    name: str


class SandboxMember(BaseModel):
    user_id: str
    name: str
    email: str | None
    state: str
    joins: int


class SandboxMessage(BaseModel):
    id: int
    author: str
    author_name: str
    text: str
    card: dict | None
    card_version: int | None
    edits: int
    created_at: datetime


class SandboxRoom(BaseModel):
    chat_id: str
    incident_id: str
    name: str
    topic: str
    state: str
    created_at: datetime
    members: list[SandboxMember] = []
    messages: list[SandboxMessage] = []


class SandboxPlatform:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._calls: list[dict] = []  # logged calls not yet written (see `log_call`)
        self._calls_lock = threading.Lock()

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Session]:
        """A transaction that also writes the calls logged so far: a call costs one transaction
        (its effect), not two. Should the transaction fail, the calls are written on their own.
        Rows the platform only adds go in as Core inserts (a third of an ORM flush's cost)."""
        with self._calls_lock:
            calls, self._calls = self._calls, []
        try:
            with self.db.session(write=write) as s:
                if calls:
                    s.connection().execute(insert(SandboxCallRow.__table__), calls)
                yield s
        except BaseException:
            if calls:
                with self.db.session() as s:
                    s.connection().execute(insert(SandboxCallRow.__table__), calls)
            raise

    def log_call(self, method: str, chat_id: str | None, fault: str | None, now: datetime) -> None:
        """Log a call; it is written with the next transaction (the call's own effect)."""
        with self._calls_lock:
            self._calls.append({"method": method, "chat_id": chat_id, "fault": fault, "at": now})

    def flush_calls(self) -> None:
        """Write the logged calls now (after a call without an effect, or one that only read)."""
        if self._calls:
            with self._tx():
                pass

    # -- directory --
    def lookup_user(self, *, email: str | None, phone: str | None, now: datetime) -> str | None:
        """Everyone with an email or phone exists here; they are provisioned on first lookup."""
        if not email and not phone:
            return None
        contact = email or phone
        assert contact
        user_id = "U" + _digest(contact, 10).upper()
        name = email.split("@")[0] if email else f"user {phone}"
        try:
            with self._tx(write=True) as s:  # one transaction: find, or provision
                found = s.execute(
                    select(SandboxUserRow.id, SandboxUserRow.email).where(
                        or_(
                            SandboxUserRow.email == email if email else false(),
                            SandboxUserRow.phone == phone if phone else false(),
                        )
                    )
                ).all()
                if found:  # the email's user before the phone's, as a person is matched elsewhere
                    return next((r.id for r in found if email and r.email == email), found[0].id)
                s.connection().execute(
                    insert(SandboxUserRow.__table__),
                    {"id": user_id, "email": email, "phone": phone, "name": name, "created_at": now},
                )
        except IntegrityError:
            pass  # provisioned concurrently by another process's lookup: same deterministic id
        return user_id

    def users(self) -> list[SandboxUser]:
        with self._tx() as s:
            rows = s.scalars(select(SandboxUserRow).order_by(SandboxUserRow.name)).all()
            return [SandboxUser(id=r.id, email=r.email, phone=r.phone, name=r.name) for r in rows]

    # -- rooms --
    def create_room(self, *, key: str, incident_id: str, name: str, topic: str, now: datetime) -> str:
        """Creates a room once per key. The insert comes first (one transaction for a new room, the
        common case); a key taken before (a retry, or a concurrent call) answers with its room."""
        chat_id = "C" + _digest(key).upper()
        try:
            with self._tx() as s:
                s.connection().execute(
                    insert(SandboxRoomRow.__table__),
                    {
                        "chat_id": chat_id,
                        "idempotency_key": key,
                        "incident_id": incident_id,
                        "name": name,
                        "topic": topic,
                        "state": "active",
                        "created_at": now,
                    },
                )
        except IntegrityError:
            with self._tx() as s:
                existing = s.scalar(select(SandboxRoomRow.chat_id).where(SandboxRoomRow.idempotency_key == key))
            if existing is None:
                raise
            return existing
        return chat_id

    def dismiss_room(self, chat_id: str, now: datetime) -> None:
        with self._tx() as s:
            room = self._room(s, chat_id)
            if room.state != "dismissed":
                room.state = "dismissed"
                room.dismissed_at = now

    def add_members(self, chat_id: str, user_ids: list[str], now: datetime) -> list[str]:
        """Adds people; returns the ids that are not known users (the rest succeed)."""
        try:
            return self._add_members(chat_id, user_ids, now)
        except IntegrityError:
            # the same people added concurrently (a retry racing its first attempt): they are in now
            return self._add_members(chat_id, user_ids, now)

    def _add_members(self, chat_id: str, user_ids: list[str], now: datetime) -> list[str]:
        unknown = []
        with self._tx(write=True) as s:
            self._active_room(s, chat_id)
            known = set(s.scalars(select(SandboxUserRow.id).where(SandboxUserRow.id.in_(user_ids))))
            members = {
                m.user_id: m
                for m in s.scalars(
                    select(SandboxMemberRow).where(
                        SandboxMemberRow.chat_id == chat_id, SandboxMemberRow.user_id.in_(user_ids)
                    )
                )
            }
            joining: dict[str, dict] = {}
            for uid in user_ids:
                if uid not in known:
                    unknown.append(uid)
                elif (m := members.get(uid)) is None:
                    joining[uid] = {"chat_id": chat_id, "user_id": uid, "state": "joined", "joins": 1, "joined_at": now}
                elif m.state != "joined":
                    m.state, m.joins, m.joined_at = "joined", m.joins + 1, now
            if joining:
                s.connection().execute(insert(SandboxMemberRow.__table__), list(joining.values()))
        return unknown

    def remove_members(self, chat_id: str, user_ids: list[str]) -> None:
        with self._tx() as s:
            self._active_room(s, chat_id)
            for uid in user_ids:
                m = s.get(SandboxMemberRow, (chat_id, uid))
                if m is not None:
                    m.state = "left"

    def is_member(self, chat_id: str, user_id: str) -> bool:
        with self._tx() as s:
            m = s.get(SandboxMemberRow, (chat_id, user_id))
            return m is not None and m.state == "joined"

    # -- messages --
    def post(
        self,
        chat_id: str,
        *,
        author: str,
        text: str = "",
        card: dict | None = None,
        card_version: int | None = None,
        key: str | None,
        now: datetime,
    ) -> int:
        """Posts a message once per key (a repeated key returns the first message's id)."""
        try:
            with self._tx() as s:
                if key:
                    found = s.scalar(select(SandboxMessageRow.id).where(SandboxMessageRow.idempotency_key == key))
                    if found is not None:
                        return found
                self._active_room(s, chat_id)
                message = {
                    "chat_id": chat_id,
                    "author": author,
                    "text": text,
                    "card": card,
                    "card_version": card_version,
                    "idempotency_key": key,
                    "created_at": now,
                }
                return s.connection().execute(insert(SandboxMessageRow.__table__), message).inserted_primary_key[0]
        except IntegrityError:
            with self._tx() as s:
                found = s.scalar(select(SandboxMessageRow.id).where(SandboxMessageRow.idempotency_key == key))
                assert found is not None
                return found

    def edit_text(self, chat_id: str, message_id: int, text: str, now: datetime) -> None:
        """Replaces the text of one of the bot's messages (a streamed answer growing in place)."""
        with self._tx(write=True) as s:
            row = s.get(SandboxMessageRow, message_id, with_for_update=True)
            if row is None or row.chat_id != chat_id or row.card is not None or row.author != BOT_USER_ID:
                raise PermanentImError(f"no bot message {message_id} in {chat_id}", platform="sandbox")
            self._active_room(s, chat_id)
            if row.text != text:
                row.text, row.edits, row.edited_at = text, row.edits + 1, now

    def update_card(self, chat_id: str, message_id: int, card: dict, version: int, now: datetime) -> None:
        """Replaces the card unless a newer version is already shown (late retries lose)."""
        with self._tx(write=True) as s:
            row = s.get(SandboxMessageRow, message_id, with_for_update=True)
            if row is None or row.chat_id != chat_id or row.card is None:
                raise PermanentImError(f"no card message {message_id} in {chat_id}", platform="sandbox")
            self._active_room(s, chat_id)  # a dismissed room is read-only, as on real platforms
            if (row.card_version or 0) >= version:
                return
            row.card, row.card_version, row.edits, row.edited_at = card, version, row.edits + 1, now

    def messages(self, chat_id: str, since: datetime | None = None) -> list[SandboxMessage]:
        with self._tx() as s:
            q = select(SandboxMessageRow).where(SandboxMessageRow.chat_id == chat_id)
            if since:
                q = q.where(SandboxMessageRow.created_at > since)
            rows = s.scalars(q.order_by(SandboxMessageRow.id)).all()
            names = self._names(s)
            return [
                SandboxMessage(
                    id=r.id,
                    author=r.author,
                    author_name=names.get(r.author, r.author),
                    text=r.text,
                    card=r.card,
                    card_version=r.card_version,
                    edits=r.edits,
                    created_at=r.created_at,
                )
                for r in rows
            ]

    # -- reading, for the page and for tests --
    def rooms(self) -> list[SandboxRoom]:
        with self._tx() as s:
            rows = s.scalars(select(SandboxRoomRow).order_by(SandboxRoomRow.created_at.desc())).all()
            return [self._room_model(r) for r in rows]

    def latest_cards(self) -> dict[str, dict]:
        """Each room's newest status card, by chat id (the page's room list shows it)."""
        latest = (
            select(func.max(SandboxMessageRow.id))
            .where(SandboxMessageRow.card_version.is_not(None))
            .group_by(SandboxMessageRow.chat_id)
        )
        with self.db.session() as s:
            rows = s.scalars(select(SandboxMessageRow).where(SandboxMessageRow.id.in_(latest)))
            return {row.chat_id: row.card for row in rows if row.card}

    def room(self, chat_id: str) -> SandboxRoom:
        with self._tx() as s:
            room = self._room_model(self._room(s, chat_id))
            room.members = self._members(s, chat_id)
        room.messages = self.messages(chat_id)
        return room

    def record_call(self, method: str, chat_id: str | None, fault: str | None, now: datetime) -> None:
        self.log_call(method, chat_id, fault, now)
        self.flush_calls()

    # -- helpers --
    @staticmethod
    def _room(s, chat_id: str) -> SandboxRoomRow:  # type: ignore[no-untyped-def]
        room = s.get(SandboxRoomRow, chat_id)
        if room is None:
            raise PermanentImError(f"sandbox room {chat_id} does not exist", platform="sandbox", code="not_found")
        return room

    def _active_room(self, s, chat_id: str) -> SandboxRoomRow:  # type: ignore[no-untyped-def]
        room = self._room(s, chat_id)
        if room.state != "active":
            raise PermanentImError(f"sandbox room {chat_id} is dismissed", platform="sandbox", code="archived")
        return room

    @staticmethod
    def _names(s) -> dict[str, str]:  # type: ignore[no-untyped-def]
        names = {r.id: r.name for r in s.scalars(select(SandboxUserRow))}
        names[BOT_USER_ID] = "War Room"
        return names

    def _members(self, s, chat_id: str) -> list[SandboxMember]:  # type: ignore[no-untyped-def]
        rows = s.execute(
            select(SandboxMemberRow, SandboxUserRow)
            .join(SandboxUserRow, SandboxUserRow.id == SandboxMemberRow.user_id)
            .where(SandboxMemberRow.chat_id == chat_id)
            .order_by(SandboxMemberRow.joined_at)
        ).all()
        return [
            SandboxMember(user_id=m.user_id, name=u.name, email=u.email, state=m.state, joins=m.joins) for m, u in rows
        ]

    @staticmethod
    def _room_model(r: SandboxRoomRow) -> SandboxRoom:
        return SandboxRoom(
            chat_id=r.chat_id,
            incident_id=r.incident_id,
            name=r.name,
            topic=r.topic,
            state=r.state,
            created_at=r.created_at,
        )

"""Rooms registry (platform + chat id → incident) and the war room read model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from warroom.models import Member, RoomState, WarRoom
from warroom.store.db import Database
from warroom.store.tables import RoomRow

R = TypeVar("R", RoomRow, Row)  # an entity, or a row of `_COLUMNS`: both name the same fields
_TABLE = RoomRow.__table__
_COLUMNS = [getattr(RoomRow, c.key).label(c.key) for c in RoomRow.__mapper__.column_attrs]  # named as the entity


class RoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, incident_id: str, room: WarRoom, now: datetime, *, extra: bool = False) -> None:
        """Record the room as the workflow sees it, including a generation that failed before its
        chat existed (so readers see `failed` and why, not an older room). `extra`: one of the
        incident's rooms on another platform than its first."""
        if room.state is not RoomState.NONE:
            with self.db.writing(read_modify_write=True) as conn:
                self.save_in(conn, incident_id, room, now, extra=extra)

    @staticmethod
    def save_in(conn: Connection, incident_id: str, room: WarRoom, now: datetime, *, extra: bool = False) -> None:
        """`save` within the write transaction on `conn` (Core: it runs in every `record`)."""
        if room.state is RoomState.NONE:
            return
        row = _by_chat(conn, room)
        if row is not None and row.incident_id != incident_id:
            raise ValueError(f"chat {room.chat_id} already belongs to incident {row.incident_id}")
        _write(conn, incident_id, room, now, extra, None if row is None else row.id)

    def register(self, incident_id: str, room: WarRoom, now: datetime, *, extra: bool = False) -> None:
        """Map a new chat to its incident; an already registered chat is left as it is."""
        if not room.chat_id or room.state is RoomState.NONE:
            return
        # (registered concurrently by a retry of the same create: the unique chat wins)
        with contextlib.suppress(IntegrityError), self.db.writing(read_modify_write=True) as conn:
            if _by_chat(conn, room) is None:
                _write(conn, incident_id, room, now, extra, None)

    def current(self, incident_id: str) -> WarRoom | None:
        """The incident's (first) room in its newest generation, or None when it never had one."""
        with self.db.session() as s:
            row = s.scalar(
                select(RoomRow)
                .where(RoomRow.incident_id == incident_id, RoomRow.extra.is_(False))
                .order_by(RoomRow.generation.desc(), RoomRow.id.desc())
                .limit(1)
            )
            return None if row is None else _room(row)

    def more(self, incident_id: str) -> list[WarRoom]:
        """The incident's rooms on other platforms than its first: the newest of each platform,
        in the order they were first asked for."""
        return self.more_many([incident_id]).get(incident_id, [])

    def all_of(self, incident_id: str) -> tuple[WarRoom | None, list[WarRoom]]:
        """`current` and `more` of the incident, in one query (what a page or a restart reads)."""
        q = select(*_COLUMNS).where(RoomRow.incident_id == incident_id).order_by(RoomRow.id)
        with self.db.reading() as conn:
            rows = conn.execute(q).all()
        firsts = [r for r in rows if not r.extra]
        first = max(firsts, key=lambda r: (r.generation, r.id), default=None)
        more = _newest_per_platform(r for r in rows if r.extra)
        return (None if first is None else _room(first)), [_room(r) for r in more.values()]

    def latest(self, incident_id: str, platform: str, generation: int) -> WarRoom | None:
        """The incident's room on `platform` in `generation` (first or not): what an earlier
        attempt of its creation registered."""
        with self.db.session() as s:
            row = s.scalar(
                select(RoomRow)
                .where(
                    RoomRow.incident_id == incident_id,
                    RoomRow.platform == platform,
                    RoomRow.generation == generation,
                )
                .order_by(RoomRow.id.desc())
                .limit(1)
            )
            return None if row is None else _room(row)

    def current_many(self, incident_ids: list[str]) -> dict[str, WarRoom]:
        """The newest room of each of these incidents (those that have one), in one query: what
        the console's incident list shows beside each incident."""
        out: dict[str, tuple[tuple[int, int], WarRoom]] = {}
        with self.db.session() as s:
            for i in range(0, len(incident_ids), 500):
                rows = s.scalars(
                    select(RoomRow).where(RoomRow.incident_id.in_(incident_ids[i : i + 500]), RoomRow.extra.is_(False))
                )
                for row in rows:
                    rank = (row.generation, row.id)
                    if row.incident_id not in out or out[row.incident_id][0] < rank:
                        out[row.incident_id] = (rank, _room(row))
        return {k: v for k, (_, v) in out.items()}

    def more_many(self, incident_ids: list[str]) -> dict[str, list[WarRoom]]:
        """`more` of each of these incidents (those that have other rooms), in one query."""
        rows: list[RoomRow] = []
        with self.db.session() as s:
            for i in range(0, len(incident_ids), 500):
                rows += s.scalars(
                    select(RoomRow)
                    .where(RoomRow.incident_id.in_(incident_ids[i : i + 500]), RoomRow.extra.is_(True))
                    .order_by(RoomRow.id)
                )
        out: dict[str, list[WarRoom]] = {}
        for (incident_id, _), row in _newest_per_platform(rows).items():
            out.setdefault(incident_id, []).append(_room(row))
        return out

    def incident_for_chat(self, platform: str, chat_id: str) -> str | None:
        with self.db.session() as s:
            return s.scalar(select(RoomRow.incident_id).where(RoomRow.platform == platform, RoomRow.chat_id == chat_id))


def _newest_per_platform(rows: Iterable[R]) -> dict[tuple[str, str], R]:
    """The newest generation of each (incident, platform) among `rows` (given oldest first); a
    dict keeps each platform in the place of its first row."""
    newest: dict[tuple[str, str], R] = {}
    for row in rows:
        key = (row.incident_id, row.platform)
        if key not in newest or newest[key].generation <= row.generation:
            newest[key] = row
    return newest


def _room(row: RoomRow | Row) -> WarRoom:
    return WarRoom(
        state=RoomState(row.state),
        platform=row.platform,
        chat_id=row.chat_id,
        name=row.name,
        join_url=row.join_url,
        generation=row.generation,
        card_handle=row.card_handle,
        members=[Member.model_validate(m) for m in row.members or []],
        detail=row.detail or "",
    )


def _by_chat(conn: Connection, room: WarRoom) -> Row | None:
    """The registered row of the room's chat (its id and incident), if it has a chat."""
    if not room.chat_id:
        return None
    c = _TABLE.c
    return conn.execute(
        select(c.id, c.incident_id).where(c.platform == room.platform, c.chat_id == room.chat_id)
    ).first()


def _write(conn: Connection, incident_id: str, room: WarRoom, now: datetime, extra: bool, row_id: int | None) -> None:
    """Write the room onto `row_id` (its chat's row), else onto its generation's row that has no
    chat yet, else as a new row."""
    c = _TABLE.c
    if row_id is None:
        row = conn.execute(
            select(c.id, c.chat_id)
            .where(
                c.incident_id == incident_id,
                c.generation == room.generation,
                c.platform == room.platform,
                c.extra == extra,
            )
            .order_by(c.id.desc())
            .limit(1)
        ).first()
        if row is not None and row.chat_id:
            if not room.chat_id:
                # Written before the chat existed, arriving after the chat was registered
                # (the timeline writer runs beside the room's creation): nothing newer.
                return
            # that row is another chat's: this one gets its own
        elif row is not None:
            row_id = row.id  # that generation's row from before the chat existed
    values = {
        "chat_id": room.chat_id,
        "generation": room.generation,
        "state": room.state.value,
        "name": room.name or "",
        "join_url": room.join_url,
        "card_message_id": room.card_handle,
        "members": [m.model_dump(mode="json") for m in room.members],
        "detail": room.detail,
        "updated_at": now,
    }
    if row_id is None:
        conn.execute(insert(_TABLE).values(incident_id=incident_id, platform=room.platform, extra=extra, **values))
    else:
        conn.execute(update(_TABLE).where(c.id == row_id).values(**values))

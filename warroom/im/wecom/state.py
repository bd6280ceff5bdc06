"""What the WeCom adapter remembers, in SQL, so that every process sees the same:

- rooms (`wecom_rooms`): the group's name, owner and members as WeCom has them, the people
  waiting for a group that does not exist yet (WeCom needs two members to create one), the newest
  status card, and whether the room is closed (nothing is posted to it afterwards);
- cards (`wecom_cards`): per room and person, the application card last sent (its `task_id`, the
  card version it shows) and its latest unused `response_code`. Codes are single use: the one from
  the send, then the fresh one of each click (which arrives at the API process, while the worker
  updates the cards: hence SQL, not memory);
- sent keys (`wecom_sent`): group messages sent once (`appchat/send` has no dedup key): a key whose
  send may have taken effect (timed out) is not sent again; the response codes spent, so that
  a replayed click cannot hand back a used one; and the phone numbers WeCom did not know, so that no
  process asks again within the hour (many wrong numbers block `getuserid` for a day).

The tables (`tables`) belong to War Room's schema like the sandbox's: the migrations create them
(0005). With no database (a bare adapter in a test or `warroom doctor`) they live in an in-memory
SQLite database.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from warroom.im.wecom.tables import cards, rooms, sent

TABLES = (rooms, cards, sent)


@dataclass
class Room:
    chat_id: str
    incident_id: str
    name: str
    owner: str = ""
    members: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    created: bool = False
    closed: bool = False
    card: dict[str, Any] | None = None
    card_version: int = 0


@dataclass
class Card:
    chat_id: str
    userid: str
    task_id: str
    version: int
    response_code: str


class State:
    def __init__(self, engine: Engine | None = None) -> None:
        # In memory: one connection shared by the worker threads, so one transaction at a time (a
        # connection dropped after a clash would be replaced by an empty database).
        self._mutex: Any = contextlib.nullcontext()
        if engine is None:
            engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
            self._mutex = threading.RLock()
            rooms.metadata.create_all(engine, tables=list(TABLES))
        self.engine = engine

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Any]:
        with self._mutex, self.engine.begin() as connection:
            yield connection

    # ------------------------------------------------------------------ rooms
    def room(self, chat_id: str) -> Room | None:
        with self._begin() as c:
            row = c.execute(select(rooms).where(rooms.c.chat_id == chat_id)).mappings().first()
        return Room(**dict(row)) if row else None

    def add_room(self, chat_id: str, incident_id: str, name: str) -> Room:
        try:
            with self._begin() as c:
                c.execute(insert(rooms).values(chat_id=chat_id, incident_id=incident_id, name=name, members=[],
                                               waiting=[], created=False, closed=False, card_version=0))  # fmt: skip
        except IntegrityError:
            pass  # another attempt or process registered it first
        room = self.room(chat_id)
        assert room is not None
        return room

    def save_room(self, room: Room, **changes: Any) -> Room:
        for k, v in changes.items():
            setattr(room, k, v)
        with self._begin() as c:
            c.execute(update(rooms).where(rooms.c.chat_id == room.chat_id).values(**changes))
        return room

    def open_rooms_of(self, userid: str) -> list[Room]:
        """The open war rooms `userid` is in (or waits for), newest last."""
        with self._begin() as c:
            rows = c.execute(select(rooms).where(rooms.c.closed.is_(False))).mappings().all()
        found = [Room(**dict(r)) for r in rows]
        return [r for r in found if userid in r.members or userid in r.waiting]

    def newer_card(self, chat_id: str, card: dict[str, Any], version: int) -> bool:
        """Keep `card` as the room's status card unless a newer version is kept already."""
        with self._begin() as c:
            done = c.execute(
                update(rooms)
                .where(rooms.c.chat_id == chat_id, rooms.c.card_version < version)
                .values(card=card, card_version=version)
            )
            return done.rowcount > 0

    # ------------------------------------------------------------------ cards and codes
    def cards(self, chat_id: str) -> dict[str, Card]:
        with self._begin() as c:
            rows = c.execute(select(cards).where(cards.c.chat_id == chat_id)).mappings().all()
        return {r["userid"]: Card(r["chat_id"], r["userid"], r["task_id"], r["version"], r["response_code"])
                for r in rows}  # fmt: skip

    def card_sent(self, chat_id: str, userid: str, task_id: str, version: int, code: str) -> None:
        with self._begin() as c:
            c.execute(delete(cards).where(cards.c.chat_id == chat_id, cards.c.userid == userid))
            c.execute(insert(cards).values(chat_id=chat_id, userid=userid, task_id=task_id, version=version,
                                           response_code=code, at=time.time()))  # fmt: skip

    def card_updated(self, chat_id: str, userid: str, version: int, used: str) -> None:
        """The card now shows `version`; `used` is spent (unless a fresher code came meanwhile), and
        remembered as spent: a replayed or redelivered click carrying it cannot bring it back."""
        if used:
            self.claim(_spent(used))
        with self._begin() as c:
            c.execute(update(cards).where(cards.c.chat_id == chat_id, cards.c.userid == userid)
                      .values(version=version))  # fmt: skip
            c.execute(update(cards).where(cards.c.chat_id == chat_id, cards.c.userid == userid,
                                          cards.c.response_code == used).values(response_code=""))  # fmt: skip

    def fresh_code(self, chat_id: str, userid: str, task_id: str, code: str) -> bool:
        """A click's ResponseCode for the card `task_id`: kept for that card's next update (unless
        it was spent already: the same click again)."""
        with self._begin() as c:
            if c.execute(select(sent.c.key).where(sent.c.key == _spent(code))).first() is not None:
                return False
            done = c.execute(
                update(cards)
                .where(cards.c.chat_id == chat_id, cards.c.userid == userid, cards.c.task_id == task_id)
                .values(response_code=code, at=time.time())
            )
            return done.rowcount > 0

    def forget_card(self, chat_id: str, userid: str) -> None:
        with self._begin() as c:
            c.execute(delete(cards).where(cards.c.chat_id == chat_id, cards.c.userid == userid))

    # ------------------------------------------------------------------ lookups WeCom did not know
    def missed_recently(self, kind: str, key: str, seconds: float) -> bool:
        """Did any process ask WeCom for this `key` within `seconds`, and WeCom not know it?"""
        with self._begin() as c:
            at = c.execute(select(sent.c.at).where(sent.c.key == _miss(kind, key))).scalar()
        return at is not None and time.time() - at < seconds

    def missed(self, kind: str, key: str) -> None:
        with self._begin() as c:
            c.execute(delete(sent).where(sent.c.key == _miss(kind, key)))
            c.execute(insert(sent).values(key=_miss(kind, key), state="miss", at=time.time()))

    # ------------------------------------------------------------------ messages sent once
    def claim(self, key: str) -> str | None:
        """None: send it now (the key is marked as sending); else the earlier state."""
        try:
            with self._begin() as c:
                c.execute(insert(sent).values(key=key, state="sending", at=time.time()))
            return None
        except IntegrityError:
            with self._begin() as c:
                state = c.execute(select(sent.c.state).where(sent.c.key == key)).scalar()
            return state or "sending"

    def mark(self, key: str, state: str | None) -> None:
        """`sent` or `unknown` (may have taken effect: never sent again); None: failed, send it again."""
        with self._begin() as c:
            if state is None:
                c.execute(delete(sent).where(sent.c.key == key))
            else:
                c.execute(update(sent).where(sent.c.key == key).values(state=state, at=time.time()))


def _miss(kind: str, key: str) -> str:
    return f"miss:{kind}:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _spent(code: str) -> str:
    """The `wecom_sent` key that marks a response code as used (codes are single use)."""
    return "code:" + hashlib.sha256(code.encode()).hexdigest()[:40]

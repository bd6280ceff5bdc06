"""Messages sent once on platforms whose send call takes no dedup key (DingTalk's robot messages).

War Room keys every message itself; this remembers, in SQL shared by every worker, what each key's
send came to, so that a retried activity — on this worker or on another after a kill — finds it:

- `sent`: answered with the first send's reference, no second call;
- failed with an answer from the platform, or before reaching it: the key is forgotten, sent again;
- `unknown` (timed out, or the connection dropped after the request went out) and `sending` found
  by a later attempt (the worker died mid-send): never sent again. A duplicate war-room message is
  worse than one that may be missing, and the platform gives no way to tell; the log says so.

The table is the platform's own (`key`, `state`, `ref`, `at`): created by the migrations like the
sandbox's. With no database (a bare adapter in a test or `warroom doctor`) it lives in an
in-memory SQLite database. Keys are kept a day: an activity's retries end long before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, create_engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

log = logging.getLogger("warroom.im")
KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Earlier:
    state: str  # "sending", "sent", "unknown"
    ref: str = ""


class SentOnce:
    def __init__(self, table: Table, engine: Engine | None = None) -> None:
        self._table = table
        # In memory: one connection shared by the worker threads, so one transaction at a time.
        self._mutex: Any = contextlib.nullcontext()
        if engine is None:
            engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
            self._mutex = threading.RLock()
            table.metadata.create_all(engine, tables=[table])
        self.engine = engine

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Any]:
        with self._mutex, self.engine.begin() as connection:
            yield connection

    def claim(self, key: str) -> Earlier | None:
        """None: send it now (the key is marked as sending, for every process); else what came of it."""
        t, now = self._table, time.time()
        try:
            with self._begin() as c:
                c.execute(delete(t).where(t.c.at < now - KEEP_SECONDS))
                c.execute(insert(t).values(key=key, state="sending", ref="", at=now))
            return None
        except IntegrityError:
            with self._begin() as c:
                row = c.execute(select(t.c.state, t.c.ref).where(t.c.key == key)).first()
            if row is None:  # forgotten (failed) between the two statements: the caller's retry sends it
                return Earlier("sending")
            if row.state == "sending":
                log.warning("message %s was being sent by an attempt that did not finish: it is not sent again", key)
            return Earlier(row.state, row.ref or "")

    def sent(self, key: str, ref: str) -> None:
        self._set(key, "sent", ref)

    def unknown(self, key: str) -> None:
        self._set(key, "unknown", "")
        log.warning("message %s may or may not have been posted (timed out): it is not posted again", key)

    def failed(self, key: str) -> None:
        with self._begin() as c:
            c.execute(delete(self._table).where(self._table.c.key == key))

    def _set(self, key: str, state: str, ref: str) -> None:
        t = self._table
        with self._begin() as c:
            c.execute(update(t).where(t.c.key == key).values(state=state, ref=ref, at=time.time()))

"""Progress of multi-step activities, kept where the activity's next attempt finds it.

Temporal keeps an activity's heartbeat details, but the SDK sends heartbeats at most every few
seconds: a worker killed in between loses the steps it finished since. A row per activity,
written as each step ends, loses none. Rows outlive any attempt (an IM call is given up after
2 hours) and are removed a day later by the writes that follow.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from warroom.store.db import Database
from warroom.store.tables import StepProgressRow

KEEP = timedelta(days=1)


class StepProgress:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, key: str, data: dict[str, Any], *, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        digest = _digest(key)
        with self.db.session() as s:
            s.execute(delete(StepProgressRow).where(StepProgressRow.expires_at < now))
            row = s.get(StepProgressRow, digest)
            if row is None:
                s.add(StepProgressRow(key=digest, data=data, expires_at=now + KEEP))
            else:
                row.data, row.expires_at = data, now + KEEP

    def load(self, key: str, *, now: datetime | None = None) -> dict[str, Any] | None:
        now = now or datetime.now(UTC)
        with self.db.session() as s:
            row = s.scalars(
                select(StepProgressRow).where(StepProgressRow.key == _digest(key), StepProgressRow.expires_at >= now)
            ).first()
            return dict(row.data) if row is not None else None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()

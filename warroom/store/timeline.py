"""The timeline read model: every audited operation of every incident, in order."""

from __future__ import annotations

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from warroom.models import Outcome, Source, TimelineEntry
from warroom.store.db import Database
from warroom.store.tables import TimelineRow


class TimelineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, entries: list[TimelineEntry]) -> int:
        """Store entries not stored yet (ids are stable, so a retried write adds nothing).

        Returns how many were new. Safe when the same entries are written concurrently (an
        activity retried while its first attempt is still running) or repeated in one batch.
        """
        if not entries:
            return 0
        with self.db.writing() as conn:
            return self.append_in(conn, entries)

    @staticmethod
    def append_in(conn: Connection, entries: list[TimelineEntry]) -> int:
        """`append` within the transaction on `conn` (the workflow's `record` writes the room in
        the same one)."""
        unique = list({e.id: e for e in reversed(entries)}.values())[::-1]  # first of each id, in order
        if not unique:
            return 0
        rows = [
            {
                "id": e.id,
                "incident_id": e.incident_id,
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "source": e.source.value,
                "kind": e.kind,
                "detail": e.detail,
                "outcome": e.outcome.value,
            }
            for e in unique
        ]
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        table = TimelineRow.__table__
        stmt = insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
        return len(conn.execute(stmt, rows).all())

    def last_seq(self, incident_id: str) -> int:
        """The highest sequence number stored for an incident (0 when none): a new workflow run
        for an incident that had one before continues numbering from here, so ids never collide."""
        with self.db.reading() as conn:
            return conn.scalar(select(func.max(TimelineRow.seq)).where(TimelineRow.incident_id == incident_id)) or 0

    def list(self, incident_id: str) -> list[TimelineEntry]:
        q = select(*TimelineRow.__table__.columns).where(TimelineRow.incident_id == incident_id)
        with self.db.reading() as conn:
            rows = conn.execute(q.order_by(TimelineRow.seq)).all()
            return [
                TimelineEntry(
                    id=r.id,
                    incident_id=r.incident_id,
                    seq=r.seq,
                    at=r.at,
                    actor=r.actor,
                    source=Source(r.source),
                    kind=r.kind,
                    detail=r.detail,
                    outcome=Outcome(r.outcome),
                )
                for r in rows
            ]

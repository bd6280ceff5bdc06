"""The timeline read model: every audited operation of every incident, in order."""

from __future__ import annotations

from sqlalchemy import select

from warroom.models import Outcome, Source, TimelineEntry
from warroom.store.db import Database
from warroom.store.tables import TimelineRow


class TimelineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, entries: list[TimelineEntry]) -> int:
        """Store entries not stored yet (ids are stable, so a retried write adds nothing)."""
        if not entries:
            return 0
        with self.db.session() as s:
            known = set(s.scalars(select(TimelineRow.id).where(TimelineRow.id.in_([e.id for e in entries]))))
            fresh = [e for e in entries if e.id not in known]
            s.add_all(
                TimelineRow(
                    id=e.id,
                    incident_id=e.incident_id,
                    seq=e.seq,
                    at=e.at,
                    actor=e.actor,
                    source=e.source.value,
                    kind=e.kind,
                    detail=e.detail,
                    outcome=e.outcome.value,
                )
                for e in fresh
            )
            return len(fresh)

    def list(self, incident_id: str) -> list[TimelineEntry]:
        with self.db.session() as s:
            rows = s.scalars(
                select(TimelineRow).where(TimelineRow.incident_id == incident_id).order_by(TimelineRow.seq)
            ).all()
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

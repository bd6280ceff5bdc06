"""What the incident sources told us: which of our incidents each source incident is, and which
deliveries were taken (a redelivery does nothing; an older delivery is taken but never applied)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from warroom.store.db import Database
from warroom.store.tables import SourceDeliveryRow, SourceLinkRow


class Claim(StrEnum):
    APPLY = "applied"  # newest word on the incident: apply it
    STALE = "stale"  # older than what was applied: taken, changes nothing
    DUPLICATE = "duplicate"  # taken before: changes nothing


@dataclass(frozen=True)
class SourceLink:
    source: str
    external_id: str
    incident_id: str
    url: str
    at: datetime


class SourceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(
        self, source: str, key: str, external_id: str, incident_id: str, at: datetime, url: str, now: datetime
    ) -> tuple[Claim, datetime | None]:
        """Take a delivery, in one transaction with the incident's newest source time: returns what
        to do with it and the time it replaced (for `release`)."""
        try:
            with self.db.session(write=True) as s:
                if s.get(SourceDeliveryRow, (source, key)) is not None:
                    return Claim.DUPLICATE, None
                link = s.get(SourceLinkRow, (source, external_id), with_for_update=True)
                before = link.at if link else None
                outcome = Claim.STALE if link is not None and at < link.at else Claim.APPLY
                if link is None:
                    s.add(
                        SourceLinkRow(source=source, external_id=external_id, incident_id=incident_id, url=url, at=at)
                    )
                elif outcome is Claim.APPLY:
                    link.at = at
                    link.url = url or link.url
                s.add(
                    SourceDeliveryRow(
                        source=source, key=key, incident_id=incident_id, outcome=outcome.value, received_at=now
                    )
                )
                return outcome, before
        except IntegrityError:  # the same delivery (or the first of this incident) taken concurrently
            with self.db.session() as s:
                if s.get(SourceDeliveryRow, (source, key)) is not None:
                    return Claim.DUPLICATE, None
            return self.claim(source, key, external_id, incident_id, at, url, now)

    def release(self, source: str, key: str, external_id: str, before: datetime | None) -> None:
        """Give back a claimed delivery that could not be applied: its redelivery will be taken."""
        with self.db.session(write=True) as s:
            s.execute(delete(SourceDeliveryRow).where(SourceDeliveryRow.source == source, SourceDeliveryRow.key == key))
            link = s.get(SourceLinkRow, (source, external_id), with_for_update=True)
            if link is not None:
                if before is None:
                    s.delete(link)
                else:
                    link.at = before

    def find(self, source: str, external_id: str) -> SourceLink | None:
        with self.db.session() as s:
            row = s.get(SourceLinkRow, (source, external_id))
            return _link(row) if row else None

    def of_incident(self, incident_id: str) -> SourceLink | None:
        with self.db.session() as s:
            row = s.scalars(select(SourceLinkRow).where(SourceLinkRow.incident_id == incident_id)).first()
            return _link(row) if row else None


def _link(row: SourceLinkRow) -> SourceLink:
    return SourceLink(row.source, row.external_id, row.incident_id, row.url, row.at)

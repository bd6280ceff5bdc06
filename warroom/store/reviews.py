"""Post-incident reviews (one row per generation) and the runbooks added through the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from warroom.store.db import Database
from warroom.store.tables import ReviewRow, RunbookRow


class Citation(BaseModel):
    """A source a review or answer cites: a timeline entry, a room message or a runbook."""

    id: str  # as cited in the text, e.g. "T:abc-7", "M:42", "R:db-failover"
    kind: str  # timeline, message, runbook
    at: datetime | None = None
    actor: str = ""
    text: str = ""
    url: str = ""


class StoredReview(BaseModel):
    incident_id: str
    version: int
    markdown: str
    citations: list[Citation] = Field(default_factory=list)
    generator: str
    requested_by: str = ""
    generated_at: datetime


class ReviewStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, key: str, review: StoredReview) -> StoredReview:
        """Store a new version once per `key` (a retried generation returns the first); the
        version given is ignored: it is the next one of the incident."""
        existing = self.by_key(key)
        if existing is not None:
            return existing
        try:
            with self.db.session(write=True) as s:
                latest = s.scalar(
                    select(func.max(ReviewRow.version)).where(ReviewRow.incident_id == review.incident_id)
                )
                row = ReviewRow(
                    key=key,
                    incident_id=review.incident_id,
                    version=(latest or 0) + 1,
                    markdown=review.markdown,
                    citations=[c.model_dump(mode="json") for c in review.citations],
                    generator=review.generator,
                    requested_by=review.requested_by,
                    generated_at=review.generated_at,
                )
                s.add(row)
                s.flush()
                return _model(row)
        except IntegrityError:
            found = self.by_key(key)
            if found is None:
                raise
            return found

    def by_key(self, key: str) -> StoredReview | None:
        with self.db.session() as s:
            row = s.scalar(select(ReviewRow).where(ReviewRow.key == key))
            return _model(row) if row else None

    def latest(self, incident_id: str) -> StoredReview | None:
        with self.db.session() as s:
            row = s.scalar(
                select(ReviewRow)
                .where(ReviewRow.incident_id == incident_id)
                .order_by(ReviewRow.version.desc())
                .limit(1)
            )
            return _model(row) if row else None


class RunbookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, name: str, markdown: str, now: datetime) -> bool:
        """Create or replace; returns True when it was created."""
        with self.db.session(write=True) as s:
            row = s.get(RunbookRow, name, with_for_update=True)
            if row is None:
                s.add(RunbookRow(name=name, markdown=markdown, updated_at=now))
                return True
            row.markdown, row.updated_at = markdown, now
            return False

    def all(self) -> dict[str, str]:
        with self.db.reading() as conn:
            return dict(conn.execute(select(RunbookRow.name, RunbookRow.markdown).order_by(RunbookRow.name)).all())

    def delete(self, name: str) -> bool:
        with self.db.session() as s:
            return bool(s.execute(delete(RunbookRow).where(RunbookRow.name == name)).rowcount)


def _model(r: ReviewRow) -> StoredReview:
    return StoredReview(
        incident_id=r.incident_id,
        version=r.version,
        markdown=r.markdown,
        citations=[Citation.model_validate(c) for c in r.citations or []],
        generator=r.generator,
        requested_by=r.requested_by,
        generated_at=r.generated_at,
    )

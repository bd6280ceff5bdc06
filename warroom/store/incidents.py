"""The built-in incident source: incidents and their responders, driven by the API and CLI."""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Row, and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom import lifecycle
from warroom.errors import Conflict, NotFound
from warroom.models import Action, Alert, Incident, IncidentIn, IncidentStatus, Responder, Severity
from warroom.store.db import Database
from warroom.store.tables import AppliedActionRow, IncidentRow, ResponderRow


def new_incident_id() -> str:
    return secrets.token_hex(4)


class IncidentStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._recent: dict[str, Incident] = {}  # see `recent`: the newest incidents, as last built
        self._recent_lock = threading.Lock()

    def upsert(self, body: IncidentIn, now: datetime) -> tuple[Incident, bool]:
        """Create the incident, or update it when `body.id` exists; returns (incident, created)."""
        try:
            return self._upsert(body, now)
        except IntegrityError:
            if not body.id:
                raise
            # created concurrently under the same id (PostgreSQL cannot lock a missing row): now
            # it exists, so this is an update
            return self._upsert(body, now)

    def _upsert(self, body: IncidentIn, now: datetime) -> tuple[Incident, bool]:
        with self.db.session(write=True) as s:
            row = s.get(IncidentRow, body.id, with_for_update=True) if body.id else None
            if row is None:
                row = IncidentRow(
                    id=body.id or new_incident_id(),
                    title=body.title,
                    description=body.description,
                    severity=body.severity.value,
                    status=body.status.value,
                    labels=body.labels,
                    alerts=[a.model_dump(mode="json") for a in body.alerts] or None,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                self._write_responders(s, row.id, body.responders)
                return self._load(s, row), True
            before = self._load(s, row)
            fields = body.model_dump(exclude_unset=True, exclude={"id", "responders", "alerts"})
            for key, value in fields.items():
                setattr(row, key, value.value if hasattr(value, "value") else value)
            if "status" in fields and body.status is not IncidentStatus.SNOOZED:
                row.snoozed_until = row.status_before_snooze = None
            if "responders" in body.model_fields_set:
                self._write_responders(s, row.id, body.responders)
            if "alerts" in body.model_fields_set:
                row.alerts = [a.model_dump(mode="json") for a in body.alerts] or None
            after = self._load(s, row)
            if _content(after) != _content(before):
                row.version += 1
                row.updated_at = now
            return self._load(s, row), False

    def get(self, incident_id: str) -> Incident:
        with self.db.session() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound(f"incident {incident_id!r} does not exist")
            return self._load(s, row)

    def list(
        self, *, status: IncidentStatus | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Incident], str | None]:
        """Newest first, keyset-paginated: the cursor is the (created_at, id) of the last item."""
        q = select(IncidentRow).order_by(IncidentRow.created_at.desc(), IncidentRow.id.desc())
        if status:
            q = q.where(IncidentRow.status == status.value)
        if cursor:
            at, last_id = _decode_cursor(cursor)
            q = q.where(
                or_(
                    IncidentRow.created_at < at,
                    and_(IncidentRow.created_at == at, IncidentRow.id < last_id),
                )
            )
        with self.db.session() as s:
            fetched = s.scalars(q.limit(limit + 1)).all()
            rows = fetched[:limit]
            # Everyone's responders in one query, not one per incident (the assistant lists 200).
            responders: dict[str, list[ResponderRow]] = {r.id: [] for r in rows}
            for rr in s.scalars(
                select(ResponderRow)
                .where(ResponderRow.incident_id.in_(list(responders)))
                .order_by(ResponderRow.incident_id, ResponderRow.position)
            ):
                responders[rr.incident_id].append(rr)
            items = [self._build(r, responders[r.id]) for r in rows]
        next_cursor = _encode_cursor(items[-1]) if len(fetched) > limit else None
        return items, next_cursor

    def recent(self, limit: int = 200) -> list[Incident]:
        """The newest incidents without their responders: what the assistant compares a new
        incident with. Only ids and versions are read each time; an incident is read and built
        again only when its version changed (in a burst of new incidents, building the newest
        200 for each one took a fifth of the worker's time). Treat the result as read-only."""
        newest = (
            select(IncidentRow.id, IncidentRow.version)
            .order_by(IncidentRow.created_at.desc(), IncidentRow.id.desc())
            .limit(limit)
        )
        with self.db.session() as s:
            keys = s.execute(newest).all()
            with self._recent_lock:
                known = dict(self._recent)
            stale = [k.id for k in keys if k.id not in known or known[k.id].version != k.version]
            for i in range(0, len(stale), 500):  # within every database's limit on bound parameters
                rows = s.execute(select(*IncidentRow.__table__.columns).where(IncidentRow.id.in_(stale[i : i + 500])))
                known.update((r.id, self._build(r, [])) for r in rows)
        found = [known[k.id] for k in keys if k.id in known]  # one deleted meanwhile is left out
        with self._recent_lock:
            self._recent = {i.id: i for i in found}
        return found

    def set_responders(self, incident_id: str, responders: list[Responder], now: datetime) -> Incident:
        with self.db.session(write=True) as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                raise NotFound(f"incident {incident_id!r} does not exist")
            if [r.model_dump() for r in self._load(s, row).responders] != [r.model_dump() for r in responders]:
                self._write_responders(s, incident_id, responders)
                row.version += 1
                row.updated_at = now
            return self._load(s, row)

    def apply_action(
        self,
        incident_id: str,
        action: Action,
        *,
        actor: str,
        key: str,
        now: datetime,
        minutes: int | None = None,
    ) -> Incident:
        """Apply an action exactly once per `key`; a repeated key returns the current incident."""
        with self.db.session(write=True) as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                raise NotFound(f"incident {incident_id!r} does not exist")
            if s.get(AppliedActionRow, key) is not None:
                return self._load(s, row)
            try:
                after = lifecycle.apply(self._load(s, row), action, now, minutes)
            except ValueError as e:
                raise Conflict(str(e)) from e
            row.status = after.status.value
            row.snoozed_until = after.snoozed_until
            row.status_before_snooze = after.status_before_snooze.value if after.status_before_snooze else None
            row.version = after.version
            row.updated_at = now
            s.add(
                AppliedActionRow(
                    key=key,
                    incident_id=incident_id,
                    action=action.value,
                    actor=actor,
                    applied_at=now,
                    result_version=after.version,
                )
            )
            return self._load(s, row)

    # -- helpers --
    @staticmethod
    def _write_responders(s: Session, incident_id: str, responders: list[Responder]) -> None:
        s.execute(delete(ResponderRow).where(ResponderRow.incident_id == incident_id))
        for i, r in enumerate(responders):
            s.add(
                ResponderRow(
                    incident_id=incident_id,
                    responder_id=r.id,
                    position=i,
                    name=r.name,
                    email=r.email,
                    phone=r.phone,
                )
            )
        s.flush()

    @staticmethod
    def _load(s: Session, row: IncidentRow) -> Incident:
        responders = s.scalars(
            select(ResponderRow).where(ResponderRow.incident_id == row.id).order_by(ResponderRow.position)
        ).all()
        return IncidentStore._build(row, responders)

    @staticmethod
    def _build(row: IncidentRow | Row, responders: Sequence[ResponderRow]) -> Incident:
        """An incident from its row (an entity, or the same columns as a plain row)."""
        return Incident(
            id=row.id,
            title=row.title,
            description=row.description,
            severity=Severity(row.severity),
            status=IncidentStatus(row.status),
            labels=dict(row.labels or {}),
            alerts=[Alert.model_validate(a) for a in row.alerts or []],
            version=row.version,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            snoozed_until=_utc(row.snoozed_until),
            status_before_snooze=IncidentStatus(row.status_before_snooze) if row.status_before_snooze else None,
            responders=[Responder(id=r.responder_id, name=r.name, email=r.email, phone=r.phone) for r in responders],
        )


def _utc(dt: datetime | None) -> datetime | None:
    """Rows read back are UTC already; rows just written still hold the caller's offset."""
    return dt.astimezone(UTC) if dt is not None else None


def _content(i: Incident) -> dict:
    return i.model_dump(exclude={"version", "updated_at", "created_at"})


def _encode_cursor(i: Incident) -> str:
    return base64.urlsafe_b64encode(f"{i.created_at.isoformat()}|{i.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, last_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(at), last_id
    except Exception as e:
        raise ValueError("invalid cursor: pass the next_cursor of a previous page") from e

"""A source event applied to the incident as we have it: the full snapshot to store next."""

from __future__ import annotations

import hashlib

from warroom.models import Alert, Incident, IncidentIn, IncidentStatus, unique_responders
from warroom.sources.base import SourceEvent

MAX_ALERTS = 100
_PREFIX = {"alertmanager": "am", "grafana": "gf", "pagerduty": "pd"}


def incident_id(source: str, external_id: str) -> str:
    """Our id of a source's incident, the same on every replica and every redelivery (so two
    deliveries racing for a new group make one incident, not two)."""
    digest = hashlib.sha256(f"{source}\n{external_id}".encode()).hexdigest()[:16]
    return f"{_PREFIX.get(source, 'wh')}-{digest}"


def merged(current: Incident | None, event: SourceEvent) -> IncidentIn:
    """What the event says, over what the incident has (fields the event leaves out stay)."""
    status = event.status or (current.status if current else IncidentStatus.TRIGGERED)
    if current and current.status is IncidentStatus.CLOSED and event.status is None and event.reopens:
        status = IncidentStatus.TRIGGERED  # the group fires again
    responders = list(event.responders if event.responders is not None else (current.responders if current else []))
    responders += event.add_responders
    return IncidentIn(
        id=incident_id(event.source, event.external_id),
        title=event.title or (current.title if current else event.external_id[:500]),
        description=event.description if event.description is not None else (current.description if current else ""),
        severity=event.severity or (current.severity if current else "medium"),
        status=status,
        responders=unique_responders(responders),
        labels={**(current.labels if current else {}), **event.labels},
        alerts=_alerts(current.alerts if current else [], event.alerts),
    )


def _alerts(before: list[Alert], now: list[Alert] | None) -> list[Alert]:
    """Alerts of the group by id: new ones attach, known ones take their latest state."""
    if now is None:
        return before
    by_id = {a.id: a for a in before}
    by_id.update((a.id, a) for a in now)
    return list(by_id.values())[-MAX_ALERTS:]

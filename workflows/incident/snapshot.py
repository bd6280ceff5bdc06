"""The incident as its source last told us: only a newer version of the snapshot changes it."""

from __future__ import annotations

from temporalio import workflow

from workflows.incident.timeline import TimelineRecorder

with workflow.unsafe.imports_passed_through():
    from warroom.enums import TimelineKind
    from warroom.messages import CarriedState, SourceDelivery
    from warroom.models import Incident, IncidentStatus, Source


def take_snapshot(
    state: CarriedState,
    timeline: TimelineRecorder,
    incident: Incident,
    actor: str,
    source: Source,
    *,
    log: bool = True,
    deliveries: list[SourceDelivery] | None = None,
) -> None:
    """Keep `incident` if it is newer; with `log`, record what changed (an action we applied
    records itself instead). With `deliveries` (those of an incident source not yet recorded),
    each is a `source.<name>` entry instead, the last one saying what the snapshot changed."""
    before = state.incident
    newer = incident.id == before.id and incident.version > before.version
    if newer:
        state.incident = incident
        if before.status is not incident.status:
            state.ai.suggested.clear()  # a suggestion is about the state it was made in
            if incident.status is IncidentStatus.CLOSED:
                state.ai.closes += 1
    change = describe_change(before, incident) if newer else ""
    if deliveries:
        kind = TimelineKind.for_source(source.value)
        for n, delivery in enumerate(deliveries, 1):
            last = n == len(deliveries)
            detail = " · ".join(p for p in (delivery.summary, change if last else "") if p)
            timeline.log(kind, actor, source, detail or "no change")
    elif newer and log:
        timeline.log(TimelineKind.INCIDENT_UPDATED, actor, source, change)


def describe_change(before: Incident, after: Incident) -> str:
    parts = []
    for field in ("title", "severity", "status", "description"):
        a, b = getattr(before, field), getattr(after, field)
        if a != b:
            parts.append(
                f"{field}: {getattr(a, 'value', a)} → {getattr(b, 'value', b)}"
                if field != "description"
                else "description changed"
            )
    ra = {r.id: r for r in before.responders}
    rb = {r.id: r for r in after.responders}
    added = [r.contact for k, r in rb.items() if k not in ra]
    removed = [r.contact for k, r in ra.items() if k not in rb]
    if added:
        parts.append("responders added: " + ", ".join(added))
    if removed:
        parts.append("responders removed: " + ", ".join(removed))
    if before.labels != after.labels:
        parts.append("labels changed")
    if before.alerts != after.alerts:
        parts.append(f"alerts: {len(after.alerts)}")
    return "; ".join(parts) or f"version {after.version}"

"""Alert groups as Alertmanager sends them (and Grafana, which kept its payload shape): one incident
per group key, its alerts attached, closed when every alert of the group is resolved."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from warroom.models import Alert, IncidentStatus
from warroom.sources import severity
from warroom.sources.base import SourceError, SourceEvent
from warroom.sources.payload import body_key, labels, obj, text, timestamp

MAX_ALERTS = 100


def parse_group(source: str, payload: dict[str, Any], body: bytes) -> SourceEvent:
    group_key = text(payload.get("groupKey"), "groupKey", required=True, max_length=1000)
    status = text(payload.get("status"), "status", required=True)
    if status not in ("firing", "resolved"):
        raise SourceError(422, f"status: expected 'firing' or 'resolved', not {status[:40]!r}")
    raw_alerts = payload.get("alerts")
    if not isinstance(raw_alerts, list) or not raw_alerts:
        raise SourceError(422, "alerts: expected a non-empty list")
    if len(raw_alerts) > MAX_ALERTS:
        raise SourceError(422, f"alerts: more than {MAX_ALERTS}")
    alerts: list[Alert] = []
    times: list[datetime] = []
    firing = 0
    for n, raw in enumerate(raw_alerts):
        a = obj(raw, f"alerts[{n}]")
        alert_status = text(a.get("status"), f"alerts[{n}].status", required=True)
        if alert_status not in ("firing", "resolved"):
            raise SourceError(422, f"alerts[{n}].status: expected 'firing' or 'resolved'")
        firing += alert_status == "firing"
        alert_labels = labels(a.get("labels"), f"alerts[{n}].labels")
        notes = labels(a.get("annotations"), f"alerts[{n}].annotations")
        started = timestamp(a.get("startsAt"), f"alerts[{n}].startsAt")
        ended = timestamp(a.get("endsAt"), f"alerts[{n}].endsAt")
        # The delivery's time at the source: the latest change of any of its alerts.
        times += [t for t in (started, ended if alert_status == "resolved" else None) if t]
        name = alert_labels.get("alertname") or notes.get("summary") or "alert"
        alerts.append(
            Alert(
                id=text(a.get("fingerprint"), f"alerts[{n}].fingerprint", max_length=200)
                or body_key(repr(sorted(alert_labels.items())).encode())[:16],
                title=(notes.get("summary") or name)[:500],
                service=alert_labels.get("service") or alert_labels.get("job", ""),
                region=alert_labels.get("region", ""),
                severity=alert_labels.get("severity", "")[:32],
                description=notes.get("description", "")[:5000],
                labels=alert_labels,
                url=text(a.get("generatorURL"), f"alerts[{n}].generatorURL", max_length=1000),
                started_at=started,
            )
        )
    if not times:
        raise SourceError(422, "alerts: none has a startsAt time")
    common = labels(payload.get("commonLabels"), "commonLabels")
    group = labels(payload.get("groupLabels"), "groupLabels")
    notes = labels(payload.get("commonAnnotations"), "commonAnnotations")
    title = (
        text(payload.get("title"), "title")  # Grafana's rendered title
        or notes.get("summary")
        or common.get("alertname")
        or group.get("alertname")
        or alerts[0].title
    )
    closed = status == "resolved" and firing == 0
    return SourceEvent(
        source=source,
        external_id=group_key,
        delivery_key=body_key(body),
        at=max(times),
        title=title[:500],
        description=notes.get("description", "")[:20_000],
        severity=severity.highest([severity.from_label(a.labels.get("severity")) for a in alerts]),
        status=IncidentStatus.CLOSED if closed else None,
        labels=common or group,
        alerts=alerts,
        reopens=firing > 0,
        url=text(payload.get("externalURL"), "externalURL", max_length=1000),
        summary=f"{status}: {firing} firing, {len(alerts) - firing} resolved",
    )

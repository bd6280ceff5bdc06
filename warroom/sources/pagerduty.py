"""PagerDuty V3 webhooks in: `incident.*` events keep an incident's status and responders as
PagerDuty has them. Verified by `X-PagerDuty-Signature` (`v1=<hex HMAC-SHA256 of the body>`, one
per secret of the subscription, comma-separated); several of our secrets are tried (rotation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warroom.models import IncidentStatus, Responder, Severity
from warroom.sources.auth import check_signatures
from warroom.sources.base import SourceError, SourceEvent
from warroom.sources.payload import obj, parse_json, text, timestamp

_STATUS = {
    "triggered": IncidentStatus.TRIGGERED,
    "acknowledged": IncidentStatus.ACKNOWLEDGED,
    "resolved": IncidentStatus.CLOSED,
}
_PRIORITY = {
    "P1": Severity.CRITICAL,
    "P2": Severity.HIGH,
    "P3": Severity.MEDIUM,
    "P4": Severity.LOW,
    "P5": Severity.LOW,
}


class PagerDutySource:
    name = "pagerduty"

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = [s for s in secrets if s]

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if not self._secrets:
            raise SourceError(401, "pagerduty deliveries are refused: PAGERDUTY_WEBHOOK_SECRETS is not set")
        given = [
            part.strip().removeprefix("v1=")
            for part in headers.get("x-pagerduty-signature", "").split(",")
            if part.strip().startswith("v1=")
        ]
        if not given:
            raise SourceError(401, "missing X-PagerDuty-Signature (v1=<hex HMAC-SHA256 of the body>)")
        if not check_signatures(given, self._secrets, body):
            raise SourceError(401, "X-PagerDuty-Signature does not match the body under any configured secret")

    def parse(self, body: bytes) -> list[SourceEvent]:
        event = obj(obj(parse_json(body), "body").get("event"), "event")
        kind = text(event.get("event_type"), "event.event_type", required=True)
        if not kind.startswith("incident."):
            return []  # services, pings (pagey.ping): nothing about an incident
        at = timestamp(event.get("occurred_at"), "event.occurred_at")
        if at is None:
            raise SourceError(422, "event.occurred_at: required")
        data = obj(event.get("data"), "event.data")
        agent = event.get("agent")  # who did it at PagerDuty: only shown, so never a reason to refuse
        by = agent.get("summary") if isinstance(agent, dict) else None
        by = by.strip()[:100] if isinstance(by, str) else ""
        base = {
            "source": self.name,
            "delivery_key": text(event.get("id"), "event.id", required=True, max_length=200),
            "at": at,
            "summary": f"{kind} by {by}" if by else kind,
        }
        if data.get("type") == "incident":
            return [self._incident(data, base)]
        # incident.responder.added / .replied and the like: the incident is a reference
        incident = obj(data.get("incident"), "event.data.incident")
        out = SourceEvent(external_id=_id(incident, "event.data.incident"), **base)
        if kind == "incident.responder.added" and isinstance(data.get("user"), dict):
            out.add_responders = [_person(data["user"], "event.data.user")]
        return [out]

    def _incident(self, data: dict[str, Any], base: dict[str, Any]) -> SourceEvent:
        status = text(data.get("status"), "event.data.status")
        if status and status not in _STATUS:
            raise SourceError(422, f"event.data.status: unknown PagerDuty status {status[:40]!r}")
        priority = data.get("priority")
        urgency = text(data.get("urgency"), "event.data.urgency")
        severity = None
        if isinstance(priority, dict) and priority.get("summary") in _PRIORITY:
            severity = _PRIORITY[priority["summary"]]
        elif urgency:
            severity = Severity.HIGH if urgency == "high" else Severity.LOW
        assignees = data.get("assignees")
        responders = None
        if isinstance(assignees, list):
            responders = [
                _person(obj(a, f"event.data.assignees[{n}]"), f"event.data.assignees[{n}]")
                for n, a in enumerate(assignees)
            ]
        service = data.get("service") if isinstance(data.get("service"), dict) else {}
        return SourceEvent(
            external_id=_id(data, "event.data"),
            title=text(data.get("title"), "event.data.title") or None,
            status=_STATUS.get(status),
            severity=severity,
            responders=responders,
            labels={"service": text(service.get("summary"), "event.data.service.summary", max_length=500)}
            if service.get("summary")
            else {},
            url=text(data.get("html_url"), "event.data.html_url", max_length=1000),
            **base,
        )


def _id(ref: dict[str, Any], where: str) -> str:
    value = text(ref.get("id"), f"{where}.id", required=True, max_length=64)
    if not value.isalnum():
        raise SourceError(422, f"{where}.id: a PagerDuty id is letters and digits")
    return value


def _person(ref: dict[str, Any], where: str) -> Responder:
    """A user reference: its id (`pagerduty:<id>` until the REST API gives the email) and name."""
    user_id = _id(ref, where)
    return Responder(id=f"pagerduty:{user_id}", name=text(ref.get("summary"), f"{where}.summary", max_length=200))

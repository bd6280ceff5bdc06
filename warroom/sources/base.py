"""The one shape every incident source has, and what it hands on: a `SourceEvent` per incident."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from warroom.models import Alert, IncidentStatus, Responder, Severity


class SourceError(Exception):
    """A delivery refused: `status` is the HTTP answer (400/422 bad payload, 401 credentials)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class SourceEvent:
    """What a delivery says about one incident at the source, at the source's time `at`.

    `delivery_key` identifies the delivery itself (a redelivery has the same key); `at` orders
    deliveries about the same incident (an older one never rolls it back). `None` fields are left
    as the incident has them (a PagerDuty priority change says nothing about responders)."""

    source: str
    external_id: str
    delivery_key: str
    at: datetime
    title: str | None = None
    description: str | None = None
    severity: Severity | None = None
    status: IncidentStatus | None = None
    responders: list[Responder] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    alerts: list[Alert] | None = None
    url: str = ""
    reopens: bool = False  # firing again: a closed incident is triggered again
    add_responders: list[Responder] = field(default_factory=list)  # joined to those it has
    summary: str = ""  # one line for the timeline: what this delivery said


class IncidentSource(Protocol):
    """An incident source: `verify` raises `SourceError(401, …)`, `parse` raises 400/422."""

    name: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> None: ...

    def parse(self, body: bytes) -> list[SourceEvent]: ...

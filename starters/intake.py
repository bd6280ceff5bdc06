"""Taking a source's delivery: claim it (once, never older than what was applied), store the
incident it describes, then open its room when a rule says so. Every source goes through here."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from starters.service import WarRoomService
from warroom.errors import NotFound
from warroom.messages import SourceDelivery
from warroom.models import Incident, IncidentStatus, Responder, RoomState, Source
from warroom.sources.base import SourceEvent
from warroom.sources.merge import incident_id, merged
from warroom.sources.pagerduty_api import PagerDutyApi
from warroom.sources.rules import RulesFile
from warroom.store.sources import Claim

log = logging.getLogger("warroom.sources")


@dataclass
class Taken:
    incident_id: str
    outcome: str  # applied | stale | duplicate
    room: str | None = None  # the platform a rule opened a room on


class Intake:
    """One per API process. Deliveries about the same source incident are applied one at a time
    here (a newer one never overtaken by an older one still being stored)."""

    def __init__(self, rules: RulesFile, pagerduty: PagerDutyApi | None = None) -> None:
        self.rules = rules
        self.pagerduty = pagerduty
        self._locks: dict[str, asyncio.Lock] = {}

    async def take(self, svc: WarRoomService, event: SourceEvent) -> Taken:
        key = f"{event.source}\n{event.external_id}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                return await self._take(svc, event)
            finally:
                if not lock.locked() or not lock._waiters:  # type: ignore[attr-defined]
                    self._locks.pop(key, None)

    async def _take(self, svc: WarRoomService, event: SourceEvent) -> Taken:
        store = svc.store
        our_id = incident_id(event.source, event.external_id)
        current = await asyncio.to_thread(_get, store.incidents.get, our_id)
        if current is None and event.title is None and event.status is None:
            # a responder added to an incident we never heard of: wait for the incident itself
            return Taken(our_id, Claim.STALE.value)
        now = datetime.now(UTC)
        claim, before = await asyncio.to_thread(
            store.sources.claim, event.source, event.delivery_key, event.external_id, our_id, event.at, event.url, now
        )
        if claim is not Claim.APPLY:
            return Taken(our_id, claim.value)
        kind = Source(event.source.split(":", 1)[0])
        try:
            self._map_responders(event)
            await self._resolve_emails(event)
            room = await asyncio.to_thread(store.rooms.current, our_id) if current else None
            # the incident's workflow follows the rules (a room, its extra people, reminders)
            incident, _ = await svc.upsert_incident(
                merged(current, event), actor=kind.value, source=kind, delivery=_delivery(event)
            )
        except Exception:
            await asyncio.to_thread(store.sources.release, event.source, event.delivery_key, event.external_id, before)
            raise
        taken = Taken(incident.id, claim.value)
        rule = self.rules.first_match(kind.value, incident)
        no_room = room is None or room.state not in (RoomState.ACTIVE, RoomState.CREATING)
        if rule and rule.room and incident.status is not IncidentStatus.CLOSED and no_room:
            taken.room = rule.room.where(svc.settings.im_platform)[0]  # being opened by the rule
        return taken

    def _map_responders(self, event: SourceEvent) -> None:
        """Alert groups name no people: the rules file's `responders` mapping gives them by label
        (joined to the incident's responders, so people added by hand stay)."""
        if not self.rules.responders or event.alerts is None:
            return
        emails = self.rules.responders_for([event.labels, *(a.labels for a in event.alerts)])
        event.add_responders += [Responder(email=e) for e in emails]

    async def _resolve_emails(self, event: SourceEvent) -> None:
        """PagerDuty names people by user id: their emails (how IM platforms find them) come from
        its REST API. Without an API token they stay as ids (invited once linked by hand)."""
        if self.pagerduty is None:
            return
        for people in (event.responders or [], event.add_responders):
            for n, r in enumerate(people):
                if r.id.startswith("pagerduty:"):
                    email = await self.pagerduty.user_email(r.id.removeprefix("pagerduty:"))
                    if email:
                        people[n] = Responder(email=email, name=r.name)


def _delivery(event: SourceEvent) -> SourceDelivery:
    """The delivery as the timeline shows it; a named webhook says its name."""
    name = event.source.partition(":")[2]
    summary = f"{name}: {event.summary}" if name else event.summary
    return SourceDelivery(key=event.delivery_key[:200], summary=summary[:300])


def _get(get, incident_id: str) -> Incident | None:  # type: ignore[no-untyped-def]
    try:
        return get(incident_id)
    except NotFound:
        return None

"""Store activities: apply actions at the built-in incident source, write the read models."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import retry_decisions
from warroom import names
from warroom.errors import Conflict
from warroom.messages import ApplyActionInput, RecordInput
from warroom.models import Action, Incident, IncidentStatus
from warroom.sources.pagerduty_api import PagerDutyApi, PagerDutyRefused, PagerDutyUnavailable
from warroom.store import Store

# What an action asks of PagerDuty (the others, snooze and reopen, PagerDuty's REST API has no status for).
_AT_PAGERDUTY = {Action.ACKNOWLEDGE: IncidentStatus.ACKNOWLEDGED, Action.CLOSE: IncidentStatus.CLOSED}


class IncidentActivities:
    def __init__(self, store: Store, pagerduty: PagerDutyApi | None = None) -> None:
        self.store = store
        self.pagerduty = pagerduty

    @activity.defn(name=names.APPLY_ACTION)
    async def apply_action(self, inp: ApplyActionInput) -> Incident:
        """Apply at the source once per key; the new snapshot flows back into the workflow."""
        with retry_decisions():
            await self._at_pagerduty_first(inp)
            return await asyncio.to_thread(
                self.store.incidents.apply_action,
                inp.incident_id,
                inp.action,
                actor=inp.actor,
                key=inp.key,
                minutes=inp.minutes,
                now=inp.at,
            )

    async def _at_pagerduty_first(self, inp: ApplyActionInput) -> None:
        """An incident from PagerDuty changes there first (`PUT /incidents/{id}` as the acting
        person): PagerDuty is the source of truth, so the action counts only once it accepts.
        Refused → the action is refused here too; unreachable or 5xx → the activity is retried
        (setting the same status again is harmless at PagerDuty)."""
        wanted = _AT_PAGERDUTY.get(inp.action)
        if wanted is None:
            return
        link = await asyncio.to_thread(self.store.sources.of_incident, inp.incident_id)
        if link is None or link.source != "pagerduty":
            return
        if self.pagerduty is None:
            raise Conflict("this incident is PagerDuty's and PAGERDUTY_API_TOKEN is not set: act in PagerDuty")
        if "@" not in inp.actor:
            raise Conflict(f"PagerDuty needs the acting person's email, and {inp.actor!r} is none")
        try:
            await self.pagerduty.set_status(link.external_id, wanted, inp.actor)
        except PagerDutyRefused as e:
            raise Conflict(str(e)) from e
        except PagerDutyUnavailable as e:
            raise ApplicationError(str(e), type="PagerDutyUnavailable") from e

    @activity.defn(name=names.RECORD)
    async def record(self, inp: RecordInput) -> None:
        """Write timeline entries (stable ids: a retry adds nothing) and the room read model."""

        def write() -> None:  # one transaction: the timeline and the rooms agree at every moment
            now = datetime.now(UTC)
            if inp.room is None and not inp.more_rooms:  # most records: entries only, no session
                self.store.timeline.append(inp.entries)
                return
            with self.store.db.writing(read_modify_write=True) as conn:
                self.store.timeline.append_in(conn, inp.entries)
                if inp.room is not None:
                    self.store.rooms.save_in(conn, inp.incident_id, inp.room, now)
                for room in inp.more_rooms:
                    self.store.rooms.save_in(conn, inp.incident_id, room, now, extra=True)

        await asyncio.to_thread(write)

    def all(self) -> list:
        return [self.apply_action, self.record]

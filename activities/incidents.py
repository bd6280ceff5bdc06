"""Store activities: apply actions at the built-in incident source, write the read models."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity

from activities.errors import retry_decisions
from warroom import names
from warroom.messages import ApplyActionInput, RecordInput
from warroom.models import Incident
from warroom.store import Store


class IncidentActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name=names.APPLY_ACTION)
    async def apply_action(self, inp: ApplyActionInput) -> Incident:
        """Apply at the source once per key; the new snapshot flows back into the workflow."""
        with retry_decisions():
            return await asyncio.to_thread(
                self.store.incidents.apply_action,
                inp.incident_id,
                inp.action,
                actor=inp.actor,
                key=inp.key,
                minutes=inp.minutes,
                now=inp.at,
            )

    @activity.defn(name=names.RECORD)
    async def record(self, inp: RecordInput) -> None:
        """Write timeline entries (stable ids: a retry adds nothing) and the room read model."""

        def write() -> None:
            self.store.timeline.append(inp.entries)
            if inp.room is not None:
                self.store.rooms.save(inp.incident_id, inp.room, datetime.now(UTC))

        await asyncio.to_thread(write)

    def all(self) -> list:
        return [self.apply_action, self.record]

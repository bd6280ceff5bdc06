"""The snooze timer: a snoozed incident wakes up by itself when its snooze is over.

The main loop waits for work at most until the snooze ends (a durable timer), then ends it at the
source. The end of a snooze moves with the incident: a newer snapshot with another `snoozed_until`
(snoozed again, or acknowledged meanwhile) is what the next wait uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.incident.actions import apply_at_source
from workflows.incident.snapshot import take_snapshot
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import cause

with workflow.unsafe.imports_passed_through():
    from warroom.enums import TimelineKind
    from warroom.messages import ApplyActionInput, CarriedState
    from warroom.models import Action, IncidentStatus, Outcome, Source


class SnoozeTimer:
    def __init__(self, state: CarriedState, timeline: TimelineRecorder) -> None:
        self._s, self._timeline = state, timeline

    async def wait(self, condition: Callable[[], bool], *, also_until: datetime | None = None) -> None:
        """Until `condition()` holds, or the snooze is over (`due()` then says so), or `also_until`
        (another timer's deadline, the reminders')."""
        timeout = self._remaining()
        if also_until is not None:
            other = max(also_until - workflow.now(), timedelta(milliseconds=1))
            timeout = other if timeout is None else min(timeout, other)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=timeout)

    def due(self) -> bool:
        until = self._s.incident.snoozed_until
        return self._s.incident.status is IncidentStatus.SNOOZED and until is not None and workflow.now() >= until

    async def end(self) -> None:
        """End the snooze at the source (once per snooze: the key is its end time)."""
        until = self._s.incident.snoozed_until
        assert until is not None
        try:
            incident = await apply_at_source(
                ApplyActionInput(
                    incident_id=self._s.incident.id,
                    action=Action.UNSNOOZE,
                    actor="system",
                    key=f"{self._s.incident.id}:unsnooze:{until.isoformat()}",
                    at=workflow.now(),
                )
            )
        except ActivityError as e:
            # The source moved on (someone acknowledged meanwhile); its next snapshot tells us.
            self._timeline.log(TimelineKind.ACTION_UNSNOOZE, "system", Source.SYSTEM, cause(e), Outcome.FAILED)
            self._s.incident = self._s.incident.model_copy(update={"snoozed_until": None})
            return
        take_snapshot(self._s, self._timeline, incident, "system", Source.SYSTEM, log=False)
        detail = f"snooze ended; back to {incident.status.value}"
        self._timeline.log(TimelineKind.ACTION_UNSNOOZE, "system", Source.SYSTEM, detail)
        self._s.last_action = f"snooze ended, back to {incident.status.value}"

    def _remaining(self) -> timedelta | None:
        until = self._s.incident.snoozed_until
        if self._s.incident.status is not IncidentStatus.SNOOZED or until is None:
            return None
        return max(until - workflow.now(), timedelta(milliseconds=1))

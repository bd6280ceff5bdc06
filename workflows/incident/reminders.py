"""Reminders by rule: durable timers that keep an incident moving.

- While the incident is triggered and nobody acknowledged it: one nudge in the room after N minutes
  (again after a reopen).
- While it is open: a status-update reminder when nobody did or said anything in the room for N
  minutes (a click, a message, an action from the console or the API resets the clock).
- After a close: a heads-up in the room at once, then the room is dismissed after N minutes; a
  reopen meanwhile calls it off.
Nothing survives a close but the dismissal. The policy comes from the rule that matched the
incident (the `set_policy` signal); with none, this issues no command at all, so histories from
before reminders replay unchanged without a patch (their runs never received that signal).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from workflows.incident.rooms import Rooms
from workflows.incident.timeline import TimelineRecorder

with workflow.unsafe.imports_passed_through():
    from warroom.enums import Role, TimelineKind
    from warroom.messages import CarriedState, RoomPolicy
    from warroom.models import IncidentStatus, Outcome, RoomState, Source


class Reminders:
    def __init__(self, state: CarriedState, timeline: TimelineRecorder, rooms: Rooms) -> None:
        self._s, self._timeline, self._rooms = state, timeline, rooms

    @property
    def _r(self):  # type: ignore[no-untyped-def]
        return self._s.reminders

    def set_policy(self, policy: RoomPolicy) -> None:
        if self._r.policy != policy:
            self._r.policy = policy
            self._r.last_update_at = self._r.last_update_at or workflow.now()

    def heard(self) -> None:
        """People did or said something: the status-update clock starts again."""
        self._r.last_update_at = workflow.now()

    # ---- when
    def track(self) -> None:
        """Follow the incident's status (each pass): when it became triggered, when it closed."""
        r, status, now = self._r, self._s.incident.status, workflow.now()
        if status is IncidentStatus.TRIGGERED:
            r.triggered_since = r.triggered_since or now
        else:
            r.triggered_since, r.nudged = None, False
        if status is IncidentStatus.CLOSED:
            r.closed_at = r.closed_at or now
        else:
            r.closed_at, r.heads_up = None, False

    def _deadlines(self) -> list[tuple[str, datetime]]:
        """What is to come and when, from the clocks `track` keeps (pure: the main loop's wait
        condition reads it)."""
        policy = self._r.policy
        if policy is None:
            return []
        r, out = self._r, []
        active = self._s.room.state is RoomState.ACTIVE
        if r.closed_at is not None:
            if policy.dismiss_after_close_minutes is not None and active and not self._s.dismiss_wanted:
                if not r.heads_up:
                    out.append(("heads_up", r.closed_at))
                out.append(("dismiss", r.closed_at + timedelta(minutes=policy.dismiss_after_close_minutes)))
            return out  # nothing else survives a close
        if not active:
            return out
        if policy.unacknowledged_after_minutes and r.triggered_since is not None and not r.nudged:
            out.append(("nudge", r.triggered_since + timedelta(minutes=policy.unacknowledged_after_minutes)))
        if policy.update_every_minutes and r.last_update_at is not None:
            out.append(("update", r.last_update_at + timedelta(minutes=policy.update_every_minutes)))
        return out

    def next_at(self) -> datetime | None:
        """When the next reminder is due (the main loop sleeps at most until then)."""
        return min((at for _, at in self._deadlines()), default=None)

    def sooner_than(self, planned: datetime | None) -> bool:
        """Whether the next reminder is now due before `planned` (None: no timer was set)."""
        at = self.next_at()
        return at is not None and (planned is None or at < planned)

    def due(self) -> bool:
        now = workflow.now()
        return any(at <= now for _, at in self._deadlines())

    # ---- what
    async def catch_up(self) -> None:
        policy = self._r.policy
        if policy is None:
            return
        self.track()
        now = workflow.now()
        for what, at in self._deadlines():
            if at > now:
                continue
            if what == "nudge":
                self._r.nudged = True
                minutes = policy.unacknowledged_after_minutes
                await self._say(TimelineKind.REMINDER_UNACKNOWLEDGED, f"nudge-{at.isoformat()}",
                                f"⏰ Nobody has acknowledged this incident for {minutes} min. Acknowledge it on the "
                                "card once someone is on it.")  # fmt: skip
            elif what == "update":
                self._r.last_update_at = now
                minutes = policy.update_every_minutes
                await self._say(TimelineKind.REMINDER_UPDATE, f"update-{at.isoformat()}",
                                f"⏰ No update here for {minutes} min: post where things stand — what is known, what "
                                f"is being tried, when the next update comes.{self._lead()}")  # fmt: skip
            elif what == "heads_up":
                self._r.heads_up = True
                minutes = policy.dismiss_after_close_minutes
                await self._say(TimelineKind.REMINDER_DISMISSAL, f"heads-up-{at.isoformat()}",
                                f"This incident is closed: this war room will be dismissed in {minutes} min. "
                                "Reopen the incident to keep it.")  # fmt: skip
            elif what == "dismiss":
                self._rooms.ask_dismissal("system", Source.SYSTEM)

    def _lead(self) -> str:
        """Who the status update is asked of, when the incident has a lead (as text: never a ping)."""
        lead = self._s.roles.get(Role.LEAD.value)
        return f" Incident lead: {lead}." if lead else ""

    async def _say(self, kind: TimelineKind, key: str, text: str) -> None:
        posted = await self._rooms.post(text, key=f"reminder-{key}")
        rule = self._r.policy.rule if self._r.policy else ""
        detail = f"{text} (rule {rule!r})" if rule else text
        self._timeline.log(kind, "system", Source.SYSTEM, detail, Outcome.OK if posted else Outcome.FAILED)

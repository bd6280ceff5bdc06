"""The action queue: acknowledge, snooze, close, reopen, from a room's card or the API.

Handlers only queue an action; the main loop applies them one at a time in arrival order, so
authorization (a click must come from an invited responder, on a card that is not out of date)
and the incident's own rules are checked against the state the action actually meets. A refused
action is audited and told to whoever clicked it; an applied one is applied at the source, whose
new snapshot updates the card.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.incident import calls, options
from workflows.incident.patches import patched
from workflows.incident.room import RoomReconciler
from workflows.incident.rooms import Rooms
from workflows.incident.snapshot import take_snapshot
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import cause, past, source_of

with workflow.unsafe.imports_passed_through():
    from warroom import lifecycle
    from warroom.enums import TimelineKind
    from warroom.messages import ActRequest, ApplyActionInput, CarriedState, RoomActionSignal
    from warroom.models import Action, Incident, MemberState, Outcome, RoomState, Source


class Pending:
    """An action waiting for the main loop: from a room click (signal) or the API (update)."""

    def __init__(
        self,
        key: str,
        action: Action,
        actor: str,
        source: Source,
        minutes: int | None,
        im_user_id: str | None = None,
        card_version: int | None = None,
        click: RoomActionSignal | None = None,
    ) -> None:
        self.key, self.action, self.actor, self.source, self.minutes = key, action, actor, source, minutes
        self.im_user_id, self.card_version = im_user_id, card_version
        self.click = click  # the signal it came from: carried over continue-as-new if still waiting
        self.done = False
        self.error: str | None = None


class ActionQueue:
    def __init__(self, state: CarriedState, timeline: TimelineRecorder, rooms: Rooms) -> None:
        self._s, self._timeline, self._rooms = state, timeline, rooms
        self._inbox: list[Pending] = []
        self._applying: Pending | None = None
        for click in state.clicks:  # handed over by the previous run
            self.click(click)
        state.clicks = []

    def click(self, sig: RoomActionSignal) -> None:
        """A verified button click: who clicked is authorized when it is applied."""
        self._inbox.append(
            Pending(
                sig.event_id,
                sig.action,
                sig.im_user_id,
                source_of(sig.platform),
                sig.minutes,
                im_user_id=sig.im_user_id,
                card_version=sig.card_version,
                click=sig,
            )
        )

    def request(self, key: str, req: ActRequest) -> Pending:
        """An action from the API or CLI; `done` once applied or refused."""
        pending = Pending(key, req.action, req.actor, req.source, req.minutes)
        self._inbox.append(pending)
        return pending

    def waiting(self) -> bool:
        return bool(self._inbox)

    def closing(self) -> bool:
        """A close is queued or being applied."""
        queued = [*self._inbox, *([self._applying] if self._applying else [])]
        return any(p.action is Action.CLOSE for p in queued)

    def clicks(self) -> list[RoomActionSignal]:
        """The clicks still waiting, to hand over at continue-as-new (updates are answered first)."""
        return [p.click for p in self._inbox if p.click is not None]

    async def apply_pending(self) -> None:
        while self._inbox:
            self._applying = self._inbox.pop(0)
            await self._apply(self._applying)
            self._applying = None

    async def _apply(self, p: Pending) -> None:
        actor, source = p.actor, p.source
        if p.im_user_id is not None:
            room = self._room_of(p)  # the clicker is a member of the room they clicked in
            member = next(
                (m for m in room.room.members if m.im_user_id == p.im_user_id and m.state is MemberState.INVITED),
                None,
            )
            if member is None:  # offered a self-link: the same command, only its input says more
                await self._refuse(p, p.im_user_id, "is not a linked responder of this incident", offer_self_link=True)
                return
            actor = member.email or member.phone or member.responder_id
            if p.card_version is not None and p.card_version < room.slot.status_card_version:
                await self._refuse(p, actor, "clicked a card that is out of date: the status changed, look again")
                return
        reason = lifecycle.refusal(self._s.incident, p.action, p.minutes)
        if reason:
            await self._refuse(p, actor, reason)
            return
        try:
            incident = await apply_at_source(
                ApplyActionInput(
                    incident_id=self._s.incident.id,
                    action=p.action,
                    actor=actor,
                    key=f"{self._s.incident.id}:{p.key}",
                    at=workflow.now(),
                    minutes=p.minutes,
                )
            )
        except ActivityError as e:
            await self._refuse(p, actor, cause(e))
            return
        except ApplicationError as e:
            # A local activity refused for good (PagerDuty answering 400, a store conflict) reaches
            # the workflow as its ApplicationError, not wrapped in ActivityError: before this patch
            # it failed the workflow; now it is refused like any other refusal.
            if not patched("source-refusals"):
                raise
            await self._refuse(p, actor, cause(e))
            return
        suggested = self._s.ai.suggested.pop(p.action.value, None)
        take_snapshot(self._s, self._timeline, incident, actor, source, log=False)
        detail = f"snoozed for {p.minutes} min" if p.action is Action.SNOOZE else ""
        if suggested:
            detail = (detail + "; " if detail else "") + f"suggested by AI ({suggested}), done by {actor}"
        self._timeline.log(TimelineKind.for_action(p.action), actor, source, detail)
        snoozed = p.action is Action.SNOOZE and p.minutes
        self._s.last_action = f"{actor} {past(p.action)}" + (f" for {p.minutes} min" if snoozed else "")
        p.done = True

    def _room_of(self, p: Pending) -> RoomReconciler:
        """The room a click came from (the first room for requests from elsewhere)."""
        return self._rooms.for_chat(p.click.platform, p.click.chat_id) if p.click else self._rooms.first

    async def _refuse(self, p: Pending, actor: str, reason: str, *, offer_self_link: bool = False) -> None:
        entry = self._timeline.log(
            TimelineKind.ACTION_REFUSED, actor, p.source, f"{p.action.value}: {reason}", Outcome.REFUSED
        )
        p.error, p.done = f"{p.action.value} refused: {reason}", True
        room = self._room_of(p)
        if p.im_user_id is not None and room.state is RoomState.ACTIVE:
            await room.chat.notice(
                p.im_user_id, f"{p.action.value} refused: {reason}.", key=entry.id, offer_self_link=offer_self_link
            )


async def apply_at_source(inp: ApplyActionInput) -> Incident:
    """Apply an action at the incident source (once per key), as a local activity: the card's edit
    is scheduled in the same workflow task, a task and a dispatch sooner. Actions are people's
    clicks, few and far between, unlike the timeline writes kept off local activities. The new
    snapshot is returned."""
    return await calls.APPLY_ACTION.local(inp, options.STORE)

"""The room reconciler: the room the incident should have, made to be the room it has.

Wanted: a room (once asked for) whose members are the incident's responders and whose card shows
its status; once the incident is closed and a dismissal asked for, no room. Each pass compares
that with the room as it is and calls the platform for the difference only, so the handlers just
say what is wanted and a burst of changes costs one more pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.incident import calls, opening, options
from workflows.incident.card import CardKeeper
from workflows.incident.chat import RoomChat
from workflows.incident.members import Members
from workflows.incident.patches import patched
from workflows.incident.search import SearchAttributes
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import cause, source_of

with workflow.unsafe.imports_passed_through():
    from warroom.enums import TimelineKind
    from warroom.im.base import RoomRef, RoomSpec
    from warroom.messages import CarriedState, DismissInput, OpenRoomInput, RoomGoneSignal, RoomSlot, WarRoomConfig
    from warroom.models import IncidentStatus, Outcome, RoomState, Source, WarRoom
    from warroom.room_names import room_name


class RoomReconciler:
    """One room of the incident: its first (whose per-room state is the carried state's own) or
    one more on another platform (a `RoomSlot`); `search` only for the first, whose platform and
    state are the workflow's search attributes."""

    def __init__(
        self,
        state: CarriedState,
        slot: CarriedState | RoomSlot,
        config: WarRoomConfig,
        timeline: TimelineRecorder,
        search: SearchAttributes | None,
    ) -> None:
        self._s, self._r, self._cfg, self._timeline, self._search = state, slot, config, timeline, search
        self.members = Members(state, slot, config, timeline)
        self.card = CardKeeper(state, slot, config, timeline)
        self.chat = RoomChat(slot, config)
        self._dismiss_by: tuple[str, Source] = ("system", Source.SYSTEM)

    @property
    def slot(self) -> CarriedState | RoomSlot:
        return self._r

    @property
    def room(self) -> WarRoom:
        return self._r.room

    @property
    def platform(self) -> str:
        return self._r.room.platform

    @property
    def state(self) -> RoomState:
        return self._r.room.state

    # ---- what is wanted (from the handlers)
    def ask_for(self, platform: str) -> None:
        """A room is wanted: a new one (the next generation) unless one is there or on its way."""
        room = self._r.room
        if not self._r.room_wanted or room.state in (RoomState.FAILED, RoomState.DISMISSED):
            self._r.room_wanted = True
            if room.state in (RoomState.NONE, RoomState.FAILED, RoomState.DISMISSED):
                self._r.room = WarRoom(platform=platform, generation=room.generation + 1)
                self._r.card_shown, self._r.card_failed = None, False
                self._timeline.room_changed(self._r)

    def ask_dismissal(self, actor: str, source: Source) -> None:
        if self._r.room.state is not RoomState.DISMISSED:
            self._r.dismiss_wanted = True
            self._dismiss_by = (actor, source)

    def is_current(self, platform: str, chat_id: str, *states: RoomState) -> bool:
        """Whether (platform, chat) is this generation's room, in one of `states`."""
        room = self._r.room
        return (platform, chat_id) == (room.platform, room.chat_id) and room.state in states

    def gone(self, sig: RoomGoneSignal) -> None:
        """Someone disbanded or archived the room by hand: it is gone; a new one can be asked for."""
        self._r.room.state = RoomState.DISMISSED
        self._r.dismiss_wanted = self._r.room_wanted = False
        self._r.guests = []
        by = sig.im_user_id or "someone"
        detail = f"{by} removed the room on {sig.platform}"
        self._timeline.log(TimelineKind.ROOM_DISMISSED, sig.im_user_id or "system", source_of(sig.platform), detail)
        self._timeline.room_changed(self._r)

    # ---- where it stands
    def settled(self) -> bool:
        """The room asked for is ready (its card posted or refused), or will not be."""
        room = self._r.room
        return room.state in (RoomState.FAILED, RoomState.DISMISSED) or (
            room.state is RoomState.ACTIVE and (room.card_handle is not None or self._r.card_failed)
        )

    def dismissal_settled(self) -> bool:
        room = self._r.room
        return room.state in (RoomState.DISMISSED, RoomState.FAILED) or not self._r.dismiss_wanted

    def opening(self) -> bool:
        return self._r.room_wanted and self._r.room.state in (RoomState.NONE, RoomState.CREATING)

    def needs_work(self) -> bool:
        room = self._r.room
        if self._r.dismiss_wanted and room.state is RoomState.ACTIVE:
            return True
        if self.opening():
            return True
        if room.state is not RoomState.ACTIVE:
            return False
        invite, gone = self.members.work()
        return bool(invite or gone or self.card.stale())

    # ---- one pass
    async def reconcile(self, *, hold_dismissal: Callable[[], bool]) -> None:
        """Open the room if wanted, then dismiss it (unless `hold_dismissal()`: the assistant
        links its review in the room first) or bring its members and card up to date."""
        if self.opening():
            await self._open()
        if self._r.room.state is RoomState.ACTIVE:
            closed = self._s.incident.status is IncidentStatus.CLOSED
            if self._r.dismiss_wanted and closed and not hold_dismissal():
                if self.card.stale():
                    await self.card.sync()  # the archived room shows the final state
                await self._dismiss()
                return
            if not closed:
                self._r.dismiss_wanted = False
            await asyncio.gather(self.members.sync(), self.card.sync())
            if self.card.stale():  # members changed while the card was posted
                await self.card.sync()

    def _spec(self) -> RoomSpec:
        room, i = self._r.room, self._s.incident
        room.state, room.generation = RoomState.CREATING, max(room.generation, 1)
        # Patch search-creating-when-waiting: "creating" is shown in the search attributes only
        # once the room is left to the regular activity (`opening.open_room`'s `waiting`); a room
        # the local try opens goes from none to active in one workflow task, with one upsert.
        if self._search is not None and not patched("search-creating-when-waiting"):
            self._search.upsert()
        return RoomSpec(
            incident_id=i.id,
            idempotency_key=f"{workflow.info().workflow_id}:room:{self._r.keys}{room.generation}",
            name=room_name(self._s.room_name, i) if self._s.room_name else f"inc-{i.id} {i.title}"[:80],
            topic=f"[{i.severity.value}] {i.title} — {self._cfg.public_url}/api/v1/incidents/{i.id}",
            url=f"{self._cfg.public_url}/api/v1/incidents/{i.id}",
            generation=room.generation,
            incident_created_at=i.created_at,
        )

    async def _open(self) -> None:
        """Open a new room in one activity: the room is created while the responders are looked
        up, then they are invited while the card is posted. The room is ready two platform round
        trips after the request, with one activity dispatch and no workflow task in between. The
        card shows the invites it goes out beside as done, and is edited in the next pass only if
        one did not go through."""
        room, spec = self._r.room, self._spec()
        invite, _ = self.members.work()
        self.members.mark_pending(invite)
        card = self.card.render(room.card_version + 1, expecting=invite)
        try:
            opened = await opening.open_room(
                self._cfg,
                OpenRoomInput(
                    platform=room.platform,
                    spec=spec,
                    people=invite,
                    card=card,
                    card_key=f"{workflow.info().workflow_id}:card:{self._r.keys}{room.generation}",
                    extra=self._r is not self._s,
                ),
                waiting=self._search.upsert if self._search is not None else None,
            )
        except opening.FAILED as e:
            room.members = []
            self._failed(cause(e))
            return
        self._created(opened.room)
        self.members.take_outcomes(opened.members)
        if opened.card_handle is None:
            self.card.refused(card, TimelineKind.CARD_POSTED, opened.card_error)
        else:
            room.card_handle = opened.card_handle
            self.card.shown(card, TimelineKind.CARD_POSTED)

    def _failed(self, why: str) -> None:
        room = self._r.room
        room.state, room.detail = RoomState.FAILED, why
        self._timeline.log(TimelineKind.ROOM_FAILED, "system", Source.SYSTEM, why, Outcome.FAILED)
        self._timeline.room_changed(self._r)

    def _created(self, ref: RoomRef) -> None:
        room = self._r.room
        room.state, room.chat_id, room.name, room.join_url = RoomState.ACTIVE, ref.chat_id, ref.name, ref.join_url
        detail = f"{room.platform} room {ref.name!r} ({ref.chat_id})"
        if room.generation > 1:  # text only: the commands are those of every room
            detail += f": a new room (number {room.generation}), the incident's earlier room stays dismissed"
        self._timeline.log(TimelineKind.ROOM_CREATED, "system", Source.SYSTEM, detail)
        self._timeline.room_changed(self._r)

    async def _dismiss(self) -> None:
        room = self._r.room
        actor, source = self._dismiss_by
        room.state = RoomState.DISMISSING
        await self.chat.post("The incident is closed; this war room is being dismissed.", key="dismiss")
        try:
            await calls.DISMISS_ROOM(
                DismissInput(platform=room.platform, chat_id=room.chat_id or "", name=room.name),
                options.im(self._cfg, room.platform),
            )
        except ActivityError as e:
            room.state = RoomState.ACTIVE
            self._r.dismiss_wanted = False
            self._timeline.log(TimelineKind.ROOM_DISMISSED, actor, source, cause(e), Outcome.FAILED)
            self._timeline.room_changed(self._r)
            return
        room.state = RoomState.DISMISSED
        self._r.dismiss_wanted = self._r.room_wanted = False
        self._r.guests = []  # they asked to join this room, not the incident's next one
        self._timeline.log(TimelineKind.ROOM_DISMISSED, actor, source, f"{room.platform} room {room.chat_id}")
        self._timeline.room_changed(self._r)

"""The incident's rooms: its first room, and one more on each other platform asked for.

A team on Slack and a team on Feishu can work the same incident, each in its own room: every room
keeps its members equal to the responders, shows the same card and takes the same buttons, and is
dismissed with the others. The first room is the incident's room as the rest of the workflow
knows it (the assistant answers there, reminders are posted there); the others are kept beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow

from workflows.incident.patches import patched
from workflows.incident.room import RoomReconciler
from workflows.incident.search import SearchAttributes
from workflows.incident.timeline import TimelineRecorder

with workflow.unsafe.imports_passed_through():
    from warroom.messages import CarriedState, RoomSlot, WarRoomConfig
    from warroom.models import RoomState, Source, WarRoom

# Beside its first room, an incident has at most this many (one per platform, so this is plenty).
MORE_ROOMS_MAX = 8


class Rooms:
    def __init__(
        self, state: CarriedState, config: WarRoomConfig, timeline: TimelineRecorder, search: SearchAttributes
    ) -> None:
        self._s, self._cfg, self._timeline = state, config, timeline
        self.first = RoomReconciler(state, state, config, timeline, search)
        self._more = [RoomReconciler(state, slot, config, timeline, None) for slot in state.more_rooms]

    def all(self) -> list[RoomReconciler]:
        return [self.first, *self._more]

    # ---- what is wanted (from the handlers)
    def ask_for(self, platform: str) -> RoomReconciler:
        """A room on `platform`: the first room, unless that one is up (or coming) on another
        platform; then one more, on this one. Returns the room that was asked."""
        if platform == self._s.room.platform or not self._first_taken():
            self.first.ask_for(platform)
            return self.first
        room = self.on(platform)
        if room is None:
            patched("several-rooms")  # marks the histories (from before the bundle) with more than one room
            slot = RoomSlot(room=WarRoom(platform=platform))
            self._s.more_rooms.append(slot)
            room = RoomReconciler(self._s, slot, self._cfg, self._timeline, None)
            self._more.append(room)
        room.ask_for(platform)
        return room

    def _first_taken(self) -> bool:
        """The first room is up, or on its way (asked for in this very task, say)."""
        state = self._s.room.state
        return state in (RoomState.ACTIVE, RoomState.CREATING) or (self._s.room_wanted and state is RoomState.NONE)

    def can_add(self, platform: str) -> str | None:
        """Why a room on `platform` cannot be asked for now, or None."""
        if self.on(platform) is None and len(self._more) >= MORE_ROOMS_MAX and platform != self._s.room.platform:
            return f"the incident already has {MORE_ROOMS_MAX + 1} war rooms"
        return None

    def ask_dismissal(self, actor: str, source: Source) -> None:
        for room in self.all():
            room.ask_dismissal(actor, source)

    def on(self, platform: str) -> RoomReconciler | None:
        """The incident's other room on `platform` (never the first)."""
        return next((r for r in self._more if r.platform == platform), None)

    def of(self, platform: str, chat_id: str, *states: RoomState) -> RoomReconciler | None:
        """The room that is (platform, chat) in this generation, in one of `states`."""
        return next((r for r in self.all() if r.is_current(platform, chat_id, *states)), None)

    def for_chat(self, platform: str, chat_id: str) -> RoomReconciler:
        """The room whose chat (platform, chat) is, whatever its state; else the first."""
        return next((r for r in self.all() if (r.platform, r.room.chat_id) == (platform, chat_id)), self.first)

    def linked(self, platform: str, contacts: list[str]) -> None:
        for room in self.all():
            room.members.linked(platform, contacts)

    # ---- where they stand
    def needs_work(self) -> bool:
        return any(r.needs_work() for r in self.all())

    def opening(self) -> bool:
        return any(r.opening() for r in self.all())

    def dismissal_settled(self) -> bool:
        return all(r.dismissal_settled() for r in self.all())

    def none_left(self) -> bool:
        """No room is up or on its way (each dismissed, failed or never asked for)."""
        return all(r.state in (RoomState.NONE, RoomState.FAILED, RoomState.DISMISSED) for r in self.all())

    async def post(self, text: str, *, key: str) -> bool:
        """Say `text` in every room that is up (the first room's alone when it is the only one);
        whether it reached at least one."""
        up = [r for r in self.all() if r.state is RoomState.ACTIVE]
        if up == [self.first] or not up:
            return await self.first.chat.post(text, key=key) is not None
        posted = await asyncio.gather(*(r.chat.post(text, key=key) for r in up))
        return any(p is not None for p in posted)

    # ---- one pass
    async def reconcile(self, *, hold_dismissal: Callable[[], bool]) -> None:
        """Every room's pass at once: the first room's alone when it is the only one, as it
        always was."""
        if not self._more:
            await self.first.reconcile(hold_dismissal=hold_dismissal)
            return
        await asyncio.gather(*(r.reconcile(hold_dismissal=hold_dismissal) for r in self.all()))

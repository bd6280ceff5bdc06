"""The incident's audit trail: entries are logged in order, and written beside the story.

One coroutine, next to the main loop, writes the timeline and the rooms read model (`record`),
one write at a time, each taking everything logged while the previous one ran. Entries reach the
read model in order and in few writes, and nobody's room, card or answer waits for them; an update
that answers with the entries it caused waits in `recorded()`.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

from workflows.incident import calls, options

with workflow.unsafe.imports_passed_through():
    from warroom.messages import CarriedState, RecordInput, RoomSlot
    from warroom.models import Outcome, RoomState, Source, TimelineEntry, TimelineKind, WarRoom


class TimelineRecorder:
    def __init__(self, state: CarriedState) -> None:
        self._s = state
        self._recorded_seq = state.seq  # entries up to here are in the timeline read model
        # What the previous run handed over still unwritten (see `hand_over`).
        self._entries: list[TimelineEntry] = state.unrecorded
        self._room_dirty = state.room_dirty  # the room changed since its last write
        # The incident's other rooms changed since their last write (all of them at a new run: a
        # change just before continue-as-new is not lost, for one write).
        self._more_dirty: list[RoomSlot] = list(state.more_rooms)
        state.unrecorded, state.room_dirty = [], False
        self._writer: asyncio.Task[None] | None = None
        self._writing = False  # a `record` is in flight
        self._room_writes_begun = self._room_writes_done = 0  # `record`s that carried the room
        self._handing_over = False  # continue-as-new is near: no new write begins

    def log(
        self, kind: TimelineKind, actor: str, source: Source, detail: str = "", outcome: Outcome = Outcome.OK
    ) -> TimelineEntry:
        self._s.seq += 1
        entry = TimelineEntry(
            id=f"{self._s.incident.id}-{self._s.seq}",
            incident_id=self._s.incident.id,
            seq=self._s.seq,
            at=workflow.now(),
            actor=actor,
            source=source,
            kind=kind,
            detail=detail,
            outcome=outcome,
        )
        self._entries.append(entry)
        return entry

    def room_changed(self, slot: CarriedState | RoomSlot | None = None) -> None:
        """The room (the first, or `slot`'s) is to be written to the rooms read model again."""
        if slot is None or slot is self._s:
            self._room_dirty = True
        elif not any(d is slot for d in self._more_dirty):
            self._more_dirty.append(slot)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_continuously())

    def failed(self) -> bool:
        return self._writer is not None and self._writer.done()

    def raise_if_failed(self) -> None:
        """A write that failed for good fails the workflow task (and is retried with it)."""
        if self._writer is not None and self._writer.done():
            self._writer.result()

    async def recorded(self, *, room: bool = False) -> None:
        """Wait until what happened so far is in the timeline read model, so that whoever gets an
        answer from an update and then reads the timeline sees the entries it caused; with `room`,
        the room as it is now in the rooms read model too (for answers about the room)."""
        target = self._s.seq
        room_goal = 0
        if room:  # the write in flight, and the next one if the room changed since
            room_goal = self._room_writes_begun + (1 if self._room_dirty or self._more_dirty else 0)
        await workflow.wait_condition(lambda: self._recorded_seq >= target and self._room_writes_done >= room_goal)

    async def all_recorded(self) -> None:
        """Wait until the read models hold everything logged so far (timeline and room)."""
        await self.recorded(room=True)

    async def hand_over(self) -> None:
        """Stop writing before continue-as-new: a write begun now would be cut off, so what is
        still unwritten travels in the carried state instead."""
        self._handing_over = True
        await workflow.wait_condition(lambda: not self._writing)
        self._s.unrecorded, self._entries = self._entries, []
        self._s.room_dirty = self._room_dirty

    async def _write_continuously(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._unwritten() and not self._handing_over)
            self._writing = True
            try:
                await self._write()
            finally:
                self._writing = False

    def _unwritten(self) -> bool:
        return bool(self._entries) or self._room_to_write() or bool(self._more_to_write())

    def _room_to_write(self) -> bool:
        """The room changed since its last write and is worth writing now."""
        return self._room_dirty and _worth_writing(self._s.room)

    def _more_to_write(self) -> list[RoomSlot]:
        return [slot for slot in self._more_dirty if _worth_writing(slot.room)]

    async def _write(self) -> None:
        if not self._unwritten():  # taken by `hand_over` since the writer woke up
            return
        entries, self._entries = self._entries, []
        room = self._s.room.model_copy(deep=True) if self._room_to_write() else None
        if room is not None:
            self._room_dirty = False
        more = self._more_to_write()
        self._more_dirty = [slot for slot in self._more_dirty if not any(slot is m for m in more)]
        more_rooms = [slot.room.model_copy(deep=True) for slot in more]
        with_room = room is not None or bool(more_rooms)
        self._room_writes_begun += with_room
        # A regular activity, not a local one: measured at 1,000 open rooms, local store writes
        # queued behind SQLite's single writer held their workflow tasks open for seconds.
        await calls.RECORD(
            RecordInput(incident_id=self._s.incident.id, entries=entries, room=room, more_rooms=more_rooms),
            options.STORE,
        )
        self._room_writes_done += with_room
        if entries:
            self._recorded_seq = max(self._recorded_seq, entries[-1].seq)


def _worth_writing(room: WarRoom) -> bool:
    """Not while a new room has no chat yet: the open-room activity registers it as soon as the
    platform made it, and a write before that only competed with the opening for the database."""
    return room.state is not RoomState.CREATING or room.chat_id is not None

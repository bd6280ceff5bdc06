"""The room's members, kept equal to the incident's responders (and the people who asked to join).

A responder is invited when they are new, when their contact changed, when an earlier invite is
still pending, or when they were not linked and someone has linked them since; a responder taken
off the incident is removed from the room (or only marked, when removing is off). A permanently
failed invite is not retried until the contact changes.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.incident import calls, options
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import cause, who

with workflow.unsafe.imports_passed_through():
    from warroom.enums import TimelineKind
    from warroom.messages import (
        CarriedState,
        InviteMembersInput,
        MemberOutcome,
        Person,
        RemoveMembersInput,
        RoomSlot,
        WarRoomConfig,
    )
    from warroom.models import Member, MemberState, Outcome, Responder, RoomState, Source


class Members:
    def __init__(
        self, state: CarriedState, slot: CarriedState | RoomSlot, config: WarRoomConfig, timeline: TimelineRecorder
    ) -> None:
        self._s, self._r, self._cfg, self._timeline = state, slot, config, timeline
        # Members whose invite failed permanently, by contact: (responder id, email, phone).
        self._failed: set[tuple[str, str | None, str | None]] = set()

    def _log(self, kind: TimelineKind, detail: str, outcome: Outcome = Outcome.OK) -> None:
        self._timeline.log(kind, "system", Source.SYSTEM, detail, outcome)

    def wanted(self) -> list[Responder]:
        """Who belongs in the room: the responders, then the people who asked to join it."""
        responders = self._s.incident.responders
        emails = {r.email for r in responders if r.email}
        return [*responders, *(g for g in self._r.guests if g.email not in emails)]

    def add_guest(self, person: Responder) -> str:
        """Someone who asked to join the room; returns their member id (the same on a repeat)."""
        for r in self.wanted():
            if person.email and r.email == person.email:
                return r.id
        guest = person.model_copy(update={"id": f"guest-{len(self._r.guests) + 1}"})
        self._r.guests.append(guest)
        return guest.id

    def settled(self, member_id: str) -> bool:
        """The member was invited, or will not be (unlinked, failed), or the room is no more."""
        m = self._r.room.member(member_id)
        active = self._r.room.state is RoomState.ACTIVE
        return not active or (m is not None and m.state is not MemberState.PENDING)

    def work(self) -> tuple[list[Person], list[Member]]:
        """(people to resolve and invite, members to mark removed)."""
        room = self._r.room
        invite = []
        wanted = self.wanted()
        for r in wanted:
            m = room.member(r.id)
            changed = m is None or (m.email, m.phone) != (r.email, r.phone)
            retry = m is not None and m.state in (MemberState.PENDING, MemberState.REMOVED)
            if (changed or retry) and (r.id, r.email, r.phone) not in self._failed:
                invite.append(Person(responder_id=r.id, name=r.name, email=r.email, phone=r.phone))
        current = {r.id for r in wanted}
        gone = [m for m in room.members if m.responder_id not in current and m.state is not MemberState.REMOVED]
        return invite, gone

    def linked(self, platform: str, contacts: list[str]) -> int:
        """Members not linked before whose contact was just linked on the room's platform become
        pending again, so the next pass invites them; returns how many."""
        room, wanted = self._r.room, {c.lower() for c in contacts}
        if room.platform != platform or room.state is not RoomState.ACTIVE:
            return 0
        again = [
            m for m in room.members
            if m.state is MemberState.UNLINKED and {(m.email or "").lower(), m.phone or ""} & wanted
        ]  # fmt: skip
        for m in again:
            m.state = MemberState.PENDING
        return len(again)

    def mark_pending(self, invite: list[Person]) -> None:
        """The people about to be invited, as pending members with their current contact."""
        room = self._r.room
        responders = {r.id: r for r in self.wanted()}
        for p in invite:
            r = responders[p.responder_id]
            m = room.member(p.responder_id)
            if m is None:
                room.members.append(Member(responder_id=r.id, name=r.name, email=r.email, phone=r.phone))
            else:
                m.name, m.email, m.phone, m.state = r.name, r.email, r.phone, MemberState.PENDING

    async def sync(self) -> None:
        invite, gone = self.work()
        room = self._r.room
        self.mark_pending(invite)
        if invite:
            await self._invite(invite)
        policy = self._s.reminders.policy
        remove = (
            self._cfg.remove_members if policy is None or policy.remove_departed is None else policy.remove_departed
        )
        for m in gone:
            if remove and m.im_user_id and m.state is MemberState.INVITED:
                try:
                    await calls.REMOVE_MEMBERS(
                        RemoveMembersInput(
                            platform=room.platform, chat_id=room.chat_id or "", im_user_ids=[m.im_user_id]
                        ),
                        options.im(self._cfg, room.platform),
                    )
                except ActivityError as e:
                    self._log(TimelineKind.MEMBER_REMOVED, f"{who(m)}: {cause(e)}", Outcome.FAILED)
                    continue
                detail = f"{who(m)} removed from the room"
            else:
                detail = f"{who(m)} is no longer a responder (kept in the room)"
            m.state = MemberState.REMOVED
            self._log(TimelineKind.MEMBER_REMOVED, detail)
            self._timeline.room_changed(self._r)

    async def _invite(self, people: list[Person]) -> None:
        room = self._r.room
        try:
            outcomes = await calls.INVITE_MEMBERS(
                InviteMembersInput(platform=room.platform, chat_id=room.chat_id or "", people=people),
                options.im(self._cfg, room.platform),
            )
        except ActivityError as e:
            outcomes = [
                MemberOutcome(responder_id=p.responder_id, im_user_id=None, state=MemberState.FAILED, detail=cause(e))
                for p in people
            ]
        self.take_outcomes(outcomes)

    def take_outcomes(self, outcomes: list[MemberOutcome]) -> None:
        room = self._r.room
        for o in outcomes:
            m = room.member(o.responder_id)
            if m is None:  # the responder was removed while the call ran
                continue
            m.im_user_id, m.state, m.detail = o.im_user_id, o.state, o.detail
            if o.state is MemberState.INVITED:
                self._log(TimelineKind.MEMBER_INVITED, f"{who(m)} as {o.im_user_id} ({o.detail})")
            elif o.state is MemberState.UNLINKED:
                self._log(TimelineKind.MEMBER_UNLINKED, f"{who(m)}: {o.detail}", Outcome.FAILED)
            else:
                self._failed.add((m.responder_id, m.email, m.phone))
                self._log(TimelineKind.MEMBER_INVITED, f"{who(m)}: {o.detail}", Outcome.FAILED)
        self._timeline.room_changed(self._r)

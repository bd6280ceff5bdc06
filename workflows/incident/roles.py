"""The incident's roles (lead, scribe, comms): one path for every change, whether it comes from
the `set_role` update (API, CLI, console) or from the room (`@warroom lead me`), so each change
is one `role.assigned` entry with who gave it and where.

From the room, the speaker must be a linked responder in it, as for a click on the card: "me"
is that person, `<@U…>` another member, anything else a name or email checked like any holder.
What we answer names people as text only (the adapter escapes it): it never pings anyone.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.incident.chat import RoomChat
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import source_of, who

with workflow.unsafe.imports_passed_through():
    from warroom.enums import Role, TimelineKind
    from warroom.messages import CarriedState, RoleCommand, RoomMessageSignal
    from warroom.models import Member, MemberState, Outcome, Source
    from warroom.roles import InvalidRoleHolder, assignment, checked_role_holder


class RoleBook:
    def __init__(self, state: CarriedState, timeline: TimelineRecorder, chat: RoomChat) -> None:
        self._s, self._timeline, self._chat = state, timeline, chat

    def assign(self, role: Role, person: str, actor: str, source: Source) -> bool:
        """Give `role` to `person` ("" for nobody); False when it was theirs already."""
        if self._s.roles.get(role.value, "") == person:
            return False
        before = self._s.roles.pop(role.value, "")
        if person:
            self._s.roles[role.value] = person
        self._timeline.log(TimelineKind.ROLE_ASSIGNED, actor, source, assignment(role, person, before))
        return True

    def _member(self, im_user_id: str) -> Member | None:
        """A linked responder (or a guest) invited to the room, by their IM user id."""
        return next(
            (m for m in self._s.room.members if m.im_user_id == im_user_id and m.state is MemberState.INVITED),
            None,
        )

    async def from_room(self, q: RoomMessageSignal, cmd: RoleCommand) -> str | None:
        """Apply a role command said in the room; the answer to post there (None: the speaker was
        told alone)."""
        role, source = cmd.role, source_of(q.platform)
        name = role.value.capitalize()
        if cmd.ask:
            holder = self._s.roles.get(role.value, "")
            return (
                f"{name}: {holder or 'nobody'}. Give it with @warroom {role.value} me, "
                f"@warroom {role.value} <email or name>, or @warroom {role.value} none."
            )
        speaker = self._member(q.im_user_id)
        if speaker is None:
            entry = self._refuse(role, q.im_user_id, source, "is not a linked responder of this incident")
            text = f"{name} not changed: you are not a linked responder of this incident."
            await self._chat.notice(q.im_user_id, text, key=entry, offer_self_link=True)
            return None
        actor = who(speaker)
        if cmd.me:
            person = actor
        elif cmd.im_user_id:
            member = self._member(cmd.im_user_id)
            if member is None:
                reason = "the person mentioned is not a linked member of this room"
                self._refuse(role, actor, source, reason)
                return f"{name} not changed: {reason} (name them by email)."
            person = who(member)
        else:
            try:
                person = checked_role_holder(cmd.person)
            except InvalidRoleHolder as e:
                self._refuse(role, actor, source, str(e))
                return f"{name} not changed. {e.sentence()}"
        before = self._s.roles.get(role.value, "")
        if not self.assign(role, person, actor, source):
            return f"{name} is {person} already." if person else f"Nobody is {role.value} already."
        was = f" (was {before})" if before else ""
        return f"{name}: {person or 'nobody'}{was}, set by {actor}."

    def _refuse(self, role: Role, actor: str, source: Source, reason: str) -> str:
        entry = self._timeline.log(
            TimelineKind.ROLE_ASSIGNED, actor, source, f"{role.value} not changed: {reason}", Outcome.REFUSED
        )
        return entry.id

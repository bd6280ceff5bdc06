"""IM activities: thin wrappers over the platform adapters, idempotent by business key.

Each activity names a platform, never a credential: the adapter is built from this worker's
settings. Errors become retry decisions through `retry_decisions()`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity

from activities.errors import retry_decisions
from warroom.directory import Contact, resolve_people
from warroom.im.base import ImAdapter, RoomRef
from warroom.im.registry import build_adapter
from warroom.messages import (
    CreateRoomInput,
    DismissInput,
    InviteMembersInput,
    LinkUsersInput,
    LinkUsersResult,
    MemberOutcome,
    Person,
    PostCardInput,
    PostMessageInput,
    PostNoticeInput,
    RemoveMembersInput,
    UpdateCardInput,
)
from warroom.models import MemberState, RoomState, WarRoom
from warroom.settings import Settings
from warroom.store import Store


class ImActivities:
    """IM activities bound to one store and settings; adapters are built once per platform."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._adapters: dict[str, ImAdapter] = {}

    def adapter(self, platform: str) -> ImAdapter:
        if platform not in self._adapters:
            self._adapters[platform] = build_adapter(platform, self.store.db, self.settings)
        return self._adapters[platform]

    async def aclose(self) -> None:
        for a in self._adapters.values():
            await a.aclose()

    @activity.defn(name="im_create_room")
    async def create_room(self, inp: CreateRoomInput) -> RoomRef:
        """Create the room (same key → same chat) and register chat → incident at once, so a
        click on the card can be routed even before the workflow records the room."""
        with retry_decisions():
            ref = await self.adapter(inp.platform).create_room(inp.spec)
        room = WarRoom(
            state=RoomState.CREATING, platform=inp.platform, chat_id=ref.chat_id, name=ref.name, join_url=ref.join_url
        )
        await asyncio.to_thread(self.store.rooms.register, inp.spec.incident_id, room, datetime.now(UTC))
        return ref

    @activity.defn(name="im_invite_members")
    async def invite_members(self, inp: InviteMembersInput) -> list[MemberOutcome]:
        """Resolve everyone (in parallel) and invite the linked ones in platform-sized batches."""
        adapter = self.adapter(inp.platform)
        with retry_decisions():
            resolutions = await resolve_people(adapter, self.store.links, _contacts(inp.people))
            found = {p.responder_id: r for p, r in zip(inp.people, resolutions, strict=True)}
            ids = sorted({r.im_user_id for r in resolutions if r.im_user_id})
            batch = adapter.capabilities.max_invite_batch
            results = {}
            for i in range(0, len(ids), batch):
                for res in await adapter.add_members(inp.chat_id, ids[i : i + batch]):
                    results[res.im_user_id] = res
        outcomes = []
        for p in inp.people:
            r = found[p.responder_id]
            if not r.im_user_id:
                outcomes.append(
                    MemberOutcome(
                        responder_id=p.responder_id, im_user_id=None, state=MemberState.UNLINKED, detail=r.detail
                    )
                )
            elif results[r.im_user_id].ok:
                outcomes.append(
                    MemberOutcome(
                        responder_id=p.responder_id,
                        im_user_id=r.im_user_id,
                        state=MemberState.INVITED,
                        detail=f"linked by {r.method}",
                    )
                )
            else:
                outcomes.append(
                    MemberOutcome(
                        responder_id=p.responder_id,
                        im_user_id=r.im_user_id,
                        state=MemberState.FAILED,
                        detail=results[r.im_user_id].detail,
                    )
                )
        return outcomes

    @activity.defn(name="im_remove_members")
    async def remove_members(self, inp: RemoveMembersInput) -> None:
        with retry_decisions():
            await self.adapter(inp.platform).remove_members(inp.chat_id, inp.im_user_ids)

    @activity.defn(name="im_post_card")
    async def post_card(self, inp: PostCardInput) -> str:
        with retry_decisions():
            return (await self.adapter(inp.platform).post_card(inp.chat_id, inp.card, inp.key)).message_id

    @activity.defn(name="im_update_card")
    async def update_card(self, inp: UpdateCardInput) -> None:
        with retry_decisions():
            await self.adapter(inp.platform).update_card(inp.chat_id, inp.message_id, inp.card)

    @activity.defn(name="im_post_message")
    async def post_message(self, inp: PostMessageInput) -> str:
        with retry_decisions():
            return (await self.adapter(inp.platform).post_message(inp.chat_id, inp.text, inp.key)).message_id

    @activity.defn(name="im_post_notice")
    async def post_notice(self, inp: PostNoticeInput) -> None:
        with retry_decisions():
            await self.adapter(inp.platform).post_notice(inp.chat_id, inp.im_user_id, inp.text, inp.key)

    @activity.defn(name="im_dismiss_room")
    async def dismiss_room(self, inp: DismissInput) -> None:
        with retry_decisions():
            await self.adapter(inp.platform).dismiss_room(inp.chat_id)

    @activity.defn(name="im_link_users")
    async def link_users(self, inp: LinkUsersInput) -> LinkUsersResult:
        """Bulk linking: resolve everyone at once and store the links found."""
        adapter = self.adapter(inp.platform)
        with retry_decisions():
            resolutions = await resolve_people(adapter, self.store.links, _contacts(inp.people))
        result = LinkUsersResult()
        for p, r in zip(inp.people, resolutions, strict=True):
            outcome = MemberOutcome(
                responder_id=p.responder_id,
                im_user_id=r.im_user_id,
                state=MemberState.INVITED if r.im_user_id else MemberState.UNLINKED,
                detail=f"linked by {r.method}" if r.im_user_id else r.detail,
            )
            (result.linked if r.im_user_id else result.unlinked).append(outcome)
        return result

    def all(self) -> list:
        return [
            self.link_users,
            self.create_room,
            self.invite_members,
            self.remove_members,
            self.post_card,
            self.update_card,
            self.post_message,
            self.post_notice,
            self.dismiss_room,
        ]


def _contacts(people: list[Person]) -> list[Contact]:
    return [Contact(name=p.name, email=p.email, phone=p.phone) for p in people]

"""IM activities: thin wrappers over the platform adapters, idempotent by business key.

Each activity names a platform, never a credential: the adapter is built from this worker's
settings. Errors become retry decisions through `retry_decisions()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity

from activities.checkpoints import Checkpoints
from activities.errors import brief, retry_decisions
from activities.in_place import retrying_in_place
from warroom import names, selflink
from warroom.card import CLOSING_TEXT, closed_name, status_text
from warroom.directory import Contact, Found, Resolution, look_up_people, resolve_people
from warroom.errors import PermanentImError
from warroom.im.base import CardHandle, Dismissal, ImAdapter, RoomRef, RoomSpec, StatusCard
from warroom.im.registry import build_adapter
from warroom.messages import (
    CreateRoomInput,
    DismissInput,
    InviteMembersInput,
    LinkProgress,
    LinkUsersInput,
    LinkUsersResult,
    MemberOutcome,
    OpenedRoom,
    OpenRoomInput,
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

log = logging.getLogger("warroom.worker")
T = TypeVar("T")


class ImActivities:
    """IM activities bound to one store and settings; adapters are built once per platform."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._adapters: dict[str, ImAdapter] = {}

    def adapter(self, platform: str) -> ImAdapter:
        """The platform's adapter as activities use it: its calls repeated in place on failure."""
        return retrying_in_place(self.platform_adapter(platform), platform)

    def platform_adapter(self, platform: str) -> ImAdapter:
        """The platform's adapter itself, built on first use."""
        if platform not in self._adapters:
            self._adapters[platform] = build_adapter(platform, self.store.db, self.settings)
        return self._adapters[platform]

    def prepare(self) -> list[str]:
        """Build the adapters of every configured platform this worker serves, before it polls.

        Some SDKs take seconds to import (lark-oapi: about 4 s of CPU here). Paid on the first
        call instead, that time comes out of the activity's timeouts, at every worker restart; a
        worker that dies again before it is paid never opens a room. A platform that cannot be built
        is left to its first call, whose error reaches the incident's timeline as it always did.
        Returns the platforms built."""
        bound = self.settings.platform_region_map()
        mine = [p for p in self.settings.configured_platforms() if bound.get(p, "") == self.settings.region]
        ready = []
        for platform in mine:
            try:
                self.platform_adapter(platform).prepare()
            except Exception as e:
                log.warning("%s adapter not prepared: %s", platform, e)
            else:
                ready.append(platform)
        return ready

    async def aclose(self) -> None:
        for a in self._adapters.values():
            await a.aclose()

    @activity.defn(name=names.IM_CREATE_ROOM)
    async def create_room(self, inp: CreateRoomInput) -> RoomRef:
        """Create the room (same key → same chat) and register chat → incident at once, so a
        click on the card can be routed even before the workflow records the room."""
        with retry_decisions():
            ref = await self._registered(inp.platform, inp.spec)
            if ref is None:
                ref = await self.adapter(inp.platform).create_room(inp.spec)
        await self._register(inp.platform, inp.spec, ref, extra=inp.extra)
        return ref

    async def _registered(self, platform: str, spec: RoomSpec) -> RoomRef | None:
        """On a retry, the chat an earlier attempt made and registered for this very room
        (platform and generation): the platform is not asked again. Adapters stay exactly-once
        on their own (a retry can also follow an attempt that died before registering)."""
        if activity.info().attempt == 1:
            return None
        room = await asyncio.to_thread(self.store.rooms.latest, spec.incident_id, platform, spec.generation)
        if room is None or not room.chat_id or room.state in (RoomState.DISMISSED, RoomState.FAILED):
            return None
        return RoomRef(chat_id=room.chat_id, name=room.name, join_url=room.join_url)

    async def _register(self, platform: str, spec: RoomSpec, ref: RoomRef, *, extra: bool) -> None:
        room = WarRoom(
            state=RoomState.CREATING,
            platform=platform,
            chat_id=ref.chat_id,
            name=ref.name,
            join_url=ref.join_url,
            generation=spec.generation,
        )
        await asyncio.to_thread(self.store.rooms.register, spec.incident_id, room, datetime.now(UTC), extra=extra)

    @activity.defn(name=names.IM_OPEN_ROOM)
    async def open_room(self, inp: OpenRoomInput) -> OpenedRoom:
        """A new room in one activity, on the shortest path the platform allows: the room is
        created while the people are looked up, then the invites, the card and (where it takes a
        call) the join link go out together.

        Each call is retried where it failed (`activities.in_place`), and each step's result is
        recorded as soon as it is known (`activities.checkpoints`): an attempt after a failure (or
        a lost worker) resumes from there instead of repeating the whole sequence. Repeating a step is safe
        anyway (room and card by key, invites by membership, found users are stored as links). A
        step the platform refuses for good fails the room only if it is the room itself; refused
        invites and a refused card come back as outcomes."""
        checkpoints = Checkpoints(self.store.step_progress, OpenProgress, OpenProgress.steps_done)
        done = await checkpoints.resume()
        try:
            with retry_decisions():
                await self._open(inp, done, checkpoints)
        finally:
            await checkpoints.flush()
        assert done.room is not None and done.members is not None and done.card is not None
        return OpenedRoom(
            room=done.room, members=done.members, card_handle=done.card or None, card_error=done.card_refused
        )

    async def _open(self, inp: OpenRoomInput, done: OpenProgress, checkpoints: Checkpoints[OpenProgress]) -> None:
        adapter = self.adapter(inp.platform)  # an unknown or unconfigured platform fails the room
        people = (
            _unless_refused(look_up_people(adapter, self.store.links, _contacts(inp.people)))
            if done.members is None
            else _nothing()
        )
        if done.room is None:
            done.room = await self._registered(inp.platform, inp.spec)
        if done.room is None:  # the people first: their lookups wait for a read of stored links
            looked_up, room = await asyncio.gather(people, adapter.create_room(inp.spec), return_exceptions=True)
            if isinstance(room, RoomRef):
                done.room = room
                checkpoints.record(done)
            _raise_first(room, looked_up)
            found, lookup_refused = looked_up  # type: ignore[misc]
        else:
            found, lookup_refused = await people
        chat_id = done.room.chat_id
        steps = []  # the platform's calls first, then the read model's write
        if done.members is None:
            steps.append(self._invite_step(done, checkpoints, adapter, chat_id, inp.people, found, lookup_refused))
        if done.card is None:
            steps.append(self._card_step(done, checkpoints, adapter, chat_id, inp))
        if done.room.join_url is None:
            steps.append(self._join_link_step(done, checkpoints, adapter, chat_id))
        steps.append(self._register(inp.platform, inp.spec, done.room, extra=inp.extra))
        _raise_first(*await asyncio.gather(*steps, return_exceptions=True))

    async def _invite_step(
        self,
        done: OpenProgress,
        checkpoints: Checkpoints[OpenProgress],
        adapter: ImAdapter,
        chat_id: str,
        people: list[Person],
        found: Found | None,
        refused: str,
    ) -> None:
        """Invite the people found while their new links are stored; both done before the step
        counts as done (a retry after a failed write looks them up again)."""
        if refused or found is None:
            members, invite_refused = None, refused
        else:
            invited, _ = await asyncio.gather(
                _unless_refused(self._add(adapter, chat_id, people, found.people)), found.save()
            )
            members, invite_refused = invited
        if invite_refused:
            members = [
                MemberOutcome(
                    responder_id=p.responder_id, im_user_id=None, state=MemberState.FAILED, detail=invite_refused
                )
                for p in people
            ]
        done.members = members or []
        checkpoints.record(done)

    async def _card_step(
        self,
        done: OpenProgress,
        checkpoints: Checkpoints[OpenProgress],
        adapter: ImAdapter,
        chat_id: str,
        inp: OpenRoomInput,
    ) -> None:
        handle, refused = await _unless_refused(_post_card(adapter, chat_id, inp.card, inp.card_key))
        done.card, done.card_refused = (handle or ""), refused
        checkpoints.record(done)

    async def _join_link_step(
        self, done: OpenProgress, checkpoints: Checkpoints[OpenProgress], adapter: ImAdapter, chat_id: str
    ) -> None:
        """The room's join link, beside the invites and the card: on platforms where it takes a
        call of its own (Lark, DingTalk) that call is off the path to a ready room. A room works
        without its link, so a failure leaves it out instead of failing the room."""
        try:
            link = await adapter.join_url(chat_id)
        except Exception as e:
            log.warning("no join link for %s room %s: %s", adapter.platform, chat_id, brief(e))
            return
        if link and done.room is not None:
            done.room = done.room.model_copy(update={"join_url": link})
            checkpoints.record(done)

    @activity.defn(name=names.IM_INVITE_MEMBERS)
    async def invite_members(self, inp: InviteMembersInput) -> list[MemberOutcome]:
        """Resolve everyone (in parallel) and invite the linked ones in platform-sized batches."""
        adapter = self.adapter(inp.platform)
        with retry_decisions():
            resolutions = await resolve_people(adapter, self.store.links, _contacts(inp.people))
            return await self._add(adapter, inp.chat_id, inp.people, resolutions)

    async def _add(
        self, adapter: ImAdapter, chat_id: str, people: list[Person], resolutions: list[Resolution]
    ) -> list[MemberOutcome]:
        """Invite the people who were found, in platform-sized batches; one outcome per person."""
        if not resolutions:  # nobody to invite (or their lookups were refused: the caller says so)
            return []
        ids = sorted({r.im_user_id for r in resolutions if r.im_user_id})
        batch = adapter.capabilities.max_invite_batch
        results = {}
        for i in range(0, len(ids), batch):
            for res in await adapter.add_members(chat_id, ids[i : i + batch]):
                results[res.im_user_id] = res
        outcomes = []
        for p, r in zip(people, resolutions, strict=True):
            if not r.im_user_id:
                state, detail = MemberState.UNLINKED, r.detail
            elif results[r.im_user_id].ok:  # the platform's remark (waiting for an approval, a group…) kept
                said = results[r.im_user_id].detail
                state, detail = MemberState.INVITED, f"linked by {r.method}" + (f"; {said}" if said else "")
            else:
                state, detail = MemberState.FAILED, results[r.im_user_id].detail
            outcomes.append(
                MemberOutcome(responder_id=p.responder_id, im_user_id=r.im_user_id, state=state, detail=detail)
            )
        return outcomes

    @activity.defn(name=names.IM_REMOVE_MEMBERS)
    async def remove_members(self, inp: RemoveMembersInput) -> None:
        """Remove people who left the incident; where the platform cannot, they stay (logged)."""
        adapter = self.adapter(inp.platform)
        if not adapter.capabilities.remove_members:
            activity.logger.info(
                "%s cannot remove members; %d stay in %s", inp.platform, len(inp.im_user_ids), inp.chat_id
            )
            return
        with retry_decisions():
            await adapter.remove_members(inp.chat_id, inp.im_user_ids)

    @activity.defn(name=names.IM_POST_CARD)
    async def post_card(self, inp: PostCardInput) -> str:
        with retry_decisions():
            return await _post_card(self.adapter(inp.platform), inp.chat_id, inp.card, inp.key)

    @activity.defn(name=names.IM_UPDATE_CARD)
    async def update_card(self, inp: UpdateCardInput) -> None:
        """Show the card's new content: edited in place, or where cards cannot be edited, posted
        as a new status message (once per card version; the workflow sends only the newest)."""
        adapter = self.adapter(inp.platform)
        with retry_decisions():
            if adapter.capabilities.edit_card:
                await adapter.update_card(inp.chat_id, CardHandle(inp.handle), inp.card)
            else:
                key = f"status:{inp.handle}:v{inp.card.version}"
                await adapter.post_message(inp.chat_id, status_text(inp.card), key)

    @activity.defn(name=names.IM_POST_MESSAGE)
    async def post_message(self, inp: PostMessageInput) -> str:
        with retry_decisions():
            adapter = self.adapter(inp.platform)
            if inp.rich is not None and not inp.mentions:
                return (await adapter.post_rich(inp.chat_id, inp.rich, inp.key)).message_id
            return (await adapter.post_message(inp.chat_id, inp.text, inp.key, mentions=inp.mentions)).message_id

    @activity.defn(name=names.IM_POST_NOTICE)
    async def post_notice(self, inp: PostNoticeInput) -> None:
        adapter = self.adapter(inp.platform)
        text = inp.text
        if inp.offer_self_link and adapter.capabilities.private_notices:
            url = selflink.offer(self.settings, inp.platform, inp.im_user_id)
            if url:
                text += f" Are you a responder? Link this account to you, then click again: {url}"
        with retry_decisions():
            await adapter.post_notice(inp.chat_id, inp.im_user_id, text, inp.key)

    @activity.defn(name=names.IM_DISMISS_ROOM)
    async def dismiss_room(self, inp: DismissInput) -> None:
        """Disband or archive the room; a platform that can do neither gets a closing message
        and the room renamed as closed (`Dismissal.NONE`), and nothing is posted there after."""
        adapter = self.adapter(inp.platform)
        with retry_decisions():
            if adapter.capabilities.dismissal is not Dismissal.NONE:
                await adapter.dismiss_room(inp.chat_id)
                return
            await adapter.post_message(inp.chat_id, CLOSING_TEXT, f"closing:{inp.chat_id}")
            if inp.name:
                await adapter.rename_room(inp.chat_id, closed_name(inp.name))

    @activity.defn(name=names.IM_LINK_USERS)
    async def link_users(self, inp: LinkUsersInput) -> LinkUsersResult:
        """Bulk linking: resolve everyone at once and store the links found. Progress goes out as
        heartbeat details (`LinkProgress`), which the console reads to show how far it got."""
        adapter = self.adapter(inp.platform)
        adapter.forget_misses()  # someone just added to the workspace is found now

        def progress(done: int, total: int) -> None:
            activity.heartbeat(LinkProgress(done=done, total=total))

        with retry_decisions():
            resolutions = await resolve_people(adapter, self.store.links, _contacts(inp.people), progress=progress)
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
            self.open_room,
            self.remove_members,
            self.post_card,
            self.update_card,
            self.post_message,
            self.post_notice,
            self.dismiss_room,
        ]


class OpenProgress(BaseModel):
    """What `open_room` has done so far, for its next attempt (`activities.checkpoints`)."""

    room: RoomRef | None = None
    members: list[MemberOutcome] | None = None
    card: str | None = None  # the card's message id; "" when the platform refused it
    card_refused: str = ""

    def steps_done(self) -> int:
        return sum(step is not None for step in (self.room, self.members, self.card))


async def _post_card(adapter: ImAdapter, chat_id: str, card: StatusCard, key: str) -> CardHandle:
    """Post the card and, where the platform pins, pin it (both idempotent: a retry repeats them)."""
    handle = await adapter.post_card(chat_id, card, key)
    if adapter.capabilities.pin_card:
        await adapter.pin_card(chat_id, handle)
    return handle


async def _nothing() -> tuple[Found | None, str]:
    return None, ""


def _raise_first(*results: object) -> None:
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def _unless_refused(step: Awaitable[T]) -> tuple[T | None, str]:
    """(result, "") or, when the platform refused for good, (None, why): a refused step of a
    composite activity is an outcome, while anything retryable still fails (and retries) it all."""
    try:
        return await step, ""
    except PermanentImError as e:
        return None, str(e)


def _contacts(people: list[Person]) -> list[Contact]:
    return [Contact(name=p.name, email=p.email, phone=p.phone) for p in people]

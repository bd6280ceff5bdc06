"""The WeCom adapter: war rooms as `appchat` groups, the status in the group, the buttons on
application cards sent to each responder.

How WeCom's gaps are met:
- **Two members to create a group.** `create_room` derives the group's `chatid` (ours to choose)
  and registers the room; the group itself is created by the first `add_members` that brings two
  people (linked responders, or one responder and WECOM_DUTY_USER_IDS), its owner a linked
  responder. Until then invites succeed with the remark "waiting for a second member" (the
  timeline's `member.invited` says so), the people wait in the room's record, and each already
  gets their application card, so a lone responder can acknowledge or close meanwhile. A retried
  create meets "chatid exists" (86215): the group is confirmed ours with `appchat/get` (same
  name, or our members), then it is success.
- **No buttons in groups, no edits.** `post_card` and `update_card` post the status to the group
  as markdown (once per version: `wecom_sent`) and bring every member's application card to the
  newest version: `message/update_template_card` with that card's latest unused `response_code`
  (single use: from the send, then from each click), or a new card (`task_id` per room, version
  and person) when no code is left or the update is refused. Versions never go backwards, and
  concurrent updates coalesce: the card kept in the room's record is the newest, and each sync
  sends that one. WeCom drops app messages beyond 30 a minute per person silently, so the adapter
  keeps 25 and defers the rest (`RateLimited`: Temporal retries after the wait).
- **No disband.** The core posts a closing message and renames the group (`rename_room`), which
  marks the room closed: whatever arrives for it afterwards is dropped and written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from warroom.errors import ImError, PermanentImError, RateLimited, TransientImError
from warroom.im.base import (
    CallbackRequest,
    CallbackResult,
    CardHandle,
    ChatMessage,
    ImAdapter,
    InviteResult,
    Mention,
    MessageRef,
    RoomRef,
    RoomSpec,
    SetupCheck,
    StatusCard,
)
from warroom.im.plugin import PlatformContext
from warroom.im.rich import Rich
from warroom.im.wecom import card as cards
from warroom.im.wecom import naming, render, text
from warroom.im.wecom.api import EMAIL_TYPES, WeComApi
from warroom.im.wecom.capabilities import CAPABILITIES, GROUP_CAP, MAX_INVITE_BATCH
from warroom.im.wecom.errors import CHAT_EXISTS, PLATFORM, UNKNOWN_OUTCOME
from warroom.im.wecom.settings import WeComSettings
from warroom.im.wecom.state import Card, Room, State

T = TypeVar("T")
log = logging.getLogger("warroom.im.wecom")
audit = logging.getLogger("warroom.audit")
CARD_CONCURRENCY = 8  # cards in flight at once per room (WeCom's 45033 limits concurrent calls)
PER_PERSON_PER_MINUTE = 25  # WeCom: at most 30 app messages a minute to one person, the excess dropped
HIT_TTL = 3600.0
MISS_TTL = 3600.0  # "many wrong numbers block the call for a day": a miss is not asked again for an hour
MEMBER_CODES = {"86216", "86007", "40003", "60111", "86005"}  # a member (or the owner) WeCom refuses
WAITING = (
    "waiting for a second member: a WeCom group needs two people, and only one is linked. The group is "
    "created when a second responder is linked (or set WECOM_DUTY_USER_IDS to add a duty account)"
)


def _now() -> float:
    return time.monotonic()


class WeComAdapter(ImAdapter):
    platform = "wecom"
    capabilities = CAPABILITIES

    def __init__(self, api: WeComApi, settings: WeComSettings, state: State, *, public_url: str = "") -> None:
        self.api = api
        self.settings = settings
        self.state = state
        self.public_url = public_url.rstrip("/")
        self.duty = settings.duty()
        self._locks: dict[str, asyncio.Lock] = {}
        self._sent_to: dict[str, deque[float]] = defaultdict(deque)
        self._people: dict[tuple[str, str], tuple[str | None, float]] = {}
        from warroom.im.wecom.callbacks import Callbacks

        self.callbacks = Callbacks(settings, state)

    def _lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    async def _room(self, chat_id: str) -> Room:
        room = await asyncio.to_thread(self.state.room, chat_id)
        if room is None:
            raise PermanentImError(f"wecom: {chat_id} is not a war room War Room created", platform=PLATFORM,
                                   code="unknown_room")  # fmt: skip
        return room

    def _silenced(self, room: Room, what: str) -> bool:
        if room.closed:
            audit.warning("dropped wecom %s for closed war room %s (%s): nothing is posted after closing",
                          what, room.chat_id, room.incident_id)  # fmt: skip
        return room.closed

    # ------------------------------------------------------------------ rooms
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        chat_id, name = naming.chat_id(spec), naming.group_name(spec)
        room = await asyncio.to_thread(self.state.add_room, chat_id, spec.incident_id, name)
        if not room.created:  # an earlier attempt may have made it (or someone else: refused); this
            async with self._lock(chat_id):  # get runs while the responders are looked up
                if not await self._adopt(room) and len(self.duty) >= 2:  # the duty accounts make it now
                    await self._create(room, owner=self.duty[0], members=list(self.duty))
        return RoomRef(chat_id=chat_id, name=room.name, join_url=None)

    async def _adopt(self, room: Room) -> bool:
        """Is the group there already (made by us)? Then the record says so."""
        info = await self.api.get_chat(room.chat_id)
        if info is None:
            return False
        members = [str(u) for u in info.get("userlist") or []]
        ours = (
            info.get("name") == room.name
            or info.get("name") == naming.fit(f"[closed] {room.name}")
            or (room.waiting and set(room.waiting) <= set(members))
        )
        if not ours:
            raise PermanentImError(
                f"wecom: a group with chatid {room.chat_id} exists but is not this war room (named "
                f"{str(info.get('name'))[:60]!r})",
                platform=PLATFORM,
                code="chat_taken",
            )
        await asyncio.to_thread(self.state.save_room, room, created=True, members=members,
                                owner=str(info.get("owner") or ""), waiting=[])  # fmt: skip
        return True

    async def join_url(self, chat_id: str) -> str | None:
        return None  # appchat groups have no link

    async def rename_room(self, chat_id: str, name: str) -> None:
        async with self._lock(chat_id):
            room = await self._room(chat_id)
            if room.closed:
                return
            if room.created:
                await self.api.update_chat(chat_id, name=naming.fit(name, room.incident_id))
                if self.settings.remove_members_on_close:
                    await self._empty(room)
            await asyncio.to_thread(self.state.save_room, room, closed=True)
        audit.info("wecom war room %s closed: renamed %r, nothing is posted to it from now on", chat_id, name)

    async def _empty(self, room: Room) -> None:
        """WECOM_REMOVE_MEMBERS_ON_CLOSE: everyone but the owner leaves the closed group (WeCom has
        no disband, and the owner cannot be removed). A retry removes whoever is still in it."""
        gone = [u for u in room.members if u != room.owner]
        for i in range(0, len(gone), MAX_INVITE_BATCH):
            chunk = gone[i : i + MAX_INVITE_BATCH]
            await self.api.update_chat(room.chat_id, remove=chunk)
            await asyncio.to_thread(self.state.save_room, room, members=[u for u in room.members if u not in chunk])
        audit.info("wecom war room %s closed: %d members removed, %s (the owner) stays", room.chat_id, len(gone),
                   room.owner)  # fmt: skip

    async def dismiss_room(self, chat_id: str) -> None:
        """WeCom cannot disband a group (`Dismissal.NONE`): the core renames it instead. Should
        anything call this, the room is closed the same way."""
        room = await self._room(chat_id)
        await self.rename_room(chat_id, f"[closed] {room.name}")

    # ------------------------------------------------------------------ people
    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        if email and email.strip():
            for kind in EMAIL_TYPES:  # the corp's mail first, then a personal address
                found = await self._cached(f"email{kind}", email.strip().lower(),
                                           lambda k=kind: self.api.userid_by_email(email.strip(), k))  # fmt: skip
                if found:
                    return found
        number = _mobile(phone or "")
        if number:
            return await self._cached("mobile", number, lambda: self.api.userid_by_mobile(number))
        return None

    async def _cached(self, kind: str, key: str, ask: Any) -> str | None:
        """Hits and misses are kept (misses too: WeCom blocks a day after many wrong numbers); a
        phone number's miss in SQL as well, for every process and past restarts."""
        known = self._people.get((kind, key))
        if known is not None and _now() - known[1] < (HIT_TTL if known[0] else MISS_TTL):
            return known[0]
        shared = kind == "mobile"
        if shared and await asyncio.to_thread(self.state.missed_recently, kind, key, MISS_TTL):
            self._people[(kind, key)] = (None, _now())
            return None
        found = await ask()
        self._people[(kind, key)] = (found, _now())
        if shared and found is None:
            await asyncio.to_thread(self.state.missed, kind, key)
        return found

    # ------------------------------------------------------------------ members
    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        ids = list(dict.fromkeys(u for u in im_user_ids if u))
        results: dict[str, InviteResult] = {}
        async with self._lock(chat_id):
            room = await self._room(chat_id)
            if self._silenced(room, "invite"):
                return [InviteResult(im_user_id=u, ok=False, detail="the war room is closed") for u in ids]
            if not room.created:  # a group an earlier attempt made answers "chatid exists" (`_create`)
                people = [u for u in dict.fromkeys([*room.waiting, *ids]) if u not in self.duty]
                group = list(dict.fromkeys([*people, *self.duty]))
                if len(group) < 2 or not people:
                    await asyncio.to_thread(self.state.save_room, room, waiting=people)
                    await self._sync_cards(room)  # the lone responder acts from their card meanwhile
                    # ok: they are in the room's record and join the group with the second member (the
                    # workflow does not invite them again); the detail says why there is no group yet
                    return [InviteResult(im_user_id=u, ok=True, detail=WAITING) for u in ids]
                await self._create(room, owner=people[0], members=group[:GROUP_CAP])
            status = (  # the status waited for the group (posted once per version), beside the invites
                self._post_status(room, StatusCard.model_validate(room.card)) if room.card is not None else _nothing()
            )
            return await _both(status, self._invite(room, ids, results))

    async def _invite(self, room: Room, ids: list[str], results: dict[str, InviteResult]) -> list[InviteResult]:
        """Into an existing group: the owner handed to a responder, the new people in batches, their cards."""
        chat_id = room.chat_id
        responders = [u for u in ids if u not in self.duty]
        if room.owner in self.duty and responders:  # the group's owner: a linked responder
            await self._hand_over(room, responders[0])
        new = [u for u in ids if u not in room.members]
        space = max(GROUP_CAP - len(room.members), 0)
        for u in new[space:]:
            results[u] = InviteResult(im_user_id=u, ok=False, detail=f"the group is full ({GROUP_CAP} people)")
        new = new[:space]
        for i in range(0, len(new), MAX_INVITE_BATCH):
            chunk = new[i : i + MAX_INVITE_BATCH]
            try:
                await self.api.update_chat(chat_id, add=chunk)
            except PermanentImError as e:
                if len(chunk) == 1 or e.code in ("60011", "86008", "86003"):
                    results.update({u: InviteResult(im_user_id=u, ok=False, detail=str(e)) for u in chunk})
                    continue
                for u in chunk:  # one bad id refuses the batch: find it, invite the rest
                    try:
                        await self.api.update_chat(chat_id, add=[u])
                    except PermanentImError as one:
                        results[u] = InviteResult(im_user_id=u, ok=False, detail=str(one))
                    else:
                        room.members.append(u)
                await asyncio.to_thread(self.state.save_room, room, members=list(room.members))
                continue
            await asyncio.to_thread(self.state.save_room, room, members=[*room.members, *chunk])
        await self._sync_cards(room)  # a new member gets the card too
        return [results.get(u) or InviteResult(im_user_id=u, ok=True) for u in ids]

    async def _create(self, room: Room, *, owner: str, members: list[str]) -> None:
        try:
            try:
                await self.api.create_chat(room.chat_id, room.name, owner, members)
            except PermanentImError as e:
                if e.code not in MEMBER_CODES or len(members) <= 2:
                    raise
                # one bad id refuses them all: the group with the owner and the first who works,
                # the others are invited one batch (and then one) at a time by the caller
                members = await self._create_small(room, owner, [u for u in members if u != owner], e)
        except PermanentImError as e:
            if not (e.code in {str(c) for c in CHAT_EXISTS} or "exist" in str(e).lower()):
                raise
            if not await self._adopt(room):  # "exists", yet appchat/get does not know it
                raise TransientImError(f"wecom: {e}; appchat/get cannot find it yet", platform=PLATFORM) from e
            return
        await asyncio.to_thread(self.state.save_room, room, created=True, owner=owner, members=list(members),
                                waiting=[])  # fmt: skip
        audit.info("wecom group %s created for %s with %d members (owner %s)", room.chat_id, room.incident_id,
                   len(members), owner)  # fmt: skip

    async def _hand_over(self, room: Room, owner: str) -> None:
        add = [] if owner in room.members else [owner]
        try:
            await self.api.update_chat(room.chat_id, owner=owner, add=add)
        except PermanentImError as e:  # that person cannot own it (or join): the duty account keeps it
            log.info("wecom group %s stays owned by %s: %s", room.chat_id, room.owner, e)
            return
        await asyncio.to_thread(self.state.save_room, room, owner=owner,
                                members=list(dict.fromkeys([*room.members, owner])))  # fmt: skip

    async def _create_small(self, room: Room, owner: str, others: list[str], first: PermanentImError) -> list[str]:
        for other in others:
            try:
                await self.api.create_chat(room.chat_id, room.name, owner, [owner, other])
            except PermanentImError as e:
                if e.code not in MEMBER_CODES:
                    raise
                continue
            return [owner, other]
        raise first

    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        async with self._lock(chat_id):
            room = await self._room(chat_id)
            if not room.created:
                await asyncio.to_thread(self.state.save_room, room,
                                        waiting=[u for u in room.waiting if u not in im_user_ids])  # fmt: skip
                for u in im_user_ids:
                    await asyncio.to_thread(self.state.forget_card, chat_id, u)
                return
            keep = {room.owner, *self.duty}  # the owner keeps the group manageable
            ids = [u for u in dict.fromkeys(im_user_ids) if u in room.members and u not in keep]
            for i in range(0, len(ids), MAX_INVITE_BATCH):
                chunk = ids[i : i + MAX_INVITE_BATCH]
                await self.api.update_chat(chat_id, remove=chunk)
                await asyncio.to_thread(self.state.save_room, room,
                                        members=[u for u in room.members if u not in chunk])  # fmt: skip
                for u in chunk:
                    await asyncio.to_thread(self.state.forget_card, chat_id, u)

    # ------------------------------------------------------------------ status and cards
    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        await self._show(chat_id, card)
        return CardHandle(f"wecom:{chat_id}")

    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        await self._show(chat_id, card)

    async def _show(self, chat_id: str, card: StatusCard) -> None:
        await asyncio.to_thread(self.state.newer_card, chat_id, card.model_dump(mode="json"), card.version)
        async with self._lock(chat_id):
            room = await self._room(chat_id)
            if self._silenced(room, f"status v{card.version}"):
                return
            if room.card_version > card.version or room.card is None:
                return  # a newer version is shown already, or is next in line
            newest = StatusCard.model_validate(room.card)
            status = self._post_status(room, newest) if room.created else _nothing()
            await _both(status, self._sync_cards(room))  # the group's message and the cards: one round trip

    async def _post_status(self, room: Room, card: StatusCard) -> None:
        await self._send_once(room, f"status:{room.chat_id}:v{card.version}", cards.status_markdown(card))

    async def _sync_cards(self, room: Room) -> None:
        """Bring every responder's application card to the room's newest card version: the group's
        members, or before the group exists the people waiting for it (their buttons work without a
        group). Duty accounts get no card: they are not responders, and their clicks would be refused.

        One call per person, CARD_CONCURRENCY at a time (the cards are one round trip, not one per
        person). A person WeCom refuses for good (left the company…) does not hold up the others;
        if it refuses everyone, or something may be retried, the sync fails after the others are done."""
        if room.card is None:
            return
        card = StatusCard.model_validate(room.card)
        known = await asyncio.to_thread(self.state.cards, room.chat_id)
        deferred: list[float] = []
        due = []
        for userid in room.members if room.created else room.waiting:
            mine = known.get(userid)
            if userid in self.duty or (mine is not None and mine.version >= card.version):
                continue
            wait = self._budget(userid)
            if wait:
                deferred.append(wait)
            else:
                due.append(userid)
        gate = asyncio.Semaphore(CARD_CONCURRENCY)

        async def bring(userid: str) -> None:
            async with gate:
                await self._bring_card(room, userid, card, known.get(userid))

        outcomes = await asyncio.gather(*(bring(u) for u in due), return_exceptions=True)
        failed = [(u, e) for u, e in zip(due, outcomes, strict=True) if isinstance(e, BaseException)]
        retry = [e for _, e in failed if not isinstance(e, PermanentImError)]
        if retry:
            raise retry[0]
        if failed and len(failed) == len(due):
            raise failed[0][1]
        for userid, e in failed:
            log.warning("wecom card for %s in %s not sent: %s", userid, room.chat_id, e)
        if deferred:
            raise RateLimited(
                f"wecom: {len(deferred)} cards deferred (at most {PER_PERSON_PER_MINUTE} app messages a minute "
                "to one person; WeCom drops the excess silently)",
                retry_after=max(deferred),
                platform=PLATFORM,
                code="per_person",
            )

    async def _bring_card(self, room: Room, userid: str, card: StatusCard, mine: Card | None) -> None:
        """Update that person's card with its latest unused code, or send a new one."""
        if mine is not None and mine.response_code:
            try:
                await self.api.update_card(userid, mine.response_code, cards.template_card(card, mine.task_id))
            except TransientImError as e:
                if e.code in UNKNOWN_OUTCOME:  # it may have been updated, and the code spent: no second card
                    await asyncio.to_thread(self.state.card_updated, room.chat_id, userid, card.version,
                                            mine.response_code)  # fmt: skip
                raise
            except PermanentImError as e:  # the code was spent or expired: a new card instead
                log.info("wecom card of %s in %s not updated (%s): sending a new one", userid, room.chat_id, e)
                await asyncio.to_thread(self.state.card_updated, room.chat_id, userid, mine.version,
                                        mine.response_code)  # fmt: skip
            else:
                await asyncio.to_thread(self.state.card_updated, room.chat_id, userid, card.version,
                                        mine.response_code)  # fmt: skip
                return
        await self._send_card(room, userid, card)

    async def _send_card(self, room: Room, userid: str, card: StatusCard) -> None:
        for attempt in range(3):
            task = naming.task_id(room.chat_id, card.version, userid, attempt)
            try:
                _, code = await self.api.send_card(userid, cards.template_card(card, task))
            except PermanentImError as e:
                if "task_id" in str(e) and "exist" in str(e):  # an earlier attempt's card arrived: no code of it
                    if attempt == 0:
                        await asyncio.to_thread(self.state.card_sent, room.chat_id, userid, task, card.version, "")
                        return
                    continue
                raise
            await asyncio.to_thread(self.state.card_sent, room.chat_id, userid, task, card.version, code)
            return

    def _budget(self, userid: str) -> float:
        """0 when one more app message to `userid` fits this minute, else the seconds to wait."""
        sent, now = self._sent_to[userid], _now()
        while sent and now - sent[0] > 60:
            sent.popleft()
        if len(sent) >= PER_PERSON_PER_MINUTE:
            return 60 - (now - sent[0]) + 0.1
        sent.append(now)
        return 0.0

    # ------------------------------------------------------------------ messages
    async def post_message(
        self, chat_id: str, text_: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        room = await self._room(chat_id)
        if self._silenced(room, "message"):
            return MessageRef(message_id=f"dropped:{idempotency_key}")
        asker = _direct_asker(idempotency_key)
        if asker is not None:  # the answer to a question asked 1:1: back to the asker, 1:1
            await self.post_notice(chat_id, asker, text_, idempotency_key)
            return MessageRef(message_id=idempotency_key)
        if not room.created:
            audit.info("wecom message %s for %s not posted: the group does not exist yet (%s)", idempotency_key,
                       chat_id, WAITING)  # fmt: skip
            return MessageRef(message_id=f"no-group:{idempotency_key}")
        body = text.with_mentions(text_, [m.im_user_id for m in mentions])
        await self._send_once(room, f"msg:{chat_id}:{idempotency_key}", body)
        return MessageRef(message_id=idempotency_key)

    async def post_rich(self, chat_id: str, rich: Rich, idempotency_key: str) -> MessageRef:
        """WeCom markdown with our links (warroom/im/wecom/render.py); a 1:1 question's answer
        goes back 1:1 as plain text, like any post."""
        room = await self._room(chat_id)
        if self._silenced(room, "message") or _direct_asker(idempotency_key) is not None or not room.created:
            return await self.post_message(chat_id, rich.plain(), idempotency_key)
        await self._send_once(room, f"msg:{chat_id}:{idempotency_key}", render.render(rich))
        return MessageRef(message_id=idempotency_key)

    async def post_notice(self, chat_id: str, im_user_id: str, text_: str, idempotency_key: str) -> None:
        """Told to that person alone, as a message from the app (WeCom has no ephemeral messages)."""
        key = f"notice:{chat_id}:{idempotency_key}"
        if await asyncio.to_thread(self.state.claim, key) is not None:
            return
        try:
            await self.api.send_text(im_user_id, text.fit(text_, 2000))
        except ImError as e:
            await asyncio.to_thread(self.state.mark, key, "unknown" if e.code in UNKNOWN_OUTCOME else None)
            raise
        await asyncio.to_thread(self.state.mark, key, "sent")

    async def _send_once(self, room: Room, key: str, markdown: str) -> None:
        """`appchat/send` has no dedup key: a key is sent once; one that may have arrived (timed
        out) is not sent again (a duplicate is worse than a possibly missing message)."""
        earlier = await asyncio.to_thread(self.state.claim, key)
        if earlier is not None:
            if earlier == "unknown":
                log.info("wecom message %s may have been posted (timed out earlier): not posted again", key)
            return
        try:
            await self.api.send_markdown(room.chat_id, markdown)
        except ImError as e:
            await asyncio.to_thread(self.state.mark, key, "unknown" if e.code in UNKNOWN_OUTCOME else None)
            raise
        except BaseException:
            await asyncio.to_thread(self.state.mark, key, None)
            raise
        await asyncio.to_thread(self.state.mark, key, "sent")

    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        return []  # a self-built app cannot read group messages

    # ------------------------------------------------------------------ inbound
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        return self.callbacks.handle(request)

    # ------------------------------------------------------------------ setup
    async def setup_checks(self) -> list[SetupCheck]:
        from warroom.im.wecom.checks import run_checks

        return await run_checks(self.api, self.settings, self.public_url)

    async def aclose(self) -> None:
        return None  # the client (and its token) is shared by the process


async def _nothing() -> None:
    return None


async def _both(first: Awaitable[Any], second: Awaitable[T]) -> T:
    """Run both at once; the second's result, or the first error (after both have ended)."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    for e in (a, b):
        if isinstance(e, BaseException):
            raise e
    return b  # type: ignore[return-value]


def _direct_asker(key: str) -> str | None:
    """The asker of the assistant's answer to a 1:1 question: its key ends in
    `ai-answer-<message id>`, and such a message id is `dm:<userid>:<MsgId>` (`callbacks`)."""
    at = key.rfind("ai-answer-dm:")
    if at < 0:
        return None
    parts = key[at + len("ai-answer-dm:") :].split(":")
    return parts[0] if len(parts) == 2 and parts[0] and parts[1].isdigit() else None


def _mobile(phone: str) -> str:
    """WeCom's mobile numbers: digits, a Chinese +86 prefix dropped (other countries keep theirs)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if phone.strip().startswith("+") and digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    if phone.strip().startswith("+") and not digits.startswith("86"):
        return f"+{digits}"
    return digits if len(digits) >= 5 else ""


def build_wecom_adapter(context: PlatformContext) -> WeComAdapter:
    settings: WeComSettings = context.settings
    secret = settings.secret.get_secret_value()
    if not settings.corp_id or not secret or not settings.agent_id:
        raise PermanentImError(
            "WeCom is not configured: set WECOM_CORP_ID (我的企业 → 企业ID), WECOM_SECRET and WECOM_AGENT_ID "
            "(应用管理 → your self-built app), WECOM_TOKEN and WECOM_ENCODING_AES_KEY (the app's 接收消息 settings)",
            platform=PLATFORM,
            code="not_configured",
        )
    api = WeComApi(corp_id=settings.corp_id, secret=secret, agent_id=settings.agent_id,
                   api_base_url=settings.api_base_url, timeout=settings.timeout_seconds)  # fmt: skip
    database = context.database
    state = State(database.engine if database is not None else None)
    return WeComAdapter(api, settings, state, public_url=context.public_url)

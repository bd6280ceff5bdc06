"""The DingTalk adapter: war rooms as scene groups, one interactive status card each.

Exactly-once, from DingTalk's own dedup keys where it has them and War Room's records where not:
- a room: the scene group's `uuid` (from the incident and the room generation), and concurrent
  creates of one room in this process share one call;
- the card: its `outTrackId` (from the incident and the card's key); a create that timed out after
  DingTalk made the card is retried with the same id and makes none;
- a message: `warroom.im.sent_once` (in SQL, shared by every worker), DingTalk having no key for
  them;
- members: adding someone present and removing someone gone are success; the owner is never removed.

Card updates coalesce like Lark's: only the newest version waiting is sent, and an older version
never overwrites a newer one. The group holds at most 1,000 people: invites beyond that fail with
that reason, one by one, instead of failing the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from warroom.errors import PermanentImError, TransientImError
from warroom.im.base import (
    CallbackRequest,
    CallbackResult,
    CardHandle,
    ChatMessage,
    Deliver,
    ImAdapter,
    InviteResult,
    Mention,
    MessageRef,
    RoomRef,
    RoomSpec,
    SetupCheck,
    StatusCard,
)
from warroom.im.dingtalk import card as cards
from warroom.im.dingtalk import naming, render, tables
from warroom.im.dingtalk import text as markdown
from warroom.im.dingtalk.api import DingTalkApi
from warroom.im.dingtalk.callbacks import HttpCallbacks
from warroom.im.dingtalk.capabilities import CAPABILITIES, GROUP_CAP, MAX_INVITE_BATCH
from warroom.im.dingtalk.checks import DingTalkSetup, run_checks
from warroom.im.dingtalk.directory import Directory
from warroom.im.dingtalk.errors import GONE_CODES, UNKNOWN_OUTCOME
from warroom.im.dingtalk.settings import DingTalkSettings
from warroom.im.dingtalk.stream import StreamConnection
from warroom.im.plugin import PlatformContext
from warroom.im.rich import Rich
from warroom.im.sent_once import SentOnce

log = logging.getLogger("warroom.im.dingtalk")


@dataclass
class _Card:
    chat_id: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wanted: int = 0
    applied: int = 0


def _gone(e: PermanentImError) -> bool:
    lowered = str(e).lower()
    return e.code in GONE_CODES or "not exist" in lowered or "不存在" in lowered or "disband" in lowered


class DingTalkAdapter(ImAdapter):
    platform = "dingtalk"
    capabilities = CAPABILITIES

    def __init__(
        self, api: DingTalkApi, settings: DingTalkSettings, *, public_url: str = "", engine: Engine | None = None
    ) -> None:
        self.api = api
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.robot_code = settings.robot_code
        self.owner = settings.owner_user_id
        self.directory = Directory(api, ttl=settings.directory_ttl_minutes * 60)
        self.callbacks = HttpCallbacks(app_secret=settings.app_secret.get_secret_value())
        self.stream = StreamConnection(
            app_key=settings.app_key,
            app_secret=settings.app_secret.get_secret_value(),
            api_base_url=settings.api_base_url,
            chat_of=self._chat_of_card,
            timeout=settings.timeout_seconds,
        )
        self.sent = SentOnce(tables.sent, engine)
        self._creating: dict[str, asyncio.Future[tuple[str, str]]] = {}
        self._members: dict[str, set[str]] = {}
        self._member_locks: dict[str, asyncio.Lock] = {}
        self._cards: dict[str, _Card] = {}
        self._links: dict[str, str] = {}

    # ------------------------------------------------------------------ rooms
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        if not self.owner or not self.settings.scene_group_template_id:
            raise PermanentImError(
                "DingTalk war rooms need DINGTALK_OWNER_USER_ID (the group owner, inside the app's visible range) "
                "and DINGTALK_SCENE_GROUP_TEMPLATE_ID (场景群 → 群模板, with the robot preinstalled)",
                platform=self.platform,
                code="not_configured",
            )
        title = naming.group_title(spec)
        uuid = naming.group_uuid(spec)
        pending = self._creating.get(uuid)
        if pending is None:  # concurrent creates of one room in this process share one call
            pending = self._creating[uuid] = asyncio.ensure_future(
                self.api.create_scene_group(
                    title=title,
                    template_id=self.settings.scene_group_template_id,
                    owner_user_id=self.owner,
                    uuid=uuid,
                )
            )
            pending.add_done_callback(lambda _: self._creating.pop(uuid, None))
        chat_id, _legacy_chat_id = await asyncio.shield(pending)
        self._members.setdefault(chat_id, {self.owner})
        # The join link is a call of its own: the core asks for it beside the invites and the card.
        return RoomRef(chat_id=chat_id, name=title, join_url=self._links.get(chat_id))

    async def join_url(self, chat_id: str) -> str | None:
        if chat_id not in self._links:
            try:
                link = await self.api.group_url(chat_id)
            except PermanentImError as e:  # e.g. chat-read permission missing: the room works without
                log.warning("no join link for dingtalk group %s: %s", chat_id, e)
                return None
            if not link:
                return None
            self._links[chat_id] = link
        return self._links[chat_id]

    async def dismiss_room(self, chat_id: str) -> None:
        try:
            await self.api.disband(chat_id)
        except PermanentImError as e:
            if not _gone(e):
                raise
            log.info("dingtalk group %s was already gone: %s", chat_id, e)
        for key in [k for k, c in self._cards.items() if c.chat_id == chat_id]:
            del self._cards[key]
        self._members.pop(chat_id, None)
        self._links.pop(chat_id, None)

    # ------------------------------------------------------------------ people
    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        found = await self.directory.by_email(email) if email else None
        if found is None and phone:
            found = await self.directory.by_phone(phone)
        return found

    def _member_lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._member_locks.get(chat_id)
        if lock is None:
            lock = self._member_locks[chat_id] = asyncio.Lock()
        return lock

    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        ids = list(dict.fromkeys(im_user_ids))
        results: dict[str, InviteResult] = {}
        async with self._member_lock(chat_id):
            known = self._members.setdefault(chat_id, {self.owner} if self.owner else set())
            new = [u for u in ids if u not in known]
            room = max(GROUP_CAP - len(known), 0)
            for u in new[room:]:
                results[u] = InviteResult(im_user_id=u, ok=False, detail=f"the group is full ({GROUP_CAP} people)")
            new = new[:room]
            for i in range(0, len(new), MAX_INVITE_BATCH):
                chunk = new[i : i + MAX_INVITE_BATCH]
                try:
                    await self.api.add_members(chat_id, chunk)
                except PermanentImError as e:
                    if len(chunk) == 1 or e.code in ("permession.checkFailed", "not_configured"):
                        for u in chunk:
                            results[u] = InviteResult(im_user_id=u, ok=False, detail=str(e))
                        continue
                    for u in chunk:  # one bad id refuses the batch: find it, invite the rest
                        try:
                            await self.api.add_members(chat_id, [u])
                        except PermanentImError as one:
                            results[u] = InviteResult(im_user_id=u, ok=False, detail=str(one))
                        else:
                            known.add(u)
                    continue
                known.update(chunk)
        return [results.get(u) or InviteResult(im_user_id=u, ok=True) for u in ids]

    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        ids = [u for u in dict.fromkeys(im_user_ids) if u != self.owner]  # the owner keeps the room
        async with self._member_lock(chat_id):
            for i in range(0, len(ids), MAX_INVITE_BATCH):
                chunk = ids[i : i + MAX_INVITE_BATCH]
                await self.api.remove_members(chat_id, chunk)
                self._members.get(chat_id, set()).difference_update(chunk)

    # ------------------------------------------------------------------ card
    def _chat_of_card(self, out_track_id: str) -> str | None:
        state = self._cards.get(out_track_id)
        return state.chat_id if state else None

    def _card(self, chat_id: str, handle: str) -> _Card:
        state = self._cards.get(handle)
        if state is None:
            state = self._cards[handle] = _Card(chat_id=chat_id)
        return state

    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        if not self.settings.card_template_id or not self.robot_code:
            raise PermanentImError(
                "the DingTalk status card needs DINGTALK_CARD_TEMPLATE_ID (卡片平台) and DINGTALK_ROBOT_CODE",
                platform=self.platform,
                code="not_configured",
            )
        out_track_id = naming.out_track_id(card.incident_id, idempotency_key)
        state = self._card(chat_id, out_track_id)
        async with state.lock:
            await self.api.create_and_deliver(
                out_track_id=out_track_id,
                template_id=self.settings.card_template_id,
                open_conversation_id=chat_id,
                robot_code=self.robot_code,
                params=cards.params(card),
            )
            state.applied = max(state.applied, card.version)
            state.wanted = max(state.wanted, card.version)
        return CardHandle(out_track_id)

    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        state = self._card(chat_id, handle)
        state.wanted = max(state.wanted, card.version)
        async with state.lock:
            if card.version < state.wanted or card.version <= state.applied:
                return  # a newer version is shown already, or is next in line
            await self.api.update_card(handle, cards.params(card))
            state.applied = card.version

    # ------------------------------------------------------------------ messages
    async def post_message(
        self, chat_id: str, text: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        if not self.robot_code:
            raise PermanentImError("DingTalk messages need DINGTALK_ROBOT_CODE", platform=self.platform,
                                   code="not_configured")  # fmt: skip
        body = markdown.with_mentions(text, [m.im_user_id for m in mentions])
        return await self._send_markdown(chat_id, markdown.title_of(text), body, idempotency_key)

    async def post_rich(self, chat_id: str, rich: Rich, idempotency_key: str) -> MessageRef:
        """Robot markdown with our links (warroom/im/dingtalk/render.py)."""
        if not self.robot_code:
            raise PermanentImError("DingTalk messages need DINGTALK_ROBOT_CODE", platform=self.platform,
                                   code="not_configured")  # fmt: skip
        return await self._send_markdown(chat_id, markdown.title_of(rich.plain()), render.render(rich), idempotency_key)

    async def _send_markdown(self, chat_id: str, title: str, body: str, idempotency_key: str) -> MessageRef:
        """Once per key (`warroom.im.sent_once` remembers what was sent, or that the outcome is unknown)."""
        earlier = await asyncio.to_thread(self.sent.claim, idempotency_key)
        if earlier is not None:
            return MessageRef(message_id=earlier.ref or f"unconfirmed:{idempotency_key}")
        try:
            ref = await self.api.send_markdown(
                robot_code=self.robot_code, open_conversation_id=chat_id, title=title, text=body
            )
        except BaseException as e:
            unknown = isinstance(e, TransientImError) and e.code in UNKNOWN_OUTCOME
            forget = self.sent.unknown if unknown else self.sent.failed
            await asyncio.shield(asyncio.to_thread(forget, idempotency_key))  # recorded even when cancelled
            raise
        await asyncio.shield(asyncio.to_thread(self.sent.sent, idempotency_key, ref or idempotency_key))
        return MessageRef(message_id=ref or idempotency_key)

    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        return []  # no history API: the transcript of @mentions is the record

    # ------------------------------------------------------------------ inbound
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        return self.callbacks.handle(request)

    async def listen(self, deliver: Deliver) -> None:
        """Stream mode: hold the connection until cancelled. HTTP mode: nothing to hold."""
        if self.settings.callback_mode != "stream":
            return
        await self.stream.run(deliver)

    def connection_status(self) -> dict[str, object] | None:
        if self.settings.callback_mode != "stream":
            return None
        s = self.stream.status
        return {"state": s.state, "since": s.since, "connects": s.connects, "frames": s.frames,
                "last_error": s.last_error}  # fmt: skip

    # ------------------------------------------------------------------ setup
    async def setup_checks(self) -> list[SetupCheck]:
        return await run_checks(DingTalkSetup(self.api, self.settings, self.public_url, self.connection_status))

    async def aclose(self) -> None:
        await self.api.aclose()


def build_dingtalk_adapter(context: PlatformContext) -> DingTalkAdapter:
    settings: DingTalkSettings = context.settings
    secret = settings.app_secret.get_secret_value()
    if not settings.app_key or not secret:
        raise PermanentImError(
            "DingTalk is not configured: set DINGTALK_APP_KEY and DINGTALK_APP_SECRET (developer console → your "
            "app → 凭证与基础信息), DINGTALK_ROBOT_CODE, DINGTALK_SCENE_GROUP_TEMPLATE_ID, DINGTALK_CARD_TEMPLATE_ID "
            "and DINGTALK_OWNER_USER_ID",
            platform="dingtalk",
            code="not_configured",
        )
    api = DingTalkApi(
        app_key=settings.app_key,
        app_secret=secret,
        api_base_url=settings.api_base_url,
        oapi_base_url=settings.oapi_base_url,
        timeout=settings.timeout_seconds,
    )
    engine = context.database.engine if context.database is not None else None
    return DingTalkAdapter(api, settings, public_url=context.public_url, engine=engine)

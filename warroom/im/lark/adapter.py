"""The Feishu/Lark adapter: war rooms as Lark group chats, through lark-oapi.

Idempotency comes from Lark's own dedup keys: `uuid` on chat creation (same uuid → one chat
within 10 hours) and on messages (same uuid → one message within an hour). War Room's keys are
longer than Lark's 50 characters, so they are hashed (`lark_uuid`).

Concurrency rules Lark imposes, kept here rather than in the workflow:
- member changes on one chat are serialized (Lark answers concurrent ones with 232019);
- a card message is PATCHed at most every `min_patch_interval` seconds (Lark allows 5 QPS per
  message), and updates waiting for their turn coalesce: only the newest version is sent, and
  an older version never overwrites a newer one;
- concurrent user lookups share one `batch_get_id` call (`LookupBatcher`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from warroom.errors import PermanentImError
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
from warroom.im.lark import card as cards
from warroom.im.lark import render
from warroom.im.lark.api import LarkApi
from warroom.im.lark.callbacks import LarkCallbacks, message_text
from warroom.im.lark.capabilities import CAPABILITIES, MAX_INVITE_BATCH
from warroom.im.lark.checks import LarkSetup, run_checks
from warroom.im.lark.errors import CHAT_GONE, CHAT_UNKNOWN
from warroom.im.lark.lookup import Found, LookupBatcher, lookup_many
from warroom.im.lark.settings import LarkSettings
from warroom.im.plugin import PlatformContext
from warroom.im.rich import Rich

log = logging.getLogger("warroom.im.lark")

MAX_NAME = 60  # Lark shows longer group names cut; keep the incident id and the start of the title
MAX_DESCRIPTION = 100
MAX_HISTORY_PAGES = 200  # 10,000 messages: a war room's history, not an archive crawl
MIN_PATCH_INTERVAL = 0.25  # seconds between PATCHes of one card message (Lark: 5 QPS per message)
_OPEN_ID = re.compile(r"ou_[A-Za-z0-9_-]+")
_AT_TAG = re.compile(r"<(/?at\b)", re.IGNORECASE)


def lark_uuid(key: str) -> str:
    """Lark's dedup key (≤50 characters) for one of War Room's idempotency keys."""
    return "wr-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def chat_name(spec: RoomSpec) -> str:
    name = " ".join(spec.name.split()) or f"inc-{spec.incident_id}"
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def chat_description(spec: RoomSpec) -> str:
    """The topic, always ending with the incident's link when the link fits."""
    url = spec.url.strip()
    topic = " ".join(spec.topic.split())
    if not url or len(url) > MAX_DESCRIPTION - 10:
        return topic[:MAX_DESCRIPTION]
    head = topic.replace(url, "").rstrip(" —-") or spec.name
    room = MAX_DESCRIPTION - len(url) - 3
    if len(head) > room:
        head = head[: room - 1] + "…"
    return f"{head} — {url}"


def lark_text(text: str, mention_ids: Sequence[str] = ()) -> str:
    """A Lark text message: the people addressed as real @mentions, then the text with any
    `<at …>` tag in it defused (an incident title must not @all the chat)."""
    mentions = [f'<at user_id="{u}"></at>' for u in mention_ids if _OPEN_ID.fullmatch(u)]
    return " ".join([*mentions, _AT_TAG.sub("<\u200b\\1", text)])


@dataclass
class _CardState:
    chat_id: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wanted: int = 0  # newest version any caller asked for
    applied: int = 0  # newest version Lark has
    last_patch: float = 0.0


class LarkAdapter(ImAdapter):
    platform = "lark"
    capabilities = CAPABILITIES

    def __init__(
        self,
        api: LarkApi,
        *,
        encrypt_key: str = "",
        verification_token: str = "",
        public_url: str = "http://localhost:8000",
        min_patch_interval: float = MIN_PATCH_INTERVAL,
        lookup_window: float = 0.01,
    ) -> None:
        self.api = api
        self.public_url = public_url.rstrip("/")
        self.encrypt_key = encrypt_key
        self.verification_token = verification_token
        self.min_patch_interval = min_patch_interval
        self.bot_open_id: str | None = None
        self.callbacks = LarkCallbacks(
            encrypt_key=encrypt_key, verification_token=verification_token, bot_open_id=lambda: self.bot_open_id
        )
        self._lookups = LookupBatcher(self._batch_get_id, window=lookup_window)
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._cards: dict[str, _CardState] = {}
        self._links: dict[str, str] = {}

    def prepare(self) -> None:
        self.api.client  # noqa: B018 - lark-oapi's import is the slow part (seconds)

    # ------------------------------------------------------------------ rooms
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        name = chat_name(spec)
        chat_id = await self.api.create_chat(
            uuid=lark_uuid(spec.idempotency_key), name=name, description=chat_description(spec)
        )
        # The join link is a call of its own: the core asks for it beside the invites and the card.
        return RoomRef(chat_id=chat_id, name=name, join_url=self._links.get(chat_id))

    async def join_url(self, chat_id: str) -> str | None:
        if chat_id not in self._links:
            try:
                link = await self.api.chat_link(chat_id)
            except PermanentImError as e:  # e.g. sharing restricted to owners: the room works without
                log.warning("no join link for lark chat %s: %s", chat_id, e)
                return None
            if not link:
                return None
            self._links[chat_id] = link
        return self._links[chat_id]

    async def dismiss_room(self, chat_id: str) -> None:
        """Disband the chat. Lark deletes its history with it: sweep the history first."""
        try:
            await self.api.delete_chat(chat_id)
        except PermanentImError as e:
            if e.code not in {str(c) for c in CHAT_GONE | CHAT_UNKNOWN}:
                raise
            log.info("lark chat %s was already gone: %s", chat_id, e)
        self._forget_chat(chat_id)

    def _forget_chat(self, chat_id: str) -> None:
        self._chat_locks.pop(chat_id, None)
        self._links.pop(chat_id, None)
        for mid in [m for m, s in self._cards.items() if s.chat_id == chat_id]:
            del self._cards[mid]

    # ------------------------------------------------------------------ people
    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        return await self._lookups.lookup(email, phone)

    async def lookup_users(self, *, emails: list[str], phones: list[str]) -> Found:
        """Resolve many people at once (50 emails + 50 phones per call): for bulk linking."""
        return await lookup_many(self._batch_get_id, emails, phones)

    async def _batch_get_id(self, emails: list[str], phones: list[str]):  # type: ignore[no-untyped-def]
        return await self.api.batch_get_id(emails=emails, mobiles=phones)

    def _chat_lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        results: list[InviteResult] = []
        ids = list(dict.fromkeys(im_user_ids))
        async with self._chat_lock(chat_id):  # Lark: concurrent member changes on one chat → 232019
            for i in range(0, len(ids), MAX_INVITE_BATCH):
                chunk = ids[i : i + MAX_INVITE_BATCH]
                invalid, missing, pending = await self.api.add_members(chat_id, chunk)
                for u in chunk:
                    if u in missing:
                        results.append(InviteResult(im_user_id=u, ok=False, detail="Lark has no such user"))
                    elif u in invalid:
                        results.append(
                            InviteResult(
                                im_user_id=u,
                                ok=False,
                                detail="Lark refused this user (resigned, another tenant, or outside the app's "
                                "availability)",
                            )
                        )
                    elif u in pending:
                        results.append(
                            InviteResult(im_user_id=u, ok=True, detail="waiting for a group owner's approval")
                        )
                    else:
                        results.append(InviteResult(im_user_id=u, ok=True))
        return results

    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        ids = list(dict.fromkeys(im_user_ids))
        async with self._chat_lock(chat_id):
            for i in range(0, len(ids), MAX_INVITE_BATCH):
                await self.api.remove_members(chat_id, ids[i : i + MAX_INVITE_BATCH])

    # ------------------------------------------------------------------ card
    def _card_state(self, chat_id: str, message_id: str) -> _CardState:
        state = self._cards.get(message_id)
        if state is None:
            state = self._cards[message_id] = _CardState(chat_id=chat_id)
        return state

    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        message_id = await self.api.send(
            chat_id, msg_type="interactive", content=cards.content(card), uuid=lark_uuid(idempotency_key)
        )
        state = self._card_state(chat_id, message_id)
        state.applied = max(state.applied, card.version)
        state.wanted = max(state.wanted, card.version)
        return CardHandle(message_id)

    async def pin_card(self, chat_id: str, handle: CardHandle) -> None:
        """Pin the card and make it the chat's top notice. Both are idempotent at Lark; a missing
        permission is logged, not fatal (the card is there, just not pinned); transient failures
        propagate so the (deduplicated) post is retried."""
        try:
            await self.api.pin(handle)
            await self.api.top_notice(chat_id, handle)
        except PermanentImError as e:
            log.warning("lark card %s in %s posted but not pinned: %s", handle, chat_id, e)

    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        state = self._card_state(chat_id, handle)
        state.wanted = max(state.wanted, card.version)
        async with state.lock:
            if card.version < state.wanted or card.version <= state.applied:
                return  # a newer version is already shown, or is next in line: this one is moot
            wait = state.last_patch + self.min_patch_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if card.version < state.wanted:
                return
            try:
                await self.api.patch(handle, cards.content(card))
            finally:
                state.last_patch = time.monotonic()
            state.applied = card.version

    # ------------------------------------------------------------------ messages
    async def post_message(
        self, chat_id: str, text: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        content = json.dumps({"text": lark_text(text, [m.im_user_id for m in mentions])}, ensure_ascii=False)
        message_id = await self.api.send(chat_id, msg_type="text", content=content, uuid=lark_uuid(idempotency_key))
        return MessageRef(message_id=message_id)

    async def post_rich(self, chat_id: str, rich: Rich, idempotency_key: str) -> MessageRef:
        """A card with one markdown element (warroom/im/lark/render.py): links, bold, lists."""
        content = json.dumps(render.card(rich), ensure_ascii=False)
        message_id = await self.api.send(
            chat_id, msg_type="interactive", content=content, uuid=lark_uuid(idempotency_key)
        )
        return MessageRef(message_id=message_id)

    async def edit_rich(self, chat_id: str, message_id: str, rich: Rich) -> None:
        await self.api.patch(message_id, json.dumps(render.card(rich), ensure_ascii=False))

    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        """The chat's messages, oldest first, without the bot's cards and system messages."""
        start = int(since.timestamp()) if since else None
        out: list[ChatMessage] = []
        token: str | None = None
        try:
            for _ in range(MAX_HISTORY_PAGES):
                items, token = await self.api.list_messages(chat_id, start_time=start, page_token=token)
                for m in items:
                    if m.msg_type in ("interactive", "system"):
                        continue
                    at = datetime.fromtimestamp(m.create_time_ms / 1000, UTC)
                    if since and at < since:
                        continue
                    out.append(
                        ChatMessage(
                            message_id=m.message_id,
                            chat_id=chat_id,
                            author=m.sender_id,
                            text=message_text(m.msg_type, m.content, m.mentions),
                            at=at,
                        )
                    )
                if not token:
                    break
            else:
                log.warning("lark chat %s: history cut at %d pages", chat_id, MAX_HISTORY_PAGES)
        except PermanentImError as e:
            if e.code in {str(c) for c in CHAT_GONE | CHAT_UNKNOWN}:
                log.info("lark chat %s is gone, and its history with it: %s", chat_id, e)
                return out
            raise
        return out

    # ------------------------------------------------------------------ inbound
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        return self.callbacks.handle(request)

    # ------------------------------------------------------------------ setup
    async def setup_checks(self) -> list[SetupCheck]:
        return await run_checks(
            LarkSetup(
                api=self.api,
                public_url=self.public_url,
                has_encrypt_key=bool(self.encrypt_key),
                has_verification_token=bool(self.verification_token),
                remember_bot=self._remember_bot,
            )
        )

    def _remember_bot(self, open_id: str) -> None:
        self.bot_open_id = open_id

    async def aclose(self) -> None:
        await self._lookups.aclose()


def build_lark_adapter(context: PlatformContext) -> LarkAdapter:
    settings: LarkSettings = context.settings
    secret = settings.app_secret.get_secret_value()
    if not settings.app_id or not secret:
        raise PermanentImError(
            "Feishu/Lark is not configured: set LARK_APP_ID and LARK_APP_SECRET (developer console → "
            "Credentials & Basic Info), plus LARK_VERIFICATION_TOKEN and LARK_ENCRYPT_KEY",
            platform="lark",
            code="not_configured",
        )
    api = LarkApi(app_id=settings.app_id, app_secret=secret, domain=settings.domain, timeout=settings.timeout_seconds)
    return LarkAdapter(
        api,
        encrypt_key=settings.encrypt_key.get_secret_value(),
        verification_token=settings.verification_token.get_secret_value(),
        public_url=context.public_url,
    )

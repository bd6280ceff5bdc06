"""The in-memory platform's adapter: a dict of chats, faults injected per call."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from warroom.errors import CallbackRejected, PermanentImError, RateLimited, TransientImError
from warroom.im.base import (
    ActionClicked,
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
    StatusCard,
)
from warroom.models import Action

from . import CAPABILITIES


@dataclass
class Chat:
    chat_id: str
    name: str
    members: set[str] = field(default_factory=set)
    messages: dict[str, str] = field(default_factory=dict)  # idempotency key → text
    cards: dict[str, StatusCard] = field(default_factory=dict)


class MemoryAdapter(ImAdapter):
    platform = "memory"
    capabilities = CAPABILITIES

    def __init__(self, token: str) -> None:
        self.token = token
        self.users = {"ann@example.com": "m-ann", "bob@example.com": "m-bob"}
        self.chats: dict[str, Chat] = {}
        self.faults: list[str] = []  # the next calls' faults: rate_limited, server_error, timeout_after, forbidden

    def _call(self, effect):  # type: ignore[no-untyped-def]
        fault = self.faults.pop(0) if self.faults else None
        if fault == "rate_limited":
            raise RateLimited("memory: slow down", retry_after=1.5, platform="memory")
        if fault == "server_error":
            raise TransientImError("memory: 503", platform="memory", code="503")
        if fault == "forbidden":
            raise PermanentImError("memory: the token may not do this", platform="memory", code="forbidden")
        result = effect()
        if fault == "timeout_after":
            raise TransientImError("memory: timed out (after the effect)", platform="memory")
        return result

    def _chat(self, chat_id: str) -> Chat:
        if chat_id not in self.chats:
            raise PermanentImError(f"memory: no chat {chat_id}", platform="memory", code="no_chat")
        return self.chats[chat_id]

    async def create_room(self, spec: RoomSpec) -> RoomRef:
        chat_id = "mc-" + hashlib.sha256(spec.idempotency_key.encode()).hexdigest()[:10]
        chat = self._call(lambda: self.chats.setdefault(chat_id, Chat(chat_id, spec.name)))
        return RoomRef(chat_id=chat.chat_id, name=chat.name)

    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        return self._call(lambda: self.users.get(email or ""))

    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        chat = self._chat(chat_id)
        known = set(self.users.values())
        self._call(lambda: chat.members.update(u for u in im_user_ids if u in known))
        return [
            InviteResult(im_user_id=u, ok=u in known, detail="" if u in known else "no such user") for u in im_user_ids
        ]

    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        raise AssertionError("the core must not remove members where the platform cannot")

    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        chat = self._chat(chat_id)
        self._call(lambda: chat.cards.setdefault(idempotency_key, card))
        return CardHandle(idempotency_key)

    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        raise AssertionError("the core must not edit cards where the platform cannot")

    async def post_message(
        self, chat_id: str, text: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        chat = self._chat(chat_id)
        rendered = " ".join([*(f"@{m.im_user_id}" for m in mentions), text.replace("@", "(at)")])
        self._call(lambda: chat.messages.setdefault(idempotency_key, rendered))
        return MessageRef(message_id=idempotency_key)

    async def rename_room(self, chat_id: str, name: str) -> None:
        chat = self._chat(chat_id)
        self._call(lambda: setattr(chat, "name", name))

    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        return []

    async def join_url(self, chat_id: str) -> str | None:
        return None

    async def dismiss_room(self, chat_id: str) -> None:
        raise AssertionError("the core must not dismiss where the platform cannot end rooms")

    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        given = request.headers.get("x-memory-signature", "")
        wanted = hmac.new(self.token.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, wanted):
            raise CallbackRejected("bad signature")
        try:
            click = json.loads(request.body)
            event = ActionClicked(
                event_id=str(click["id"]),
                chat_id=str(click["chat"]),
                im_user_id=str(click["user"]),
                action=Action(click["action"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise CallbackRejected(f"malformed click: {e}", status=400) from None
        return CallbackResult.with_json({"ok": True}, events=[event])

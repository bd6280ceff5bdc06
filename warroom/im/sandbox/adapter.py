"""The sandbox adapter: the built-in IM behind the same interface as Slack or Lark.

It adds what a real platform has and tests need: a configurable latency on every call, and
fault injection (rate limits with retry-after, server errors, and timeouts *after* the effect
was applied, the case that makes idempotency necessary). Its callbacks are signed like
Slack's (HMAC-SHA256 over timestamp and body) and go through the same verification path.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError

from warroom.errors import CallbackRejected, PermanentImError, RateLimited, TransientImError
from warroom.im import values
from warroom.im.base import (
    ActionClicked,
    CallbackRequest,
    CallbackResult,
    CardHandle,
    ChatMessage,
    ImAdapter,
    InviteResult,
    Mention,
    MessageReceived,
    MessageRef,
    RoomRef,
    RoomSpec,
    StatusCard,
)
from warroom.im.plugin import PlatformContext
from warroom.im.rich import Rich
from warroom.im.sandbox import render
from warroom.im.sandbox.capabilities import CAPABILITIES
from warroom.im.sandbox.platform import BOT_USER_ID, SandboxPlatform
from warroom.im.sandbox.settings import SandboxSettings

T = TypeVar("T")
FAULTS = ("rate_limited", "server_error", "timeout_after_effect")
SIGNATURE_WINDOW_SECONDS = 300
BOT_MENTION = "@warroom"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"v1:{timestamp}:".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class _RateLimit:
    """A token bucket like a platform's per-app limit: `rate` calls a second, bursts of `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, rate, time.monotonic()

    def take(self) -> float:
        """Take a token; 0 when one was free, else the seconds until one will be (Retry-After)."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SandboxAdapter(ImAdapter):
    platform = "sandbox"
    capabilities = CAPABILITIES

    def __init__(
        self,
        sandbox: SandboxPlatform,
        *,
        public_url: str = "http://localhost:8000",
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        signing_secret: str = "",
        rate_limit: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.public_url = public_url.rstrip("/")
        self.latency = latency_ms / 1000
        self.fault_rate = fault_rate
        self.signing_secret = signing_secret
        self.rng = rng or random.Random()
        self.limiter = _RateLimit(rate_limit) if rate_limit else None

    async def _call(self, method: str, chat_id: str | None, effect: Callable[[datetime], T]) -> T:
        """Run `effect` (sync SQL) like a remote call: maybe a fault, else the effect, answered
        after the latency. Like a remote platform's, the effect is applied while the caller waits,
        stamped with the time of the answer (or later, should it take longer than the latency):
        a call takes the latency, not the latency plus the sandbox's own bookkeeping."""
        if self.limiter is not None and (wait := self.limiter.take()) > 0:
            await asyncio.to_thread(self.sandbox.record_call, method, chat_id, "rate_limited", _now())
            raise RateLimited(f"sandbox {method}: over the rate limit", retry_after=wait, platform="sandbox")
        fault = self.rng.choice(FAULTS) if self.fault_rate and self.rng.random() < self.fault_rate else None
        # The call log is the platform's bookkeeping, written in the same transaction as the effect.
        self.sandbox.log_call(method, chat_id, fault, _now())
        answer_at = _now() + timedelta(seconds=self.latency)
        if fault in ("rate_limited", "server_error"):
            await asyncio.sleep(self.latency)
            await asyncio.to_thread(self.sandbox.flush_calls)
            if fault == "rate_limited":
                raise RateLimited(f"sandbox {method}: rate limited (injected)", retry_after=0.2, platform="sandbox")
            raise TransientImError(f"sandbox {method}: 503 (injected)", platform="sandbox", code="503")
        result, _ = await asyncio.gather(
            asyncio.to_thread(_then_flush, lambda: effect(max(answer_at, _now())), self.sandbox),
            asyncio.sleep(self.latency),
        )
        if fault == "timeout_after_effect":
            raise TransientImError(f"sandbox {method}: timed out after the effect (injected)", platform="sandbox")
        return result

    # -- outbound --
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        def effect(now: datetime) -> str:
            return self.sandbox.create_room(
                key=spec.idempotency_key, incident_id=spec.incident_id, name=spec.name, topic=spec.topic, now=now
            )

        chat_id = await self._call("create_room", None, effect)
        return RoomRef(chat_id=chat_id, name=spec.name, join_url=self._join_url(chat_id))

    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        return await self._call(
            "lookup_user", None, lambda now: self.sandbox.lookup_user(email=email, phone=phone, now=now)
        )

    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        unknown = await self._call(
            "add_members", chat_id, lambda now: self.sandbox.add_members(chat_id, im_user_ids, now)
        )
        return [
            InviteResult(im_user_id=u, ok=u not in unknown, detail="no such user" if u in unknown else "")
            for u in im_user_ids
        ]

    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        await self._call("remove_members", chat_id, lambda _: self.sandbox.remove_members(chat_id, im_user_ids))

    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        body = card.model_dump(mode="json")
        msg_id = await self._call(
            "post_card",
            chat_id,
            lambda now: self.sandbox.post(
                chat_id, author=BOT_USER_ID, card=body, card_version=card.version, key=idempotency_key, now=now
            ),
        )
        return CardHandle(str(msg_id))

    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        body = card.model_dump(mode="json")
        await self._call(
            "update_card",
            chat_id,
            lambda now: self.sandbox.update_card(chat_id, int(handle), body, card.version, now),
        )

    async def post_message(
        self, chat_id: str, text: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        # The page shows <id> as @name: the people addressed become that, text alone never does.
        text = " ".join([*(f"<{m.im_user_id}>" for m in mentions), text.replace("<", "<\u200b")]).rstrip(render.MARK)
        msg_id = await self._call(
            "post_message",
            chat_id,
            lambda now: self.sandbox.post(chat_id, author=BOT_USER_ID, text=text, key=idempotency_key, now=now),
        )
        return MessageRef(message_id=str(msg_id))

    async def post_rich(self, chat_id: str, rich: Rich, idempotency_key: str) -> MessageRef:
        """The page's own markup (warroom/im/sandbox/render.py), which it shows with live links."""
        text = render.render(rich)
        msg_id = await self._call(
            "post_message",
            chat_id,
            lambda now: self.sandbox.post(chat_id, author=BOT_USER_ID, text=text, key=idempotency_key, now=now),
        )
        return MessageRef(message_id=str(msg_id))

    async def edit_rich(self, chat_id: str, message_id: str, rich: Rich) -> None:
        text = render.render(rich)
        await self._call(
            "edit_message", chat_id, lambda now: self.sandbox.edit_text(chat_id, int(message_id), text, now)
        )

    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        rows = await self._call("fetch_history", chat_id, lambda _: self.sandbox.messages(chat_id, since))
        return [
            ChatMessage(message_id=str(m.id), chat_id=chat_id, author=m.author, text=m.text, at=m.created_at)
            for m in rows
            if m.card is None
        ]

    async def join_url(self, chat_id: str) -> str | None:
        return self._join_url(chat_id)

    async def dismiss_room(self, chat_id: str) -> None:
        await self._call("dismiss_room", chat_id, lambda now: self.sandbox.dismiss_room(chat_id, now))

    def _join_url(self, chat_id: str) -> str:
        return f"{self.public_url}/sandbox#room={chat_id}"

    # -- inbound --
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        """Verify the signature and freshness, then parse an action click or a message."""
        if not self.signing_secret:
            raise CallbackRejected("the sandbox has no signing secret configured", status=503)
        ts = request.headers.get("x-sandbox-timestamp", "")
        given = request.headers.get("x-sandbox-signature", "")
        if not ts or not given:
            raise CallbackRejected("missing X-Sandbox-Timestamp or X-Sandbox-Signature header", code="unsigned")
        try:
            age = abs(time.time() - int(ts))
        except ValueError:
            raise CallbackRejected("X-Sandbox-Timestamp is not a unix time") from None
        if age > SIGNATURE_WINDOW_SECONDS:
            raise CallbackRejected(f"stale request: timestamp is {int(age)} s away from now", code="stale")
        if not hmac.compare_digest(sign(self.signing_secret, ts, request.body), given):
            raise CallbackRejected("bad signature", code="bad_signature")
        try:
            payload = values.loads(request.body)
            if payload.get("type") == "action":
                event = ActionClicked.model_validate(payload | {"kind": "action", "im_user_id": payload.get("user_id")})
            elif payload.get("type") == "message":
                text = str(payload.get("text", ""))
                event = MessageReceived.model_validate(
                    payload
                    | {"kind": "message", "im_user_id": payload.get("user_id"), "mentions_bot": BOT_MENTION in text}
                )
            else:
                raise CallbackRejected(f"unknown callback type {payload.get('type')!r}", status=400)
        except (ValueError, ValidationError, TypeError, AttributeError) as e:
            raise CallbackRejected(f"malformed callback: {e}".splitlines()[0], status=400) from None
        return CallbackResult(events=[event], replay_key=given)


def build_sandbox_adapter(context: PlatformContext) -> SandboxAdapter:
    settings: SandboxSettings = context.settings
    if context.database is None:
        raise PermanentImError("the sandbox needs the SQL store", platform="sandbox")
    return SandboxAdapter(
        SandboxPlatform(context.database),
        public_url=context.public_url,
        latency_ms=settings.latency_ms,
        fault_rate=settings.fault_rate,
        signing_secret=settings.signing_secret.get_secret_value(),
        rate_limit=settings.rate_limit,
    )


def _then_flush(effect, sandbox: SandboxPlatform):  # type: ignore[no-untyped-def]
    """The effect (which writes the logged calls), then whatever an effect that only read left."""
    try:
        return effect()
    finally:
        sandbox.flush_calls()

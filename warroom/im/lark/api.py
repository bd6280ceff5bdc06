"""Lark/Feishu OpenAPI calls through lark-oapi, one method per endpoint War Room uses.

Only wire concerns live here: building the SDK requests, running the SDK's blocking client in
a worker thread (its token fetch is synchronous even on the async path), and turning every
failure into a typed error (`warroom.im.lark.errors`). Policy (idempotency keys, locks,
coalescing, batching) is the adapter's.

lark-oapi takes about two seconds to import, so the client is built, and every request object
created, inside the worker thread of the first call: an API process that only verifies
callbacks never imports it, and no event loop ever blocks on it.

The tenant access token is fetched and cached by the SDK (`TokenManager`, per app id, until
10 minutes before expiry); it never leaves this process. When Lark says the token is invalid
(revoked, app secret rotated), the cached one is dropped so the retry fetches a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warroom.errors import PermanentImError
from warroom.im.lark.errors import PLATFORM, TOKEN_INVALID, error_from_exception, error_from_response

PAGE_SIZE = 50
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Call = Callable[[Any], Any]  # client → SDK response, run in a worker thread


def check_domain(domain: str) -> None:
    """LARK_DOMAIN must be an origin: https, or http on loopback (lark-oapi enforces the same)."""
    parts = urllib.parse.urlsplit(domain)
    scheme_ok = parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK)
    if not scheme_ok or not parts.netloc or "@" in parts.netloc or parts.path or parts.query or parts.fragment:
        raise PermanentImError(
            f"LARK_DOMAIN {domain!r} is not usable: it must be an https origin without a path. Use "
            "https://open.feishu.cn (Feishu) or https://open.larksuite.com (Lark)",
            platform=PLATFORM,
            code="bad_domain",
        )


@dataclass
class HistoryItem:
    message_id: str
    msg_type: str
    sender_id: str
    sender_type: str
    content: str
    create_time_ms: int
    mentions: list[dict[str, str]]


@dataclass
class UserId:
    user_id: str | None
    email: str | None
    mobile: str | None


class LarkApi:
    def __init__(self, *, app_id: str, app_secret: str, domain: str, timeout: float) -> None:
        self.app_id = app_id
        self.domain = domain.rstrip("/")
        self.timeout = timeout
        self._secret = app_secret
        check_domain(self.domain)
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The lark-oapi client, built on first use. lark-oapi takes seconds to import: a worker
        builds it before it polls (`ImActivities.prepare`), an API process only if it calls."""
        with self._client_lock:
            if self._client is None:
                import lark_oapi as lark

                self._client = (
                    lark.Client.builder()
                    .app_id(self.app_id)
                    .app_secret(self._secret)
                    .domain(self.domain)
                    .timeout(self.timeout)
                    .build()
                )
            return self._client

    # ------------------------------------------------------------------ plumbing
    async def _send(self, what: str, call: Call) -> Any:
        """Run `call(client)` in a worker thread; raise the typed error of any failure."""
        return await asyncio.to_thread(self._send_sync, what, call)

    def _send_sync(self, what: str, call: Call) -> Any:
        try:
            resp = call(self.client)
        except Exception as e:
            raise error_from_exception(what, e) from e
        if not resp.success():
            if resp.code in TOKEN_INVALID:
                self.forget_token()
            raise error_from_response(what, resp)
        return resp

    def forget_token(self) -> None:
        """Drop the SDK's cached tenant token (the next call fetches a new one)."""
        from lark_oapi.core.token import TokenManager

        TokenManager.cache.set(f"self_tenant_token:{self.app_id}", "", 0)

    async def _raw(self, what: str, method: str, uri: str) -> dict[str, Any]:
        """An endpoint lark-oapi has no typed request for, through the same client and token."""

        def call(c: Any) -> Any:
            from lark_oapi.core.enum import AccessTokenType, HttpMethod
            from lark_oapi.core.model import BaseRequest

            req = BaseRequest.builder().http_method(HttpMethod[method]).uri(uri)
            return c.request(req.token_types({AccessTokenType.TENANT}).build())

        resp = await self._send(what, call)
        try:
            return json.loads(resp.raw.content)
        except (ValueError, AttributeError, TypeError) as e:
            raise error_from_exception(what, e) from e

    # ------------------------------------------------------------------ auth and app
    async def tenant_token(self) -> str:
        """Obtain (or reuse the cached) tenant access token: proves the app credentials work."""

        def fetch() -> str:
            try:
                from lark_oapi.core.token import TokenManager

                return TokenManager.get_self_tenant_token(self.client.config)
            except Exception as e:
                raise error_from_exception("tenant access token", e) from e

        return await asyncio.to_thread(fetch)

    async def bot_info(self) -> dict[str, Any]:
        """`GET /open-apis/bot/v3/info`: the bot's name, open_id and activation."""
        data = await self._raw("bot info", "GET", "/open-apis/bot/v3/info")
        return data.get("bot") or (data.get("data") or {}).get("bot") or {}

    async def scopes(self) -> list[tuple[str, bool]]:
        """`GET /open-apis/application/v6/scopes`: (scope name, granted) for the app's tenant scopes."""

        def call(c: Any) -> Any:
            from lark_oapi.api.application.v6 import ListScopeRequest

            return c.application.v6.scope.list(ListScopeRequest.builder().build())

        resp = await self._send("list scopes", call)
        return [
            (s.scope_name, s.grant_status == 1)
            for s in (resp.data.scopes if resp.data else None) or []
            if s.scope_type in (None, "tenant") and s.scope_name
        ]

    # ------------------------------------------------------------------ chats
    async def create_chat(self, *, uuid: str, name: str, description: str) -> str:
        """`POST /im/v1/chats?uuid=…`: the same uuid yields the same chat (Lark keeps it 10 hours);
        the bot is the owner (no owner_id) and a manager (`set_bot_manager`)."""

        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import CreateChatRequest, CreateChatRequestBody

            body = (
                CreateChatRequestBody.builder()
                .name(name)
                .description(description)
                .chat_mode("group")
                .chat_type("private")
                .build()
            )
            req = CreateChatRequest.builder().user_id_type("open_id").set_bot_manager(True).uuid(uuid)
            return c.im.v1.chat.create(req.request_body(body).build())

        resp = await self._send("create chat", call)
        if not resp.data or not resp.data.chat_id:
            raise error_from_exception("create chat", ValueError("the answer has no chat_id"))
        return resp.data.chat_id

    async def chat_link(self, chat_id: str, validity_period: str = "year") -> str | None:
        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import LinkChatRequest, LinkChatRequestBody

            body = LinkChatRequestBody.builder().validity_period(validity_period).build()
            return c.im.v1.chat.link(LinkChatRequest.builder().chat_id(chat_id).request_body(body).build())

        resp = await self._send("chat link", call)
        return resp.data.share_link if resp.data else None

    async def delete_chat(self, chat_id: str) -> None:
        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import DeleteChatRequest

            return c.im.v1.chat.delete(DeleteChatRequest.builder().chat_id(chat_id).build())

        await self._send("disband chat", call)

    async def add_members(self, chat_id: str, open_ids: list[str]) -> tuple[set[str], set[str], set[str]]:
        """Invite; returns (invalid ids, ids that do not exist, ids pending approval)."""

        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import CreateChatMembersRequest, CreateChatMembersRequestBody

            body = CreateChatMembersRequestBody.builder().id_list(open_ids).build()
            req = CreateChatMembersRequest.builder().chat_id(chat_id).member_id_type("open_id")
            # succeed_type 1: add the valid ids, report the others
            return c.im.v1.chat_members.create(req.succeed_type(1).request_body(body).build())

        resp = await self._send("add members", call)
        d = resp.data
        if d is None:
            return set(), set(), set()
        return set(d.invalid_id_list or []), set(d.not_existed_id_list or []), set(d.pending_approval_id_list or [])

    async def remove_members(self, chat_id: str, open_ids: list[str]) -> None:
        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import DeleteChatMembersRequest, DeleteChatMembersRequestBody

            body = DeleteChatMembersRequestBody.builder().id_list(open_ids).build()
            req = DeleteChatMembersRequest.builder().chat_id(chat_id).member_id_type("open_id")
            return c.im.v1.chat_members.delete(req.request_body(body).build())

        await self._send("remove members", call)

    # ------------------------------------------------------------------ messages
    async def send(self, chat_id: str, *, msg_type: str, content: str, uuid: str) -> str:
        """`POST /im/v1/messages`: the same uuid sends at most one message (Lark keeps it an hour)."""

        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import CreateMessageRequest, CreateMessageRequestBody

            body = (
                CreateMessageRequestBody.builder()
                .receive_id(chat_id)
                .msg_type(msg_type)
                .content(content)
                .uuid(uuid)
                .build()
            )
            req = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body).build()
            return c.im.v1.message.create(req)

        resp = await self._send(f"send {msg_type} message", call)
        if not resp.data or not resp.data.message_id:
            raise error_from_exception("send message", ValueError("the answer has no message_id"))
        return resp.data.message_id

    async def patch(self, message_id: str, content: str) -> None:
        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import PatchMessageRequest, PatchMessageRequestBody

            body = PatchMessageRequestBody.builder().content(content).build()
            req = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()
            return c.im.v1.message.patch(req)

        await self._send("update card", call)

    async def pin(self, message_id: str) -> None:
        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import CreatePinRequest, CreatePinRequestBody

            body = CreatePinRequestBody.builder().message_id(message_id).build()
            return c.im.v1.pin.create(CreatePinRequest.builder().request_body(body).build())

        await self._send("pin card", call)

    async def top_notice(self, chat_id: str, message_id: str) -> None:
        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import (
                ChatTopNotice,
                PutTopNoticeChatTopNoticeRequest,
                PutTopNoticeChatTopNoticeRequestBody,
            )

            notice = ChatTopNotice.builder().action_type("1").message_id(message_id).build()  # "1": a message
            body = PutTopNoticeChatTopNoticeRequestBody.builder().chat_top_notice([notice]).build()
            req = PutTopNoticeChatTopNoticeRequest.builder().chat_id(chat_id).request_body(body).build()
            return c.im.v1.chat_top_notice.put_top_notice(req)

        await self._send("set top notice", call)

    async def list_messages(
        self, chat_id: str, *, start_time: int | None, page_token: str | None
    ) -> tuple[list[HistoryItem], str | None]:
        """One page of a chat's messages, oldest first; the next page token or None."""

        def call(c: Any) -> Any:
            from lark_oapi.api.im.v1 import ListMessageRequest

            b = ListMessageRequest.builder().container_id_type("chat").container_id(chat_id)
            b = b.sort_type("ByCreateTimeAsc").page_size(PAGE_SIZE)
            if start_time is not None:
                b = b.start_time(str(start_time))
            if page_token:
                b = b.page_token(page_token)
            return c.im.v1.message.list(b.build())

        resp = await self._send("list messages", call)
        d = resp.data
        items = []
        for m in (d.items if d else None) or []:
            if m.deleted:
                continue
            sender = m.sender
            items.append(
                HistoryItem(
                    message_id=m.message_id or "",
                    msg_type=m.msg_type or "",
                    sender_id=(sender.id if sender else None) or "",
                    sender_type=(sender.sender_type if sender else None) or "",
                    content=(m.body.content if m.body else None) or "",
                    create_time_ms=int(m.create_time or 0),
                    mentions=[{"key": x.key or "", "name": x.name or ""} for x in m.mentions or []],
                )
            )
        return items, (d.page_token if d and d.has_more else None)

    # ------------------------------------------------------------------ directory
    async def batch_get_id(self, *, emails: list[str], mobiles: list[str]) -> list[UserId]:
        """`POST /contact/v3/users/batch_get_id` (≤50 emails and ≤50 mobiles): open ids."""

        def call(c: Any) -> Any:
            from lark_oapi.api.contact.v3 import BatchGetIdUserRequest, BatchGetIdUserRequestBody

            body = BatchGetIdUserRequestBody.builder().include_resigned(False)
            if emails:
                body = body.emails(emails)
            if mobiles:
                body = body.mobiles(mobiles)
            req = BatchGetIdUserRequest.builder().user_id_type("open_id").request_body(body.build()).build()
            return c.contact.v3.user.batch_get_id(req)

        resp = await self._send("look up users", call)
        return [
            UserId(user_id=u.user_id or None, email=u.email, mobile=u.mobile)
            for u in ((resp.data.user_list if resp.data else None) or [])
        ]

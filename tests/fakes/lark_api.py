"""A protocol-faithful fake of the Lark / Feishu Open Platform, for lark-oapi to talk to.

It is an ASGI app (FastAPI) served by uvicorn on 127.0.0.1 in a thread of its own, so the real
SDK client (`lark.Client.builder().domain("http://127.0.0.1:PORT")`) runs against it unchanged:
the tenant token endpoint, chats with `uuid` dedup, members, messages with `uuid` dedup, card
PATCH with Lark's per-message rate limit, pins and top notice, `contact/v3/users/batch_get_id`,
chat links, message history with paging, and disbanding (which deletes the history).

Wire format as documented (and as the SDK parses it): `{"code": 0, "msg": "success", "data":
{...}}`; business errors with HTTP 400 and a non-zero `code`; the gateway's rate limit as HTTP
429 with `x-ogw-ratelimit-reset`; an `X-Tt-Logid` header on every answer.

Faults are queued per operation (`fail("chat.create", "timeout_after", "503")`: each request to
that operation takes the next one) or drawn at random (`chaos(rate)`), through
`tests/fakes/faults.py`. Available faults:

- `429`: gateway limit, HTTP 429, code 99991400, `x-ogw-ratelimit-reset: <reset_seconds>`;
- `99991400`: the same limit as older APIs answer it (HTTP 400);
- `230020`, `232019`: business frequency limits (HTTP 400), `232068`: "group is being created";
- `500`, `502`, `503`: server errors (502 with an HTML body, as a gateway sends it);
- `token`: the tenant token is rejected (99991663);
- any other number: that business error code with HTTP 400 (e.g. `99991672`, missing scope);
- `drop`: the connection is closed before the request is handled;
- `drop_after`: the request takes effect, then the connection is closed without an answer;
- `timeout_after`: the request takes effect, the answer comes `late_seconds` later (after the
  client has timed out).

The module also holds Lark's side of callbacks: AES-256-CBC encryption with the Encrypt Key,
the `X-Lark-Signature` scheme, and builders for the event envelopes Lark posts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid as uuidlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from tests.fakes.faults import FaultInjector, Faults

CARD_LIMIT_BYTES = 30 * 1024
PATCH_QPS = 5  # per message
UUID_MAX = 50
# What a chaos run draws from: the gateway's and the business rate limits, server errors, and the
# answers lost or late after the effect.
CHAOS_FAULTS = ("429", "232019", "500", "502", "503", "drop", "drop_after", "timeout_after")
ALL_SCOPES = (
    "im:chat",
    "im:message",
    "im:message:send_as_bot",
    "im:message.group_at_msg:readonly",
    "contact:user.id:readonly",
)

_OPS = [
    ("POST", r"/open-apis/auth/v3/tenant_access_token/internal", "token"),
    ("GET", r"/open-apis/bot/v3/info", "bot.info"),
    ("GET", r"/open-apis/application/v6/scopes", "scopes"),
    ("POST", r"/open-apis/im/v1/chats", "chat.create"),
    ("GET", r"/open-apis/im/v1/chats/[^/]+", "chat.get"),
    ("DELETE", r"/open-apis/im/v1/chats/[^/]+", "chat.delete"),
    ("POST", r"/open-apis/im/v1/chats/[^/]+/link", "chat.link"),
    ("POST", r"/open-apis/im/v1/chats/[^/]+/members", "members.add"),
    ("DELETE", r"/open-apis/im/v1/chats/[^/]+/members", "members.remove"),
    ("POST", r"/open-apis/im/v1/chats/[^/]+/top_notice/put_top_notice", "top_notice.put"),
    ("POST", r"/open-apis/im/v1/messages", "message.create"),
    ("GET", r"/open-apis/im/v1/messages", "message.list"),
    ("PATCH", r"/open-apis/im/v1/messages/[^/]+", "message.patch"),
    ("POST", r"/open-apis/im/v1/pins", "pin.create"),
    ("POST", r"/open-apis/contact/v3/users/batch_get_id", "user.batch_get_id"),
]


def op_name(method: str, path: str) -> str:
    for m, pattern, name in _OPS:
        if m == method and re.fullmatch(pattern, path):
            return name
    return f"{method} {path}"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class User:
    open_id: str
    email: str | None
    mobile: str | None
    name: str


@dataclass
class Chat:
    chat_id: str
    name: str
    description: str
    owner_id: str
    bot_manager: bool
    uuid: str | None
    created: float
    members: list[str] = field(default_factory=list)
    deleted: bool = False
    top_notice: str | None = None
    link_token: str | None = None
    # What the chat held when it was disbanded: Lark deletes it, a test still wants to check it.
    history: list[Message] = field(default_factory=list)


@dataclass
class Message:
    message_id: str
    chat_id: str
    msg_type: str
    content: str
    sender_id: str
    sender_type: str  # "app" or "user"
    create_time: int
    uuid: str | None = None
    patches: int = 0
    pinned: bool = False
    mentions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Call:
    op: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)  # when it was handled (after any latency): the benchmarks' clock


class LarkError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.headers = code, msg, status, headers or {}


class FakeLark:
    """The fake platform's state and HTTP surface. Start it with `start()` (or `with`)."""

    def __init__(
        self,
        *,
        app_id: str | None = None,
        app_secret: str = "fake-secret",
        bot_open_id: str = "ou_warroom_bot",
        reset_seconds: int = 1,
        late_seconds: float = 2.0,
        member_op_seconds: float = 0.05,
        creating_seconds: float = 0.0,
        scopes: tuple[str, ...] = ALL_SCOPES,
    ) -> None:
        # Unique per instance: lark-oapi caches tenant tokens per app id for the whole process.
        self.app_id = app_id or f"cli_test_{uuidlib.uuid4().hex[:12]}"
        self.app_secret = app_secret
        self.bot_open_id = bot_open_id
        self.reset_seconds = reset_seconds
        self.late_seconds = late_seconds
        self.member_op_seconds = member_op_seconds
        self.creating_seconds = creating_seconds
        self.scopes = scopes
        self.tokens: set[str] = set()
        self.users: dict[str, User] = {}
        self.chats: dict[str, Chat] = {}
        self.messages: dict[str, Message] = {}
        self.calls: list[Call] = []
        self._chat_by_uuid: dict[str, str] = {}
        self._msg_by_uuid: dict[str, str] = {}
        self._patch_times: dict[str, deque[float]] = defaultdict(deque)
        self._member_busy: set[str] = set()
        self.faults = Faults()
        self._lock = threading.RLock()
        self._seq = 0
        self.app = FaultInjector(
            self._build_app(),
            self.faults,
            operation=op_name,
            respond=lambda fault, _op: _fault_response(fault, self.reset_seconds),
            late_seconds=lambda: self.late_seconds,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ test controls
    @property
    def domain(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, op: str, *faults: str) -> None:
        """Queue faults for an operation (see the module docstring for names and meanings)."""
        self.faults.fail(op, *faults)

    def pending_faults(self, op: str) -> list[str]:
        return self.faults.pending(op)

    def chaos(self, rate: float) -> None:
        """From now on a `rate` share of calls (the tenant token aside) meets a random fault."""
        self.faults.chaos(rate, CHAOS_FAULTS, spared=("token",))

    def add_user(self, *, name: str, email: str | None = None, mobile: str | None = None) -> str:
        with self._lock:
            open_id = f"ou_{hashlib.sha1(name.encode()).hexdigest()[:16]}"
            self.users[open_id] = User(open_id=open_id, email=email, mobile=mobile, name=name)
            return open_id

    def revoke_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def ops(self, op: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.op == op]

    def live_chats(self) -> list[Chat]:
        with self._lock:
            return [c for c in self.chats.values() if not c.deleted]

    def chat_messages(self, chat_id: str) -> list[Message]:
        with self._lock:
            return sorted((m for m in self.messages.values() if m.chat_id == chat_id), key=lambda m: m.create_time)

    def user_says(self, chat_id: str, open_id: str, text: str, *, mention_bot: bool = False) -> dict[str, Any]:
        """A person writes in the chat; returns the `im.message.receive_v1` envelope Lark pushes."""
        with self._lock:
            mentions = []
            if mention_bot:
                text = f"@_user_1 {text}"
                bot = {"open_id": self.bot_open_id}
                mentions = [{"key": "@_user_1", "id": bot, "name": "War Room", "mentioned_type": "bot"}]
            m = self._new_message(chat_id, "text", json.dumps({"text": text}), open_id, "user", None)
            m.mentions = [
                {"key": x["key"], "id": x["id"]["open_id"], "id_type": "open_id", "name": x["name"]} for x in mentions
            ]
            return envelope(
                "im.message.receive_v1",
                {
                    "sender": {"sender_id": {"open_id": open_id}, "sender_type": "user", "tenant_key": "t1"},
                    "message": {
                        "message_id": m.message_id,
                        "chat_id": chat_id,
                        "chat_type": "group",
                        "message_type": "text",
                        "content": m.content,
                        "create_time": str(m.create_time),
                        "mentions": mentions,
                    },
                },
                app_id=self.app_id,
            )

    # ------------------------------------------------------------------ serving
    def start(self) -> FakeLark:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="critical", lifespan="off", proxy_headers=False, http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Lark server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeLark:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state changes
    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._seq:04d}{uuidlib.uuid4().hex[:12]}"

    def _new_message(
        self, chat_id: str, msg_type: str, content: str, sender: str, sender_type: str, uuid: str | None
    ) -> Message:
        m = Message(
            message_id=self._id("om"),
            chat_id=chat_id,
            msg_type=msg_type,
            content=content,
            sender_id=sender,
            sender_type=sender_type,
            create_time=max([_now_ms()] + [x.create_time + 1 for x in self.messages.values() if x.chat_id == chat_id]),
            uuid=uuid,
        )
        self.messages[m.message_id] = m
        return m

    def _chat(self, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise LarkError(232006, "Invalid chat_id.")
        if chat.deleted:
            raise LarkError(232009, "Your request specifies a chat which has already been dissolved.")
        return chat

    def _message_json(self, m: Message) -> dict[str, Any]:
        return {
            "message_id": m.message_id,
            "msg_type": m.msg_type,
            "create_time": str(m.create_time),
            "update_time": str(m.create_time),
            "deleted": False,
            "updated": m.patches > 0,
            "chat_id": m.chat_id,
            "sender": {
                "id": m.sender_id,
                "id_type": "app_id" if m.sender_type == "app" else "open_id",
                "sender_type": m.sender_type,
                "tenant_key": "t1",
            },
            "body": {"content": m.content},
            "mentions": m.mentions,
        }

    # ------------------------------------------------------------------ the HTTP surface
    def _build_app(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.exception_handler(LarkError)
        async def _lark_error(_: Request, e: LarkError) -> JSONResponse:
            return _answer({"code": e.code, "msg": e.msg}, status=e.status, headers=e.headers)

        async def body_of(request: Request) -> Any:
            raw = await request.body()
            if not raw:
                return {}
            try:
                return json.loads(raw)
            except ValueError:
                raise LarkError(9499, "Bad Request: body is not JSON") from None

        async def authed(request: Request, op: str) -> tuple[dict[str, str], Any]:
            body = await body_of(request)
            query = dict(request.query_params)
            with fake._lock:
                fake.calls.append(Call(op=op, query=query, body=body))
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                if scheme != "Bearer" or not token:
                    raise LarkError(99991661, "Missing access token for authorization.")
                if token not in fake.tokens:
                    raise LarkError(99991663, "Invalid access token for authorization.")
            return query, body

        @app.post("/open-apis/auth/v3/tenant_access_token/internal")
        async def token(request: Request) -> JSONResponse:
            body = await body_of(request)
            with fake._lock:
                fake.calls.append(Call(op="token", query={}, body={"app_id": body.get("app_id")}))
                if body.get("app_id") != fake.app_id:
                    return _answer({"code": 10003, "msg": "invalid param: app_id"})
                if body.get("app_secret") != fake.app_secret:
                    return _answer({"code": 10014, "msg": "app secret invalid"})
                tok = f"t-{uuidlib.uuid4().hex}"
                fake.tokens.add(tok)
            return _answer({"code": 0, "msg": "ok", "tenant_access_token": tok, "expire": 7200}, data=False)

        @app.get("/open-apis/bot/v3/info")
        async def bot_info(request: Request) -> JSONResponse:
            await authed(request, "bot.info")
            bot = {
                "activate_status": 2,
                "app_name": "War Room",
                "avatar_url": "",
                "ip_white_list": [],
                "open_id": fake.bot_open_id,
            }
            return _answer({"code": 0, "msg": "ok", "bot": bot}, data=False)

        @app.get("/open-apis/application/v6/scopes")
        async def scopes(request: Request) -> JSONResponse:
            await authed(request, "scopes")
            items = [{"scope_name": s, "grant_status": 1, "scope_type": "tenant"} for s in fake.scopes]
            return _ok({"scopes": items})

        @app.post("/open-apis/im/v1/chats")
        async def create_chat(request: Request) -> JSONResponse:
            query, body = await authed(request, "chat.create")
            uuid = query.get("uuid")
            if uuid is not None and not 0 < len(uuid) <= UUID_MAX:
                raise LarkError(99992402, f"field validation failed: uuid must be 1-{UUID_MAX} characters")
            with fake._lock:
                if uuid and uuid in fake._chat_by_uuid:
                    chat = fake.chats[fake._chat_by_uuid[uuid]]
                    if time.monotonic() - chat.created < fake.creating_seconds:
                        raise LarkError(232068, "The group is being created, please wait a moment.")
                else:
                    chat = Chat(
                        chat_id=fake._id("oc"),
                        name=body.get("name") or "(无主题)",
                        description=body.get("description") or "",
                        owner_id=body.get("owner_id") or fake.bot_open_id,
                        bot_manager=str(query.get("set_bot_manager", "")).lower() == "true",
                        uuid=uuid,
                        created=time.monotonic(),
                        members=[fake.bot_open_id, *body.get("user_id_list", [])],
                    )
                    fake.chats[chat.chat_id] = chat
                    if uuid:
                        fake._chat_by_uuid[uuid] = chat.chat_id
            return _ok(
                {
                    "chat_id": chat.chat_id,
                    "name": chat.name,
                    "description": chat.description,
                    "owner_id": chat.owner_id,
                    "owner_id_type": "open_id",
                    "chat_mode": "group",
                    "chat_type": body.get("chat_type", "private"),
                }
            )

        @app.get("/open-apis/im/v1/chats/{chat_id}")
        async def get_chat(chat_id: str, request: Request) -> JSONResponse:
            await authed(request, "chat.get")
            with fake._lock:
                chat = fake._chat(chat_id)
                return _ok({"name": chat.name, "description": chat.description, "owner_id": chat.owner_id})

        @app.delete("/open-apis/im/v1/chats/{chat_id}")
        async def delete_chat(chat_id: str, request: Request) -> JSONResponse:
            await authed(request, "chat.delete")
            with fake._lock:
                chat = fake._chat(chat_id)
                if chat.owner_id != fake.bot_open_id:
                    raise LarkError(232017, "The operator is not the group owner.")
                chat.deleted = True
                # "After disbanding the group through the API, the group chat history will not be saved."
                for mid in [m.message_id for m in fake.messages.values() if m.chat_id == chat_id]:
                    chat.history.append(fake.messages.pop(mid))
            return _ok({})

        @app.post("/open-apis/im/v1/chats/{chat_id}/link")
        async def link(chat_id: str, request: Request) -> JSONResponse:
            _, body = await authed(request, "chat.link")
            period = body.get("validity_period", "week")
            if period not in ("week", "year", "permanently"):
                raise LarkError(232001, "invalid validity_period")
            with fake._lock:
                chat = fake._chat(chat_id)
                if fake.bot_open_id not in chat.members:
                    raise LarkError(232011, "Operator not in the chat.")
                chat.link_token = chat.link_token or uuidlib.uuid4().hex[:12]
                token_ = chat.link_token
            expire = int(time.time()) + (7 if period == "week" else 365) * 86400
            return _ok(
                {
                    "share_link": f"https://applink.feishu.cn/client/chat/chatter/add_by_link?link_token={token_}",
                    "expire_time": str(expire),
                    "is_permanent": period == "permanently",
                }
            )

        async def member_change(chat_id: str, op: str, request: Request) -> tuple[Chat, list[str], dict[str, str]]:
            query, body = await authed(request, op)
            if query.get("member_id_type", "open_id") != "open_id":
                raise LarkError(232001, "this fake speaks open_id only")
            ids = body.get("id_list") or []
            if not isinstance(ids, list) or len(ids) > 50:
                raise LarkError(232001, "id_list must hold at most 50 ids")
            with fake._lock:
                chat = fake._chat(chat_id)
                if chat_id in fake._member_busy:  # Lark: concurrent member changes on one chat
                    raise LarkError(232019, "The request has been rate limited.")
                fake._member_busy.add(chat_id)
            try:
                await asyncio.sleep(fake.member_op_seconds)
            finally:
                with fake._lock:
                    fake._member_busy.discard(chat_id)
            return chat, ids, query

        @app.post("/open-apis/im/v1/chats/{chat_id}/members")
        async def add_members(chat_id: str, request: Request) -> JSONResponse:
            chat, ids, query = await member_change(chat_id, "members.add", request)
            invalid, missing = [], []
            with fake._lock:
                for i in ids:
                    if not str(i).startswith("ou_"):
                        invalid.append(i)
                    elif i not in fake.users:
                        missing.append(i)
                if query.get("succeed_type") == "2" and (invalid or missing):
                    raise LarkError(232043, "Some of the ids are not available.")
                for i in ids:
                    if i not in invalid and i not in missing and i not in chat.members:
                        chat.members.append(i)
            return _ok({"invalid_id_list": invalid, "not_existed_id_list": missing, "pending_approval_id_list": []})

        @app.delete("/open-apis/im/v1/chats/{chat_id}/members")
        async def remove_members(chat_id: str, request: Request) -> JSONResponse:
            chat, ids, _ = await member_change(chat_id, "members.remove", request)
            with fake._lock:
                invalid = [i for i in ids if i not in chat.members or i == chat.owner_id]
                chat.members = [m for m in chat.members if m not in ids or m in invalid]
            return _ok({"invalid_id_list": invalid})

        @app.post("/open-apis/im/v1/chats/{chat_id}/top_notice/put_top_notice")
        async def top_notice(chat_id: str, request: Request) -> JSONResponse:
            _, body = await authed(request, "top_notice.put")
            notices = body.get("chat_top_notice") or []
            with fake._lock:
                chat = fake._chat(chat_id)
                if not notices or notices[0].get("action_type") not in ("1", "2"):
                    raise LarkError(232001, "chat_top_notice needs one entry with action_type 1 or 2")
                mid = notices[0].get("message_id")
                ours = mid in fake.messages and fake.messages[mid].chat_id == chat_id
                if notices[0]["action_type"] == "1" and not ours:
                    raise LarkError(232001, "message_id is not a message of this chat")
                chat.top_notice = mid
            return _ok({})

        @app.post("/open-apis/im/v1/messages")
        async def send_message(request: Request) -> JSONResponse:
            query, body = await authed(request, "message.create")
            if query.get("receive_id_type") != "chat_id":
                raise LarkError(230001, "this fake sends to chat_id only")
            uuid = body.get("uuid")
            if uuid is not None and not 0 < len(uuid) <= UUID_MAX:
                raise LarkError(99992402, f"field validation failed: uuid must be 1-{UUID_MAX} characters")
            msg_type, content = body.get("msg_type"), body.get("content")
            _check_content(msg_type, content)
            with fake._lock:
                if uuid and uuid in fake._msg_by_uuid and fake._msg_by_uuid[uuid] in fake.messages:
                    return _ok(fake._message_json(fake.messages[fake._msg_by_uuid[uuid]]))
                chat = fake._chat(body.get("receive_id", ""))
                if fake.bot_open_id not in chat.members:
                    raise LarkError(230002, "Bot can NOT be out of the chat.")
                m = fake._new_message(chat.chat_id, msg_type, content, fake.app_id, "app", uuid)
                if uuid:
                    fake._msg_by_uuid[uuid] = m.message_id
                return _ok(fake._message_json(m))

        @app.patch("/open-apis/im/v1/messages/{message_id}")
        async def patch_message(message_id: str, request: Request) -> JSONResponse:
            _, body = await authed(request, "message.patch")
            content = body.get("content")
            _check_content("interactive", content)
            with fake._lock:
                m = fake.messages.get(message_id)
                if m is None:
                    raise LarkError(230011, "The message was withdrawn or does not exist.")
                fake._chat(m.chat_id)
                if m.msg_type != "interactive" or m.sender_type != "app":
                    raise LarkError(230001, "Only cards sent by this app can be updated.")
                if not (_shared(m.content) and _shared(content)):
                    raise LarkError(230001, "Only shared cards (config.update_multi: true) can be updated.")
                times = fake._patch_times[message_id]
                now = time.monotonic()
                while times and times[0] < now - 1.0:
                    times.popleft()
                if len(times) >= PATCH_QPS:
                    raise LarkError(230020, "This operation triggers the frequency limit.")
                times.append(now)
                m.content, m.patches = content, m.patches + 1
            return _ok({})

        @app.get("/open-apis/im/v1/messages")
        async def list_messages(request: Request) -> JSONResponse:
            query, _ = await authed(request, "message.list")
            if query.get("container_id_type") != "chat":
                raise LarkError(230001, "this fake lists chats only")
            size = int(query.get("page_size", 20))
            if not 1 <= size <= 50:
                raise LarkError(230001, "page_size must be between 1 and 50")
            with fake._lock:
                chat = fake._chat(query.get("container_id", ""))
                if fake.bot_open_id not in chat.members:
                    raise LarkError(230002, "Bot can NOT be out of the chat.")
                items = fake.chat_messages(chat.chat_id)
                start, end = query.get("start_time"), query.get("end_time")
                if start:
                    items = [m for m in items if m.create_time >= int(start) * 1000]
                if end:
                    items = [m for m in items if m.create_time <= int(end) * 1000]
                if query.get("sort_type", "ByCreateTimeAsc") == "ByCreateTimeDesc":
                    items.reverse()
                offset = int(base64.urlsafe_b64decode(query["page_token"]).decode()) if query.get("page_token") else 0
                page = items[offset : offset + size]
                more = offset + size < len(items)
                data: dict[str, Any] = {"has_more": more, "items": [fake._message_json(m) for m in page]}
                if more:
                    data["page_token"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            return _ok(data)

        @app.post("/open-apis/im/v1/pins")
        async def pin(request: Request) -> JSONResponse:
            _, body = await authed(request, "pin.create")
            with fake._lock:
                m = fake.messages.get(body.get("message_id", ""))
                if m is None:
                    raise LarkError(230011, "The message was withdrawn or does not exist.")
                fake._chat(m.chat_id)
                m.pinned = True  # pinning twice returns the existing pin
                pin_ = {
                    "message_id": m.message_id,
                    "chat_id": m.chat_id,
                    "operator_id": fake.app_id,
                    "operator_id_type": "app_id",
                    "create_time": str(_now_ms()),
                }
            return _ok({"pin": pin_})

        @app.post("/open-apis/contact/v3/users/batch_get_id")
        async def batch_get_id(request: Request) -> JSONResponse:
            query, body = await authed(request, "user.batch_get_id")
            if query.get("user_id_type", "open_id") != "open_id":
                raise LarkError(99992402, "this fake answers open_id only")
            emails, mobiles = body.get("emails") or [], body.get("mobiles") or []
            if len(emails) > 50 or len(mobiles) > 50:
                raise LarkError(99992402, "field validation failed: at most 50 emails and 50 mobiles")
            out = []
            with fake._lock:
                for e in emails:
                    u = next((u for u in fake.users.values() if u.email and u.email.lower() == e.lower()), None)
                    out.append({"email": e, "user_id": u.open_id} if u else {"email": e})
                for p in mobiles:
                    u = next((u for u in fake.users.values() if u.mobile == p), None)
                    out.append({"mobile": p, "user_id": u.open_id} if u else {"mobile": p})
            return _ok({"user_list": out})

        return app


def _check_content(msg_type: Any, content: Any) -> None:
    if msg_type not in ("text", "post", "interactive"):
        raise LarkError(230001, f"this fake does not send {msg_type!r} messages")
    if not isinstance(content, str):
        raise LarkError(230001, "content must be a JSON string")
    try:
        parsed = json.loads(content)
    except ValueError:
        raise LarkError(230001 if msg_type != "interactive" else 230099, "content is not valid JSON") from None
    if msg_type == "text" and not isinstance(parsed.get("text"), str):
        raise LarkError(230001, "a text message needs {'text': ...}")
    if msg_type == "interactive":
        if len(content.encode()) > CARD_LIMIT_BYTES:
            raise LarkError(230025, "The message exceeds the length limit.")
        if parsed.get("schema") == "2.0" and not isinstance((parsed.get("body") or {}).get("elements"), list):
            raise LarkError(230099, "Failed to create card content: schema 2.0 needs body.elements")


def _shared(content: str) -> bool:
    return bool((json.loads(content).get("config") or {}).get("update_multi"))


def _answer(
    payload: dict[str, Any], *, status: int | None = None, headers: dict[str, str] | None = None, data: bool = True
) -> JSONResponse:
    log_id = uuidlib.uuid4().hex
    if payload.get("code"):
        payload = payload | {
            "error": {"log_id": log_id, "troubleshooter": f"https://open.feishu.cn/search?log_id={log_id}"}
        }
        status = status or 400
    return JSONResponse(payload, status_code=status or 200, headers={"X-Tt-Logid": log_id, **(headers or {})})


def _ok(data: dict[str, Any]) -> JSONResponse:
    return _answer({"code": 0, "msg": "success", "data": data})


def _fault_response(fault: str, reset: int) -> Any:
    limit = {"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": str(reset)}
    if fault == "429":
        return _answer({"code": 99991400, "msg": "request trigger frequency limit"}, status=429, headers=limit)
    if fault == "99991400":
        return _answer({"code": 99991400, "msg": "request trigger frequency limit"}, status=400, headers=limit)
    if fault == "230020":
        return _answer({"code": 230020, "msg": "This operation triggers the frequency limit."})
    if fault == "232019":
        return _answer({"code": 232019, "msg": "The request has been rate limited."})
    if fault == "232068":
        return _answer({"code": 232068, "msg": "The group is being created, please wait a moment."})
    if fault == "token":
        return _answer({"code": 99991663, "msg": "Invalid access token for authorization."})
    if fault == "502":
        return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", status_code=502)
    if fault in ("500", "503"):
        return _answer({"code": 1500, "msg": "internal error"}, status=int(fault))
    if fault.isdigit():  # any other business error code, as HTTP 400
        return _answer({"code": int(fault), "msg": f"injected error {fault}"})
    raise ValueError(f"unknown fault {fault!r}")


# ---------------------------------------------------------------------------- Lark's callback side


def encrypt(encrypt_key: str, plaintext: str) -> str:
    """What Lark sends as `{"encrypt": ...}`: AES-256-CBC, key sha256(encrypt key), IV prefixed."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(data) + enc.finalize()).decode()


def sign(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def callback(
    payload: dict[str, Any],
    *,
    encrypt_key: str,
    encrypted: bool = True,
    signed: bool = True,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of one callback POST as Lark would make it (a string that UTF-8 cannot hold,
    a lone surrogate, goes as its `\\u` escape, as a hostile sender would write it)."""
    text = json.dumps(payload, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        text = json.dumps(payload)
    body = json.dumps({"encrypt": encrypt(encrypt_key, text)}).encode() if encrypted else text.encode()
    headers = {"content-type": "application/json"}
    if signed:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or uuidlib.uuid4().hex
        headers |= {
            "X-Lark-Request-Timestamp": ts,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": sign(ts, nonce, encrypt_key, body),
        }
    return headers, body


def envelope(event_type: str, event: dict[str, Any], *, token: str = "", app_id: str = "cli_x") -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {
            "event_id": uuidlib.uuid4().hex,
            "event_type": event_type,
            "create_time": str(_now_ms()),
            "token": token,
            "app_id": app_id,
            "tenant_key": "t1",
        },
        "event": event,
    }


def card_action(
    *, token: str, chat_id: str, message_id: str, open_id: str, value: dict[str, Any], app_id: str = "cli_x"
) -> dict[str, Any]:
    """A `card.action.trigger` callback: somebody clicked a button whose callback value is `value`."""
    return envelope(
        "card.action.trigger",
        {
            "operator": {"tenant_key": "t1", "open_id": open_id, "union_id": "on_" + open_id[3:]},
            "token": "c-" + uuidlib.uuid4().hex,
            "action": {"value": value, "tag": "button"},
            "host": "im_message",
            "context": {"open_message_id": message_id, "open_chat_id": chat_id},
        },
        token=token,
        app_id=app_id,
    )


def chat_disbanded(*, token: str, chat_id: str, open_id: str) -> dict[str, Any]:
    return envelope(
        "im.chat.disbanded_v1",
        {"chat_id": chat_id, "operator_id": {"open_id": open_id}, "external": False, "operator_tenant_key": "t1"},
        token=token,
    )


def url_verification(*, token: str, challenge: str) -> dict[str, Any]:
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def card_buttons(content: str) -> dict[str, dict[str, Any]]:
    """Label → callback value of a card's buttons, as a Lark client sends the value when clicked."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "button":
                for b in node.get("behaviors") or []:
                    if b.get("type") == "callback":
                        found[node["text"]["content"]] = b["value"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(content))
    return found

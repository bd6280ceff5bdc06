"""A protocol-faithful fake of WeCom (企业微信) for wechatpy 1.8, and a callback sender.

One ASGI app (FastAPI, served by uvicorn on 127.0.0.1 in a thread of its own) under `/cgi-bin/`,
always HTTP 200 with `{"errcode", "errmsg", …}` like WeCom, validating strictly:
- `gettoken` (corp id and secret); every other call's `access_token` (unknown → 40014, expired → 42001);
- `appchat/create`: chatid ≤ 32 of [0-9a-zA-Z] and new (86215), name ≤ 50 characters, 2-2000 known
  members (86006, 86216), the owner in the list (86207); `appchat/get|update` (86003 for unknown
  groups, known members only, the owner never removed); `appchat/send`: only the message types a
  group takes (no `template_card`: 40008), markdown ≤ 4096 bytes;
- `message/send`: the agent id (40056), a known recipient, `template_card` `button_interaction`
  with a `task_id` unique per app and 1-6 buttons; each send answers a fresh `response_code`;
- `message/update_template_card`: the agent id, a response code that exists, is unused, is the
  recipient's, and younger than 72 h (single use);
- `user/getuserid` (mobile) and `user/get_userid_by_email` (email_type 1: corp mail, 2: personal);
  misses are 46004 and counted (WeCom blocks a day after many);
- `agent/get`: the app's visible range.

`latency_seconds` delays every call by that much before it is handled (a platform round trip
for the benchmarks, `bench/wecom.py`); records carry the time they were made (`at`).

Faults are queued per operation (`fail("appchat.create", "timeout_after", "45009")`) or drawn at
random (`chaos(rate)`), through `tests/fakes/faults.py`: `500`
(HTTP 500), `502` (an HTML page), `drop_after` (handled, then the connection closed),
`timeout_after` (handled, answered `late_seconds` later), `pass` (no fault: a place in the
queue), `42001` (the token given is expired:
every token known so far stops working, so the client must fetch a new one), or any errcode.

`click(...)` and `url_check(...)` build what WeCom sends to `/im/wecom/callback`: XML encrypted
with AES-256-CBC (key from the EncodingAESKey, IV its first 16 bytes, random16 + length + message +
corp id, PKCS#7 to 32 bytes) and `msg_signature` = sha1 of the sorted token, timestamp, nonce and
ciphertext: written here from WeCom's description, cross-checked against wechatpy's WeChatCrypto.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
import uuid as uuidlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from tests.fakes.faults import FaultInjector, Faults

CHATID = re.compile(r"[0-9a-zA-Z]{1,32}")
NAME_MAX = 50
GROUP_MIN, GROUP_MAX = 2, 2000
MARKDOWN_MAX = 4096
GROUP_TYPES = {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"}
CODE_LIFETIME = 72 * 3600

CHAOS_FAULTS = ("500", "502", "45009", "45033", "timeout_after", "drop_after")
_OPS = {
    ("GET", "gettoken"): "gettoken",
    ("GET", "agent/get"): "agent.get",
    ("POST", "appchat/create"): "appchat.create",
    ("GET", "appchat/get"): "appchat.get",
    ("POST", "appchat/update"): "appchat.update",
    ("POST", "appchat/send"): "appchat.send",
    ("POST", "message/send"): "message.send",
    ("POST", "message/update_template_card"): "card.update",
    ("POST", "user/getuserid"): "user.getuserid",
    ("POST", "user/get_userid_by_email"): "user.by_email",
}


def op_name(method: str, path: str) -> str:
    return _OPS.get((method, path.removeprefix("/cgi-bin/")), f"{method} {path}")


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


@dataclass
class User:
    userid: str
    name: str
    mobile: str | None = None
    email: str | None = None  # personal mail (email_type 2)
    biz_mail: str | None = None  # the corp's mail (email_type 1)


@dataclass
class Chat:
    chatid: str
    name: str
    owner: str
    members: list[str]
    names: list[str] = field(default_factory=list)  # every name it had
    joins: Counter[str] = field(default_factory=Counter)  # how often each person was added
    at: float = field(default_factory=time.time)  # when it was created (epoch seconds, the fake's clock)


@dataclass
class GroupMessage:
    chatid: str
    msgtype: str
    content: str
    at: float = field(default_factory=time.time)


@dataclass
class CardMessage:
    userid: str
    task_id: str
    card: dict[str, Any]
    msgid: str
    updates: int = 0
    at: float = field(default_factory=time.time)  # sent, then last updated


@dataclass
class Call:
    op: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)  # when it arrived (before the latency)


def _pkcs7(data: bytes, block: int = 32) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def encrypt(aes_key: str, corp_id: str, plaintext: str, *, random16: bytes | None = None) -> str:
    key = base64.b64decode(aes_key + "=")
    body = (random16 or os.urandom(16)) + struct.pack(">I", len(plaintext.encode())) + plaintext.encode()
    body += corp_id.encode()
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(_pkcs7(body)) + enc.finalize()).decode()


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


class FakeWeCom:
    """The fake platform's state and HTTP surface. Start it with `start()` (or `with`)."""

    def __init__(self, *, token_seconds: int = 7200, late_seconds: float = 2.5, latency_seconds: float = 0.0) -> None:
        self.corp_id = f"ww{uuidlib.uuid4().hex[:16]}"
        self.secret = f"secret-{uuidlib.uuid4().hex}"
        self.agent_id = 1000002
        self.token = "wecomcallbacktoken"
        self.aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
        self.token_seconds = token_seconds
        self.late_seconds = late_seconds
        self.latency_seconds = latency_seconds  # every call takes this long before it is handled (benchmarks)
        self.tokens: dict[str, float] = {}  # token → expiry (epoch seconds)
        self.users: dict[str, User] = {}
        self.chats: dict[str, Chat] = {}
        self.group_messages: list[GroupMessage] = []
        self.cards: dict[str, CardMessage] = {}  # task_id → the card message
        self.codes: dict[str, tuple[str, str, float]] = {}  # response_code → (userid, task_id, issued at)
        self.used_codes: set[str] = set()
        self.app_messages: list[tuple[str, str]] = []  # (userid, msgtype) of every message/send
        self.app_texts: list[tuple[str, str]] = []  # (userid, content) of the text ones
        self.lookup_misses = 0
        self._inner: dict[str, tuple[str, str | None]] = {}  # ciphertext → (the message, corp id): redeliveries
        self.visible_root = True
        self.calls: list[Call] = []
        self.faults = Faults(seed=17)
        self._lock = threading.RLock()
        app = self._build_app()
        self.app = FaultInjector(
            app,
            self.faults,
            operation=op_name,
            respond=lambda fault, _op: _fault_answer(self, app, fault),
            late_seconds=lambda: self.late_seconds,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ test controls
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The WECOM_* settings that point War Room at this fake."""
        return {
            "WECOM_CORP_ID": self.corp_id,
            "WECOM_SECRET": self.secret,
            "WECOM_AGENT_ID": str(self.agent_id),
            "WECOM_TOKEN": self.token,
            "WECOM_ENCODING_AES_KEY": self.aes_key,
            "WECOM_API_BASE_URL": self.url,
            "WECOM_TIMEOUT_SECONDS": 2.0,  # a loaded test machine must not time out calls the faults do not delay
            **extra,
        }

    def fail(self, op: str, *faults: str) -> None:
        self.faults.fail(op, *faults)

    def pending_faults(self, op: str) -> list[str]:
        return self.faults.pending(op)

    def chaos(self, rate: float) -> None:
        """From now on a `rate` share of calls (gettoken aside) meets a random fault."""
        self.faults.chaos(rate, CHAOS_FAULTS, spared=("gettoken",))

    def add_user(self, name: str, *, mobile: str | None = None, email: str | None = None,
                 biz_mail: str | None = None) -> str:  # fmt: skip
        with self._lock:
            userid = "".join(ch for ch in name if ch.isalnum()) + hashlib.sha1(name.encode()).hexdigest()[:4]
            self.users[userid] = User(userid, name, mobile, email, biz_mail)
            return userid

    def expire_tokens(self) -> None:
        with self._lock:
            for t in self.tokens:
                self.tokens[t] = 0.0

    def ops(self, op: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.op == op]

    def texts(self, chatid: str) -> list[str]:
        with self._lock:
            return [m.content for m in self.group_messages if m.chatid == chatid]

    def cards_of(self, userid: str) -> list[CardMessage]:
        with self._lock:
            return [c for c in self.cards.values() if c.userid == userid]

    def latest_card(self, userid: str) -> CardMessage:
        return self.cards_of(userid)[-1]

    # ------------------------------------------------------------------ callbacks WeCom sends
    def _envelope(self, inner: str, *, timestamp: str | None, nonce: str | None,
                  corp_id: str | None = None) -> tuple[dict[str, str], bytes]:  # fmt: skip
        ts = timestamp or str(int(time.time()))
        nonce = nonce or uuidlib.uuid4().hex[:10]
        encrypted = encrypt(self.aes_key, corp_id or self.corp_id, inner)
        self._inner[encrypted] = (inner, corp_id)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><AgentID><![CDATA[{self.agent_id}]]>"
                f"</AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")  # fmt: skip
        query = {"msg_signature": signature(self.token, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
        return query, body.encode()

    def redeliver(self, body: bytes) -> tuple[dict[str, str], bytes]:
        """WeCom's retry of a callback it sent (`body`): the same message, sealed again (another
        nonce, timestamp, random prefix, hence another ciphertext and signature)."""
        encrypted = re.search(rb"<Encrypt><!\[CDATA\[([^\]]+)\]\]>", body)
        assert encrypted is not None, "not a callback body of this fake"
        inner, corp_id = self._inner[encrypted.group(1).decode()]
        return self._envelope(inner, timestamp=None, nonce=None, corp_id=corp_id)

    def url_check(self, echo: str = "echo-1234567890", *, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        nonce = uuidlib.uuid4().hex[:10]
        encrypted = encrypt(self.aes_key, self.corp_id, echo)
        return {"msg_signature": signature(self.token, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce,
                "echostr": encrypted}  # fmt: skip

    def click(self, userid: str, task_id: str, key: str, *, timestamp: str | None = None,
              corp_id: str | None = None) -> tuple[dict[str, str], bytes, str]:  # fmt: skip
        """A `template_card_event` for a button of `task_id`: (query, body, its fresh ResponseCode)."""
        code = uuidlib.uuid4().hex
        with self._lock:
            self.codes[code] = (userid, task_id, time.time())
        created = timestamp or str(int(time.time()))
        inner = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{userid}]]>"
            f"</FromUserName><CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
            f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
            f"<ResponseCode><![CDATA[{code}]]></ResponseCode><AgentID>{self.agent_id}</AgentID></xml>"
        )
        query, body = self._envelope(inner, timestamp=timestamp, nonce=None, corp_id=corp_id)
        return query, body, code

    def text_message(self, userid: str, text: str, *, msg_id: str | None = None) -> tuple[dict[str, str], bytes]:
        """A 1:1 text message from `userid` to the app."""
        inner = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{userid}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id or uuidlib.uuid4().int % 10**18}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )
        return self._envelope(inner, timestamp=None, nonce=None)

    # ------------------------------------------------------------------ serving
    def start(self) -> FakeWeCom:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted connections inherit it
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="critical", lifespan="off", http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake WeCom server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeWeCom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ checks WeCom makes
    def _user(self, userid: Any) -> User:
        if not isinstance(userid, str) or userid not in self.users:
            raise WeComError(40003, f"invalid userid {str(userid)[:40]}")
        return self.users[userid]

    def _chat(self, chatid: Any) -> Chat:
        if not isinstance(chatid, str) or chatid not in self.chats:
            raise WeComError(86003, "chatid not exist")
        return self.chats[chatid]

    def _members(self, value: Any, *, code: int = 86216) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
            raise WeComError(40058, "user list must be a list of userids")
        unknown = [u for u in value if u not in self.users]
        if unknown:
            raise WeComError(code, f"invalid chat member {unknown[0]}")
        return value

    def _agent(self, body: dict[str, Any]) -> None:
        if str(body.get("agentid")) != str(self.agent_id):
            raise WeComError(40056, "invalid agentid")

    @staticmethod
    def _name(value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > NAME_MAX:
            raise WeComError(86004, f"invalid chat name (1-{NAME_MAX} characters)")
        return value

    # ------------------------------------------------------------------ the operations
    def handle(self, op: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if op == "gettoken":
            if query.get("corpid") != self.corp_id:
                raise WeComError(40013, "invalid corpid")
            if query.get("corpsecret") != self.secret:
                raise WeComError(40001, "invalid credential, secret is wrong")
            token = uuidlib.uuid4().hex
            self.tokens[token] = time.time() + self.token_seconds
            return {"access_token": token, "expires_in": self.token_seconds}
        expiry = self.tokens.get(query.get("access_token", ""))
        if expiry is None:
            raise WeComError(40014, "invalid access_token")
        if expiry < time.time():
            raise WeComError(42001, "access_token expired")
        if op == "agent.get":
            if query.get("agentid") != str(self.agent_id):
                raise WeComError(40056, "invalid agentid")
            range_ = {"partyid": [1]} if self.visible_root else {"partyid": [7]}
            return {"agentid": self.agent_id, "name": "War Room", "allow_partys": range_,
                    "allow_userinfos": {"user": []}, "close": 0, "isreportenter": 0}  # fmt: skip
        if op == "appchat.create":
            if not self.visible_root:
                raise WeComError(60011, "no privilege to access/modify contact/party/agent")
            chatid = body.get("chatid")
            if not isinstance(chatid, str) or not CHATID.fullmatch(chatid):
                raise WeComError(86001, "invalid chatid")
            if chatid in self.chats:
                raise WeComError(86215, "chatid already exists")
            name = self._name(body.get("name"))
            members = self._members(body.get("userlist"))
            if not GROUP_MIN <= len(set(members)) <= GROUP_MAX:
                raise WeComError(86006, "invalid chat member count")
            if body.get("owner") not in members:
                raise WeComError(86207, "chat owner not in userlist")
            chat = self.chats[chatid] = Chat(chatid, name, body["owner"], list(dict.fromkeys(members)), [name])
            chat.joins.update(chat.members)
            return {"chatid": chatid}
        if op == "appchat.get":
            chat = self._chat(query.get("chatid"))
            return {"chat_info": {"chatid": chat.chatid, "name": chat.name, "owner": chat.owner,
                                  "userlist": list(chat.members)}}  # fmt: skip
        if op == "appchat.update":
            chat = self._chat(body.get("chatid"))
            add = self._members(body.get("add_user_list", []), code=86007)
            remove = self._members(body.get("del_user_list", []), code=86007)
            if chat.owner in remove:
                raise WeComError(86101, "the owner cannot be removed")
            if "name" in body:
                chat.name = self._name(body["name"])
                chat.names.append(chat.name)
            if len(set(chat.members) | set(add)) > GROUP_MAX:
                raise WeComError(86006, "invalid chat member count")
            members = [u for u in dict.fromkeys([*chat.members, *add]) if u not in remove]
            if "owner" in body:
                if body["owner"] not in members:
                    raise WeComError(86005, "invalid chat owner: not a member")
                chat.owner = body["owner"]
            chat.joins.update(u for u in members if u not in chat.members)
            chat.members = members
            return {}
        if op == "appchat.send":
            chat = self._chat(body.get("chatid"))
            msgtype = body.get("msgtype")
            if msgtype not in GROUP_TYPES:
                raise WeComError(40008, f"invalid message type {str(msgtype)[:30]}")
            content = (body.get(msgtype) or {}).get("content") if isinstance(body.get(msgtype), dict) else None
            if msgtype in ("text", "markdown"):
                if not isinstance(content, str) or not content:
                    raise WeComError(41016, "content is empty")
                if len(content.encode()) > MARKDOWN_MAX:
                    raise WeComError(45002, "content size out of limit")
            self.group_messages.append(GroupMessage(chat.chatid, str(msgtype), str(content or "")))
            return {}
        if op == "message.send":
            self._agent(body)
            user = self._user(body.get("touser"))
            msgtype = body.get("msgtype")
            self.app_messages.append((user.userid, str(msgtype)))
            if msgtype == "text":
                content = (body.get("text") or {}).get("content") if isinstance(body.get("text"), dict) else None
                if not isinstance(content, str) or not content or len(content.encode()) > 2048:
                    raise WeComError(41016, "text.content is empty or longer than 2048 bytes")
                self.app_texts.append((user.userid, content))
                return {"msgid": uuidlib.uuid4().hex}
            if msgtype != "template_card":
                raise WeComError(40008, "invalid message type")
            card = self._card(body.get("template_card"))
            task_id = card["task_id"]
            if task_id in self.cards:
                raise WeComError(40058, "task_id already exists")
            msgid = uuidlib.uuid4().hex
            self.cards[task_id] = CardMessage(user.userid, task_id, card, msgid)
            code = uuidlib.uuid4().hex
            self.codes[code] = (user.userid, task_id, time.time())
            return {"msgid": msgid, "response_code": code}
        if op == "card.update":
            self._agent(body)
            code = body.get("response_code")
            if not isinstance(code, str) or code not in self.codes:
                raise WeComError(40058, "invalid response_code")
            if code in self.used_codes:
                raise WeComError(40058, "response_code already used")
            userid, task_id, issued = self.codes[code]
            if time.time() - issued > CODE_LIFETIME:
                raise WeComError(40058, "response_code expired")
            if body.get("userids") != [userid]:
                raise WeComError(40058, "userids do not match the response_code")
            card = self._card(body.get("template_card"), updating=task_id)
            self.used_codes.add(code)
            message = self.cards[task_id]
            message.card = card
            message.updates += 1
            message.at = time.time()
            return {"invaliduser": []}
        if op == "user.getuserid":
            mobile = body.get("mobile")
            for u in self.users.values():
                if mobile and u.mobile == mobile:
                    return {"userid": u.userid}
            self.lookup_misses += 1
            raise WeComError(46004, "user not found")
        if op == "user.by_email":
            email, kind = body.get("email"), body.get("email_type", 1)
            if kind not in (1, 2):
                raise WeComError(40058, "invalid email_type")
            for u in self.users.values():
                if email and (u.biz_mail if kind == 1 else u.email) == email:
                    return {"userid": u.userid}
            self.lookup_misses += 1
            raise WeComError(46004, "user not found")
        raise WeComError(404, f"no such API {op}")

    def _card(self, card: Any, *, updating: str | None = None) -> dict[str, Any]:
        if not isinstance(card, dict) or card.get("card_type") != "button_interaction":
            raise WeComError(40099, "template_card.card_type must be button_interaction")
        task_id = card.get("task_id")
        if not isinstance(task_id, str) or not re.fullmatch(r"[0-9a-zA-Z_\-@]{1,128}", task_id):
            raise WeComError(40058, "invalid task_id")
        if updating is not None and task_id != updating:
            raise WeComError(40058, "task_id does not match the card")
        title = (card.get("main_title") or {}).get("title")
        if not isinstance(title, str) or not title or len(title) > 36:
            raise WeComError(40058, "main_title.title is required (at most 36 characters)")
        buttons = card.get("button_list")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
            raise WeComError(40058, "button_list must hold 1-6 buttons")
        for b in buttons:
            if not isinstance(b, dict) or not b.get("text") or not b.get("key") or len(str(b["key"])) > 1024:
                raise WeComError(40058, "each button needs text and a key of at most 1024 bytes")
        return card

    # ------------------------------------------------------------------ the ASGI app
    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/cgi-bin/{path:path}", methods=["GET", "POST"])
        async def any_route(path: str, request: Request) -> Any:
            op = op_name(request.method, request.url.path)
            arrived = time.time()
            if self.latency_seconds:
                await asyncio.sleep(self.latency_seconds)
            raw = await request.body()
            query = dict(request.query_params)
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
            with self._lock:
                self.calls.append(Call(op, query, body, arrived))
                try:
                    if not isinstance(body, dict):
                        raise WeComError(47001, "data format error")
                    answer = self.handle(op, query, body)
                except WeComError as e:
                    return JSONResponse({"errcode": e.errcode, "errmsg": e.errmsg})
            return JSONResponse({"errcode": 0, "errmsg": "ok", **answer})

        return app


def _fault_answer(fake: FakeWeCom, app: FastAPI, fault: str) -> Any:
    """WeCom's own answer to an injected fault (HTTP 200 with an errcode, as WeCom answers)."""
    if fault == "500":
        return JSONResponse({"errcode": -1, "errmsg": "system busy"}, status_code=500)
    if fault == "502":
        return HTMLResponse("<html><h1>502 Bad Gateway</h1></html>", status_code=502)
    if fault == "pass":  # a placeholder in a queue: this call goes through, the next one meets the next fault
        return app
    if fault == "42001":
        fake.expire_tokens()
        return app  # the request meets its expired token
    return JSONResponse({"errcode": int(fault), "errmsg": f"injected {fault}"})

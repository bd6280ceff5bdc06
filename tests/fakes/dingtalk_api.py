"""A protocol-faithful fake of DingTalk, for alibabacloud-dingtalk, httpx and dingtalk-stream.

One ASGI app (FastAPI, served by uvicorn on 127.0.0.1 in a thread of its own) serves both bases and
the Stream gateway, so `DINGTALK_API_BASE_URL` and `DINGTALK_OAPI_BASE_URL` both point at it:

- new OpenAPI (`x-acs-dingtalk-access-token` header): `oauth2/accessToken`, `im/sceneGroup/create`
  (`uuid` dedup, title ≤ 30, template and owner checked), `member/add|delete` (the 1,000 cap),
  `chat/scenegroup/disband`, `card/instances/createAndDeliver` (string-only `cardParamMap`, the
  robot must be in the group, `outTrackId` dedup), `PUT card/instances`,
  `robot/groupMessages/send`; errors as HTTP 4xx/5xx `{"code", "message", "requestid"}`;
- legacy OpenAPI (`?access_token=`): `topapi/v2/user/getbymobile`, `topapi/v2/user/get`,
  `topapi/v2/department/listsubid`, `topapi/v2/user/list`, `topapi/im/chat/scenegroup/get`;
  HTTP 200 with `errcode`;
- Stream: `POST /v1.0/gateway/connections/open` (a ticket per connection) and the websocket at
  `/stream?ticket=…`, which pushes frames in the SDK's format and records the acks.

Faults are queued per operation (`fail("scene.create", "timeout_after", "500")`) or drawn at random
(`chaos(rate)`), through `tests/fakes/faults.py`:
`qps` (403 QpsLimitForAppkeyAndApi, or errcode 90018 on oapi), `500`, `502` (an HTML page),
`ipban` (the egress-IP ban page), `token` (the token refused: 401, or errcode 40014 on oapi),
`drop` (connection closed before handling), `drop_after` (handled, then closed without an
answer), `timeout_after` (handled, the answer `late_seconds` later), or any other string: that
error code with HTTP 400.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse

from tests.fakes.faults import FaultInjector, Faults

TITLE_MAX = 30
GROUP_CAP = 1000
PARAM_VALUE_MAX = 1024

_OPS = [
    ("POST", r"/v1.0/oauth2/accessToken", "token"),
    ("POST", r"/v1.0/im/sceneGroup/create", "scene.create"),
    ("POST", r"/v1.0/im/sceneGroup/member/add", "members.add"),
    ("POST", r"/v1.0/im/sceneGroup/member/delete", "members.remove"),
    ("POST", r"/v1.0/im/chat/scenegroup/disband", "scene.disband"),
    ("POST", r"/v1.0/card/instances/createAndDeliver", "card.create"),
    ("PUT", r"/v1.0/card/instances", "card.update"),
    ("POST", r"/v1.0/robot/groupMessages/send", "robot.send"),
    ("POST", r"/v1.0/gateway/connections/open", "stream.open"),
    ("POST", r"/topapi/v2/user/getbymobile", "user.getbymobile"),
    ("POST", r"/topapi/v2/user/get", "user.get"),
    ("POST", r"/topapi/v2/department/listsubid", "dept.listsubid"),
    ("POST", r"/topapi/v2/user/list", "user.list"),
    ("POST", r"/topapi/im/chat/scenegroup/get", "scene.get"),
]
LEGACY = {name for _, path, name in _OPS if path.startswith("/topapi")}
# What a chaos run draws from, and what it leaves alone (the token and the Stream gateway: their
# failures are tested on their own and would only stall a run).
CHAOS_FAULTS = ("qps", "500", "502", "drop", "drop_after", "timeout_after")
SPARED = ("token", "stream.open")


def op_name(method: str, path: str) -> str:
    for m, pattern, name in _OPS:
        if m == method and re.fullmatch(pattern, path):
            return name
    return f"{method} {path}"


def robot_sign(secret: str, timestamp: str) -> str:
    """DingTalk's robot-callback signature (what it sends in the `sign` header)."""
    return base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()


@dataclass
class User:
    userid: str
    name: str
    mobile: str | None = None
    email: str | None = None
    org_email: str | None = None
    dept: int = 1


@dataclass
class Group:
    open_conversation_id: str
    chat_id: str
    title: str
    owner: str
    template_id: str
    uuid: str
    robots: set[str]
    members: set[str] = field(default_factory=set)
    disbanded: bool = False


@dataclass
class Card:
    out_track_id: str
    template_id: str
    open_conversation_id: str
    robot_code: str
    params: dict[str, str]
    updates: int = 0


@dataclass
class Message:
    key: str
    open_conversation_id: str
    robot_code: str
    msg_key: str
    param: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.param.get("text") or self.param.get("content") or "")


@dataclass
class Call:
    op: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    at: float = field(default_factory=time.time)  # when it took effect (after any injected latency)


class DingTalkError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class FakeDingTalk:
    """The fake platform's state and HTTP surface. Start it with `start()` (or `with`)."""

    def __init__(
        self,
        *,
        app_key: str | None = None,
        app_secret: str = "fake-dingtalk-secret",
        robot_code: str = "ding_robot_warroom",
        group_template: str = "tpl-group-1",
        card_template: str = "tpl-card-1.schema",
        token_seconds: int = 7200,
        late_seconds: float = 2.0,
    ) -> None:
        self.app_key = app_key or f"ding{uuidlib.uuid4().hex[:14]}"
        self.app_secret = app_secret
        self.robot_code = robot_code
        self.group_template = group_template
        self.card_template = card_template
        self.token_seconds = token_seconds
        self.late_seconds = late_seconds
        self.tokens: dict[str, float] = {}  # token → expiry (epoch seconds)
        self.users: dict[str, User] = {}
        self.departments: dict[int, list[int]] = {1: []}  # department → its sub-departments
        self.groups: dict[str, Group] = {}
        self.cards: dict[str, Card] = {}
        self.messages: list[Message] = []
        self.calls: list[Call] = []
        self.acks: list[dict[str, Any]] = []
        self.tickets: set[str] = set()
        self.connections = 0
        self._group_by_uuid: dict[str, str] = {}
        self.faults = Faults()
        self._lock = threading.RLock()
        self._seq = 0
        self._sockets: list[WebSocket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = FaultInjector(
            self._build_app(),
            self.faults,
            operation=op_name,
            respond=lambda fault, op: _fault_response(fault, legacy=op in LEGACY),
            late_seconds=lambda: self.late_seconds,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ test controls
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, owner: str, **extra: Any) -> dict[str, Any]:
        """The DINGTALK_* settings that point War Room at this fake."""
        return {
            "DINGTALK_APP_KEY": self.app_key,
            "DINGTALK_APP_SECRET": self.app_secret,
            "DINGTALK_ROBOT_CODE": self.robot_code,
            "DINGTALK_API_BASE_URL": self.url,
            "DINGTALK_OAPI_BASE_URL": self.url,
            "DINGTALK_SCENE_GROUP_TEMPLATE_ID": self.group_template,
            "DINGTALK_CARD_TEMPLATE_ID": self.card_template,
            "DINGTALK_OWNER_USER_ID": owner,
            "DINGTALK_TIMEOUT_SECONDS": 1.0,
            **extra,
        }

    def fail(self, op: str, *faults: str) -> None:
        self.faults.fail(op, *faults)

    def pending_faults(self, op: str) -> list[str]:
        return self.faults.pending(op)

    def chaos(self, rate: float) -> None:
        """From now on a `rate` share of calls (tokens and the Stream gateway aside) meets a random fault."""
        self.faults.chaos(rate, CHAOS_FAULTS, spared=SPARED)

    def add_user(self, name: str, *, mobile: str | None = None, email: str | None = None,
                 org_email: str | None = None, dept: int = 1) -> str:  # fmt: skip
        with self._lock:
            userid = f"u{hashlib.sha1(name.encode()).hexdigest()[:10]}"
            self.users[userid] = User(userid, name, mobile, email, org_email, dept)
            self.departments.setdefault(dept, [])
            return userid

    def add_department(self, dept: int, parent: int = 1) -> None:
        with self._lock:
            self.departments.setdefault(dept, [])
            self.departments.setdefault(parent, []).append(dept)

    def revoke_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def ops(self, op: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.op == op]

    def live_groups(self) -> list[Group]:
        with self._lock:
            return [g for g in self.groups.values() if not g.disbanded]

    def group_messages(self, ocid: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.open_conversation_id == ocid]

    def pings(self, text: str) -> set[str]:
        """Whom a robot markdown text notifies: `@<userid>` of a known user, and `@all`."""
        return {m for m in re.findall(r"@([A-Za-z0-9_$.-]+)", text) if m in self.users or m == "all"}

    # ------------------------------------------------------------------ Stream: what DingTalk pushes
    def robot_message(self, ocid: str, userid: str, text: str, *, msg_id: str | None = None,
                      at_robot: bool = True) -> dict[str, Any]:  # fmt: skip
        """The `data` of a robot message frame (and the body of an HTTP-mode push)."""
        return {
            "conversationId": ocid,
            "conversationType": "2",
            "conversationTitle": self.groups[ocid].title if ocid in self.groups else "",
            "msgId": msg_id or f"msg{uuidlib.uuid4().hex[:16]}",
            "msgtype": "text",
            "text": {"content": f" {text}"},
            "senderId": f"$:LWCP_v1:${userid}",
            "senderStaffId": userid,
            "senderNick": self.users[userid].name if userid in self.users else userid,
            "senderCorpId": "ding-corp",
            "chatbotCorpId": "ding-corp",
            "chatbotUserId": "$:LWCP_v1:$robot",
            "robotCode": self.robot_code,
            "isAdmin": False,
            "isInAtList": at_robot,
            "createAt": int(time.time() * 1000),
            "sessionWebhook": f"{self.url}/robot/sendBySession?session=x",
            "sessionWebhookExpiredTime": int(time.time() * 1000) + 3_600_000,
        }

    def card_click(self, out_track_id: str, userid: str, params: dict[str, Any]) -> dict[str, Any]:
        """The `data` of a card callback frame: a click on a button with these callback params."""
        card = self.cards[out_track_id]
        return {
            "corpId": "ding-corp",
            "userId": userid,
            "outTrackId": out_track_id,
            "type": "actionCallback",
            "spaceType": "IM_GROUP",
            "spaceId": card.open_conversation_id,
            "userIdType": 1,
            "content": json.dumps({"cardPrivateData": {"actionIds": ["button"], "params": params}}),
            "extension": "{}",
        }

    def frame(self, topic: str, data: dict[str, Any] | str, *, message_id: str | None = None) -> dict[str, Any]:
        return {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": self.app_key,
                "connectionId": "conn",
                "contentType": "application/json",
                "messageId": message_id or f"mid-{uuidlib.uuid4().hex[:12]}",
                "time": str(int(time.time() * 1000)),
                "topic": topic,
            },
            "data": data if isinstance(data, str) else json.dumps(data),
        }

    def push(self, frame: dict[str, Any], timeout: float = 5.0) -> None:
        """Send a frame on every open Stream connection (from the test's thread or loop)."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._push(frame), self._loop)
        fut.result(timeout)

    async def _push(self, frame: dict[str, Any]) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.send_text(json.dumps(frame))

    def disconnect_frame(self) -> None:
        self.push({"specVersion": "1.0", "type": "SYSTEM", "data": "{}",
                   "headers": {"topic": "disconnect", "messageId": f"sys-{uuidlib.uuid4().hex[:8]}",
                               "contentType": "application/json", "time": str(int(time.time() * 1000))}})  # fmt: skip

    def drop_streams(self) -> None:
        assert self._loop is not None

        async def close() -> None:
            for ws in list(self._sockets):
                with contextlib.suppress(Exception):
                    await ws.close(code=1011)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)

    @property
    def open_streams(self) -> int:
        return len(self._sockets)

    def acks_for(self, message_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a for a in self.acks if (a.get("headers") or {}).get("messageId") == message_id]

    # ------------------------------------------------------------------ serving
    def start(self) -> FakeDingTalk:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="critical", lifespan="off", http="h11", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake DingTalk server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeDingTalk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ checks DingTalk makes
    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:04d}{uuidlib.uuid4().hex[:16]}"

    def _check_token(self, token: str | None) -> None:
        expiry = self.tokens.get(token or "")
        if expiry is None or expiry < time.time():
            raise DingTalkError("InvalidAuthentication", "不合法的access_token", status=401)

    def _group(self, ocid: Any) -> Group:
        if not isinstance(ocid, str) or ocid not in self.groups:
            raise DingTalkError("invalidParameter.openConversationId", "群会话不存在 (open_conversation_id not exist)")
        group = self.groups[ocid]
        if group.disbanded:
            raise DingTalkError("chatNotExist", "群已解散 (the group does not exist)")
        return group

    @staticmethod
    def _user_ids(value: Any) -> list[str]:
        if not isinstance(value, list) or not value or not all(isinstance(u, str) and u for u in value):
            raise DingTalkError("paramIllegal", "user_ids must be a non-empty list of userids")
        return value

    # ------------------------------------------------------------------ the operations
    def handle(self, op: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        if op == "token":
            if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
                raise DingTalkError("invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            value = uuidlib.uuid4().hex
            self.tokens[value] = time.time() + self.token_seconds
            return {"accessToken": value, "expireIn": self.token_seconds}
        if op == "stream.open":
            if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
                raise DingTalkError("invalidClientIdOrSecret", "无效的clientId或者clientSecret", status=401)
            subs = body.get("subscriptions")
            if not isinstance(subs, list) or not subs:
                raise DingTalkError("paramIllegal", "subscriptions is required")
            ticket = uuidlib.uuid4().hex
            self.tickets.add(ticket)
            return {"endpoint": f"ws://127.0.0.1:{self.port}/stream", "ticket": ticket}
        self._check_token(token)
        if op == "scene.create":
            return self._create_group(body)
        if op in ("members.add", "members.remove"):
            group = self._group(body.get("open_conversation_id"))
            ids = self._user_ids(body.get("user_ids"))
            unknown = [u for u in ids if u not in self.users]
            if unknown:
                raise DingTalkError("paramIllegal", f"userid {unknown[0]} 不存在")
            if op == "members.add":
                if len(group.members | set(ids)) > GROUP_CAP:
                    raise DingTalkError("groupMemberOverLimit", "群成员已达上限")
                group.members.update(ids)
            else:
                if group.owner in ids:
                    raise DingTalkError("paramIllegal", "不能移除群主 (the owner cannot be removed)")
                group.members.difference_update(ids)
            return {"success": True}
        if op == "scene.disband":
            self._group(body.get("openConversationId")).disbanded = True
            return {"success": True}
        if op == "card.create":
            return self._create_card(body)
        if op == "card.update":
            card = self.cards.get(str(body.get("outTrackId")))
            if card is None:
                raise DingTalkError("resource.not.found", "卡片不存在 (card not found)")
            params = self._params(body)
            card.params.update(params)
            card.updates += 1
            return {"success": True, "result": True}
        if op == "robot.send":
            if body.get("robotCode") != self.robot_code:
                raise DingTalkError("invalidParameter.robotCode", "robotCode 不存在")
            group = self._group(body.get("openConversationId"))
            if body["robotCode"] not in group.robots:
                raise DingTalkError("robot.notInGroup", "机器人不在群里")
            if body.get("msgKey") not in ("sampleMarkdown", "sampleText"):
                raise DingTalkError("paramIllegal", "msgKey is not supported")
            try:
                param = json.loads(body.get("msgParam") or "")
            except ValueError:
                raise DingTalkError("paramIllegal", "msgParam is not JSON") from None
            if len(str(body.get("msgParam")).encode()) > 15000:
                raise DingTalkError("paramIllegal", "msgParam is longer than 15000 bytes")
            key = uuidlib.uuid4().hex
            self.messages.append(Message(key, group.open_conversation_id, body["robotCode"], body["msgKey"], param))
            return {"processQueryKey": key}
        raise DingTalkError("notFound", f"no such API: {op}", status=404)

    def _create_group(self, body: dict[str, Any]) -> dict[str, Any]:
        title, template, owner, uuid = (body.get(k) for k in ("title", "template_id", "owner_user_id", "uuid"))
        if not isinstance(title, str) or not title or len(title) > TITLE_MAX:
            raise DingTalkError("paramIllegal", f"title is required and at most {TITLE_MAX} characters")
        if template != self.group_template:
            raise DingTalkError("template.notOwned", "群模板不存在或不属于该应用")
        if owner not in self.users:
            raise DingTalkError("permession.checkFailed", "群主不在应用可见性内")
        if isinstance(uuid, str) and uuid in self._group_by_uuid:
            group = self.groups[self._group_by_uuid[uuid]]
            return {"open_conversation_id": group.open_conversation_id, "chat_id": group.chat_id}
        ocid = "cid" + base64.b64encode(uuidlib.uuid4().bytes).decode()
        group = Group(ocid, self._id("chat"), title, owner, template, uuid or "", {self.robot_code},
                      members={owner} | set(body.get("user_ids") or []))  # fmt: skip
        self.groups[ocid] = group
        if isinstance(uuid, str) and uuid:
            self._group_by_uuid[uuid] = ocid
        return {"open_conversation_id": ocid, "chat_id": group.chat_id}

    def _params(self, body: dict[str, Any]) -> dict[str, str]:
        data = body.get("cardData")
        params = data.get("cardParamMap") if isinstance(data, dict) else None
        if not isinstance(params, dict):
            raise DingTalkError("paramIllegal", "cardData.cardParamMap is required")
        for k, v in params.items():
            if not isinstance(v, str):
                raise DingTalkError("paramIllegal", f"cardParamMap.{k} must be a string")
            if len(k.encode()) > 100 or len(v.encode()) > PARAM_VALUE_MAX:
                raise DingTalkError("paramIllegal", f"cardParamMap.{k} is too long")
        return params

    def _create_card(self, body: dict[str, Any]) -> dict[str, Any]:
        out = body.get("outTrackId")
        if not isinstance(out, str) or not out:
            raise DingTalkError("paramIllegal", "outTrackId is required")
        if body.get("cardTemplateId") != self.card_template:
            raise DingTalkError("template.notOwned", "卡片模板不存在或不属于该应用")
        space = str(body.get("openSpaceId") or "")
        if not space.startswith("dtv1.card//IM_GROUP."):
            raise DingTalkError("paramIllegal", "openSpaceId must be dtv1.card//IM_GROUP.<openConversationId>")
        group = self._group(space.removeprefix("dtv1.card//IM_GROUP."))
        deliver = body.get("imGroupOpenDeliverModel") or {}
        robot = deliver.get("robotCode")
        if robot not in group.robots:
            raise DingTalkError("robot.notInGroup", "机器人不在群里")
        if body.get("callbackType") not in ("STREAM", "HTTP"):
            raise DingTalkError("paramIllegal", "callbackType must be STREAM or HTTP")
        params = self._params(body)
        if out not in self.cards:  # "一个 outTrackId 唯一标识一张卡片": a repeat changes nothing
            self.cards[out] = Card(out, body["cardTemplateId"], group.open_conversation_id, robot, dict(params))
        deliver_results = [{"spaceType": "IM_GROUP", "spaceId": group.open_conversation_id, "success": True,
                            "carrierId": f"carrier-{out}"}]  # fmt: skip
        return {"success": True, "result": {"outTrackId": out, "deliverResults": deliver_results}}

    def handle_legacy(self, op: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        expiry = self.tokens.get(token or "")
        if expiry is None or expiry < time.time():
            return {"errcode": 40014 if expiry is None else 42001, "errmsg": "不合法的access_token"}
        if op == "user.getbymobile":
            mobile = body.get("mobile")
            if not isinstance(mobile, str) or not mobile.isdigit():
                return {"errcode": 40035, "errmsg": "不合法的参数"}
            for u in self.users.values():
                if u.mobile == mobile:
                    return {"errcode": 0, "errmsg": "ok", "result": {"userid": u.userid}, "request_id": "r"}
            return {"errcode": 60121, "errmsg": "找不到该用户", "request_id": "r"}
        if op == "user.get":
            u = self.users.get(str(body.get("userid")))
            if u is None:
                return {"errcode": 60121, "errmsg": "找不到该用户"}
            return {"errcode": 0, "errmsg": "ok", "result": {"userid": u.userid, "name": u.name, "active": True}}
        if op == "dept.listsubid":
            dept = body.get("dept_id")
            if not isinstance(dept, int) or dept not in self.departments:
                return {"errcode": 60003, "errmsg": "部门不存在"}
            return {"errcode": 0, "errmsg": "ok", "result": {"dept_id_list": self.departments[dept]}}
        if op == "user.list":
            dept, cursor, size = body.get("dept_id"), body.get("cursor"), body.get("size")
            if not isinstance(dept, int) or not isinstance(cursor, int) or not isinstance(size, int):
                return {"errcode": 40035, "errmsg": "不合法的参数"}
            if size > 100:
                return {"errcode": 40035, "errmsg": "size 最大 100"}
            users = sorted((u for u in self.users.values() if u.dept == dept), key=lambda u: u.userid)
            page = users[cursor : cursor + size]
            listed = [{"userid": u.userid, "name": u.name, **({"email": u.email} if u.email else {}),
                       **({"org_email": u.org_email} if u.org_email else {})} for u in page]  # fmt: skip
            more = cursor + size < len(users)
            result = {"has_more": more, "next_cursor": cursor + size if more else None, "list": listed}
            return {"errcode": 0, "errmsg": "ok", "result": result}
        if op == "scene.get":
            ocid = body.get("open_conversation_id")
            group = self.groups.get(ocid) if isinstance(ocid, str) else None
            if group is None or group.disbanded:
                return {"errcode": 40035, "errmsg": "不合法的参数"}
            return {"errcode": 0, "errmsg": "ok", "success": True, "result": {
                "open_conversation_id": ocid, "title": group.title, "owner_staff_id": group.owner,
                "group_url": f"dingtalk://dingtalkclient/action/joingroup?cid={group.chat_id}"}}  # fmt: skip
        return {"errcode": 404, "errmsg": f"no such API {op}"}

    # ------------------------------------------------------------------ the ASGI app
    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.websocket("/stream")
        async def stream(ws: WebSocket) -> None:
            ticket = ws.query_params.get("ticket", "")
            with self._lock:
                valid = ticket in self.tickets
                self.tickets.discard(ticket)  # a ticket opens one connection
            if not valid:
                await ws.close(code=4001)
                return
            await ws.accept()
            self._loop = asyncio.get_running_loop()
            self._sockets.append(ws)
            self.connections += 1
            try:
                while True:
                    raw = await ws.receive_text()
                    with self._lock:
                        self.acks.append(json.loads(raw))
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                if ws in self._sockets:
                    self._sockets.remove(ws)

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
        async def any_route(path: str, request: Request) -> Any:
            op = op_name(request.method, request.url.path)
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return JSONResponse({"code": "paramIllegal", "message": "body is not JSON"}, status_code=400)
            query = dict(request.query_params)
            headers = {k.lower(): v for k, v in request.headers.items()}
            with self._lock:
                self._loop = asyncio.get_running_loop()
                self.calls.append(Call(op, query, body, headers))
                if op in LEGACY:
                    return JSONResponse(self.handle_legacy(op, body if isinstance(body, dict) else {},
                                                           query.get("access_token")))  # fmt: skip
                if request.url.path.startswith("/v1.0/") and "json" not in headers.get("content-type", ""):
                    return JSONResponse({"code": "paramIllegal", "message": "content-type must be JSON"}, 400)
                try:
                    if not isinstance(body, dict):
                        raise DingTalkError("paramIllegal", "body must be an object")
                    return JSONResponse(self.handle(op, body, headers.get("x-acs-dingtalk-access-token")))
                except DingTalkError as e:
                    return JSONResponse({"code": e.code, "message": e.message, "requestid": uuidlib.uuid4().hex},
                                        status_code=e.status)  # fmt: skip

        return app


def _fault_response(fault: str, *, legacy: bool) -> Any:
    rid = uuidlib.uuid4().hex
    if fault == "qps":
        if legacy:
            return JSONResponse({"errcode": 90018, "errmsg": "当前应用调用该接口的并发量已经超过上限"})
        limited = {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "QPS超限", "requestid": rid}
        return JSONResponse(limited, status_code=403)
    if fault == "token":
        if legacy:
            return JSONResponse({"errcode": 40014, "errmsg": "不合法的access_token"})
        return JSONResponse({"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": rid},
                            status_code=401)  # fmt: skip
    if fault == "500":
        return JSONResponse({"code": "system.error", "message": "系统繁忙", "requestid": rid}, status_code=500)
    if fault == "502":
        return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", status_code=502)
    if fault == "ipban":
        page = '<html><script>var config = {"status":1111,"wait":5,"punish":"deny"}</script></html>'
        return HTMLResponse(page, status_code=200)
    if legacy:
        return JSONResponse({"errcode": int(fault) if fault.isdigit() else 1, "errmsg": f"injected {fault}"})
    return JSONResponse({"code": fault, "message": f"injected error {fault}", "requestid": rid}, status_code=400)

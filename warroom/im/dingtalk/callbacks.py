"""Inbound DingTalk payloads: the HTTP robot callback's verification, and what robot messages and
card clicks mean (the same payloads arrive over Stream mode, `stream`).

HTTP mode (`POST /im/dingtalk/events`, the robot's 消息接收地址): DingTalk signs each push with
the headers `timestamp` (ms) and `sign` = base64(HMAC-SHA256(key=app secret, timestamp + "\\n" +
app secret)). Checked here before anything else is read: both headers present, the timestamp at
most an hour from now, the sign equal in constant time. The sign covers the timestamp only, not the
body, so the same (timestamp, sign, body) is accepted once (replay cache over the window) and the
robot message's `msgId` is the event id (DingTalk's redeliveries carry the same one).

Card clicks over HTTP: no documented way to verify them was found (the card callback registration
takes an `apiSecret`, but no signature scheme for the requests is documented), so they are refused
here; buttons need Stream mode (`warroom doctor` says so in HTTP mode).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from warroom.errors import CallbackRejected
from warroom.im import values
from warroom.im.base import ActionClicked, CallbackRequest, CallbackResult, MessageReceived
from warroom.models import Action

WINDOW_MS = 3600 * 1000
REPLAY_MAX = 50_000
CARD_ACTIONS = {Action.ACKNOWLEDGE, Action.SNOOZE, Action.CLOSE, Action.REOPEN}


def sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Seen:
    """Keys seen within `ttl` seconds; bounded, thread-safe."""

    def __init__(self, ttl: float, max_size: int = REPLAY_MAX) -> None:
        self.ttl, self.max_size = ttl, max_size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if at > now - self.ttl and len(self._seen) < self.max_size:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise CallbackRejected(f"malformed DingTalk payload: {what} is missing or not a string", status=400)
    return str(value)


def robot_message(data: Any) -> MessageReceived | None:
    """A robot message (`/v1.0/im/bot/messages/get` over Stream, or the HTTP push) → the event;
    None for what War Room does not act on (1:1 chats, pictures without text)."""
    if not isinstance(data, dict):
        raise CallbackRejected("malformed DingTalk robot message: not a JSON object", status=400)
    if str(data.get("conversationType", "2")) != "2":  # 1:1 with the robot: no war room
        return None
    text = data.get("text") if isinstance(data.get("text"), dict) else {}
    content = text.get("content") if text else None
    if content is None and data.get("msgtype") not in (None, "text"):
        content = f"[{data.get('msgtype')}]"
    if not isinstance(content, str):
        raise CallbackRejected("malformed DingTalk robot message: text.content is not a string", status=400)
    msg_id = _str(data.get("msgId"), "msgId")
    sender = data.get("senderStaffId") or data.get("senderId")
    return MessageReceived(
        event_id=f"msg:{msg_id}",
        chat_id=_str(data.get("conversationId"), "conversationId"),
        message_id=msg_id,
        im_user_id=_str(sender, "senderStaffId"),
        text=content.strip()[:20000],
        mentions_bot=data.get("isInAtList") is not False,  # a group robot hears only @mentions
    )


def _json_field(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = values.loads(value) if value else {}
        except ValueError:
            raise CallbackRejected(f"malformed DingTalk card callback: {what} is not JSON", status=400) from None
        if isinstance(parsed, dict):
            return parsed
    raise CallbackRejected(f"malformed DingTalk card callback: {what} is not an object", status=400)


def _int(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CallbackRejected(f"malformed DingTalk card callback: {what} is not a number", status=400)
    try:
        number = int(value)
    except ValueError:
        raise CallbackRejected(f"malformed DingTalk card callback: {what} is not a number", status=400) from None
    if not 0 <= number <= 10**9:
        raise CallbackRejected(f"malformed DingTalk card callback: {what} is out of range", status=400)
    return number


def card_click(data: Any, *, frame_id: str, chat_of: Callable[[str], str | None]) -> ActionClicked | None:
    """A card callback (`/v1.0/card/instances/callback`) → the click; None when it is not a War
    Room button (no `action` param). The group comes from `spaceId` (an IM_GROUP space is the
    group's openConversationId), else from the card's own record (`chat_of(outTrackId)`)."""
    if not isinstance(data, dict):
        raise CallbackRejected("malformed DingTalk card callback: not a JSON object", status=400)
    content = _json_field(data.get("content", "{}"), "content")
    private = content.get("cardPrivateData") if isinstance(content.get("cardPrivateData"), dict) else {}
    params = private.get("params") if isinstance(private.get("params"), dict) else {}
    if "action" not in params:
        return None
    try:
        action = Action(str(params["action"]))
    except ValueError:
        raise CallbackRejected(f"unknown card action {str(params['action'])[:40]!r}", status=400) from None
    if action not in CARD_ACTIONS:
        raise CallbackRejected(f"the card cannot {action.value}", status=400)
    out_track_id = _str(data.get("outTrackId"), "outTrackId")
    space = str(data.get("spaceId") or "")
    chat = space.removeprefix("IM_GROUP.") if str(data.get("spaceType") or "IM_GROUP") == "IM_GROUP" and space else ""
    chat = chat or chat_of(out_track_id) or ""
    if not chat:
        raise CallbackRejected(f"card {out_track_id[:64]} is not in a group War Room knows", status=400)
    return ActionClicked(
        event_id=f"card:{frame_id}",
        chat_id=chat,
        im_user_id=_str(data.get("userId"), "userId"),
        action=action,
        minutes=_int(params.get("minutes"), "minutes") if action is Action.SNOOZE else None,
        card_version=_int(params.get("card_version"), "card_version"),
    )


class HttpCallbacks:
    """`POST /im/dingtalk/events`: signed robot messages. `clock` (ms) is injectable for tests."""

    def __init__(self, *, app_secret: str, clock: Callable[[], float] = lambda: time.time() * 1000) -> None:
        self.app_secret = app_secret
        self.clock = clock
        self._replays = Seen(ttl=2 * WINDOW_MS / 1000 + 60)

    def handle(self, request: CallbackRequest) -> CallbackResult:
        if not self.app_secret:
            raise CallbackRejected("DingTalk callbacks need DINGTALK_APP_SECRET to be verified", status=503)
        if request.method.upper() != "POST":
            raise CallbackRejected("DingTalk callbacks are POST requests", status=405)
        headers = {k.lower(): v for k, v in request.headers.items()}
        ts, given = headers.get("timestamp", ""), headers.get("sign", "")
        if not ts or not given:
            raise CallbackRejected("missing timestamp or sign header", code="unsigned")
        if not ts.isdigit() or len(ts) > 16:
            raise CallbackRejected("the timestamp header is not a time in milliseconds")
        if abs(self.clock() - int(ts)) > WINDOW_MS:
            raise CallbackRejected("stale request: its timestamp is more than an hour from now", code="stale")
        if not hmac.compare_digest(sign(self.app_secret, ts).encode(), given.encode("utf-8", "replace")):
            raise CallbackRejected("bad sign: not signed with DINGTALK_APP_SECRET", code="bad_signature")
        try:
            data = values.loads(request.body or b"")
        except (ValueError, UnicodeDecodeError):
            raise CallbackRejected("the body is not JSON", status=400) from None
        if not isinstance(data, dict):
            raise CallbackRejected("the body is not a JSON object", status=400)
        replay_key = hashlib.sha256(ts.encode() + b"\n" + given.encode() + b"\n" + request.body).hexdigest()
        if not self._replays.first_time(replay_key):
            raise CallbackRejected("replayed request: this signed request was already received", code="replayed")
        if "outTrackId" in data:
            raise CallbackRejected(
                "card callbacks are not accepted over HTTP (no documented way to verify them): set "
                "DINGTALK_CALLBACK_MODE=stream",
                status=403,
                code="card_over_http",
            )
        event = robot_message(data)
        result = CallbackResult.with_json({}, events=[event] if event else [])
        return result.model_copy(update={"replay_key": replay_key})  # taken once across API replicas

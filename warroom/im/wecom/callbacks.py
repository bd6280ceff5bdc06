"""`GET|POST /im/wecom/callback`: WeCom's URL check and its encrypted event pushes.

Checked in this order, before anything is trusted:
1. the callback keys are configured (else 503), the query holds `msg_signature`, `timestamp`
   (seconds, within WECOM_CALLBACK_WINDOW_SECONDS of now) and `nonce`;
2. POST: the body is small XML without a DOCTYPE (no entities), with an `Encrypt` element;
3. `msg_signature` = sha1 of the sorted token, timestamp, nonce and ciphertext, compared in
   constant time: signature first, decryption after (`crypto`);
4. decryption (AES, key from WECOM_ENCODING_AES_KEY) and the corp id at its end: a message for
   another corp is refused (403), as is one for another agent.

What an event means:
- `template_card_event` on one of our buttons → `ActionClicked`: the clicker (`FromUserName`),
  the room (from the `TaskId`), the action and the card version from the button's key. Its fresh
  `ResponseCode` is kept for that card's next update (`state`), as the click's own code is the one
  WeCom expects next. The event id comes from the event itself (clicker, time, task, key), so a
  redelivery WeCom makes is acted on once by the workflow, and the request's signature is the
  `replay_key`, so the same request replayed is taken once across API replicas.
- a 1:1 text to the app from a member of open war rooms → `MessageReceived` (a question to the
  assistant) for that room; with several rooms the text must name the incident, else the answer
  (a passive reply, encrypted) asks which one; with none it says so. Its message id names the asker
  (`dm:<userid>:<MsgId>`), so the adapter sends the assistant's answer back to them 1:1.
- anything else (menu events, enter_agent…) is answered and ignored.

WeCom wants an answer within 5 s: an empty body, right after the workflow is signalled.
"""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

from warroom.errors import CallbackRejected
from warroom.im.base import ActionClicked, CallbackRequest, CallbackResult, MessageReceived
from warroom.im.wecom import crypto, naming
from warroom.im.wecom.card import parse_key
from warroom.im.wecom.settings import WeComSettings
from warroom.im.wecom.state import State
from warroom.models import Action

MAX_BODY = 64 * 1024
CARD_ACTIONS = {Action.ACKNOWLEDGE, Action.SNOOZE, Action.CLOSE, Action.REOPEN}


def parse_xml(data: bytes | str, what: str) -> dict[str, str]:
    """A flat WeCom XML document → {tag: text}; anything else is refused (400)."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_BODY:
        raise CallbackRejected(f"the {what} is larger than {MAX_BODY} bytes", status=400)
    if b"<!" in raw.replace(b"<![CDATA[", b""):
        raise CallbackRejected(f"the {what} holds a DOCTYPE or entity declaration", status=400)
    try:
        root = ET.fromstring(raw)
    except (ET.ParseError, ValueError):
        raise CallbackRejected(f"the {what} is not XML", status=400) from None
    if root.tag != "xml":
        raise CallbackRejected(f"the {what} is not a WeCom <xml> document", status=400)
    fields: dict[str, str] = {}
    for child in root:
        fields[child.tag] = (child.text or "").strip()
    return fields


class Callbacks:
    """WeCom's callbacks for one app. `clock` (epoch seconds) is injectable for tests."""

    def __init__(self, settings: WeComSettings, state: State, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = state
        self.clock = clock
        token, key = settings.token.get_secret_value(), settings.encoding_aes_key.get_secret_value()
        self.problem = "WeCom callbacks need WECOM_TOKEN, WECOM_ENCODING_AES_KEY and WECOM_CORP_ID to be verified"
        self.crypto: crypto.Crypto | None = None
        if token and key and settings.corp_id:
            try:
                self.crypto = crypto.Crypto(token, key, settings.corp_id)
            except ValueError as e:  # a mistyped key: the callbacks say so, the rest of WeCom works
                self.problem = f"WeCom callbacks cannot be verified: {e}"

    def handle(self, request: CallbackRequest) -> CallbackResult:
        if self.crypto is None:
            raise CallbackRejected(self.problem, status=503)
        method = request.method.upper()
        if method not in ("GET", "POST"):
            raise CallbackRejected("WeCom callbacks are GET (URL check) or POST (events)", status=405)
        q = request.query
        signature, ts, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not signature or not ts or not nonce:
            raise CallbackRejected("missing msg_signature, timestamp or nonce", code="unsigned")
        if not ts.isdigit() or len(ts) > 12:
            raise CallbackRejected("the timestamp is not a time in seconds", status=400)
        if abs(self.clock() - int(ts)) > self.settings.callback_window_seconds:
            raise CallbackRejected("stale request: its timestamp is too far from now", code="stale")
        if method == "GET":
            echo = q.get("echostr", "")
            if not echo:
                raise CallbackRejected("the URL check has no echostr", status=400)
            return CallbackResult.with_text(self.crypto.open(signature, ts, nonce, echo))
        outer = parse_xml(request.body or b"", "body")
        encrypted = outer.get("Encrypt", "")
        if not encrypted:
            raise CallbackRejected("the body has no Encrypt element", status=400)
        inner = parse_xml(self.crypto.open(signature, ts, nonce, encrypted), "decrypted message")
        if inner.get("ToUserName") and inner["ToUserName"] != self.settings.corp_id:
            raise CallbackRejected("the message is addressed to another corp", status=403, code="wrong_corp")
        agent = inner.get("AgentID") or outer.get("AgentID") or ""
        if agent and self.settings.agent_id and agent != self.settings.agent_id:
            raise CallbackRejected("the message is for another agent (WECOM_AGENT_ID)", status=403, code="wrong_agent")
        replay_key = hashlib.sha256(f"{signature}\n{ts}\n{nonce}\n".encode() + (request.body or b"")).hexdigest()
        reply = ""
        event: ActionClicked | MessageReceived | None = self._click(inner)
        if event is None and inner.get("MsgType") == "text":
            event, answer = self._direct(inner)
            if answer:
                reply = self.crypto.seal(self._reply_xml(inner, answer), nonce, ts)
        result = CallbackResult.with_text(reply)
        return result.model_copy(update={"events": [event] if event else [], "replay_key": replay_key})

    def _reply_xml(self, m: dict[str, str], text: str) -> str:
        body = text.replace("]]>", "]]]]><![CDATA[>")
        return (f"<xml><ToUserName><![CDATA[{m.get('FromUserName', '')}]]></ToUserName><FromUserName><![CDATA["
                f"{self.settings.corp_id}]]></FromUserName><CreateTime>{int(self.clock())}</CreateTime><MsgType>"
                f"<![CDATA[text]]></MsgType><Content><![CDATA[{body}]]></Content></xml>")  # fmt: skip

    def _direct(self, m: dict[str, str]) -> tuple[MessageReceived | None, str]:
        """A 1:1 message to the app: (the question for one war room, or None; a passive reply)."""
        user, msg_id, content = m.get("FromUserName", ""), m.get("MsgId", ""), m.get("Content", "").strip()
        if not user or len(user) > 64 or not msg_id.isdigit() or len(msg_id) > 24 or not content:
            raise CallbackRejected("malformed text message: FromUserName, MsgId or Content", status=400)
        rooms = self.state.open_rooms_of(user)
        if len(rooms) > 1:
            named = [r for r in rooms if r.incident_id and r.incident_id in content]
            if len(named) != 1:
                ids = ", ".join(r.incident_id for r in rooms[-10:])
                return None, f"You are in {len(rooms)} open war rooms: start your question with one of {ids}."
            rooms = named
        if not rooms:
            return None, "You are in no open war room, so there is nothing I can answer about."
        room = rooms[0]
        return MessageReceived(
            event_id=f"wecom:dm:{msg_id}",
            chat_id=room.chat_id,
            message_id=f"dm:{user}:{msg_id}",
            im_user_id=user,
            text=content[:20000],
            mentions_bot=True,
        ), ""

    def _click(self, m: dict[str, str]) -> ActionClicked | None:
        if m.get("MsgType") != "event" or m.get("Event") != "template_card_event":
            return None  # a 1:1 message, a menu click…: answered, not acted on
        parsed = parse_key(m.get("EventKey", ""))
        if parsed is None:
            return None  # not a War Room button
        action, version, minutes = parsed
        if action not in CARD_ACTIONS:
            raise CallbackRejected(f"the card cannot {action.value}", status=400)
        user, task, created = m.get("FromUserName", ""), m.get("TaskId", ""), m.get("CreateTime", "")
        chat = naming.chat_of_task(task)
        if not user or len(user) > 64 or chat is None or not created.isdigit() or len(created) > 12:
            raise CallbackRejected("malformed template_card_event: FromUserName, TaskId or CreateTime", status=400)
        code = m.get("ResponseCode", "")
        if code and len(code) <= 256:
            self.state.fresh_code(chat, user, task, code)  # the card's next update takes this one
        event_id = hashlib.sha256(f"{user}\n{created}\n{task}\n{m.get('EventKey')}".encode()).hexdigest()[:32]
        return ActionClicked(
            event_id=f"wecom:{event_id}",
            chat_id=chat,
            im_user_id=user,
            action=action,
            minutes=minutes if action is Action.SNOOZE else None,
            card_version=version,
        )

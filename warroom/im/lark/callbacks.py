"""Inbound Lark/Feishu callbacks on `POST /im/lark/events`: verify, decrypt, parse.

One route serves event subscriptions (`im.message.receive_v1`, `im.chat.disbanded_v1`) and the
new-style card callback (`card.action.trigger`); Lark posts both as schema-2.0 envelopes, with
the same encryption and signature when an Encrypt Key is configured.

What is checked, and why here rather than in lark-oapi's `EventDispatcherHandler`: the SDK
compares the signature with `!=`, has no freshness window and no replay cache, and answers any
failure with HTTP 500 (which makes Lark retry). Here:

1. `url_verification` (plain or encrypted) is answered with its challenge once the verification
   token matches; Lark does not sign it, and answering has no effect.
2. Every other request must carry `X-Lark-Request-Timestamp`, `X-Lark-Request-Nonce` and
   `X-Lark-Signature = hex(sha256(timestamp + nonce + encrypt_key + raw body))`, compared in
   constant time, *before* anything is decrypted (no decryption oracle for unsigned bodies).
3. The timestamp must be within `window` seconds of now (our own freshness window).
4. The signature is the request's replay key: the API takes it once, across replicas.
5. The body is decrypted (AES-256-CBC, key = sha256(encrypt key), IV = first 16 bytes; the same
   scheme as lark-oapi's `AESCipher`) and the verification token in `header.token` must match.

Event ids are passed on unchanged (`header.event_id`): Lark re-delivers an event it thinks was not
received with the same id, and the workflow deduplicates actions on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import ValidationError

from warroom.errors import CallbackRejected
from warroom.im import values
from warroom.im.base import ActionClicked, CallbackRequest, CallbackResult, InboundEvent, MessageReceived, RoomGone
from warroom.im.lark.card import parse_value
from warroom.models import Action

FRESHNESS_WINDOW_SECONDS = 300
TIMESTAMP, NONCE, SIGNATURE = "x-lark-request-timestamp", "x-lark-request-nonce", "x-lark-signature"
_UNSIGNED = "missing or bad X-Lark-Signature"
_AT_TAG = re.compile(r'<at user_id="([^"]*)">([^<]*)</at>')

_ACTION_WORDS = {
    Action.ACKNOWLEDGE: "Acknowledging",
    Action.SNOOZE: "Snoozing",
    Action.CLOSE: "Closing",
    Action.REOPEN: "Reopening",
}


def decrypt(key: bytes, encrypted: str) -> str:
    """Lark's `{"encrypt": ...}`: base64(IV + AES-256-CBC(PKCS7(plaintext))), key = sha256(Encrypt
    Key). The same as lark-oapi's `AESCipher.decrypt_str`, with `cryptography` instead of the SDK:
    importing lark-oapi takes two seconds, and Lark wants a URL verification answered in one."""
    data = base64.b64decode(encrypted, validate=True)
    if len(data) < 32 or len(data) % 16:
        raise ValueError("invalid ciphertext length")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise ValueError("invalid PKCS7 padding")
    return padded[:-pad].decode()


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """Lark's callback signature: a plain SHA-256 digest (not an HMAC)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


class LarkCallbacks:
    """Verifies and parses Lark callbacks. `clock` is injectable for tests."""

    def __init__(
        self,
        *,
        encrypt_key: str,
        verification_token: str,
        bot_open_id: Callable[[], str | None] = lambda: None,
        window: float = FRESHNESS_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.encrypt_key = encrypt_key
        self.verification_token = verification_token
        self.bot_open_id = bot_open_id
        self.window = window
        self.clock = clock
        self._aes_key = hashlib.sha256(encrypt_key.encode()).digest()

    # ------------------------------------------------------------------ verification
    def handle(self, request: CallbackRequest) -> CallbackResult:
        if not self.encrypt_key or not self.verification_token:
            raise CallbackRejected(
                "Lark callbacks need LARK_ENCRYPT_KEY and LARK_VERIFICATION_TOKEN (developer console → "
                "Events & Callbacks → Encryption Strategy); without them a callback cannot be verified",
                status=503,
            )
        if request.method.upper() != "POST":
            raise CallbackRejected("Lark callbacks are POST requests", status=405)
        try:
            outer = values.loads(request.body or b"{}")
        except ValueError as e:
            raise CallbackRejected(f"the body is not plain JSON: {e}", status=400) from None
        if not isinstance(outer, dict):
            raise CallbackRejected("the body is not a JSON object", status=400)

        headers = {k.lower(): v for k, v in request.headers.items()}
        ts, nonce, given = headers.get(TIMESTAMP, ""), headers.get(NONCE, ""), headers.get(SIGNATURE, "")
        signed = bool(ts and nonce and given) and hmac.compare_digest(
            signature(ts, nonce, self.encrypt_key, request.body).encode(), given.lower().encode()
        )
        if not signed:
            # Only a URL verification may come unsigned; nothing else is even decrypted.
            payload = self._open(outer, on_error=_UNSIGNED, status=401)
            if payload.get("type") == "url_verification":
                return self._challenge(payload)
            raise CallbackRejected(_UNSIGNED, code="unsigned")

        now = self.clock()
        try:
            age = abs(now - int(ts))
        except ValueError:
            raise CallbackRejected("X-Lark-Request-Timestamp is not a unix time") from None
        if age > self.window:
            raise CallbackRejected(f"stale request: its timestamp is {int(age)} s away from now", code="stale")
        payload = self._open(outer, on_error="the signed body cannot be decrypted with LARK_ENCRYPT_KEY", status=400)
        if payload.get("type") == "url_verification":
            return self._challenge(payload)
        header = payload.get("header") if isinstance(payload.get("header"), dict) else {}
        token = header.get("token") if payload.get("schema") else payload.get("token")
        self._check_token(token)
        return self._parse(payload).model_copy(update={"replay_key": given.lower()})

    def _open(self, outer: dict[str, Any], *, on_error: str, status: int) -> dict[str, Any]:
        """The plaintext payload: decrypted when the body is `{"encrypt": ...}`."""
        encrypted = outer.get("encrypt")
        if encrypted is None:
            return outer
        try:
            plaintext = decrypt(self._aes_key, str(encrypted))
        except (ValueError, TypeError, UnicodeDecodeError):
            raise CallbackRejected(on_error, status=status) from None
        try:
            payload = values.loads(plaintext)
        except ValueError as e:  # unsigned: the same answer as a failed decryption (no padding oracle)
            why = on_error if status == 401 else f"the decrypted body is not plain JSON: {e}"
            raise CallbackRejected(why, status=status) from None
        if not isinstance(payload, dict):
            raise CallbackRejected(on_error, status=status)
        return payload

    def _check_token(self, token: Any) -> None:
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.verification_token.encode()):
            raise CallbackRejected("wrong verification token (LARK_VERIFICATION_TOKEN)", code="bad_token")

    def _challenge(self, payload: dict[str, Any]) -> CallbackResult:
        self._check_token(payload.get("token"))
        return CallbackResult.with_json({"challenge": str(payload.get("challenge", ""))})

    # ------------------------------------------------------------------ parsing
    def _parse(self, payload: dict[str, Any]) -> CallbackResult:
        header = payload.get("header") or {}
        event = payload.get("event") or {}
        event_type = header.get("event_type") or (event.get("type") if isinstance(event, dict) else None)
        event_id = str(header.get("event_id") or payload.get("uuid") or "")
        try:
            if event_type == "card.action.trigger":
                return self._card_action(event_id, event)
            if event_type == "im.message.receive_v1":
                return CallbackResult.with_json({}, events=self._message(event_id, event))
            if event_type == "im.chat.disbanded_v1":
                gone = RoomGone(
                    event_id=event_id,
                    chat_id=str(event["chat_id"]),
                    im_user_id=str((event.get("operator_id") or {}).get("open_id") or ""),
                )
                return CallbackResult.with_json({}, events=[gone])
        except (KeyError, TypeError, AttributeError, ValidationError) as e:
            raise CallbackRejected(f"malformed {event_type} callback: {e}".splitlines()[0], status=400) from None
        # Verified, but nothing War Room acts on: acknowledge so Lark does not deliver it again.
        return CallbackResult.with_json({}, events=[])

    def _card_action(self, event_id: str, event: dict[str, Any]) -> CallbackResult:
        value = parse_value((event.get("action") or {}).get("value"))
        if value is None:
            return CallbackResult.with_json(_toast("info", "This button is not handled by War Room."))
        try:
            action = Action(value["action"])
        except (KeyError, ValueError):
            return CallbackResult.with_json(_toast("error", f"Unknown action {value.get('action')!r}."))
        if action is Action.UNSNOOZE:
            return CallbackResult.with_json(_toast("error", "That action is not available from the card."))
        context = event.get("context") or {}
        operator = event.get("operator") or {}
        minutes = value.get("minutes")
        clicked = ActionClicked(
            event_id=event_id or f"token:{event.get('token', '')}",
            chat_id=str(context["open_chat_id"]),
            im_user_id=str(operator["open_id"]),
            action=action,
            minutes=int(minutes) if minutes is not None else None,
            card_version=int(value["card_version"]) if value.get("card_version") is not None else None,
        )
        what = _ACTION_WORDS.get(action, action.value.capitalize())
        suffix = f" for {clicked.minutes} min" if action is Action.SNOOZE and clicked.minutes else ""
        return CallbackResult.with_json(
            _toast("info", f"{what} the incident{suffix}… the card updates when done."), events=[clicked]
        )

    def _message(self, event_id: str, event: dict[str, Any]) -> list[InboundEvent]:
        message = event["message"]
        sender = event.get("sender") or {}
        if sender.get("sender_type") == "app":  # the bot's own messages
            return []
        mentions = message.get("mentions") or []
        bot = self.bot_open_id()
        mentions_bot = any(
            ((m.get("id") or {}).get("open_id") == bot) if bot else m.get("mentioned_type") == "bot"
            for m in mentions
            if isinstance(m, dict)
        )
        return [
            MessageReceived(
                event_id=event_id,
                chat_id=str(message["chat_id"]),
                message_id=str(message["message_id"]),
                im_user_id=str((sender.get("sender_id") or {}).get("open_id") or ""),
                text=message_text(str(message.get("message_type") or ""), message.get("content"), mentions),
                mentions_bot=mentions_bot,
            )
        ]


def _toast(kind: str, text: str) -> dict[str, Any]:
    return {"toast": {"type": kind, "content": text}}


def message_text(message_type: str, content: Any, mentions: list[Any] | None = None) -> str:
    """Readable text of a message's `content` JSON; mention keys (`@_user_1`) become `@Name`."""
    try:
        body = values.loads(content) if isinstance(content, str) else (content or {})
    except ValueError:
        return str(content)
    if not isinstance(body, dict):
        return str(body)
    if message_type == "text":
        text = str(body.get("text", ""))
    elif message_type == "post":
        post = body if "content" in body else next((v for v in body.values() if isinstance(v, dict)), {})
        lines = [str(post.get("title") or "")] if post.get("title") else []
        for paragraph in post.get("content") or []:
            words = []
            for node in paragraph if isinstance(paragraph, list) else []:
                if isinstance(node, dict):
                    if node.get("tag") == "at":
                        words.append("@" + str(node.get("user_name") or node.get("user_id") or ""))
                    else:
                        words.append(str(node.get("text") or node.get("href") or ""))
            lines.append("".join(words))
        text = "\n".join(lines)
    else:
        return f"[{message_type or 'message'}]"
    for m in mentions or []:
        if isinstance(m, dict) and m.get("key"):
            text = text.replace(str(m["key"]), "@" + str(m.get("name") or ""))
    return _AT_TAG.sub(lambda t: "@" + (t.group(2) or t.group(1)), text)
